//! `modkit check`: would a target kernel accept these modules, and if not, why (the kernel's
//! log line and the errno insmod would get), before loading anything.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use modkit::Context;
use modkit::check::{Checker, KernelConfig, Report, Symvers, Target};
use modkit::elf::Certificate;
use modkit::syscalls::Errno;

use crate::common::{self, Level, ModuleDirArgs};
use crate::json::Json;

const TOOL: &str = "check";

/// Say whether a target kernel would accept modules, and why not, before loading them.
///
/// The target is a module directory (-b, -k: ROOT/lib/modules/VERSION, with its modules.dep and
/// modules.symbols, as depmod writes them) and the kernel image's exports from the headers'
/// Module.symvers (ROOT/usr/src/linux-headers-VERSION/Module.symvers, or the module
/// directory's build/Module.symvers, or --symvers). The kernel's vermagic, ELF machine and class
/// are taken from the tree's first in-tree module; CONFIG_MODVERSIONS, CONFIG_MODULE_FORCE_LOAD
/// and CONFIG_MODULE_SIG from ROOT/boot/config-VERSION when it exists.
///
/// Each module is checked with its dependencies in load order (the tree's modules that export
/// what the kernel lacks), as the kernel would check them: vermagic and module_layout
/// (ENOEXEC), unknown symbols (ENOENT; GPL-only exports to a module whose license is not
/// GPL-compatible count as unknown), CRCs that disagree (EINVAL), symbol namespaces not
/// imported (EINVAL). Warnings: taints (O out-of-tree, E unsigned, P proprietary, C staging,
/// F forced), a name of a built-in module, symbols without a CRC.
///
/// Signatures: with the kernel's trusted certificates (--certs, --vmlinux, or under --sig-enforce
/// the image ROOT/boot/vmlinuz-VERSION) each signature is verified as the kernel does (PKCS#7,
/// RSA, the certificate with the signer's issuer and serial): a malformed signature (EBADMSG)
/// or one that does not verify (EKEYREJECTED) is refused; an unsigned module, or one signed by
/// a key the kernel lacks, taints the kernel (E), and is refused with EKEYREJECTED when
/// signatures are enforced (--sig-enforce, CONFIG_MODULE_SIG_FORCE, module.sig_enforce=1 in
/// the --cmdline file, or, without -k, the running kernel's module.sig_enforce parameter in
/// /sys/module/module/parameters/sig_enforce). Without certificates
/// a module counts as signed when it has the signature trailer.
///
/// Exit status: 0 when every module would load, 1 when one would not, 2 on a usage or input
/// error.
#[derive(Debug, clap::Parser)]
#[command(name = "check", disable_version_flag = true)]
struct Args {
    #[command(flatten)]
    dir: ModuleDirArgs,

    /// The kernel image's exports and CRCs (a Module.symvers)
    #[arg(long, value_name = "FILE")]
    symvers: Option<PathBuf>,

    /// The target enforces module signatures (module.sig_enforce=1 on its command line)
    #[arg(long)]
    sig_enforce: bool,

    /// The target's kernel command line (a file, e.g. a saved /proc/cmdline): module.sig_enforce=1 on it enforces signatures. Without it and without -k, the running kernel's /sys/module/module/parameters/sig_enforce says
    #[arg(long, value_name = "FILE")]
    cmdline: Option<PathBuf>,

    /// The kernel's trusted certificates: DER (one, or several concatenated) or PEM [repeatable]
    #[arg(long, value_name = "FILE")]
    certs: Vec<PathBuf>,

    /// Take the trusted certificates built into this kernel image (ELF vmlinux or bzImage)
    #[arg(long, value_name = "FILE")]
    vmlinux: Option<PathBuf>,

    /// Check every module of the tree (modules.dep); only refusals are printed, with a summary
    #[arg(long, conflicts_with = "modules")]
    all: bool,

    /// Print the warnings of --all too
    #[arg(short, long)]
    verbose: bool,

    /// Print the verdicts as JSON, one object per module on a line
    #[arg(long)]
    json: bool,

    /// Module files, or names looked up in the tree as modprobe does
    #[arg(value_name = "MODULE", required_unless_present = "all")]
    modules: Vec<OsString>,
}

/// This tool's command line as clap sees it: its manual page and shell completions.
pub(crate) fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let args: Args = match common::parse_args(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    match run(&args) {
        Ok(exit) => exit,
        Err(message) => {
            common::error(TOOL, message);
            ExitCode::from(2)
        }
    }
}

