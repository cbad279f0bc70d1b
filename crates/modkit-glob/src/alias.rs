//! The text `modules.alias` (and `modules.symbols`) format: read, write, and match keys
//! against it.
//!
//! depmod writes one line per alias, `fprintf(out, "alias %s %s\n", alias, modname)` (kmod
//! `tools/depmod.c`), after a `#` comment header. Module names never hold whitespace, but an
//! alias is copied from `.modinfo` as is and may hold spaces, so a line is split at its
//! *first* space (after the keyword) and its *last* space: `alias a b c mod` is the pattern
//! `a b c` for the module `mod`. That is the exact inverse of depmod's writer: any pattern
//! without a newline round-trips, even one with leading, trailing or doubled spaces.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use crate::glob::Glob;
use crate::set::GlobSet;

/// The header line depmod puts at the top of `modules.alias`.
pub const MODULES_ALIAS_HEADER: &str = "# Aliases extracted from modules themselves.\n";

/// One `alias PATTERN MODULE` line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Alias {
    /// The pattern, as written (not normalized).
    pub pattern: String,
    /// The module name.
    pub module: String,
}

impl Alias {
    /// An alias of `module`.
    pub fn new(pattern: impl Into<String>, module: impl Into<String>) -> Alias {
        Alias {
            pattern: pattern.into(),
            module: module.into(),
        }
    }
}

/// What went wrong reading or writing an alias file.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AliasError {
    /// The file could not be opened, read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// A line is not `alias PATTERN MODULE`, or is not UTF-8.
    #[error("{}:{line}: {reason}: {text:?}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
        /// The line (lossily decoded), without its newline.
        text: String,
    },
    /// An alias that cannot be written as a line that reads back the same.
    #[error("cannot write alias {pattern:?} of module {module:?}: {reason}")]
    Unwritable {
        /// Its pattern.
        pattern: String,
        /// Its module.
        module: String,
        /// Why not.
        reason: &'static str,
    },
}

/// Parse one line; `Ok(None)` for a comment or a blank line.
fn parse_line(line: &str) -> Result<Option<Alias>, &'static str> {
    if line.starts_with('#') || line.trim().is_empty() {
        return Ok(None);
    }
    let Some(rest) = line.strip_prefix("alias") else {
        return Err("expected a line `alias PATTERN MODULE`");
    };
    let Some(rest) = rest.strip_prefix(' ') else {
        return Err("expected a space after `alias`");
    };
    let Some((pattern, module)) = rest.rsplit_once(' ') else {
        return Err("expected `alias PATTERN MODULE`, found no module");
    };
    if pattern.is_empty() {
        return Err("empty alias pattern");
    }
    if module.is_empty() || module.contains(char::is_whitespace) {
        return Err("expected a module name at the end of the line");
    }
    Ok(Some(Alias::new(pattern, module)))
}

/// Parse the text of a `modules.alias` file; `path` names it in errors.
///
/// `#` comment lines and blank lines are skipped; every other line must be
/// `alias PATTERN MODULE` (see the module documentation for how spaces are read).
pub fn parse_aliases(text: &str, path: &Path) -> Result<Vec<Alias>, AliasError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(alias)) => out.push(alias),
            Ok(None) => {}
            Err(reason) => {
                return Err(AliasError::Syntax {
                    path: path.to_owned(),
                    line: i + 1,
                    reason,
                    text: line.to_owned(),
                });
            }
        }
    }
    Ok(out)
}

/// Read a `modules.alias` file from `reader`; `path` names it in errors.
pub fn read_aliases(mut reader: impl BufRead, path: &Path) -> Result<Vec<Alias>, AliasError> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|cause| AliasError::Io {
                path: path.to_owned(),
                cause,
            })?;
        if n == 0 {
            return Ok(out);
        }
        number += 1;
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let syntax = |reason| AliasError::Syntax {
            path: path.to_owned(),
            line: number,
            reason,
            text: String::from_utf8_lossy(bytes).into_owned(),
        };
        let line = std::str::from_utf8(bytes).map_err(|_| syntax("not UTF-8"))?;
        if let Some(alias) = parse_line(line).map_err(syntax)? {
            out.push(alias);
        }
    }
}

