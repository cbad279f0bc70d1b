//! What the tools share, in one place (uutils keeps it in `uucore`): the kernel, its command
//! line and `/lib/modules` as the environment names them, the module directory options and
//! their context, argument parsing and clap's exit, messages (`TOOL: LEVEL: text` on standard
//! error, or syslog), and exit statuses.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use modkit::syscalls::{LinuxKernel, ProcDir, SysModule};
use modkit::{ConfigFiles, Context};

// ---- the system, as the environment names it ----

/// Environment variables that point the tools at other `/sys/module`, `/proc` and
/// `/lib/modules` trees (for tests with fake trees; the syscalls still go to the running
/// kernel).
pub(crate) const SYS_MODULE_ENV: &str = "MODKIT_SYS_MODULE";
/// See [`SYS_MODULE_ENV`].
pub(crate) const PROC_ENV: &str = "MODKIT_PROC";
/// See [`SYS_MODULE_ENV`]: the directory that holds the `VERSION` trees (insmod's hint).
pub(crate) const LIB_MODULES_ENV: &str = "MODKIT_LIB_MODULES";

fn dir_from_env(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The running kernel, seen through the trees the environment names (normally the real ones).
pub(crate) fn kernel_from_env() -> LinuxKernel {
    LinuxKernel::with_trees(
        SysModule::new(dir_from_env(SYS_MODULE_ENV, "/sys/module")),
        ProcDir::new(dir_from_env(PROC_ENV, "/proc")),
    )
}

/// The directory of the module trees, `/lib/modules` (or `$MODKIT_LIB_MODULES`).
pub(crate) fn lib_modules_from_env() -> PathBuf {
    dir_from_env(LIB_MODULES_ENV, "/lib/modules")
}

/// The kernel command line (`/proc/cmdline`, or under `$MODKIT_PROC`), which modprobe and
/// coldplug read for `modprobe.blacklist=` and `MODULE.PARAM=` options.
pub(crate) fn kernel_cmdline() -> Option<String> {
    std::fs::read_to_string(dir_from_env(PROC_ENV, "/proc").join("cmdline")).ok()
}

// ---- arguments ----

/// Where a tool finds modules and their configuration: `-b`, `-k` and `-C`, spelled as modinfo
/// and depmod spell them.
#[derive(Debug, clap::Args)]
pub(crate) struct ModuleDirArgs {
    /// Use BASEDIR as filesystem root for /lib/modules
    #[arg(short = 'b', long = "basedir", value_name = "BASEDIR")]
    pub(crate) basedir: Option<OsString>,
    /// Use VERSION instead of `uname -r`
    #[arg(short = 'k', long = "set-version", value_name = "VERSION")]
    pub(crate) version: Option<String>,
    /// Read modprobe configuration from FILE or DIR instead of the default directories
    #[arg(short = 'C', long = "config", value_name = "FILE")]
    pub(crate) config: Vec<PathBuf>,
}

impl ModuleDirArgs {
    /// `BASEDIR/lib/modules/VERSION`.
    pub(crate) fn module_dir(&self) -> PathBuf {
        modkit::module_dir(self.basedir.as_deref(), self.version.as_deref())
    }

    /// `-C`'s files, else kmod's directories.
    pub(crate) fn config_files(&self) -> ConfigFiles {
        ConfigFiles::Paths(self.config.clone())
    }

    /// The facade's context for these options with `files` (and the kernel command line, if
    /// given), configuration warnings printed as `TOOL: ERROR: ...`; the error when the
    /// module directory cannot be opened.
    pub(crate) fn open(
        &self,
        tool: &str,
        files: &ConfigFiles,
        cmdline: Option<&str>,
    ) -> Result<Context, modkit::Error> {
        let (ctx, warnings) = Context::open(self.module_dir(), files, cmdline)?;
        for warning in &warnings {
            config_warning(tool, warning);
        }
        Ok(ctx)
    }

    /// [`ModuleDirArgs::open`] with [`ModuleDirArgs::config_files`], the error printed as
    /// `TOOL: ERROR: ...` and turned into the exit to take.
    pub(crate) fn context(&self, tool: &str, cmdline: Option<&str>) -> Result<Context, ExitCode> {
        self.open(tool, &self.config_files(), cmdline)
            .map_err(|err| {
                error(tool, err);
                ExitCode::FAILURE
            })
    }
}

/// Parse a tool's arguments; on `--help`/`--version` or a usage error, the exit to take.
pub(crate) fn parse_args<T: clap::Parser>(args: Vec<OsString>) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(clap_exit)
}

