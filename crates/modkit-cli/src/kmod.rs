//! `kmod`: the multi-call binary's own commands as kmod 30 names them (`kmod list`, `kmod
//! static-nodes`, `kmod help`, `kmod --version`; `tools/kmod.c`, `tools/static-nodes.c`).
//! systemd runs `kmod static-nodes --format=tmpfiles --output=/run/tmpfiles.d/...` at boot.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use modkit::syscalls::Errno;

use crate::common;

/// kmod's commands (name, help line), in the order `kmod help` lists them.
const COMMANDS: &[(&str, &str)] = &[
    ("help", "Show help message"),
    ("list", "list currently loaded modules"),
    (
        "static-nodes",
        "outputs the static-node information installed with the currently running kernel",
    ),
];

/// The tools kmod also is through a link, as `kmod help` lists them.
const COMPAT_TOOLS: &[&str] = &["lsmod", "rmmod", "insmod", "modinfo", "modprobe", "depmod"];

/// kmod's command line as clap would see it, for its manual page and shell completions (the
/// run itself reads its options as kmod's getopt does, in [`main`]): `-h`, `-V` and the
/// commands, `static-nodes` with its options.
pub(crate) fn command() -> clap::Command {
    use clap::{Arg, ArgAction, Command, CommandFactory as _};
    let mut command = Command::new("kmod")
        .about("Manage kernel modules: list, load, unload, etc")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("show version"),
        )
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::SetTrue)
                .help("show this help"),
        );
    for (name, about) in COMMANDS {
        let sub = match *name {
            "static-nodes" => StaticNodesArgs::command(),
            _ => Command::new(*name),
        };
        command = command.subcommand(sub.about(*about));
    }
    command
}

/// `kmod [-h|-V] COMMAND [ARGS...]`: kmod's options are read up to the first argument that is
/// not one (getopt's `+hV`), and the command gets the rest, itself as argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let prog = program_name(&args);
    // Every option of kmod's ends the run, so only the first argument can be one (and only
    // the first letter of a cluster counts).
    let index = match args.get(1).and_then(|arg| arg.to_str()) {
        Some("--") => 2,
        Some(long) if long.starts_with("--") => {
            return match long_option(long) {
                Some('h') => help(&prog),
                Some(_) => print_version(),
                None => {
                    common::write_stderr(&format!("{prog}: unrecognized option '{long}'\n"));
                    ExitCode::FAILURE
                }
            };
        }
        Some(short) if short.starts_with('-') && short.len() > 1 => {
            return match short[1..].chars().next() {
                Some('h') => help(&prog),
                Some('V') => print_version(),
                other => {
                    let other = other.unwrap_or_default();
                    common::write_stderr(&format!("{prog}: invalid option -- '{other}'\n"));
                    ExitCode::FAILURE
                }
            };
        }
        _ => 1,
    };
    let Some(command) = args.get(index) else {
        common::write_stderr("missing command\n");
        help(&prog);
        return ExitCode::FAILURE;
    };
    let rest = args[index..].to_vec();
    match command.to_str() {
        Some("help") => help(&program_name(&rest)),
        Some("list") => crate::lsmod::main(rest),
        Some("static-nodes") => static_nodes(rest),
        _ => {
            let command = command.to_string_lossy();
            common::write_stderr(&format!("invalid command '{command}'\n"));
            help(&prog);
            ExitCode::FAILURE
        }
    }
}

