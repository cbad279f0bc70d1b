//! `modprobe`: load and remove modules with their dependencies, resolve aliases, show what
//! would be done and the configuration, with kmod 30's flags, output, messages and exit codes
//! (tools/modprobe.c); the decisions are the `modkit` facade's.

use std::ffi::OsString;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser};
use modkit::config::modprobe::END_OF_CONFIG;
use modkit::syscalls::{Errno, Kernel};
use modkit::{
    Blacklist, ConfigFiles, Context, Level, ProbeOptions, ProbeOutcome, RemoveOptions, Reporter,
    ShellRunner,
};

use crate::common;

/// Add and remove modules from the Linux kernel, with their dependencies.
///
/// Without -a, the first argument is the module and the others are its parameters. With -a
/// (or -r) every argument is a module; `-` reads more names from standard input, one a line.
#[derive(Debug, Parser)]
#[command(name = "modprobe", disable_version_flag = true, max_term_width = 100)]
struct Args {
    /// Consider every non-argument to be a module name to be inserted or removed (-r)
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Remove modules instead of inserting
    #[arg(short = 'r', long = "remove")]
    remove: bool,
    /// Also remove module holders (use together with -r)
    #[arg(long = "remove-holders", visible_alias = "remove-dependencies")]
    remove_holders: bool,
    /// When removing a module, wait up to MSEC for module's refcount to become 0 so it can be
    /// removed (use together with -r)
    #[arg(short = 'w', long = "wait", value_name = "MSEC")]
    wait: Option<String>,
    /// Fail if module already inserted or removed
    #[arg(long = "first-time")]
    first_time: bool,
    /// Ignore install and remove commands
    #[arg(short = 'i', long = "ignore-install", visible_alias = "ignore-remove")]
    ignore_commands: bool,
    /// Apply blacklist to resolved alias.
    #[arg(short = 'b', long = "use-blacklist")]
    use_blacklist: bool,
    /// Force module insertion or removal. implies --force-modversions and --force-vermagic
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Ignore module's version
    #[arg(long = "force-modversion")]
    force_modversion: bool,
    /// Ignore module's version magic
    #[arg(long = "force-vermagic")]
    force_vermagic: bool,
    /// Only lookup and print alias and exit
    #[arg(short = 'R', long = "resolve-alias")]
    resolve_alias: bool,
    /// Only print module dependencies and exit
    #[arg(short = 'D', long = "show-depends")]
    show_depends: bool,
    /// Print out known configuration and exit
    #[arg(short = 'c', long = "showconfig", visible_alias = "show-config")]
    show_config: bool,
    /// Dump module symbol version and exit (a module file, or a module name)
    #[arg(long = "show-modversions", visible_alias = "dump-modversions")]
    show_modversions: bool,
    /// Only print module exported symbol versions and exit (a module file, or a module name)
    #[arg(long = "show-exports")]
    show_exports: bool,
    /// Do not execute operations, just print out
    #[arg(short = 'n', long = "dry-run", visible_alias = "show")]
    dry_run: bool,
    /// Use FILE instead of default search paths
    #[arg(short = 'C', long = "config", value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Use DIR as filesystem root for /lib/modules
    #[arg(short = 'd', long = "dirname", value_name = "DIR")]
    dirname: Option<OsString>,
    /// Use VERSION instead of `uname -r`
    #[arg(short = 'S', long = "set-version", value_name = "VERSION")]
    set_version: Option<String>,
    /// print to syslog, not stderr
    #[arg(short = 's', long = "syslog")]
    syslog: bool,
    /// disable messages
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// enables more messages
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    verbose: u8,
    /// show version
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// Read more module names from FILE (`-`: standard input), one a line; implies -a
    #[arg(long = "names-from", value_name = "FILE")]
    names_from: Option<OsString>,
    /// Honour only the first matching softdep line, as kmod does (default: all of them)
    #[arg(long = "first-softdep-only")]
    first_softdep_only: bool,
    /// Module name (or alias) and its parameters; with -a or -r, module names
    #[arg(value_name = "MODULE", allow_hyphen_values = false)]
    args: Vec<OsString>,
}

