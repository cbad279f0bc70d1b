//! `uevent` files: `KEY=VALUE` lines, as the kernel writes them for every device.

use std::path::Path;

use crate::error::{Error, Result};

/// The `KEY=VALUE` pairs of a `uevent` file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uevent {
    vars: Vec<(String, String)>,
}

impl Uevent {
    /// Parse the text of a uevent file; `path` names it in errors. A non-empty line without
    /// `=` is an error (the kernel never writes one).
    pub fn parse(text: &str, path: &Path) -> Result<Uevent> {
        let mut vars = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(Error::Malformed {
                    path: path.to_owned(),
                    line: i + 1,
                    reason: format!("expected KEY=VALUE, found {line:?}"),
                });
            };
            vars.push((key.to_owned(), value.to_owned()));
        }
        Ok(Uevent { vars })
    }

    /// The value of `key` (the first, if it appears twice).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `MODALIAS`, if the device has one.
    pub fn modalias(&self) -> Option<&str> {
        self.get("MODALIAS").filter(|m| !m.is_empty())
    }

    /// All pairs, in file order.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}