/// The base name of argv[0], as kmod names itself in its help.
fn program_name(args: &[OsString]) -> String {
    args.first()
        .map(|arg0| {
            Path::new(arg0)
                .file_name()
                .unwrap_or(arg0.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| "kmod".to_owned())
}

/// `--help` or `--version`, or an unambiguous prefix of one, as getopt_long accepts them.
fn long_option(arg: &str) -> Option<char> {
    let name = arg.strip_prefix("--")?;
    if name.is_empty() {
        return None;
    }
    if "help".starts_with(name) {
        Some('h')
    } else if "version".starts_with(name) {
        Some('V')
    } else {
        None
    }
}

fn print_version() -> ExitCode {
    common::print_version();
    ExitCode::SUCCESS
}

/// kmod's help, word for word (`kmod_help`).
fn help(prog: &str) -> ExitCode {
    let mut text = format!(
        "kmod - Manage kernel modules: list, load, unload, etc\n\
         Usage:\n\t{prog} [options] command [command_options]\n\n\
         Options:\n\
         \t-V, --version     show version\n\
         \t-h, --help        show this help\n\n\
         Commands:\n"
    );
    for (name, about) in COMMANDS {
        text.push_str(&format!("  {name:<12} {about}\n"));
    }
    text.push_str("\nkmod also handles gracefully if called from following symlinks:\n");
    for name in COMPAT_TOOLS {
        text.push_str(&format!("  {name:<12} compat {name} command\n"));
    }
    write_stdout(text.as_bytes(), "kmod")
}

fn write_stdout(bytes: &[u8], tool: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => common::io_exit(tool, &err),
    }
}

// ---- static-nodes ----

/// Output the static-node information of the running kernel (its modules.devname) for the
/// device nodes that must exist before the modules that own them are loaded.
#[derive(Debug, Parser)]
#[command(
    name = "static-nodes",
    disable_help_flag = true,
    infer_long_args = true
)]
struct StaticNodesArgs {
    /// Choose format to use: human (default), tmpfiles, devname
    #[arg(short = 'f', long = "format", value_name = "FORMAT")]
    format: Vec<String>,
    /// Write output to FILE (replaced through a temporary file; its directories are created)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Show this help
    #[arg(short = 'h', long = "help")]
    help: bool,
    /// Ignored, as kmod ignores them
    #[arg(hide = true)]
    ignored: Vec<OsString>,
}

/// How `static-nodes` prints one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Human,
    Tmpfiles,
    Devname,
}

/// The formats: name, value, description (`kmod static-nodes --help`).
const FORMATS: &[(&str, Format, &str)] = &[
    (
        "human",
        Format::Human,
        "(default) a human readable format. Do not parse.",
    ),
    (
        "tmpfiles",
        Format::Tmpfiles,
        "the tmpfiles.d(5) format used by systemd-tmpfiles.",
    ),
    ("devname", Format::Devname, "the modules.devname format."),
];

/// One line of modules.devname: `MODULE DEVNAME TYPEMAJOR:MINOR`.
#[derive(Debug, PartialEq, Eq)]
struct Node<'a> {
    module: &'a [u8],
    devname: &'a [u8],
    /// `c` or `b`.
    kind: u8,
    major: u32,
    minor: u32,
}

fn static_nodes_help() -> ExitCode {
    let mut text = String::from(
        "Usage:\n\
         \tkmod static-nodes [options]\n\n\
         kmod static-nodes outputs the static-node information of the currently running kernel.\n\n\
         Options:\n\
         \t-f, --format=FORMAT  choose format to use: see \"Formats\"\n\
         \t-o, --output=FILE    write output to file\n\
         \t-h, --help           show this help\n\n\
         Formats:\n",
    );
    for (name, _, description) in FORMATS {
        text.push_str(&format!("\t{name:<12} {description}\n"));
    }
    write_stdout(text.as_bytes(), "static-nodes")
}

fn static_nodes(args: Vec<OsString>) -> ExitCode {
    let args: StaticNodesArgs = match common::parse_args(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let mut format = Format::Human;
    for name in &args.format {
        match FORMATS.iter().find(|(known, _, _)| known == name) {
            Some((_, chosen, _)) => format = *chosen,
            None => {
                common::write_stderr(&format!("Unknown format: '{name}'.\n"));
                static_nodes_help();
                return ExitCode::FAILURE;
            }
        }
    }
    if args.help {
        return static_nodes_help();
    }
    let Ok(release) = modkit::syscalls::kernel_release() else {
        common::write_stderr("Error: uname failed!\n");
        return ExitCode::FAILURE;
    };
    // kmod names the file under /lib/modules in its messages; so do we, under the tree the
    // environment names.
    let path = common::lib_modules_from_env()
        .join(&release)
        .join("modules.devname");
    let shown = path.display();
    let input = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            common::write_stderr(&format!("Warning: {shown} not found - ignoring\n"));
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let reason = Errno::from_io(&err).strerror();
            common::write_stderr(&format!("Error: could not open {shown} - {reason}\n"));
            return ExitCode::FAILURE;
        }
    };

    let (text, all_valid) = render(&input, format);
    let written = match &args.output {
        None => write_stdout(&text, "static-nodes"),
        Some(output) => write_output(output, &text),
    };
    if written != ExitCode::SUCCESS || !all_valid {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The output for `input` (modules.devname) in `format`, and whether every entry was valid; an
/// invalid entry is reported as kmod does and skipped.
fn render(input: &[u8], format: Format) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut all_valid = true;
    for line in fgets_lines(input) {
        if line.first() == Some(&b'#') {
            continue;
        }
        let Some(node) = parse_node(line) else {
            let mut message = b"Error: invalid devname entry: ".to_vec();
            message.extend_from_slice(until_nul(line));
            common::write_stderr_bytes(&message);
            all_valid = false;
            continue;
        };
        write_node(&mut out, &node, format);
    }
    (out, all_valid)
}