/// Where modprobe's output goes: action lines to stdout, messages to stderr or syslog.
struct Output {
    /// modprobe's `LOG` level: `FATAL`, or `WARNING` with `-a`.
    log_level: common::Level,
    /// The highest syslog priority shown (`-q`: none but emergencies; `-v` adds one each).
    verbose: i32,
    log: common::Log,
    stdout: io::BufWriter<io::StdoutLock<'static>>,
}

impl Output {
    fn print(&mut self, line: &str) {
        let _ = self.stdout.write_all(line.as_bytes());
        let _ = self.stdout.write_all(b"\n");
    }

    fn log(&mut self, level: common::Level, text: &str) {
        if level.priority() > self.verbose {
            return;
        }
        // Keep the order of stdout and stderr lines as a terminal shows them.
        let _ = self.stdout.flush();
        self.log.report(level, text);
    }
}

impl Reporter for Output {
    fn show(&mut self, line: &str) {
        self.print(line);
    }

    fn message(&mut self, level: Level, text: &str) {
        let level = match level {
            Level::Log => self.log_level,
            Level::Error => common::Level::Error,
            Level::Warning => common::Level::Warning,
            Level::Info => common::Level::Info,
        };
        self.log(level, text);
    }
}

/// This tool's command line as clap sees it: its manual page and shell completions.
pub(crate) fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = prepend_env_options(args);
    let args: Args = match common::parse_args(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    if args.version {
        common::print_version();
        return ExitCode::SUCCESS;
    }
    let wait = match args.wait.as_deref().map(parse_msec) {
        None => None,
        Some(Some(msec)) => Some(Duration::from_millis(msec)),
        Some(None) => {
            let value = args.wait.as_deref().unwrap_or_default();
            common::error("modprobe", format_args!("unexpected wait value '{value}'."));
            return ExitCode::FAILURE;
        }
    };
    let use_all = args.all || args.names_from.is_some();
    let mut out = Output {
        log_level: if use_all {
            common::Level::Warning
        } else {
            common::Level::Fatal
        },
        // LOG_EMERG with -q, else LOG_WARNING and one more for each -v.
        verbose: if args.quiet {
            0
        } else {
            common::Level::Warning.priority() + i32::from(args.verbose)
        },
        log: common::Log::new("modprobe", args.syslog),
        stdout: io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
    };
    let status = run(&args, use_all, wait, &mut out);
    if let Err(err) = out.stdout.flush() {
        return common::io_exit("modprobe", &err);
    }
    status
}

