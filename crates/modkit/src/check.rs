//! `modkit check`: would a target kernel (not necessarily the running one) accept a module,
//! and if not, why, in the kernel's own words (kernel/module/main.c, version.c) with the errno
//! `insmod` would get.
//!
//! A module is checked with its dependencies in load order: the modules of the tree that
//! export what the kernel image (`Module.symvers`) lacks, found by the missing-symbol engine
//! of [`crate::missing_symbols`] (the tree's modules.symbols.bin, else its files). Each is
//! checked once; a module whose dependency would be refused is refused too.

mod target;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use modkit_elf::ElfClass;

use crate::Context;
use crate::missing::{Search, own_dir};
use crate::name::path_to_modname;

pub use target::{KernelConfig, KernelSymbol, Symvers, Target};

/// Why a check could not be made (the module's own faults are [`Finding`]s, not errors).
///
/// Each message is whole: the cause is printed in it and not returned by `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A file could not be read.
    #[error("could not read {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// A `Module.symvers` line is malformed.
    #[error("{}:{line}: {what}", path.display())]
    Symvers {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A certificate file cannot be read as certificates.
    #[error("{}: {cause}", path.display())]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        cause: modkit_elf::CertificateError,
    },
    /// A kernel image cannot be read.
    #[error("{}: {cause}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        cause: modkit_elf::Error,
    },
    /// A certificate file or kernel image holds no certificate.
    #[error("{}: no X.509 certificate in it", path.display())]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// The tree has no readable in-tree module to take the kernel's vermagic from.
    #[error(
        "{}: no readable in-tree module (intree=Y) in modules.dep or modules.order to take the kernel's vermagic from",
        dir.display()
    )]
    NoReference {
        /// The module directory.
        dir: PathBuf,
    },
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The file is not a module the kernel can read.
    Unreadable,
    /// The ELF machine is not the kernel's.
    Machine,
    /// The ELF class is not the kernel's.
    Class,
    /// The module's `struct module` is not the size of the kernel's.
    ThisModuleSize,
    /// The `module_layout` CRC (`struct module`'s layout) differs.
    ModuleLayout,
    /// The vermagic differs or is missing.
    Vermagic,
    /// A symbol's CRC differs from its exporter's.
    Crc,
    /// Nobody loaded before the module exports a symbol it needs.
    UnknownSymbol,
    /// A GPL-only export needed by a module whose license is not GPL-compatible.
    GplOnly,
    /// A symbol of a namespace the module does not import.
    Namespace,
    /// A dependency would be refused.
    Dependency,
    /// The signature is refused: unsigned or signed by a key the kernel lacks when
    /// signatures are enforced; malformed, or not verifying, always.
    Signature,
    /// A warning: the module's name is a built-in module's.
    Builtin,
    /// A warning: no CRC recorded for a symbol.
    NoSymbolVersion,
    /// A warning: loading taints the kernel with this flag.
    Taint(char),
}

impl Kind {
    /// A short stable name, for `--json`.
    pub fn name(self) -> String {
        match self {
            Kind::Unreadable => "unreadable".into(),
            Kind::Machine => "machine".into(),
            Kind::Class => "class".into(),
            Kind::ThisModuleSize => "this-module-size".into(),
            Kind::ModuleLayout => "module-layout".into(),
            Kind::Vermagic => "vermagic".into(),
            Kind::Crc => "crc".into(),
            Kind::UnknownSymbol => "unknown-symbol".into(),
            Kind::GplOnly => "gpl-only".into(),
            Kind::Namespace => "namespace".into(),
            Kind::Dependency => "dependency".into(),
            Kind::Signature => "signature".into(),
            Kind::Builtin => "builtin".into(),
            Kind::NoSymbolVersion => "no-symbol-version".into(),
            Kind::Taint(flag) => format!("taint-{flag}"),
        }
    }
}

