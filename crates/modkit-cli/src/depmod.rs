//! `depmod`: write modules.dep and the other module indexes, byte for byte as kmod's depmod
//! does, with kmod's flags, messages and exit codes (`tools/depmod.c`), plus an incremental
//! cache and a choice of index layout.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use modkit_depgraph::{
    Depmod, DepmodConfig, Error, Flavor, KernelSymbols, Level, Message, ResolveOptions, output,
};

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
    /// Output directory for generated files (as DIR/lib/modules/VERSION)
    #[arg(short = 'o', long = "outdir", value_name = "DIR")]
    outdir: Option<PathBuf>,
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
    /// Deprecated, ignored
    #[arg(short = 'm', long = "map", hide = true)]
    map: bool,
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

fn log(level: &str, message: impl std::fmt::Display) {
    eprintln!("{TOOL}: {level}: {message}");
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

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => return crate::clap_exit(e),
    };
    ignore_file_size_signal();
    if args.version {
        println!(
            "modkit depmod {} (kmod 30 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    for (set, short) in [
        (args.unresolved_error, 'u'),
        (args.quiet, 'q'),
        (args.root, 'r'),
        (args.map, 'm'),
    ] {
        if set {
            log(
                "WARNING",
                format_args!("Ignored deprecated option -{short}"),
            );
        }
    }
    let symbol_prefix = match args.symbol_prefix.as_deref().map(str::as_bytes) {
        None => None,
        Some([c]) => Some(*c),
        Some(_) => {
            log("FATAL", "-P only takes a single char");
            return ExitCode::FAILURE;
        }
    };
    let mut positional = args.args.iter();
    let version = match args.args.first() {
        Some(v) if !is_version_number(v) => {
            log("ERROR", format_args!("Bad version passed {v}"));
            return ExitCode::FAILURE;
        }
        Some(v) => {
            positional.next();
            v.clone()
        }
        None => match modkit::syscalls::kernel_release() {
            Ok(r) => r,
            Err(err) => {
                log("FATAL", format_args!("uname() failed: {err}"));
                return ExitCode::FAILURE;
            }
        },
    };
    let files: Vec<PathBuf> = positional.map(PathBuf::from).collect();
    let all = args.all || files.is_empty();
    let basedir = args.basedir.as_deref().map(absolute);
    let dir = modkit::module_dir(basedir.as_deref().map(Path::as_os_str), Some(&version));

    if args.quick {
        if args.show {
            return ExitCode::SUCCESS;
        }
        match modkit_depgraph::scan::up_to_date(&dir) {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => {}
            Err(Error::Io { source, .. }) => log(
                "ERROR",
                format_args!(
                    "could not fstatat({}, modules.dep): {}",
                    dir.display(),
                    modkit::syscalls::io_error_text(&source)
                ),
            ),
            Err(err) => log("ERROR", err),
        }
    }

    let flavor = match args.index_layout {
        IndexLayout::Preorder => Flavor::kmod34(),
        IndexLayout::Postorder => Flavor::kmod30(),
    };
    let mut run = Depmod::new(
        &dir,
        Flavor {
            warn_dups: args.warn,
            symbol_prefix,
            ..flavor
        },
    );
    run.diagnostics.verbose = args.verbose > 0;
    run.binaries = !args.show;
    run.resolve = ResolveOptions {
        symbol_prefix,
        print_unknown: args.errsyms,
        check_symvers: args.symvers.is_some(),
    };

    let loaded = if let Some(path) = &args.symvers {
        Some((
            path,
            KernelSymbols::from_symvers(path, &mut run.diagnostics),
        ))
    } else {
        args.filesyms.as_ref().map(|path| {
            (
                path,
                KernelSymbols::from_system_map(path, &mut run.diagnostics),
            )
        })
    };
    match loaded {
        Some((_, Ok(symbols))) => run.kernel = symbols,
        Some((path, Err(err))) => {
            let reason = match &err {
                Error::Io { source, .. } => modkit::syscalls::io_error_text(source),
                other => other.to_string(),
            };
            print_messages(&mut run, args.verbose);
            log(
                "FATAL",
                format_args!("could not load {}: {reason}", path.display()),
            );
            return ExitCode::FAILURE;
        }
        None => {
            if args.errsyms {
                log("WARNING", "-e needs -E or -F");
                run.resolve.print_unknown = false;
            }
        }
    }

    if all {
        let paths: Vec<PathBuf> = if args.config.is_empty() {
            DepmodConfig::default_dirs()
        } else {
            args.config.clone()
        };
        let (cfg, warnings) = DepmodConfig::load(&paths);
        for w in warnings {
            match w {
                // kmod says these at INFO level only.
                modkit_config::Warning::NotImplemented { .. } => {
                    if args.verbose > 1 {
                        log("INFO", w);
                    }
                }
                _ => log("ERROR", w),
            }
        }
        let cfg = cfg.for_kernel(&version);
        run.config = cfg;
    } else {
        for f in &files {
            if !f.is_absolute() {
                log("FATAL", format_args!("{}: not absolute path.", f.display()));
                return ExitCode::FAILURE;
            }
        }
        run.files = Some(files);
    }

    let outdir = args.outdir.as_deref().map(absolute);
    let mut notes = Vec::new();
    if !args.no_cache && !args.show && all {
        run.cache_path = match &args.cache_file {
            Some(file) => Some(file.clone()),
            None => default_cache(&dir, &version, [&basedir, &outdir], &mut notes),
        };
    }

    let out_dir = match &outdir {
        Some(o) => modkit::module_dir(Some(o.as_os_str()), Some(&version)),
        None => dir.clone(),
    };
    let generated = run.generate_into(&out_dir);
    let messages = print_messages(&mut run, args.verbose);
    notes.append(&mut run.cache_notes);
    // The cache only speeds depmod up: a run without it writes the same files, and kmod has no
    // such message, so why it was not used is said only with -v.
    let note = |text: &dyn std::fmt::Display| {
        if args.verbose > 0 {
            log("INFO", text);
        }
    };
    for text in &notes {
        note(text);
    }
    let generated = match generated {
        Ok(g) => g,
        Err(Error::Cycles { .. }) => return ExitCode::FAILURE,
        Err(err) => {
            log("FATAL", err);
            return ExitCode::FAILURE;
        }
    };
    if generated.up_to_date {
        return ExitCode::SUCCESS;
    }

    if args.show {
        let mut out = io::stdout().lock();
        for f in generated.files.iter().filter(|f| !f.binary) {
            if let Err(err) = out.write_all(&f.bytes) {
                return crate::io_exit(TOOL, &err);
            }
        }
        if let Err(err) = out.flush() {
            return crate::io_exit(TOOL, &err);
        }
        return ExitCode::SUCCESS;
    }

    if let Err(err) = std::fs::create_dir_all(&out_dir) {
        log(
            "FATAL",
            format_args!("could not open directory {}: {err}", out_dir.display()),
        );
        return ExitCode::FAILURE;
    }
    if let Err(err) = output::write_all(&out_dir, &generated.files) {
        log("FATAL", err);
        return ExitCode::FAILURE;
    }
    if let Err(err) = run.save_cache(&generated, &out_dir, &messages) {
        note(&format_args!("could not write the cache: {err}"));
    }
    // The default location holds one file per module directory: drop those of trees that are
    // gone (the temporary trees of initramfs and package builds), never a chosen --cache-file's
    // neighbours.
    if args.cache_file.is_none()
        && let Some(path) = &run.cache_path
        && let Some(dir) = path.parent()
    {
        let removed = modkit_depgraph::cache::prune(dir, path);
        if removed > 0 {
            note(&format_args!(
                "removed {removed} cache file(s) of module directories that no longer exist"
            ));
        }
    }
    if args.verbose > 1 {
        for (phase, took) in &generated.timings {
            log(
                "INFO",
                format_args!("{phase}: {:.1} ms", took.as_secs_f64() * 1e3),
            );
        }
    }
    if let Some(path) = &run.cache_path
        && args.verbose > 0
    {
        log(
            "INFO",
            format_args!(
                "{} modules parsed, {} from the cache {}",
                generated.stats.parsed,
                generated.stats.cached,
                path.display()
            ),
        );
    }
    ExitCode::SUCCESS
}

/// The default cache file of module directory `dir` (see `cache::default_cache_path`), or
/// `None`, with a note saying why, when it would land inside one of `roots` (`-b` and `-o`):
/// an initramfs staging tree or a package build root gets the index files and nothing else.
fn default_cache(
    dir: &Path,
    version: &str,
    roots: [&Option<PathBuf>; 2],
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    let path = modkit_depgraph::cache::default_cache_path(dir, version);
    let resolved = resolve(&path);
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
    Some(path)
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

/// Print the run's trace (stdout) and messages (stderr, `depmod: LEVEL: text`); returns the
/// messages for the cache to replay.
fn print_messages(run: &mut Depmod, verbose: u8) -> Vec<Message> {
    if !run.diagnostics.trace.is_empty() {
        let mut out = io::stdout().lock();
        for line in run.diagnostics.trace.drain(..) {
            let _ = writeln!(out, "{line}");
        }
    }
    let messages = run.diagnostics.drain();
    for m in &messages {
        if m.level == Level::Info && verbose < 2 {
            continue;
        }
        log(&m.level.to_string(), &m.text);
    }
    messages
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