fn run(args: &Args, use_all: bool, wait: Option<Duration>, out: &mut Output) -> ExitCode {
    let mut names: Vec<OsString> = Vec::new();
    for arg in &args.args {
        if (use_all || args.remove) && arg == "-" {
            if let Err(err) = read_names(io::stdin().lock(), &mut names) {
                out.log(
                    common::Level::Error,
                    &format!("could not read module names: {err}"),
                );
                return ExitCode::FAILURE;
            }
        } else {
            names.push(arg.clone());
        }
    }
    if let Some(file) = &args.names_from {
        let read = if file == "-" {
            read_names(io::stdin().lock(), &mut names)
        } else {
            std::fs::File::open(file).and_then(|f| read_names(io::BufReader::new(f), &mut names))
        };
        if let Err(err) = read {
            let file = PathBuf::from(file);
            out.log(
                common::Level::Error,
                &format!("could not read module names from {}: {err}", file.display()),
            );
            return ExitCode::FAILURE;
        }
    }
    if !args.show_config && names.is_empty() {
        out.log(common::Level::Error, "missing parameters. See -h.");
        return ExitCode::FAILURE;
    }

    // kmod: an explicit root or version gives "ROOT/lib/modules/VERSION".
    let dir = modkit::module_dir(args.dirname.as_deref(), args.set_version.as_deref());
    let cmdline = common::kernel_cmdline();
    let files = ConfigFiles::Paths(args.config.clone());
    let (mut ctx, warnings) = match Context::open(&dir, &files, cmdline.as_deref()) {
        Ok(opened) => opened,
        // kmod goes on without the directory, and so does modprobe, byte for byte: `-c`
        // shows the configuration, configured aliases and install commands still work, and
        // a name not found is reported with the directory's path.
        Err(_) => {
            let (config, warnings) = Context::load_config(&dir, &files, cmdline.as_deref());
            (Context::new(dir, config), warnings)
        }
    };
    for warning in &warnings {
        if common::Level::Error.priority() <= out.verbose {
            let _ = out.stdout.flush();
            common::config_warning("modprobe", warning);
        }
    }
    ctx.set_first_softdep_only(args.first_softdep_only);
    if use_all {
        ctx.expect_lookups(names.len());
    }

    if args.show_config {
        let text = ctx.config().show_config();
        let _ = out.stdout.write_all(text.as_bytes());
        let _ = out.stdout.write_all(END_OF_CONFIG.as_bytes());
        if let Err(err) = ctx.dump_indexes(&mut out.stdout) {
            out.log(common::Level::Error, &err.to_string());
        }
        return ExitCode::SUCCESS;
    }
    if args.show_modversions || args.show_exports {
        return show_symbols(&mut ctx, &names[0], args.show_modversions, out);
    }

    let kernel = common::kernel_from_env();
    let mut shell = ShellRunner::with_modprobe_options(modprobe_options_env(args));
    let show = args.show_depends || args.verbose > 0 && !args.quiet;
    let failed = if args.remove {
        let options = RemoveOptions {
            ignore_commands: args.ignore_commands,
            ignore_loaded: args.show_depends,
            first_time: args.first_time,
            dry_run: args.dry_run || args.show_depends,
            show,
            force: args.force,
            remove_holders: args.remove_holders,
            wait,
        };
        let mut failed = false;
        for name in &names {
            let name = name.to_string_lossy();
            if remove(&mut ctx, &kernel, &name, &options, out, &mut shell).is_err() {
                failed = true;
            }
        }
        failed
    } else {
        let options = ProbeOptions {
            force_modversion: args.force || args.force_modversion,
            force_vermagic: args.force || args.force_vermagic,
            ignore_commands: args.ignore_commands,
            ignore_loaded: args.show_depends,
            dry_run: args.dry_run || args.show_depends,
            show,
            blacklist: if args.use_blacklist {
                Blacklist::Module
            } else {
                Blacklist::Aliases
            },
            first_time: args.first_time,
        };
        let mut insert = Insert {
            kernel: &kernel,
            options,
            resolve_only: args.resolve_alias,
            out,
            shell: &mut shell,
        };
        if use_all {
            let mut failed = false;
            for name in &names {
                if insert
                    .insmod(&mut ctx, &name.to_string_lossy(), "")
                    .is_err()
                {
                    failed = true;
                }
            }
            failed
        } else {
            let extra = options_from_array(&names[1..]);
            insert
                .insmod(&mut ctx, &names[0].to_string_lossy(), &extra)
                .is_err()
        }
    };
    // The process ends here: freeing the module pool and the alias subtrees kept one
    // allocation at a time would cost more than many of the lookups did.
    std::mem::forget(ctx);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Loading (or resolving) one argument, as kmod's `insmod()` and `insmod_insert()`.
struct Insert<'a> {
    kernel: &'a dyn Kernel,
    options: ProbeOptions,
    resolve_only: bool,
    out: &'a mut Output,
    shell: &'a mut ShellRunner,
}

