//! Where kmod's output goes: the action lines of `-n`/`-v`/`--show-depends` and the messages,
//! through a [`Reporter`]; and how install/remove commands run, through a [`CommandRunner`].

use std::collections::VecDeque;
use std::process::Command;

/// The level of a message, as kmod's tools prefix it (`modprobe: FATAL: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// modprobe's main level (`LOG`): `FATAL`, or `WARNING` with `-a`.
    Log,
    /// `ERROR`.
    Error,
    /// `WARNING`.
    Warning,
    /// `INFO`: shown from `-vv` on.
    Info,
}

/// Receives what kmod would print.
pub trait Reporter {
    /// An action line for standard output (`insmod PATH OPTIONS`, `rmmod NAME`, ...), without
    /// its newline. Called only when the options ask to show actions.
    fn show(&mut self, line: &str);
    /// A message for standard error (or syslog), without prefix or newline.
    fn message(&mut self, level: Level, text: &str);
}

/// Runs install and remove commands.
pub trait CommandRunner {
    /// Run `command` for `module`; its exit status, or an error when it could not be run.
    fn run(&mut self, command: &str, module: &str) -> std::io::Result<i32>;
}

/// Runs commands as kmod does with `system(3)`: `/bin/sh -c COMMAND`, with `MODPROBE_MODULE`
/// set to the module's name and, when given, the `MODPROBE_OPTIONS` a modprobe run by the
/// command inherits.
#[derive(Debug, Default, Clone)]
pub struct ShellRunner {
    modprobe_options: Option<String>,
}

impl ShellRunner {
    /// A runner whose commands get `MODPROBE_OPTIONS=options` (none: the variable is left as
    /// the process has it).
    pub fn with_modprobe_options(options: Option<String>) -> ShellRunner {
        ShellRunner {
            modprobe_options: options,
        }
    }
}

impl CommandRunner for ShellRunner {
    fn run(&mut self, command: &str, module: &str) -> std::io::Result<i32> {
        let mut shell = Command::new("/bin/sh");
        shell.arg("-c").arg(command).env("MODPROBE_MODULE", module);
        if let Some(options) = &self.modprobe_options {
            shell.env("MODPROBE_OPTIONS", options);
        }
        // system(3) and WEXITSTATUS: a shell killed by a signal reads as status 0.
        Ok(shell.status()?.code().unwrap_or(0))
    }
}

/// A [`Reporter`] and [`CommandRunner`] that records everything, for tests and for callers
/// that want the output as data. Commands answer with scripted exit statuses (0 once the
/// script runs out).
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Action lines, in order.
    pub shown: Vec<String>,
    /// Messages, in order.
    pub messages: Vec<(Level, String)>,
    /// Commands run, with the module name, in order.
    pub commands: Vec<(String, String)>,
    /// Exit statuses for the next commands.
    pub exit_statuses: VecDeque<i32>,
}

impl Reporter for Recorder {
    fn show(&mut self, line: &str) {
        self.shown.push(line.to_owned());
    }
    fn message(&mut self, level: Level, text: &str) {
        self.messages.push((level, text.to_owned()));
    }
}

impl CommandRunner for Recorder {
    fn run(&mut self, command: &str, module: &str) -> std::io::Result<i32> {
        self.commands.push((command.to_owned(), module.to_owned()));
        Ok(self.exit_statuses.pop_front().unwrap_or(0))
    }
}

/// kmod's `$CMDLINE_OPTS` substitution in install and remove commands.
pub(crate) fn substitute_cmdline_opts(command: &str, options: &str) -> String {
    command.replace("$CMDLINE_OPTS", options)
}