/// Append one entry in `format` (kmod's `write_human`, `write_tmpfiles`, `write_devname`).
fn write_node(out: &mut Vec<u8>, node: &Node, format: Format) {
    let (module, devname) = (node.module, node.devname);
    let (major, minor) = (node.major, node.minor);
    match format {
        Format::Human => {
            let kind = if node.kind == b'c' {
                "character"
            } else {
                "block"
            };
            out.extend_from_slice(b"Module: ");
            out.extend_from_slice(module);
            out.extend_from_slice(b"\n\tDevice node: /dev/");
            out.extend_from_slice(devname);
            out.extend_from_slice(
                format!("\n\t\tType: {kind} device\n\t\tMajor: {major}\n\t\tMinor: {minor}\n")
                    .as_bytes(),
            );
        }
        Format::Tmpfiles => {
            if let Some(slash) = devname.iter().rposition(|&b| b == b'/') {
                out.extend_from_slice(b"d /dev/");
                out.extend_from_slice(&devname[..slash]);
                out.extend_from_slice(b" 0755 - - -\n");
            }
            out.extend_from_slice(&[node.kind]);
            out.extend_from_slice(b"! /dev/");
            out.extend_from_slice(devname);
            out.extend_from_slice(format!(" 0600 - - - {major}:{minor}\n").as_bytes());
        }
        Format::Devname => {
            out.extend_from_slice(module);
            out.push(b' ');
            out.extend_from_slice(devname);
            out.push(b' ');
            out.push(node.kind);
            out.extend_from_slice(format!("{major}:{minor}\n").as_bytes());
        }
    }
}

/// The lines as kmod's `fgets` into a 4096-byte buffer gives them: each with its newline, a
/// longer line in pieces of 4095 bytes.
fn fgets_lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    const PIECE: usize = 4095;
    let mut rest = input;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let window = &rest[..rest.len().min(PIECE)];
        let end = window
            .iter()
            .position(|&b| b == b'\n')
            .map_or(window.len(), |newline| newline + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// The bytes before the first NUL: what C's string functions see of a line.
fn until_nul(line: &[u8]) -> &[u8] {
    line.iter()
        .position(|&b| b == 0)
        .map_or(line, |nul| &line[..nul])
}

/// `sscanf(line, "%s %s %c%u:%u", ...)` giving all five fields, with a type of `c` or `b`.
fn parse_node(line: &[u8]) -> Option<Node<'_>> {
    let mut scan = Scanf(until_nul(line));
    let module = scan.word()?;
    scan.skip_space();
    let devname = scan.word()?;
    scan.skip_space();
    let kind = scan.byte()?;
    let major = scan.unsigned()?;
    scan.literal(b':')?;
    let minor = scan.unsigned()?;
    matches!(kind, b'c' | b'b').then_some(Node {
        module,
        devname,
        kind,
        major,
        minor,
    })
}

/// The few `sscanf` conversions static-nodes uses, over the rest of a line.
struct Scanf<'a>(&'a [u8]);

impl<'a> Scanf<'a> {
    /// A format's white space: any amount of white space (C's `isspace`), none included.
    fn skip_space(&mut self) {
        let start = self
            .0
            .iter()
            .position(|&b| !is_c_space(b))
            .unwrap_or(self.0.len());
        self.0 = &self.0[start..];
    }