/// Exit after a command-line parsing error or `--help`: help goes to stdout with status 0, usage
/// errors to stderr with status 1 (kmod's tools exit 1 on a bad option, not clap's 2).
pub(crate) fn clap_exit(err: clap::Error) -> ExitCode {
    let _ = err.print();
    if err.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `-V`: the version, and the feature line kmod prints there (scripts read it).
pub(crate) fn print_version() {
    let text = format!(
        "modkit version {}\n+ZSTD +XZ +ZLIB +LIBCRYPTO\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = write_once(&mut std::io::stdout().lock(), text.as_bytes());
}

// ---- messages ----

/// A message's level, as kmod's tools name it and syslog ranks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Fatal,
    Error,
    Warning,
    Info,
    /// insmod's hint after kmod's error (`insmod: hint: ...`).
    Hint,
}

impl Level {
    /// The word after the tool's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Level::Fatal => "FATAL",
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Info => "INFO",
            Level::Hint => "hint",
        }
    }

    /// The syslog priority kmod logs it at: `LOG_CRIT` for FATAL, `LOG_ERR`, `LOG_WARNING`,
    /// `LOG_INFO`.
    pub(crate) fn priority(self) -> i32 {
        match self {
            Level::Fatal => 2,
            Level::Error => 3,
            Level::Warning => 4,
            Level::Info | Level::Hint => 6,
        }
    }
}

/// `TOOL: LEVEL: text`, kmod's form of a message.
pub(crate) fn message_line(tool: &str, level: Level, text: impl Display) -> String {
    format!("{tool}: {}: {text}", level.name())
}

/// Print `TOOL: LEVEL: text` on standard error.
pub(crate) fn report(tool: &str, level: Level, text: impl Display) {
    write_stderr(&format!("{}\n", message_line(tool, level, text)));
}

/// Write `text` (whole lines) to standard error in one `write(2)`, so the lines of processes
/// sharing the stream never interleave; a closed stream is not an error (never a panic, as
/// `eprintln!` would).
pub(crate) fn write_stderr(text: &str) {
    write_stderr_bytes(text.as_bytes());
}

/// [`write_stderr`] for bytes that need not be UTF-8 (a line of an input file).
pub(crate) fn write_stderr_bytes(bytes: &[u8]) {
    let _ = write_once(&mut std::io::stderr().lock(), bytes);
}

/// Hand `bytes`, whole lines already formatted, to `out` in one call. Standard error is
/// unbuffered, so one call is one `write(2)` (but for a partial write, which a pipe gives
/// only past PIPE_BUF bytes), where formatting into the handle may make one per piece.
fn write_once(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)
}

/// Print a configuration warning as kmod 30 does: libkmod's line where libkmod prints it,
/// else `TOOL: ERROR: warning`.
pub(crate) fn config_warning(tool: &str, warning: &modkit::config::Warning) {
    match warning.libkmod_line() {
        Some(line) => write_stderr(&format!("{line}\n")),
        None => error(tool, warning),
    }
}

/// Print `TOOL: ERROR: text` on standard error, kmod's format for errors.
pub(crate) fn error(tool: &str, text: impl Display) {
    report(tool, Level::Error, text);
}

/// Where a tool's messages go: standard error, or with `-s` syslog (standard error when
/// syslog cannot be reached), as kmod's `log.c` sends them.
#[derive(Debug)]
pub(crate) struct Log {
    tool: &'static str,
    syslog: bool,
}

impl Log {
    pub(crate) fn new(tool: &'static str, syslog: bool) -> Log {
        Log { tool, syslog }
    }

    pub(crate) fn report(&self, level: Level, text: impl Display) {
        let line = message_line(self.tool, level, text);
        if self.syslog && send_syslog(level, &line).is_ok() {
            return;
        }
        write_stderr(&format!("{line}\n"));
    }

    pub(crate) fn error(&self, text: impl Display) {
        self.report(Level::Error, text);
    }
}

/// Send `line` to `/dev/log` at `level`'s priority, as kmod opens syslog: `LOG_DAEMON`.
fn send_syslog(level: Level, line: &str) -> std::io::Result<()> {
    const LOG_DAEMON: i32 = 3 << 3;
    let message = format!("<{}>{line}", LOG_DAEMON + level.priority());
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.send_to(message.as_bytes(), "/dev/log")?;
    Ok(())
}

// ---- exit statuses ----

/// Exit after failing to write the output: a closed pipe (`modinfo ... | head`) is not an error.
pub(crate) fn io_exit(tool: &str, err: &std::io::Error) -> ExitCode {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    error(tool, format_args!("could not write output: {err}"));
    ExitCode::FAILURE
}

/// The exit status of a tool that goes on after a failed argument and fails at the end.
#[derive(Debug, Default)]
pub(crate) struct Exit {
    failed: bool,
}

impl Exit {
    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        if exit.failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that keeps each call it gets, as `write(2)` would see them.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_message_is_one_write_of_the_whole_line() {
        let mut calls = Calls::default();
        let line = format!(
            "{}\n",
            message_line("rmmod", Level::Error, format_args!("{}", 42))
        );
        write_once(&mut calls, line.as_bytes()).unwrap();
        assert_eq!(calls.0, [b"rmmod: ERROR: 42\n".to_vec()]);
    }
}