/// Read the `modules.alias` file at `path`.
pub fn read_alias_file(path: &Path) -> Result<Vec<Alias>, AliasError> {
    let file = std::fs::File::open(path).map_err(|cause| AliasError::Io {
        path: path.to_owned(),
        cause,
    })?;
    read_aliases(io::BufReader::new(file), path)
}

/// Write `aliases` as `alias PATTERN MODULE` lines, in order. Fails, before writing anything,
/// for an alias whose line would not read back the same (an empty pattern, a newline in the
/// pattern, an empty module name or one with whitespace). I/O errors name `path`.
pub fn write_alias_lines(
    mut out: impl Write,
    aliases: &[Alias],
    path: &Path,
) -> Result<(), AliasError> {
    for a in aliases {
        let reason = if a.pattern.is_empty() {
            Some("empty pattern")
        } else if a.pattern.contains('\n') {
            Some("newline in the pattern")
        } else if a.module.is_empty() || a.module.contains(char::is_whitespace) {
            Some("module name empty or with whitespace")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(AliasError::Unwritable {
                pattern: a.pattern.clone(),
                module: a.module.clone(),
                reason,
            });
        }
    }
    let io = |cause| AliasError::Io {
        path: path.to_owned(),
        cause,
    };
    for a in aliases {
        writeln!(out, "alias {} {}", a.pattern, a.module).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Write a whole `modules.alias` as depmod does: its header line, then the alias lines.
pub fn write_modules_alias(
    mut out: impl Write,
    aliases: &[Alias],
    path: &Path,
) -> Result<(), AliasError> {
    // Check before the header so that a failed write leaves nothing half-done.
    write_alias_lines(io::sink(), aliases, path)?;
    out.write_all(MODULES_ALIAS_HEADER.as_bytes())
        .map_err(|cause| AliasError::Io {
            path: path.to_owned(),
            cause,
        })?;
    write_alias_lines(out, aliases, path)
}

/// A `modules.alias` in memory, compiled for lookups: which modules does a modalias need?
/// (Guix's `matching-modules`, over the whole set at once.)
///
/// ```
/// use modkit_glob::{Alias, AliasMatcher};
///
/// let m = AliasMatcher::new(vec![
///     Alias::new("virtio:d00000002v*", "virtio_blk"),
///     Alias::new("pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio_pci"),
/// ]);
/// assert_eq!(m.modules("virtio:d00000002v00001AF4"), ["virtio_blk"]);
/// ```
#[derive(Clone, Debug)]
pub struct AliasMatcher {
    aliases: Vec<Alias>,
    set: GlobSet,
}

impl AliasMatcher {
    /// Compile `aliases` (patterns are used as given; see [`crate::name::alias_normalize`]).
    pub fn new(aliases: Vec<Alias>) -> AliasMatcher {
        let set = aliases.iter().map(|a| Glob::new(&a.pattern)).collect();
        AliasMatcher { aliases, set }
    }

    /// The aliases, in file order.
    pub fn aliases(&self) -> &[Alias] {
        &self.aliases
    }

    /// The compiled patterns; ids are indexes into [`AliasMatcher::aliases`].
    pub fn glob_set(&self) -> &GlobSet {
        &self.set
    }

    /// The aliases whose pattern matches `key`, in file order.
    pub fn matches(&self, key: impl AsRef<[u8]>) -> Vec<&Alias> {
        self.set
            .matches(key)
            .into_iter()
            .map(|id| &self.aliases[id])
            .collect()
    }

    /// The modules with an alias matching `key`, each once, in the order of their first
    /// matching line (depmod writes modules in `modules.order` order: kmod's priority).
    pub fn modules(&self, key: impl AsRef<[u8]>) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in self.matches(key) {
            if !out.contains(&a.module.as_str()) {
                out.push(&a.module);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Alias>, AliasError> {
        parse_aliases(text, Path::new("modules.alias"))
    }

    #[test]
    fn a_cause_is_printed_in_the_message_not_returned_as_source() {
        use std::error::Error as _;
        let err = AliasError::Io {
            path: "modules.alias".into(),
            cause: io::Error::other("disk on fire"),
        };
        assert_eq!(err.to_string(), "modules.alias: disk on fire");
        assert!(err.source().is_none());
    }

    #[test]
    fn lines_split_at_first_and_last_space() {
        let a = parse("# header\n\nalias a b  c mod\nalias x m\n").unwrap();
        assert_eq!(a, [Alias::new("a b  c", "mod"), Alias::new("x", "m")]);
        // Leading and trailing spaces of a pattern survive (depmod writes them as they are).
        assert_eq!(parse("alias  x  m").unwrap(), [Alias::new(" x ", "m")]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "alias x m\nalia y m\n",
                2,
                "expected a line `alias PATTERN MODULE`",
            ),
            ("alias\n", 1, "expected a space after `alias`"),
            ("alias\tx m\n", 1, "expected a space after `alias`"),
            (
                "alias x\n",
                1,
                "expected `alias PATTERN MODULE`, found no module",
            ),
            ("alias  m\n", 1, "empty alias pattern"),
            (
                "alias x \n",
                1,
                "expected a module name at the end of the line",
            ),
            (
                "alias x m\talso\n",
                1,
                "expected a module name at the end of the line",
            ),
        ];
        for (text, line, reason) in cases {
            let err = parse(text).unwrap_err();
            match &err {
                AliasError::Syntax {
                    line: l, reason: r, ..
                } => {
                    assert_eq!((*l, *r), (line, reason), "{text:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
            assert!(
                err.to_string()
                    .starts_with(&format!("modules.alias:{line}: "))
            );
        }
    }

    #[test]
    fn reader_agrees_with_parser_and_rejects_bad_utf8() {
        let text = "# c\nalias a*b m1\n\nalias x y z m2";
        let from_reader = read_aliases(text.as_bytes(), Path::new("f")).unwrap();
        assert_eq!(from_reader, parse(text).unwrap());
        let err = read_aliases(&b"alias x m\nalias \xff m\n"[..], Path::new("f")).unwrap_err();
        assert_eq!(err.to_string(), "f:2: not UTF-8: \"alias \u{fffd} m\"");
    }

    #[test]
    fn write_round_trips_and_refuses_what_cannot() {
        let aliases = vec![
            Alias::new("usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb_storage"),
            Alias::new(" odd  one ", "m"),
        ];
        let mut out = Vec::new();
        write_modules_alias(&mut out, &aliases, Path::new("o")).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(MODULES_ALIAS_HEADER));
        assert_eq!(parse(&text).unwrap(), aliases);

        for bad in [
            Alias::new("a\nb", "m"),
            Alias::new("", "m"),
            Alias::new("a", "m n"),
            Alias::new("a", ""),
        ] {
            let mut out = Vec::new();
            let err = write_modules_alias(&mut out, std::slice::from_ref(&bad), Path::new("o"))
                .unwrap_err();
            assert!(matches!(err, AliasError::Unwritable { .. }), "{bad:?}");
            assert!(out.is_empty(), "{bad:?} wrote something");
        }
    }

    #[test]
    fn matcher_orders_and_dedups_modules() {
        let m = AliasMatcher::new(vec![
            Alias::new("pci:v*d*sv*sd*bc01sc*i*", "ahci"),
            Alias::new("pci:v00001AF4d*", "virtio_pci"),
            Alias::new("pci:*", "ahci"),
            Alias::new("usb:*", "usbcore"),
        ]);
        let key = "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00";
        assert_eq!(m.modules(key), ["ahci", "virtio_pci"]);
        assert_eq!(m.matches(key).len(), 3);
        assert!(m.modules("acpi:PNP0A08:").is_empty());
    }
}