/// The `Module.symvers` to read: `--symvers`, else the headers' under the root.
fn symvers_path(args: &Args, module_dir: &Path) -> Result<PathBuf, String> {
    if let Some(path) = &args.symvers {
        return Ok(path.clone());
    }
    let version = module_dir
        .file_name()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = PathBuf::from(args.dir.basedir.clone().unwrap_or_else(|| "/".into()));
    let candidates = [
        root.join("usr/src")
            .join(format!("linux-headers-{version}"))
            .join("Module.symvers"),
        module_dir.join("build/Module.symvers"),
    ];
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            format!(
                "no Module.symvers for {version} (looked in {}); give --symvers FILE",
                looked.join(", ")
            )
        })
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let module_dir = args.dir.module_dir();
    let symvers_path = symvers_path(args, &module_dir)?;
    let symvers = Symvers::read(&symvers_path).map_err(|e| e.to_string())?;
    let version = module_dir
        .file_name()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = PathBuf::from(args.dir.basedir.clone().unwrap_or_else(|| "/".into()));
    let config = match std::fs::read_to_string(root.join("boot").join(format!("config-{version}")))
    {
        Ok(text) => KernelConfig::parse(&text),
        Err(_) => KernelConfig::guess(&symvers),
    };
    let mut target = Target::new(symvers, config);
    target.sig_enforce |= args.sig_enforce;
    match &args.cmdline {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "could not read {}: {}",
                    path.display(),
                    modkit::syscalls::io_error_text(&e)
                )
            })?;
            target.sig_enforce |= cmdline_enforces(&text);
        }
        // The target is the running kernel: its parameter is the truth (the command line's
        // module.sig_enforce=1 and CONFIG_MODULE_SIG_FORCE both set it).
        None if args.dir.version.is_none() => {
            target.sig_enforce |= std::fs::read_to_string(SIG_ENFORCE_PARAMETER)
                .is_ok_and(|value| value.trim() == "Y");
        }
        None => {}
    }
    target.trusted = trusted_certificates(args, &root, &version, target.sig_enforce)?;
    if let Err(err) = target.learn_from_tree(&module_dir) {
        common::report(
            TOOL,
            Level::Warning,
            format_args!("{err}: vermagic, ELF machine and class are not checked"),
        );
    }
    let mut ctx = args
        .dir
        .open(TOOL, &args.dir.config_files(), None)
        .map_err(|e| e.to_string())?;

    let mut paths: Vec<PathBuf> = Vec::new();
    let mut exit = common::Exit::default();
    let mut input_error = false;
    if args.all {
        let text = std::fs::read_to_string(module_dir.join("modules.dep")).map_err(|e| {
            format!(
                "--all needs the tree's modules.dep (run depmod): could not read {}: {}",
                module_dir.join("modules.dep").display(),
                modkit::syscalls::io_error_text(&e)
            )
        })?;
        paths.extend(
            text.lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(path, _)| module_dir.join(path)),
        );
    } else {
        for module in &args.modules {
            match resolve(&mut ctx, module) {
                Ok(Some(path)) => paths.push(path),
                Ok(None) => {}
                Err(message) => {
                    common::error(TOOL, message);
                    input_error = true;
                }
            }
        }
    }

    let started = std::time::Instant::now();
    let mut checker = Checker::new(&target, &mut ctx);
    checker.search_own_dir(!args.all);
    checker.prefetch(&paths);
    let (mut refused, mut warnings) = (0usize, 0usize);
    let mut out = String::new();
    for path in &paths {
        let report = checker.check(path);
        if !report.would_load() {
            refused += 1;
            exit.fail();
        }
        warnings += report.warnings().count();
        if args.json {
            out.push_str(&format!("{}\n", json(&report)));
        } else {
            print_report(&report, args.all && !args.verbose);
        }
    }
    if !out.is_empty() {
        print!("{out}");
    }
    if args.all && !args.json {
        println!(
            "checked {} modules in {:.2} s: {} would load, {refused} would not; {warnings} warnings{}",
            paths.len(),
            started.elapsed().as_secs_f64(),
            paths.len() - refused,
            if args.verbose {
                ""
            } else {
                " (--verbose shows them)"
            }
        );
    }
    if input_error {
        return Ok(ExitCode::from(2));
    }
    Ok(exit.into())
}

/// The running kernel's `module.sig_enforce` (kernel/module/signing.c, a `bool_enable_only`
/// parameter): `Y` when signatures are enforced.
const SIG_ENFORCE_PARAMETER: &str = "/sys/module/module/parameters/sig_enforce";

/// Whether a kernel command line sets `module.sig_enforce` (kernel/params.c: a bare
/// `module.sig_enforce` sets it; a value is read by `kstrtobool`: `y`, `t`, `1`, `on`). The
/// parameter only enables, so a later false does not undo an earlier true.
fn cmdline_enforces(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|word| {
        let Some(rest) = word.strip_prefix("module.sig_enforce") else {
            return false;
        };
        match rest.strip_prefix('=') {
            None => rest.is_empty(),
            Some(value) => {
                let value = value.trim_matches('"').to_ascii_lowercase();
                value.starts_with(['y', 't', '1']) || value.starts_with("on")
            }
        }
    })
}

