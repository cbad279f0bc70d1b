//! `depmod`: write modules.dep and the other module indexes, byte for byte as kmod's depmod
//! does, with kmod's flags, messages and exit codes (`tools/depmod.c`), plus an incremental
//! cache and a choice of index layout.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use modkit::depgraph::{
    self, CacheLocation, Depmod, DepmodConfig, Error, Flavor, Generated, KernelSymbols,
};

use crate::common::{self, Level};
use crate::memory;

/// Generate modules.dep and map files.
///
/// If no arguments (except options) are given, "depmod -a" is assumed. depmod writes a
/// dependency list suitable for the modprobe utility, and the alias, symbol, soft dependency,
/// device and built-in indexes, into /lib/modules/VERSION.
#[derive(Debug, Parser)]
#[command(name = "depmod", disable_version_flag = true, max_term_width = 100)]
struct Args {
    /// Probe all modules
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Only does the work if there's a new module
    #[arg(short = 'A', long = "quick")]
    quick: bool,
    /// Use an image of a module tree
    #[arg(short = 'b', long = "basedir", value_name = "DIR")]
    basedir: Option<PathBuf>,
    /// Read configuration from PATH
    #[arg(short = 'C', long = "config", value_name = "PATH")]
    config: Vec<PathBuf>,
    /// Use Module.symvers file to check symbol versions
    #[arg(short = 'E', long = "symvers", value_name = "FILE")]
    symvers: Option<PathBuf>,
    /// Use the file instead of the current kernel symbols
    #[arg(short = 'F', long = "filesyms", value_name = "FILE")]
    filesyms: Option<PathBuf>,
    /// Report not supplied symbols
    #[arg(short = 'e', long = "errsyms")]
    errsyms: bool,
    /// Write the dependency file on stdout only
    #[arg(short = 'n', long = "show", visible_alias = "dry-run")]
    show: bool,
    /// Output directory for generated files (as DIR/MODULEDIR/VERSION)
    #[arg(short = 'o', long = "outdir", value_name = "DIR")]
    outdir: Option<PathBuf>,
    /// Directory of the module trees under the base and output directories (kmod 34)
    #[arg(short = 'm', long = "moduledir", value_name = "DIR", default_value = modkit::MODULE_DIRECTORY)]
    moduledir: OsString,
    /// Architecture symbol prefix
    #[arg(short = 'P', long = "symbol-prefix", value_name = "PREFIX")]
    symbol_prefix: Option<String>,
    /// Enable verbose mode
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Warn on duplicates
    #[arg(short = 'w', long = "warn")]
    warn: bool,
    /// Show version
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// Deprecated, ignored
    #[arg(short = 'u', long = "unresolved-error", hide = true)]
    unresolved_error: bool,
    /// Deprecated, ignored
    #[arg(short = 'q', long = "quiet", hide = true)]
    quiet: bool,
    /// Deprecated, ignored
    #[arg(short = 'r', long = "root", hide = true)]
    root: bool,
    /// Node order of the .bin indexes: preorder (kmod >= 34, also writes modules.weakdep) or
    /// postorder (kmod <= 33, byte-identical to Debian 12's kmod 30)
    #[arg(long = "index-layout", value_enum, default_value_t = IndexLayout::Preorder)]
    index_layout: IndexLayout,
    /// Do not use or update the incremental cache
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// The incremental cache file [default: CACHE/depmod/HASH-VERSION.cache, where CACHE is
    /// $MODKIT_CACHE, $XDG_CACHE_HOME/modkit, ~/.cache/modkit or /var/cache/modkit and HASH names
    /// the module directory; nothing is cached if that is inside BASEDIR or DIR of -o, and the
    /// files of module directories that are gone are removed]
    #[arg(long = "cache-file", value_name = "FILE")]
    cache_file: Option<PathBuf>,
    /// Kernel version, then module files to index instead of the whole tree
    #[arg(value_name = "VERSION [FILES]")]
    args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum IndexLayout {
    Preorder,
    Postorder,
}

const TOOL: &str = "depmod";

fn log(level: Level, message: impl std::fmt::Display) {
    common::report(TOOL, level, message);
}

/// kmod's `is_version_number`: `sscanf(version, "%u.%u", ...) == 2`.
fn is_version_number(v: &str) -> bool {
    let v = v.trim_start();
    let v = v.strip_prefix('+').unwrap_or(v);
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let Some(rest) = v[digits..].strip_prefix('.') else {
        return false;
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('+').unwrap_or(rest);
    rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Under a file-size limit (`ulimit -f`) the kernel would kill depmod with SIGXFSZ in the middle
/// of writing a temporary file. Ignored, the write fails with EFBIG instead, and depmod reports
/// "File too large" naming the file, leaving the old indexes in place (kmod just dies).
#[allow(unsafe_code, reason = "signal(2) has no safe wrapper in std or libc")]
fn ignore_file_size_signal() {
    // SAFETY: SIG_IGN installs no handler, so no code runs on the signal; signal(2) only
    // changes this process's disposition (inherited by exec'd children, and depmod starts
    // none), and nothing in this process relies on SIGXFSZ.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// This tool's command line as clap sees it: its manual page and shell completions.
pub(crate) fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => return common::clap_exit(e),
    };
    ignore_file_size_signal();
    if args.version {
        common::print_version();
        return ExitCode::SUCCESS;
    }
    warn_deprecated(&args);
    let target = match Target::from_args(&args) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if args.quick && (args.show || modules_dep_is_current(&target.dir)) {
        return ExitCode::SUCCESS;
    }
    let mut depmod = new_depmod(&args, &target);
    if let Err(code) = load_kernel_symbols(&args, &mut depmod) {
        return code;
    }
    if let Err(code) = load_config_or_files(&args, &target, &mut depmod) {
        return code;
    }
    let mut notes = Vec::new();
    depmod.cache = choose_cache(&args, &target, &mut notes);
    run(&args, depmod, &notes)
}

/// What the command line names: the kernel, its module directory and the other roots.
struct Target {
    /// The kernel version (the first argument, else the running kernel's).
    version: String,
    /// Module files to index instead of the whole tree (the arguments after the version).
    files: Vec<PathBuf>,
    /// The whole tree (`-a`, or no files).
    all: bool,
    /// `-b`, absolute.
    basedir: Option<PathBuf>,
    /// `-o`, absolute.
    outdir: Option<PathBuf>,
    /// `-m`, `/lib/modules` by default.
    moduledir: OsString,
    /// `BASEDIR/MODULEDIR/VERSION`.
    dir: PathBuf,
    /// `-P`.
    symbol_prefix: Option<u8>,
}

impl Target {
    /// Check `-P` and the version as kmod does, in its order, saying what is wrong.
    fn from_args(args: &Args) -> Result<Target, ExitCode> {
        let symbol_prefix = match args.symbol_prefix.as_deref().map(str::as_bytes) {
            None => None,
            Some([c]) => Some(*c),
            Some(_) => {
                log(Level::Fatal, "-P only takes a single char");
                return Err(ExitCode::FAILURE);
            }
        };
        let mut positional = args.args.iter();
        let version = match args.args.first() {
            Some(v) if !is_version_number(v) => {
                log(Level::Error, format_args!("Bad version passed {v}"));
                return Err(ExitCode::FAILURE);
            }
            Some(v) => {
                positional.next();
                v.clone()
            }
            None => match modkit::syscalls::kernel_release() {
                Ok(r) => r,
                Err(err) => {
                    log(Level::Fatal, format_args!("uname() failed: {err}"));
                    return Err(ExitCode::FAILURE);
                }
            },
        };
        let files: Vec<PathBuf> = positional.map(PathBuf::from).collect();
        let basedir = args.basedir.as_deref().map(absolute);
        let dir = modkit::module_dir_in(
            basedir.as_deref().map(Path::as_os_str),
            &args.moduledir,
            Some(&version),
        );
        Ok(Target {
            all: args.all || files.is_empty(),
            files,
            basedir,
            outdir: args.outdir.as_deref().map(absolute),
            dir,
            moduledir: args.moduledir.clone(),
            version,
            symbol_prefix,
        })
    }

    /// Where the files go: `OUTDIR/MODULEDIR/VERSION` with `-o`, else the module directory.
    fn out_dir(&self) -> PathBuf {
        match &self.outdir {
            Some(o) => {
                modkit::module_dir_in(Some(o.as_os_str()), &self.moduledir, Some(&self.version))
            }
            None => self.dir.clone(),
        }
    }
}

fn warn_deprecated(args: &Args) {
    for (set, short) in [
        (args.unresolved_error, 'u'),
        (args.quiet, 'q'),
        (args.root, 'r'),
    ] {
        if set {
            log(
                Level::Warning,
                format_args!("Ignored deprecated option -{short}"),
            );
        }
    }
}

/// `-A`: whether modules.dep is newer than every module (a failure to tell is reported, and
/// the run goes on as if it were not).
fn modules_dep_is_current(dir: &Path) -> bool {
    match depgraph::modules_dep_up_to_date(dir) {
        Ok(current) => current,
        Err(err) => {
            match err {
                Error::Io { error, .. } => log(
                    Level::Error,
                    format_args!(
                        "could not fstatat({}, modules.dep): {}",
                        dir.display(),
                        depgraph::io_error_text(&error)
                    ),
                ),
                err => log(Level::Error, err),
            }
            false
        }
    }
}

/// The run's settings from the flags: layout, `-w`, `-P`, `-e`, `-E`, `-v` and `-n`.
fn new_depmod(args: &Args, target: &Target) -> Depmod {
    let mut flavor = match args.index_layout {
        IndexLayout::Preorder => Flavor::kmod34(),
        IndexLayout::Postorder => Flavor::kmod30(),
    };
    flavor.warn_dups = args.warn;
    flavor.symbol_prefix = target.symbol_prefix;
    let mut depmod = Depmod::new(&target.dir, flavor);
    depmod.out_dir = Some(target.out_dir());
    depmod.diagnostics.verbose = args.verbose > 0;
    depmod.binaries = !args.show;
    depmod.resolve.symbol_prefix = target.symbol_prefix;
    depmod.resolve.print_unknown = args.errsyms;
    depmod.resolve.check_symvers = args.symvers.is_some();
    depmod.on_phase = Some(say_phase);
    depmod
}

/// What the out-of-memory line says depmod was doing.
fn say_phase(phase: depgraph::Phase) {
    memory::doing(match phase {
        depgraph::Phase::Scan => &"scanning modules",
        depgraph::Phase::Read => &"reading modules",
        depgraph::Phase::Resolve => &"resolving symbols",
        depgraph::Phase::Render => &"rendering indexes",
        depgraph::Phase::Write => &"writing indexes",
        _ => &"running depmod",
    });
}

/// The kernel's symbols from `-E` (preferred) or `-F`; a file that cannot be read is fatal.
fn load_kernel_symbols(args: &Args, depmod: &mut Depmod) -> Result<(), ExitCode> {
    let loaded = if let Some(path) = &args.symvers {
        Some((
            path,
            KernelSymbols::from_symvers(path, &mut depmod.diagnostics),
        ))
    } else {
        args.filesyms.as_ref().map(|path| {
            (
                path,
                KernelSymbols::from_system_map(path, &mut depmod.diagnostics),
            )
        })
    };
    match loaded {
        Some((_, Ok(symbols))) => depmod.kernel = symbols,
        Some((path, Err(err))) => {
            let reason = match &err {
                Error::Io { error, .. } => depgraph::io_error_text(error),
                other => other.to_string(),
            };
            print_messages(depmod, args.verbose);
            log(
                Level::Fatal,
                format_args!("could not load {}: {reason}", path.display()),
            );
            return Err(ExitCode::FAILURE);
        }
        None => {
            if args.errsyms {
                log(Level::Warning, "-e needs -E or -F");
                depmod.resolve.print_unknown = false;
            }
        }
    }
    Ok(())
}

/// The whole tree with depmod.d (`-C` or kmod's directories), or only the module files
/// given, which must be absolute.
fn load_config_or_files(args: &Args, target: &Target, depmod: &mut Depmod) -> Result<(), ExitCode> {
    if target.all {
        let dirs: Vec<PathBuf> = if args.config.is_empty() {
            DepmodConfig::default_dirs()
        } else {
            args.config.clone()
        };
        for w in depmod.read_config(&dirs, &target.version) {
            match w {
                // kmod says these at INFO level only.
                modkit::config::Warning::NotImplemented { .. } => {
                    if args.verbose > 1 {
                        log(Level::Info, w);
                    }
                }
                _ => log(Level::Error, w),
            }
        }
        return Ok(());
    }
    for f in &target.files {
        if !f.is_absolute() {
            log(
                Level::Fatal,
                format_args!("{}: not absolute path.", f.display()),
            );
            return Err(ExitCode::FAILURE);
        }
    }
    depmod.files = Some(target.files.clone());
    Ok(())
}

/// The incremental cache: `--cache-file`, else the host's cache directory (unless inside
/// `-b` or `-o`, with a note saying so); none with `--no-cache`, `-n` or module files given.
fn choose_cache(args: &Args, target: &Target, notes: &mut Vec<String>) -> Option<CacheLocation> {
    if args.no_cache || args.show || !target.all {
        return None;
    }
    match &args.cache_file {
        Some(file) => Some(CacheLocation::File(file.clone())),
        None => default_cache(
            &target.dir,
            &target.version,
            [&target.basedir, &target.outdir],
            notes,
        ),
    }
}

/// Generate, print the messages, then print the text files (`-n`) or write every file and
/// the cache; `notes` are the command line's own notes about the cache.
fn run(args: &Args, mut depmod: Depmod, notes: &[String]) -> ExitCode {
    let generated = depmod.generate();
    print_messages(&mut depmod, args.verbose);
    print_notes(&mut depmod, notes, args.verbose);
    let generated = match generated {
        Ok(g) => g,
        Err(Error::Cycles { .. }) => return ExitCode::FAILURE,
        // Said as the allocator says it (`memory`): `depmod: ERROR: out of memory while ...`.
        Err(err @ Error::OutOfMemory { .. }) => {
            log(Level::Error, err);
            return ExitCode::FAILURE;
        }
        Err(err) => {
            log(Level::Fatal, err);
            return ExitCode::FAILURE;
        }
    };
    if generated.up_to_date {
        return ExitCode::SUCCESS;
    }
    if args.show {
        return print_text_files(&generated);
    }
    if let Err(err) = depmod.write(&generated) {
        log(Level::Fatal, err);
        return ExitCode::FAILURE;
    }
    print_notes(&mut depmod, &[], args.verbose);
    if args.verbose > 1 {
        for (phase, took) in &generated.timings {
            log(
                Level::Info,
                format_args!("{phase}: {:.1} ms", took.as_secs_f64() * 1e3),
            );
        }
    }
    if let Some(cache) = &depmod.cache
        && args.verbose > 0
    {
        log(
            Level::Info,
            format_args!(
                "{} modules parsed, {} from the cache {}",
                generated.stats.parsed,
                generated.stats.cached,
                cache.path().display()
            ),
        );
    }
    ExitCode::SUCCESS
}

/// `-n`: the text files on standard output.
fn print_text_files(generated: &Generated) -> ExitCode {
    let mut out = io::stdout().lock();
    for f in generated.files.iter().filter(|f| !f.binary) {
        if let Err(err) = out.write_all(&f.bytes) {
            return common::io_exit(TOOL, &err);
        }
    }
    if let Err(err) = out.flush() {
        return common::io_exit(TOOL, &err);
    }
    ExitCode::SUCCESS
}

/// The host's cache file of module directory `dir` ([`CacheLocation::host`]), or `None`, with
/// a note saying why, when it would land inside one of `roots` (`-b` and `-o`): an initramfs
/// staging tree or a package build root gets the index files and nothing else.
fn default_cache(
    dir: &Path,
    version: &str,
    roots: [&Option<PathBuf>; 2],
    notes: &mut Vec<String>,
) -> Option<CacheLocation> {
    let location = CacheLocation::host(dir, version);
    let path = location.path();
    let resolved = resolve(path);
    for root in roots.into_iter().flatten() {
        let root = resolve(root);
        if root.parent().is_some() && resolved.starts_with(&root) {
            notes.push(format!(
                "not using the cache: {} is inside {}",
                path.display(),
                root.display()
            ));
            return None;
        }
    }
    Some(location)
}

/// `path` with its longest existing ancestor made canonical (symbolic links resolved), so that
/// a path not created yet can be compared with one that exists.
fn resolve(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(canonical) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(canonical, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Print the run's trace (stdout) and messages (stderr, `depmod: LEVEL: text`).
fn print_messages(depmod: &mut Depmod, verbose: u8) {
    if !depmod.diagnostics.trace.is_empty() {
        let mut out = io::stdout().lock();
        for line in depmod.diagnostics.trace.drain(..) {
            let _ = writeln!(out, "{line}");
        }
    }
    for m in depmod.diagnostics.drain() {
        if m.level == depgraph::Level::Info && verbose < 2 {
            continue;
        }
        let level = match m.level {
            depgraph::Level::Error => Level::Error,
            depgraph::Level::Warning => Level::Warning,
            depgraph::Level::Info => Level::Info,
        };
        log(level, &m.text);
    }
}

/// Print `notes`, then the run's notes about the cache, with `-v` only: the cache only speeds
/// depmod up (a run without it writes the same files) and kmod has no such messages.
fn print_notes(depmod: &mut Depmod, notes: &[String], verbose: u8) {
    let theirs = std::mem::take(&mut depmod.diagnostics.notes);
    if verbose > 0 {
        for text in notes.iter().chain(&theirs) {
            log(Level::Info, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_like_sscanf() {
        assert!(is_version_number("6.1.0-56-amd64"));
        assert!(is_version_number("1.0"));
        assert!(!is_version_number("foo"));
        assert!(!is_version_number("6"));
        assert!(!is_version_number("6."));
        assert!(!is_version_number("/lib/x.ko"));
    }
}