/// One fact about loading a module: a refusal (with the errno `init_module` would return) or
/// a warning (no errno).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// What it is about.
    pub kind: Kind,
    /// The kernel's words (its log line, without the `NAME: ` prefix), or ours where the
    /// kernel says nothing.
    pub message: String,
    /// What the kernel does not say: which module exports a symbol, the license, ...
    pub note: Option<String>,
    /// The errno of a refusal; `None` for a warning.
    pub errno: Option<i32>,
}

impl Finding {
    fn refusal(kind: Kind, errno: i32, message: String) -> Finding {
        Finding {
            kind,
            message,
            note: None,
            errno: Some(errno),
        }
    }

    fn warning(kind: Kind, message: String) -> Finding {
        Finding {
            kind,
            message,
            note: None,
            errno: None,
        }
    }

    /// The line the kernel logs for it when loading `module` (its name): `NAME: MESSAGE`, but
    /// for the signature's, logged before the kernel knows the name (kernel/module/signing.c),
    /// and the size of `struct module`'s, `module NAME: MESSAGE` (kernel/module/main.c).
    pub fn kernel_line(&self, module: &str) -> String {
        match self.kind {
            Kind::Signature => self.message.clone(),
            Kind::ThisModuleSize => format!("module {module}: {}", self.message),
            _ => format!("{module}: {}", self.message),
        }
    }

    fn with_note(mut self, note: String) -> Finding {
        self.note = Some(note);
        self
    }
}

/// The verdict on one module file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The module's name (its `name=` record, else from its file name).
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// The modules loaded before it, in load order (dependencies of dependencies first).
    pub dependencies: Vec<String>,
    /// What loading it meets, in the order the kernel checks.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The errno the kernel would refuse the module with: the first refusal's; `None` when
    /// it would load.
    pub fn errno(&self) -> Option<i32> {
        self.findings.iter().find_map(|finding| finding.errno)
    }

    /// Whether the kernel would accept it.
    pub fn would_load(&self) -> bool {
        self.errno().is_none()
    }

    /// The refusals.
    pub fn refusals(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.errno.is_some())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.errno.is_none())
    }
}

/// The kernel's `license_is_gpl_compatible` (include/linux/license.h; kernel/module/main.c
/// takes a missing license as "unspecified").
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// What the kernel's `module_sig_check` (kernel/module/signing.c) makes of a signature:
/// unsigned, unsupported crypto and an unavailable key are refused under enforcement
/// ("Loading of ... is rejected", EKEYREJECTED) and taint the kernel (E) otherwise; a malformed
/// signature (EBADMSG) or one that does not verify (EKEYREJECTED) is refused either way.
fn signature_finding(signed: &Signed, enforce: bool) -> Option<Finding> {
    use modkit_elf::SignatureError as E;
    let taint = || {
        Finding::warning(
            Kind::Taint('E'),
            "module verification failed: signature and/or required key missing - tainting kernel"
                .into(),
        )
    };
    let err = match signed {
        Signed::Unverified(true) | Signed::Verified(Ok(_)) => return None,
        Signed::Unverified(false) if enforce => {
            return Some(Finding::refusal(
                Kind::Signature,
                libc::EKEYREJECTED,
                "Loading of unsigned module is rejected".into(),
            ));
        }
        Signed::Unverified(false) => return Some(taint()),
        Signed::Verified(Err(err)) => err,
    };
    let reason = match err {
        E::Unsigned => "unsigned module",
        E::Unsupported { .. } => "module with unsupported crypto",
        E::UnavailableKey { .. } => "module with unavailable key",
        E::Malformed { .. } => {
            return Some(
                Finding::refusal(Kind::Signature, libc::EBADMSG, err.to_string()).with_note(
                    "the kernel refuses a malformed signature even when signatures are not enforced"
                        .into(),
                ),
            );
        }
        _ => {
            return Some(
                Finding::refusal(Kind::Signature, libc::EKEYREJECTED, err.to_string()).with_note(
                    "the kernel refuses a signature that does not verify even when signatures are not enforced"
                        .into(),
                ),
            );
        }
    };
    let note = match err {
        E::Unsigned => None,
        _ => Some(err.to_string()),
    };
    let mut finding = if enforce {
        Finding::refusal(
            Kind::Signature,
            libc::EKEYREJECTED,
            format!("Loading of {reason} is rejected"),
        )
    } else {
        taint()
    };
    finding.note = note;
    Some(finding)
}

