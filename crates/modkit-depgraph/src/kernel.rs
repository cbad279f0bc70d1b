//! The kernel's own symbols, which modules may need without depending on another module:
//! from a `System.map` (`-F`) or a `Module.symvers` (`-E`). The parsers take bytes; the
//! `from_*` constructors read the file first.

use std::path::Path;

use crate::diag::Diagnostics;
use crate::error::Error;
use crate::io::split_lines;

/// Where the kernel's own symbols come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelSymbols {
    /// (name, CRC) in file order.
    pub symbols: Vec<(String, u64)>,
    /// Whether symbols were given at all (`-F` or `-E`): only then are the fake symbols added
    /// and unknown symbols reportable.
    pub given: bool,
}

impl KernelSymbols {
    /// Read a `System.map` (`-F`); see [`KernelSymbols::parse_system_map`].
    pub fn from_system_map(path: &Path, diag: &mut Diagnostics) -> Result<KernelSymbols, Error> {
        let bytes = crate::io::read_file(path, "could not load")?;
        Ok(KernelSymbols::parse_system_map(&bytes, path, diag))
    }

    /// Read a `Module.symvers` (`-E`); see [`KernelSymbols::parse_symvers`].
    pub fn from_symvers(path: &Path, diag: &mut Diagnostics) -> Result<KernelSymbols, Error> {
        let bytes = crate::io::read_file(path, "could not load")?;
        Ok(KernelSymbols::parse_symvers(&bytes, path, diag))
    }

    /// The symbols of a `System.map`: every `__ksymtab_NAME` symbol, CRC 0 (kmod
    /// `depmod_load_system_map`). Lines without two spaces are reported, naming `path`.
    pub fn parse_system_map(bytes: &[u8], path: &Path, diag: &mut Diagnostics) -> KernelSymbols {
        let mut symbols = Vec::with_capacity(16384);
        for (i, line) in split_lines(bytes).enumerate() {
            let third = line.iter().position(|&b| b == b' ').and_then(|a| {
                let rest = &line[a + 1..];
                rest.iter().position(|&b| b == b' ').map(|b| &rest[b + 1..])
            });
            let Some(third) = third else {
                diag.error(format!(
                    "{}:{}: invalid line: {}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(line)
                ));
                continue;
            };
            if let Some(name) = third.strip_prefix(b"__ksymtab_") {
                let name = name.strip_suffix(b"\n").unwrap_or(name);
                symbols.push((String::from_utf8_lossy(name).into_owned(), 0));
            }
        }
        KernelSymbols {
            symbols,
            given: true,
        }
    }

    /// The `vmlinux` symbols of a `Module.symvers`, with their CRCs (kmod
    /// `depmod_load_symvers`). Bad CRCs are reported, naming `path`.
    pub fn parse_symvers(bytes: &[u8], path: &Path, diag: &mut Diagnostics) -> KernelSymbols {
        let mut symbols = Vec::with_capacity(16384);
        for (i, line) in split_lines(bytes).enumerate() {
            let text = String::from_utf8_lossy(line);
            let mut tok = text.split([' ', '\t']).filter(|t| !t.is_empty());
            let (Some(ver), Some(sym), Some(whr)) = (tok.next(), tok.next(), tok.next()) else {
                continue;
            };
            if whr != "vmlinux" {
                continue;
            }
            let digits = ver
                .strip_prefix("0x")
                .or_else(|| ver.strip_prefix("0X"))
                .unwrap_or(ver);
            match u64::from_str_radix(digits, 16) {
                Ok(crc) if !digits.is_empty() => symbols.push((sym.to_owned(), crc)),
                _ => diag.error(format!(
                    "{}:{} Invalid symbol version {ver}: Success",
                    path.display(),
                    i + 1
                )),
            }
        }
        KernelSymbols {
            symbols,
            given: true,
        }
    }
}
