//! Warnings: what kmod prints (in its words) when it skips part of the configuration.

use std::path::PathBuf;

/// Something in the configuration that kmod would skip with a message; parsing goes on.
///
/// `Display` gives kmod 30's wording (without kmod's `TOOL: ERROR:` prefix), so a tool can
/// print `modprobe: ERROR: {warning}` and match kmod's stderr.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Warning {
    /// A modprobe.d line kmod does not understand (libkmod-config.c, `kmod_config_parse`).
    #[error("{} line {line}: ignoring bad line starting with '{start}'", file.display())]
    BadLine {
        /// The configuration file.
        file: PathBuf,
        /// The line, counted as kmod does: a continued line has the number of its last line.
        line: u32,
        /// The first word of the line.
        start: String,
    },
    /// A depmod.d line depmod does not understand (tools/depmod.c, `cfg_file_parse`).
    #[error("{}:{line}: ignoring bad line starting with '{start}'", file.display())]
    BadDepmodLine {
        /// The configuration file.
        file: PathBuf,
        /// The line (of its last physical line, when continued).
        line: u32,
        /// The first word of the line.
        start: String,
    },
    /// modprobe.d's `include` and `config`: kmod says they are deprecated and skips them.
    #[error("{}: command {command} is deprecated and not parsed anymore", file.display())]
    Deprecated {
        /// The configuration file.
        file: PathBuf,
        /// The line (kmod's message does not show it).
        line: u32,
        /// `include` or `config`.
        command: String,
    },
    /// depmod.d's `include` and `make_map_files`: depmod skips them (an info message in kmod,
    /// shown only with `-v`).
    #[error("{}:{line}: command {command} not implemented yet", file.display())]
    NotImplemented {
        /// The configuration file.
        file: PathBuf,
        /// The line.
        line: u32,
        /// `include` or `make_map_files`.
        command: String,
    },
    /// A kernel command line word with a dot that kmod cannot split into module and
    /// parameter (libkmod-config.c, `kmod_config_parse_kcmdline`).
    #[error("Ignoring bad option on kernel command line while parsing module name: '{word}'")]
    BadCmdlineOption {
        /// The word, from its start up to where kmod gave up.
        word: String,
    },
    /// A directory inside a configuration directory (kmod skips it).
    #[error("Directories inside directories are not supported: {}", path.display())]
    NestedDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// A configuration file or directory that could not be read.
    #[error("could not read {}: {cause}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

impl Warning {
    /// The whole line kmod 30 prints for this warning when libkmod's own logger prints it
    /// (modprobe.d and the kernel command line are read before a tool installs its logger,
    /// so kmod shows `libkmod: ERROR FILE:LINE FUNCTION: ` and the message); `None` for the
    /// warnings a tool prints itself.
    pub fn libkmod_line(&self) -> Option<String> {
        let location = match self {
            Warning::BadLine { .. } => "../libkmod/libkmod-config.c:712 kmod_config_parse",
            Warning::Deprecated { .. } => "../libkmod/libkmod-config.c:708 kmod_config_parse",
            Warning::BadCmdlineOption { .. } => {
                "../libkmod/libkmod-config.c:489 kcmdline_parse_result"
            }
            _ => return None,
        };
        Some(format!("libkmod: ERROR {location}: {self}"))
    }

    /// The file the warning is about, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Warning::BadLine { file, .. }
            | Warning::BadDepmodLine { file, .. }
            | Warning::Deprecated { file, .. }
            | Warning::NotImplemented { file, .. } => Some(file),
            Warning::NestedDirectory { path } | Warning::Read { path, .. } => Some(path),
            Warning::BadCmdlineOption { .. } => None,
        }
    }

    /// The line the warning is about, if any.
    pub fn line(&self) -> Option<u32> {
        match self {
            Warning::BadLine { line, .. }
            | Warning::BadDepmodLine { line, .. }
            | Warning::Deprecated { line, .. }
            | Warning::NotImplemented { line, .. } => Some(*line),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::Warning;

    #[test]
    fn a_cause_is_printed_in_the_message_not_returned_as_source() {
        let warning = Warning::Read {
            path: "/etc/modprobe.d".into(),
            cause: std::io::Error::other("disk on fire"),
        };
        assert_eq!(
            warning.to_string(),
            "could not read /etc/modprobe.d: disk on fire"
        );
        assert!(warning.source().is_none());
    }
}