/// The kernel's `same_magic`: with CRCs (a `__versions` section) the first word, the release,
/// is not compared (`module_layout`'s CRC stands for it).
fn same_magic(module: &str, kernel: &str, has_crcs: bool) -> bool {
    if has_crcs {
        let skip = |s: &str| s.find(' ').map_or("", |i| &s[i..]).to_owned();
        skip(module) == skip(kernel)
    } else {
        module == kernel
    }
}

/// What a module file says that a load checks.
#[derive(Debug)]
struct Facts {
    name: String,
    machine: u16,
    class: ElfClass,
    vermagic: Option<String>,
    license: Option<String>,
    intree: bool,
    staging: bool,
    /// The size of its `.gnu.linkonce.this_module` (`None` without one).
    this_module_size: Option<usize>,
    signature: Signed,
    import_ns: Vec<String>,
    /// `None` without a `__versions` section.
    versions: Option<HashMap<String, u64>>,
    /// Undefined symbols in symbol-table order, each once, with its weak flag.
    imports: Vec<(String, bool)>,
    /// Exports: name -> (GPL-only, CRC).
    exports: HashMap<String, (bool, Option<u64>)>,
}

/// What a module's signature trailer gives, as far as the target's certificates tell.
#[derive(Debug)]
enum Signed {
    /// No certificates to verify against: whether the file ends with the trailer.
    Unverified(bool),
    /// Verified against the target's certificates.
    Verified(Result<modkit_elf::Verified, modkit_elf::SignatureError>),
}

fn read_facts(path: &Path, trusted: Option<&[modkit_elf::Certificate]>) -> Result<Facts, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    let elf_error = |e: modkit_elf::Error| format!("{}: {e}", path.display());
    let image =
        modkit_elf::decompress(&bytes, modkit_elf::DEFAULT_DECOMPRESS_LIMIT).map_err(elf_error)?;
    let module = modkit_elf::Module::parse(&image).map_err(elf_error)?;
    let info = module.modinfo();
    let versions = match module.section("__versions").map_err(elf_error)? {
        None => None,
        Some(_) => Some(
            module
                .versions()
                .map_err(elf_error)?
                .into_iter()
                .map(|v| (v.name.to_owned(), v.crc))
                .collect(),
        ),
    };
    let mut seen = HashSet::new();
    let imports = module
        .depmod_imports()
        .map_err(elf_error)?
        .into_iter()
        .filter(|symbol| seen.insert(symbol.name))
        .map(|symbol| (symbol.name.to_owned(), symbol.weak))
        .collect::<Vec<_>>();
    // depmod_imports appends the __versions entries no symbol refers to; keep the symbols.
    let undefined: HashSet<&str> = module.imports().map_err(elf_error)?.into_iter().collect();
    let imports = imports
        .into_iter()
        .filter(|(name, _)| undefined.contains(name.as_str()))
        .collect();
    let exports = module
        .exports()
        .map_err(elf_error)?
        .into_iter()
        .map(|e| (e.name.to_owned(), (e.gpl_only, e.crc)))
        .collect();
    Ok(Facts {
        name: info
            .name()
            .map(str::to_owned)
            .or_else(|| path_to_modname(path))
            .unwrap_or_default(),
        machine: module.machine(),
        class: module.class(),
        vermagic: info.vermagic().map(str::to_owned),
        license: info.license().map(|l| l.into_owned()),
        intree: info.intree().is_some(),
        this_module_size: module
            .section(target::THIS_MODULE)
            .map_err(elf_error)?
            .map(<[u8]>::len),
        staging: info.get("staging").is_some(),
        signature: match trusted {
            None => Signed::Unverified(
                modkit_elf::signature(&image).ok().flatten().is_some()
                    || bytes.ends_with(modkit_elf::SIGNATURE_MAGIC),
            ),
            Some(certs) => Signed::Verified(modkit_elf::verify(&image, certs)),
        },
        import_ns: info.import_ns().map(str::to_owned).collect(),
        versions,
        imports,
        exports,
    })
}