/// The trusted certificates: from --certs and --vmlinux; else, when signatures are enforced,
/// from the target's image (ROOT/boot/vmlinuz-VERSION); else none (not verified).
fn trusted_certificates(
    args: &Args,
    root: &Path,
    version: &str,
    enforce: bool,
) -> Result<Option<Vec<Certificate>>, String> {
    let mut certs = Vec::new();
    for path in &args.certs {
        certs.extend(Target::read_certificates(path).map_err(|e| e.to_string())?);
    }
    let image = match &args.vmlinux {
        Some(path) => Some(path.clone()),
        None if enforce && args.certs.is_empty() => {
            let image = root.join("boot").join(format!("vmlinuz-{version}"));
            if !image.is_file() {
                return Err(format!(
                    "signatures are enforced but no trusted certificates were given and {} does not exist: give --certs FILE or --vmlinux FILE",
                    image.display()
                ));
            }
            Some(image)
        }
        None => None,
    };
    if let Some(image) = image {
        certs.extend(Target::image_certificates(&image).map_err(|e| e.to_string())?);
    }
    Ok((!certs.is_empty() || !args.certs.is_empty()).then_some(certs))
}

/// A file (a path that exists) or a name looked up as modprobe looks it up; `None` for a
/// built-in module (said on stderr).
fn resolve(ctx: &mut Context, module: &OsString) -> Result<Option<PathBuf>, String> {
    let path = Path::new(module);
    if path.is_file() {
        return Ok(Some(path.to_owned()));
    }
    let name = module.to_string_lossy();
    let ids = ctx.lookup(&name).map_err(|e| e.to_string())?;
    let Some(&id) = ids.first() else {
        return Err(format!(
            "Module {name} not found in directory {}",
            ctx.dir().display()
        ));
    };
    if ctx.is_builtin(id) {
        common::report(
            TOOL,
            Level::Info,
            format_args!("{name}: built into the kernel, nothing to load"),
        );
        return Ok(None);
    }
    match ctx.path(id).map_err(|e| e.to_string())? {
        Some(path) => Ok(Some(path)),
        None => Err(format!("{name}: no file in {}", ctx.dir().display())),
    }
}

/// `NAME (PATH): would load` or `would not load (ERRNO)`, then each finding on its line.
fn print_report(report: &Report, refusals_only: bool) {
    let mut text = String::new();
    if refusals_only && report.would_load() {
        return;
    }
    match report.errno() {
        None => text.push_str(&format!(
            "{} ({}): would load",
            report.name,
            report.path.display()
        )),
        Some(errno) => text.push_str(&format!(
            "{} ({}): would not load: {}",
            report.name,
            report.path.display(),
            Errno(errno).strerror()
        )),
    }
    if !report.dependencies.is_empty() {
        text.push_str(&format!(" (after {})", report.dependencies.join(", ")));
    }
    text.push('\n');
    for finding in &report.findings {
        if refusals_only && finding.errno.is_none() {
            continue;
        }
        let level = if finding.errno.is_some() {
            "error"
        } else {
            "warning"
        };
        text.push_str(&format!("  {level}: {}: {}", report.name, finding.message));
        if let Some(note) = &finding.note {
            text.push_str(&format!(" ({note})"));
        }
        text.push('\n');
    }
    print!("{text}");
}

fn json(report: &Report) -> Json {
    let errno = match report.errno() {
        Some(errno) => Json::Object(vec![
            (
                "number",
                Json::Number(u64::try_from(errno).unwrap_or_default()),
            ),
            ("text", Json::str(Errno(errno).strerror())),
        ]),
        None => Json::Null,
    };
    Json::Object(vec![
        ("module", Json::str(&report.name)),
        ("path", Json::str(report.path.display().to_string())),
        (
            "would_load",
            Json::str(if report.would_load() { "yes" } else { "no" }),
        ),
        ("errno", errno),
        ("dependencies", Json::strings(&report.dependencies)),
        (
            "findings",
            Json::Array(
                report
                    .findings
                    .iter()
                    .map(|f| {
                        Json::Object(vec![
                            ("kind", Json::str(f.kind.name())),
                            ("message", Json::str(&f.message)),
                            ("kernel_log", Json::str(f.kernel_line(&report.name))),
                            ("note", f.note.as_deref().map_or(Json::Null, Json::str)),
                            (
                                "errno",
                                f.errno.map_or(Json::Null, |e| {
                                    Json::Number(u64::try_from(e).unwrap_or_default())
                                }),
                            ),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::cmdline_enforces;

    #[test]
    fn sig_enforce_on_the_command_line() {
        for on in [
            "quiet module.sig_enforce=1",
            "module.sig_enforce",
            "module.sig_enforce=Y root=/dev/vda",
            "module.sig_enforce=on",
            "module.sig_enforce=\"1\"",
            "module.sig_enforce=1 module.sig_enforce=0",
        ] {
            assert!(cmdline_enforces(on), "{on}");
        }
        for off in [
            "",
            "quiet",
            "module.sig_enforce=0",
            "module.sig_enforce=n",
            "module.sig_enforce=off",
            "module.sig_enforcement=1",
            "xmodule.sig_enforce=1",
        ] {
            assert!(!cmdline_enforces(off), "{off}");
        }
    }
}
