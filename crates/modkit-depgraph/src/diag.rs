//! Messages depmod prints while it works, collected in order so the caller decides where they
//! go (kmod prints them as `depmod: LEVEL: message`).

use std::fmt;

/// kmod's log levels that depmod uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `ERROR`
    Error,
    /// `WARNING`
    Warning,
    /// `INFO` (shown with `-v -v`)
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Info => "INFO",
        })
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// Its level.
    pub level: Level,
    /// The text, without the trailing newline.
    pub text: String,
}

/// Messages in the order they happened, plus the `-v` trace lines (`X needs "sym": Y`) and
/// notes about the cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostics {
    /// Errors, warnings and information.
    pub messages: Vec<Message>,
    /// Whether to record the verbose trace.
    pub verbose: bool,
    /// The verbose trace (kmod prints it on standard output).
    pub trace: Vec<String>,
    /// Why the cache was not used or not saved, what was pruned from the cache directory. Kept
    /// out of `messages`, which hold what kmod prints: the files are the same without the cache,
    /// so the `depmod` tool shows these only with `-v`.
    pub notes: Vec<String>,
}

impl Diagnostics {
    /// Record an error.
    pub fn error(&mut self, text: String) {
        self.messages.push(Message {
            level: Level::Error,
            text,
        });
    }

    /// Record a warning.
    pub fn warning(&mut self, text: String) {
        self.messages.push(Message {
            level: Level::Warning,
            text,
        });
    }

    /// Record information.
    pub fn info(&mut self, text: String) {
        self.messages.push(Message {
            level: Level::Info,
            text,
        });
    }

    /// Take the messages recorded so far.
    pub fn drain(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }
}