impl Insert<'_> {
    fn insmod(&mut self, ctx: &mut Context, alias: &str, extra: &str) -> Result<(), Errno> {
        // A path (`/...` or `./...`) is that file, with the modules.dep dependencies of its
        // module name, as kmod >= 31 takes it (kmod 30 looks it up as a name: not found).
        if alias.starts_with('/') || alias.starts_with("./") {
            return match ctx.module_from_path(Path::new(alias)) {
                Ok(id) => self.insert(ctx, id, extra),
                Err(err) => {
                    self.out.message(
                        Level::Log,
                        &format!(
                            "Failed to get module from path {alias}: {}",
                            err.errno_text()
                        ),
                    );
                    Err(Errno(libc::ENOENT))
                }
            };
        }
        let modules = match ctx.lookup(alias) {
            Ok(modules) if !modules.is_empty() => modules,
            result => {
                if let Err(err) = result {
                    self.out.log(common::Level::Error, &err.to_string());
                }
                let dir = ctx.dir().display().to_string();
                self.out.message(
                    Level::Log,
                    &format!("Module {alias} not found in directory {dir}"),
                );
                return Err(Errno(libc::ENOENT));
            }
        };
        // As in kmod, the status is the last module's.
        let mut result = Ok(());
        for id in modules {
            result = self.insert(ctx, id, extra);
        }
        result
    }

    fn insert(&mut self, ctx: &mut Context, id: modkit::ModId, extra: &str) -> Result<(), Errno> {
        if self.resolve_only {
            self.out.print(ctx.name(id));
            return Ok(());
        }
        let result = modkit::probe(
            ctx,
            self.kernel,
            id,
            extra,
            &self.options,
            self.out,
            self.shell,
        );
        match result {
            Ok(ProbeOutcome::Done | ProbeOutcome::AlreadyLoaded | ProbeOutcome::Blacklisted) => {
                Ok(())
            }
            Err(errno) => {
                let name = ctx.name(id);
                let why = match errno.0 {
                    libc::EEXIST => "Module already in kernel".to_owned(),
                    libc::ENOENT => {
                        "Unknown symbol in module, or unknown parameter (see dmesg)".to_owned()
                    }
                    _ => errno.strerror(),
                };
                self.out.log(
                    common::Level::Error,
                    &format!("could not insert '{name}': {why}"),
                );
                Err(errno)
            }
        }
    }
}

/// `--show-modversions` (`versions`) or `--show-exports`: kmod's `show_modversions` and
/// `show_exports`, `0x%08x<TAB>SYMBOL` a line. kmod takes only a file; a name that is no file
/// is also looked up, and its module's file shown.
fn show_symbols(ctx: &mut Context, arg: &OsString, versions: bool, out: &mut Output) -> ExitCode {
    let shown = Path::new(arg).display().to_string();
    let Some(path) = module_file(ctx, Path::new(arg)) else {
        out.message(Level::Log, &format!("Module {shown} not found."));
        return ExitCode::FAILURE;
    };
    let (what, symbols) = if versions {
        ("modversions", modkit::file_versions(&path))
    } else {
        ("symbols", modkit::file_exports(&path))
    };
    let why = match symbols {
        Ok(symbols) if !symbols.is_empty() => {
            for symbol in symbols {
                out.print(&format!("0x{:08x}\t{}", symbol.crc, symbol.name));
            }
            return ExitCode::SUCCESS;
        }
        // libkmod answers ENOENT for an empty list (no exports, no `__versions`).
        Ok(_) => Errno(libc::ENOENT).strerror(),
        // kmod's errno text, then what exactly is wrong and where (as modinfo says it).
        Err(err) => format!("{} ({})", err.errno_text(), err.detail()),
    };
    out.message(
        Level::Log,
        &format!("could not get {what} of {shown}: {why}"),
    );
    ExitCode::FAILURE
}

/// The file `--show-exports` and `--show-modversions` read for `arg`: the file itself when it
/// exists (kmod's `kmod_module_new_from_path`: its base name must name a module), else, for a
/// plain name, the file of the module the name resolves to.
fn module_file(ctx: &mut Context, arg: &Path) -> Option<PathBuf> {
    if std::fs::metadata(arg).is_ok() {
        return modkit::name::path_to_modname(arg).map(|_| arg.to_owned());
    }
    let name = arg.to_str().filter(|name| !name.contains('/'))?;
    let modules = ctx.lookup(name).ok()?;
    modules
        .into_iter()
        .find_map(|id| ctx.path(id).ok().flatten())
}

/// kmod's `strtoul(VALUE, &end, 0)` for `-w`: decimal, `0x` hexadecimal or `0` octal, after
/// optional blanks and sign (a minus wraps, as in C); `None` for an empty value or trailing
/// characters.
fn parse_msec(value: &str) -> Option<u64> {
    let trimmed = value.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (radix, digits) = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        (16, hex)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        (8, &unsigned[1..])
    } else {
        (10, unsigned)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // strtoul saturates on overflow.
    let number = u64::from_str_radix(digits, radix).unwrap_or(u64::MAX);
    Some(if negative {
        number.wrapping_neg()
    } else {
        number
    })
}