/// A symbol resolved: its name, its weak flag, and its exporting module (name, file) when
/// not the kernel.
type Resolved = (String, bool, Option<(String, PathBuf)>);

/// Checks module files against a [`Target`], each once, over a tree's [`Context`].
#[derive(Debug)]
pub struct Checker<'a> {
    target: &'a Target,
    tree: &'a mut Context,
    /// Whether a symbol the tree lacks is looked for in the module's own directory (to name
    /// an exporter outside the tree); off for `--all`, where the tree is all there is.
    search_own_dir: bool,
    budget: Duration,
    facts: HashMap<PathBuf, Rc<Result<Facts, String>>>,
    done: HashMap<PathBuf, Rc<Report>>,
    in_progress: HashSet<PathBuf>,
}

impl<'a> Checker<'a> {
    /// A checker of modules against `target`, their dependencies from `tree`.
    pub fn new(target: &'a Target, tree: &'a mut Context) -> Checker<'a> {
        Checker {
            target,
            tree,
            search_own_dir: true,
            budget: Duration::from_secs(10),
            facts: HashMap::new(),
            done: HashMap::new(),
            in_progress: HashSet::new(),
        }
    }

    /// Whether to look in a module's own directory for symbols the tree lacks (default on).
    pub fn search_own_dir(&mut self, on: bool) {
        self.search_own_dir = on;
    }

    /// How long to read module files for exporters when the tree has no symbols index.
    pub fn set_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    /// Reads the modules at `paths` (not read yet) on one thread per CPU, so that checking
    /// them later finds them read: reading, decompressing and verifying the signature is
    /// nearly all of the time `--all` takes. Under an address-space limit (`ulimit -v`) the
    /// files are read one at a time, as [`Checker::check`] does.
    pub fn prefetch(&mut self, paths: &[PathBuf]) {
        let todo: Vec<&PathBuf> = paths
            .iter()
            .filter(|path| !self.facts.contains_key(*path))
            .collect();
        let workers = if modkit_syscalls::address_space_limit().is_some() {
            1
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        };
        if workers < 2 || todo.len() < 2 {
            return;
        }
        let trusted = self.target.trusted.as_deref();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let read: Vec<Vec<(usize, Result<Facts, String>)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers.min(todo.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(path) = todo.get(at) else {
                                break;
                            };
                            mine.push((at, read_facts(path, trusted)));
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_default())
                .collect()
        });
        for (at, facts) in read.into_iter().flatten() {
            self.facts.insert(todo[at].clone(), Rc::new(facts));
        }
    }

    fn facts(&mut self, path: &Path) -> Rc<Result<Facts, String>> {
        self.facts
            .entry(path.to_owned())
            .or_insert_with(|| Rc::new(read_facts(path, self.target.trusted.as_deref())))
            .clone()
    }

    /// The verdict on the module file at `path`, with its dependencies.
    pub fn check(&mut self, path: &Path) -> Rc<Report> {
        if let Some(report) = self.done.get(path) {
            return report.clone();
        }
        self.in_progress.insert(path.to_owned());
        let report = Rc::new(self.check_uncached(path));
        self.in_progress.remove(path);
        self.done.insert(path.to_owned(), report.clone());
        report
    }

    fn check_uncached(&mut self, path: &Path) -> Report {
        let facts = self.facts(path);
        let facts = match &*facts {
            Ok(facts) => facts,
            Err(message) => {
                return Report {
                    name: path_to_modname(path).unwrap_or_default(),
                    path: path.to_owned(),
                    dependencies: Vec::new(),
                    findings: vec![Finding::refusal(
                        Kind::Unreadable,
                        libc::ENOEXEC,
                        message.clone(),
                    )],
                };
            }
        };
        let target = self.target;
        let mut findings = Vec::new();

        // Resolve the symbols first: the exporters are the dependencies, loaded before.
        let mut resolved: Vec<Resolved> = Vec::new();
        let mut lacking = Vec::new();
        for (symbol, weak) in &facts.imports {
            if target.symvers.get(symbol).is_some() {
                resolved.push((symbol.clone(), *weak, None));
            } else {
                lacking.push(symbol.clone());
            }
        }
        let mut search = Search::new(path, lacking, HashSet::new());
        if !search.ask_index(self.tree) {
            let deadline = Instant::now() + self.budget;
            search.scan(self.tree.dir(), true, deadline);
        }
        let in_tree = search.take_exported();
        let mut outside = Vec::new();
        let weak: HashSet<&str> = facts
            .imports
            .iter()
            .filter(|(_, weak)| *weak)
            .map(|(name, _)| name.as_str())
            .collect();
        if self.search_own_dir && search.missing().iter().any(|s| !weak.contains(s.as_str())) {
            if let Some(dir) = own_dir(path) {
                search.scan(dir, false, Instant::now() + self.budget);
            }
            outside = search.take_exported();
        }
        let unexported = search.finish().unexported;

        // Dependencies, in load order.
        let mut dependencies: Vec<String> = Vec::new();
        let mut dep_paths: Vec<(String, PathBuf)> = Vec::new();
        for exporter in &in_tree {
            if let Some(path) = &exporter.path
                && !dep_paths.iter().any(|(_, p)| p == path)
            {
                dep_paths.push((exporter.module.clone(), path.clone()));
            }
        }
        let mut dep_exports: HashMap<String, Rc<Result<Facts, String>>> = HashMap::new();
        for (module, dep_path) in &dep_paths {
            dep_exports.insert(module.clone(), self.facts(dep_path));
            if self.in_progress.contains(dep_path) {
                continue;
            }
            let report = self.check(dep_path);
            for name in report.dependencies.iter().chain([&report.name]) {
                if !dependencies.contains(name) {
                    dependencies.push(name.clone());
                }
            }
            if let Some(errno) = report.errno() {
                findings.push(Finding::refusal(
                    Kind::Dependency,
                    errno,
                    format!(
                        "dependency {} ({}) would not load",
                        report.name,
                        dep_path.display()
                    ),
                ));
            }
        }
        for exporter in &in_tree {
            let Some(path) = &exporter.path else {
                continue;
            };
            resolved.push((
                exporter.symbol.clone(),
                false,
                Some((exporter.module.clone(), path.clone())),
            ));
        }

        // kernel/module/main.c, load_module in order: module_sig_check, elf_validity_check,
        // check_modstruct_version, check_modinfo, then simplify_symbols.
        if target.config.module_sig || target.sig_enforce || target.trusted.is_some() {
            findings.extend(signature_finding(&facts.signature, target.sig_enforce));
        }
        if let Some(machine) = target.machine
            && machine != facts.machine
        {
            findings.push(
                Finding::refusal(
                    Kind::Machine,
                    libc::ENOEXEC,
                    format!("Invalid architecture in ELF header: {}", facts.machine),
                )
                .with_note(format!("the kernel's modules have ELF machine {machine}")),
            );
        }
        if let Some(class) = target.class
            && class != facts.class
        {
            findings.push(
                Finding::refusal(
                    Kind::Class,
                    libc::ENOEXEC,
                    "Invalid ELF section header size".into(),
                )
                .with_note(format!(
                    "the module is {}, the kernel's modules {class}",
                    facts.class
                )),
            );
        }
        if let Some(size) = target.this_module_size
            && facts.this_module_size != Some(size)
        {
            findings.push(
                Finding::refusal(
                    Kind::ThisModuleSize,
                    libc::ENOEXEC,
                    ".gnu.linkonce.this_module section size must match the kernel's built struct module size at run time".into(),
                )
                .with_note(format!(
                    "the module's is {}, the kernel's {size} bytes: it was built for another kernel",
                    facts
                        .this_module_size
                        .map_or_else(|| "missing".to_owned(), |s| format!("{s} bytes"))
                )),
            );
        }
        let modversions = target.config.modversions;
        if modversions && let Some(layout) = target.symvers.get("module_layout") {
            self.version_check(
                facts,
                "module_layout",
                Some(u64::from(layout.crc)),
                &mut findings,
                true,
            );
        }
        match (&facts.vermagic, &target.vermagic) {
            (None, _) if !target.config.force_load => findings.push(
                Finding::refusal(Kind::Vermagic, libc::ENOEXEC, "no version magic".into())
                    .with_note("the kernel refuses a module without vermagic silently".into()),
            ),
            (None, _) => findings.push(Finding::warning(
                Kind::Taint('F'),
                "bad vermagic: kernel tainted.".into(),
            )),
            (Some(module), Some(kernel))
                if !same_magic(module, kernel, modversions && facts.versions.is_some()) =>
            {
                findings.push(Finding::refusal(
                    Kind::Vermagic,
                    libc::ENOEXEC,
                    format!("version magic '{module}' should be '{kernel}'"),
                ));
            }
            _ => {}
        }
        if !facts.intree {
            findings.push(Finding::warning(
                Kind::Taint('O'),
                "loading out-of-tree module taints kernel.".into(),
            ));
        }
        if facts.staging {
            findings.push(Finding::warning(
                Kind::Taint('C'),
                "module is from the staging directory, the quality is unknown, you have been warned."
                    .into(),
            ));
        }
        let license = facts.license.as_deref().unwrap_or("unspecified");
        let gpl_ok = license_is_gpl_compatible(license);
        if !gpl_ok {
            findings.push(Finding::warning(
                Kind::Taint('P'),
                format!("module license '{license}' taints kernel."),
            ));
        }
        if target.builtin.contains(&facts.name) {
            findings.push(Finding::warning(
                Kind::Builtin,
                format!("a module named {} is built into the kernel", facts.name),
            ).with_note("modprobe takes the name for the built-in module and loads nothing; the kernel refuses a second module of a name it has in /sys/module".into()));
        }

        // simplify_symbols: every symbol in symbol-table order.
        let order: HashMap<&str, usize> = facts
            .imports
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.as_str(), i))
            .collect();
        let mut symbol_findings: Vec<(usize, Finding)> = Vec::new();
        for (symbol, _, exporter) in &resolved {
            let mut found = Vec::new();
            let (gpl_only, crc, namespace) = match exporter {
                None => {
                    let Some(kernel) = target.symvers.get(symbol) else {
                        continue;
                    };
                    (
                        kernel.gpl_only,
                        modversions.then_some(u64::from(kernel.crc)),
                        kernel.namespace.clone(),
                    )
                }
                Some((module, _)) => {
                    let export = dep_exports
                        .get(module)
                        .and_then(|facts| facts.as_ref().as_ref().ok())
                        .and_then(|facts| facts.exports.get(symbol).copied());
                    let (gpl, crc) = export.unwrap_or((false, None));
                    (gpl, if modversions { crc } else { None }, None)
                }
            };
            let owner = exporter.as_ref().map_or_else(
                || "the kernel".to_owned(),
                |(module, path)| format!("{module} ({})", path.display()),
            );
            if gpl_only && !gpl_ok {
                found.push(
                    Finding::refusal(
                        Kind::GplOnly,
                        libc::ENOENT,
                        format!("Unknown symbol {symbol} (err -2)"),
                    )
                    .with_note(format!(
                        "{owner} exports it GPL-only and the module's license '{license}' is not GPL-compatible"
                    )),
                );
            } else if self.version_check(facts, symbol, crc, &mut found, false)
                && let Some(ns) = namespace
                && !facts.import_ns.contains(&ns)
            {
                found.push(Finding::refusal(
                    Kind::Namespace,
                    libc::EINVAL,
                    format!(
                        "module uses symbol ({symbol}) from namespace {ns}, but does not import it."
                    ),
                ));
            }
            let at = order.get(symbol.as_str()).copied().unwrap_or(usize::MAX);
            symbol_findings.extend(found.into_iter().map(|f| (at, f)));
        }
        for symbol in &unexported {
            if weak.contains(symbol.as_str()) {
                continue;
            }
            let mut finding = Finding::refusal(
                Kind::UnknownSymbol,
                libc::ENOENT,
                format!("Unknown symbol {symbol} (err -2)"),
            );
            finding.note =
                Some("exported neither by the kernel nor by a module of the tree".into());
            let at = order.get(symbol.as_str()).copied().unwrap_or(usize::MAX);
            symbol_findings.push((at, finding));
        }
        for exporter in &outside {
            let place = exporter
                .path
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default();
            let finding = Finding::refusal(
                Kind::UnknownSymbol,
                libc::ENOENT,
                format!("Unknown symbol {} (err -2)", exporter.symbol),
            )
            .with_note(format!(
                "exported by {}{place}, which is not in {} and so is not loaded before it",
                exporter.module,
                self.tree.dir().display()
            ));
            let at = order
                .get(exporter.symbol.as_str())
                .copied()
                .unwrap_or(usize::MAX);
            symbol_findings.push((at, finding));
        }
        symbol_findings.sort_by_key(|(at, _)| *at);
        findings.extend(symbol_findings.into_iter().map(|(_, f)| f));
        // Dependencies are loaded first: their refusal is the one insmod meets first.
        findings.sort_by_key(|f| f.kind != Kind::Dependency);

        Report {
            name: facts.name.clone(),
            path: path.to_owned(),
            dependencies,
            findings,
        }
    }

    /// The kernel's `check_version` for `symbol` against the exporter's `crc` (`None`: the
    /// exporter supplies none, which the kernel accepts). True when the symbol passes.
    fn version_check(
        &self,
        facts: &Facts,
        symbol: &str,
        crc: Option<u64>,
        findings: &mut Vec<Finding>,
        layout: bool,
    ) -> bool {
        let Some(crc) = crc else {
            return true;
        };
        let (kind, errno) = if layout {
            (Kind::ModuleLayout, libc::ENOEXEC)
        } else {
            (Kind::Crc, libc::EINVAL)
        };
        let Some(versions) = &facts.versions else {
            // No __versions at all: try_to_force_load.
            if self.target.config.force_load {
                findings.push(Finding::warning(
                    Kind::Taint('F'),
                    format!("{symbol}: kernel tainted."),
                ));
                return true;
            }
            findings.push(
                Finding::refusal(kind, errno, self.unknown_or(layout, symbol, -22)).with_note(
                    "the module has no __versions and the kernel has no CONFIG_MODULE_FORCE_LOAD"
                        .into(),
                ),
            );
            return false;
        };
        match versions.get(symbol) {
            None => {
                findings.push(Finding::warning(
                    Kind::NoSymbolVersion,
                    format!("no symbol version for {symbol}"),
                ));
                true
            }
            Some(&have) if have == crc => true,
            Some(&have) => {
                let mut finding = Finding::refusal(
                    kind,
                    errno,
                    format!("disagrees about version of symbol {symbol}"),
                )
                .with_note(format!(
                    "the module has CRC {have:#010x}, the exporter {crc:#010x}"
                ));
                if !layout {
                    finding.note = Some(format!(
                        "{}; then: Unknown symbol {symbol} (err -22)",
                        finding.note.unwrap_or_default()
                    ));
                }
                findings.push(finding);
                false
            }
        }
    }

    fn unknown_or(&self, layout: bool, symbol: &str, err: i32) -> String {
        if layout {
            format!("{symbol}: no __versions")
        } else {
            format!("Unknown symbol {symbol} (err {err})")
        }
    }
}