    /// `%s`: white space skipped, then one or more other bytes.
    fn word(&mut self) -> Option<&'a [u8]> {
        self.skip_space();
        let end = self
            .0
            .iter()
            .position(|&b| is_c_space(b))
            .unwrap_or(self.0.len());
        let (word, rest) = self.0.split_at(end);
        self.0 = rest;
        (!word.is_empty()).then_some(word)
    }

    /// `%c`: the next byte, white space included.
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// A literal byte of the format.
    fn literal(&mut self, expected: u8) -> Option<()> {
        let rest = self.0.strip_prefix(&[expected])?;
        self.0 = rest;
        Some(())
    }

    /// `%u`: white space skipped, an optional sign, decimal digits; the value as `strtoul`
    /// gives it (saturated, a `-` negates it modulo 2^64) stored in an `unsigned int`.
    fn unsigned(&mut self) -> Option<u32> {
        self.skip_space();
        let (negative, digits) = match self.0.first() {
            Some(b'-') => (true, &self.0[1..]),
            Some(b'+') => (false, &self.0[1..]),
            _ => (false, self.0),
        };
        let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        let value = digits[..count].iter().try_fold(0u64, |acc, &digit| {
            acc.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        });
        self.0 = &digits[count..];
        let value = match value {
            Some(value) if negative => value.wrapping_neg(),
            Some(value) => value,
            None => u64::MAX,
        };
        // The conversion to `unsigned int` keeps the low 32 bits.
        Some(value as u32)
    }
}

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Write `--output`: its parent directories made (0755, as kmod's `mkdir_parents`), then the
/// file replaced through a temporary beside it, so a reader (systemd-tmpfiles) never sees half
/// of it. A path that is not a regular file (`/dev/stdout`, a pipe) is written in place.
fn write_output(output: &Path, text: &[u8]) -> ExitCode {
    let shown = output.display();
    if let Some(parent) = output.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt as _;
        if let Err(err) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
        {
            // A file where a directory must be: mkdir's EEXIST means "not a directory" here
            // (kmod 30 says "Success." then, having lost its errno).
            let errno = match err.kind() {
                std::io::ErrorKind::AlreadyExists => Errno(libc::ENOTDIR),
                _ => Errno::from_io(&err),
            };
            let reason = errno.strerror();
            common::write_stderr(&format!(
                "Error: could not create parent directory for {shown} - {reason}.\n"
            ));
            return ExitCode::FAILURE;
        }
    }
    let special = std::fs::metadata(output).is_ok_and(|meta| !meta.is_file());
    let result = if special {
        std::fs::write(output, text)
    } else {
        modkit::index::write_atomic(output, text).map_err(|err| match err {
            modkit::index::Error::Io { cause, .. } => cause,
            other => std::io::Error::other(other.to_string()),
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let reason = Errno::from_io(&err).strerror();
            common::write_stderr(&format!("Error: could not create {shown} - {reason}\n"));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(line: &str) -> Option<(String, String, char, u32, u32)> {
        parse_node(line.as_bytes()).map(|node| {
            (
                String::from_utf8_lossy(node.module).into_owned(),
                String::from_utf8_lossy(node.devname).into_owned(),
                char::from(node.kind),
                node.major,
                node.minor,
            )
        })
    }

    #[test]
    fn devname_lines_scan_as_sscanf_does() {
        let fuse = Some(("fuse".into(), "fuse".into(), 'c', 10, 229));
        assert_eq!(node("fuse fuse c10:229\n"), fuse);
        // `%u` skips white space before its number; a literal `:` does not.
        assert_eq!(node("  fuse\tfuse   c 10: 229 trailing\n"), fuse);
        assert_eq!(node("fuse fuse c10 :229\n"), None);
        assert_eq!(node("fuse fuse c10:229"), fuse);
        assert_eq!(node("fuse fuse x10:229\n"), None);
        assert_eq!(node("fuse fuse c10\n"), None);
        assert_eq!(node("fuse fuse\n"), None);
        assert_eq!(node("\n"), None);
        assert_eq!(
            node("a b b-1:+7\n"),
            Some(("a".into(), "b".into(), 'b', u32::MAX, 7))
        );
        assert_eq!(
            node("a b c99999999999999999999999:4294967296\n"),
            Some(("a".into(), "b".into(), 'c', u32::MAX, 0))
        );
    }

    #[test]
    fn long_lines_come_in_fgets_pieces() {
        let long = format!("{}\nb\n", "a".repeat(5000));
        let pieces: Vec<usize> = fgets_lines(long.as_bytes()).map(<[u8]>::len).collect();
        assert_eq!(pieces, [4095, 906, 2]);
        assert_eq!(fgets_lines(b"x").count(), 1);
        assert_eq!(fgets_lines(b"").count(), 0);
    }
}