/// kmod's `rmmod()`: look the name up and remove what it stands for.
fn remove(
    ctx: &mut Context,
    kernel: &dyn Kernel,
    alias: &str,
    options: &RemoveOptions,
    out: &mut Output,
    shell: &mut ShellRunner,
) -> Result<(), Errno> {
    let modules = match ctx.lookup(alias) {
        Ok(modules) => modules,
        Err(err) => {
            out.log(common::Level::Error, &err.to_string());
            return Err(Errno(libc::EINVAL));
        }
    };
    if modules.is_empty() {
        out.message(Level::Log, &format!("Module {alias} not found."));
        return Err(Errno(libc::ENOENT));
    }
    for id in modules {
        modkit::remove(ctx, kernel, id, options, out, shell)?;
    }
    Ok(())
}

/// kmod's `options_from_array`: the parameters after the module name, joined by spaces, a
/// value with a space and no quote of its own put in double quotes.
fn options_from_array(args: &[OsString]) -> String {
    let mut out = String::new();
    for arg in args {
        let arg = arg.to_string_lossy();
        if !out.is_empty() {
            out.push(' ');
        }
        match arg.split_once('=') {
            Some((key, value)) if !value.starts_with(['"', '\'']) && value.contains(' ') => {
                out.push_str(key);
                out.push_str("=\"");
                out.push_str(value);
                out.push('"');
            }
            _ => out.push_str(&arg),
        }
    }
    out
}

/// Module names, one a line (blank lines and surrounding blanks ignored).
fn read_names(reader: impl BufRead, names: &mut Vec<OsString>) -> io::Result<()> {
    for line in reader.lines() {
        let line = line?;
        let name = line.trim();
        if !name.is_empty() {
            names.push(name.into());
        }
    }
    Ok(())
}

/// kmod's `prepend_options_from_env`: the words of `$MODPROBE_OPTIONS` go before the
/// command line's arguments (a quoted word keeps its blanks).
fn prepend_env_options(mut args: Vec<OsString>) -> Vec<OsString> {
    let Some(env) = std::env::var_os("MODPROBE_OPTIONS") else {
        return args;
    };
    let env = env.to_string_lossy().into_owned();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for ch in env.chars() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => word.push(ch),
            None if ch == '"' || ch == '\'' => quote = Some(ch),
            None if ch == ' ' => words.push(std::mem::take(&mut word)),
            None => word.push(ch),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let rest = args.split_off(1.min(args.len()));
    args.extend(words.into_iter().map(OsString::from));
    args.extend(rest);
    args
}

/// What kmod puts in `$MODPROBE_OPTIONS` for the modprobe an install command may run.
fn modprobe_options_env(args: &Args) -> Option<String> {
    let mut words: Vec<String> = std::env::var("MODPROBE_OPTIONS").ok().into_iter().collect();
    for config in &args.config {
        words.push("-C".to_owned());
        words.push(config.display().to_string());
    }
    if args.syslog {
        words.push("-s".to_owned());
    }
    if args.quiet {
        words.push("-q".to_owned());
    }
    for _ in 0..args.verbose {
        words.push("-v".to_owned());
    }
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_quoted_like_kmod() {
        let args: Vec<OsString> = ["a=1", "b=x y", "c='p q'", "flag"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(options_from_array(&args), "a=1 b=\"x y\" c='p q' flag");
    }

    #[test]
    fn wait_values_are_read_as_strtoul_reads_them() {
        for (value, msec) in [
            ("100", Some(100)),
            ("0x10", Some(16)),
            ("010", Some(8)),
            ("0", Some(0)),
            (" +5", Some(5)),
            ("-1", Some(u64::MAX)),
            ("", None),
            ("10ms", None),
            ("0x", None),
            ("09", None),
        ] {
            assert_eq!(parse_msec(value), msec, "{value:?}");
        }
    }

    #[test]
    fn names_are_read_one_a_line() {
        let mut names = Vec::new();
        read_names(&b"a\n\n  b-c \n"[..], &mut names).unwrap();
        assert_eq!(names, vec![OsString::from("a"), OsString::from("b-c")]);
    }
}
