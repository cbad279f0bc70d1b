//! What the CLI tests share: one run of a command, everything it shows.

use std::process::Command;

/// What a run printed and how it ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Run `command` to the end and collect its output (lossily as text) and exit status (-1 when
/// killed by a signal).
pub fn output(command: &mut Command) -> Output {
    let out = command.output().expect("run the command");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}
