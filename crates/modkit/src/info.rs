//! What a module says about itself: the `.modinfo` records of a module file (with the
//! signature fields kmod adds), or a built-in module's records from `modules.builtin.modinfo`.

use std::borrow::Cow;
use std::path::Path;

use modkit_elf::{Module, decompress};

use crate::Error;

/// Largest decompressed module accepted (the biggest Debian module is under 20 MiB).
const DECOMPRESSED_LIMIT: u64 = 512 << 20;

/// A module's `.modinfo` records in order, then, for a signed module file, the signature fields
/// kmod adds (`sig_id`, `signer`, `sig_key`, `sig_hashalgo`, `signature`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Info {
    /// `(key, value)` pairs, in file order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Info {
    fn push_record(&mut self, record: &[u8]) {
        // libkmod: a string without '=' is a key with an empty value.
        match record.iter().position(|&b| b == b'=') {
            Some(eq) => self
                .records
                .push((record[..eq].to_vec(), record[eq + 1..].to_vec())),
            None => self.records.push((record.to_vec(), Vec::new())),
        }
    }

    fn push(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        self.records.push((key.as_bytes().to_vec(), value.into()));
    }

    /// The values of one key, in order.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.records
            .iter()
            .filter(move |(k, _)| k.as_slice() == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// Files shorter than this are refused before their magic is looked at: the longest
/// compression magic (xz's, 6 bytes) cannot be read from them (libkmod-file.c, which answers
/// `EINVAL` there and `ENOEXEC` for a longer file that is no ELF).
const SHORTEST_MODULE_FILE: usize = 6;

/// A module file's bytes as its parsers see them: mapped as they are on disk (a plain module:
/// only the pages read are ever loaded, the ELF and section headers, `.modinfo` and the
/// signature trailer for `modinfo`, a few of a 3.8 MB file), or read, or decompressed.
struct ModuleFile {
    raw: Raw,
    decompressed: Option<Vec<u8>>,
}

enum Raw {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl ModuleFile {
    /// Open, map (or read) and decompress the module file at `path`, with the errors kmod's
    /// readers give for it.
    fn open(path: &Path) -> Result<ModuleFile, Error> {
        let io = |cause| Error::Io {
            path: path.to_owned(),
            cause,
        };
        let elf = |cause| Error::Elf {
            path: path.to_owned(),
            cause,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let mappable = meta.is_file() && meta.len() >= SHORTEST_MODULE_FILE as u64;
        // SAFETY: the map is read-only and private, but pages not yet copied still show the
        // file, so Rust's promise that the bytes behind `&[u8]` do not change holds only while
        // nobody writes the module file in place. Package managers install modules under a new
        // name and rename them; a file rewritten in place while it is read gives wrong data for
        // this one description, and one truncated under the mapping raises SIGBUS on the next
        // access past its new end (kmod maps module files too and dies the same way). Every
        // read is bounds-checked against the length mapped here, which no truncation changes.
        #[allow(unsafe_code, reason = "memmap2::Mmap::map is unsafe: see SAFETY")]
        let mapped = mappable
            .then(|| unsafe { memmap2::Mmap::map(&file) }.ok())
            .flatten();
        let raw = match mapped {
            Some(map) => Raw::Mapped(map),
            // Not a regular file, too short to map usefully, or no mapping to be had: read it,
            // with the read's own error.
            None => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
                Raw::Read(bytes)
            }
        };
        let bytes: &[u8] = match &raw {
            Raw::Mapped(map) => map,
            Raw::Read(bytes) => bytes,
        };
        if bytes.len() < SHORTEST_MODULE_FILE {
            return Err(elf(modkit_elf::Error::Malformed {
                what: "module file",
                offset: 0,
                expected: "at least 6 bytes (an ELF header or a compression magic)",
            }));
        }
        let decompressed = match decompress(bytes, DECOMPRESSED_LIMIT).map_err(elf)? {
            Cow::Borrowed(_) => None,
            Cow::Owned(bytes) => Some(bytes),
        };
        Ok(ModuleFile { raw, decompressed })
    }

    /// The module's uncompressed bytes.
    fn bytes(&self) -> &[u8] {
        match (&self.decompressed, &self.raw) {
            (Some(bytes), _) => bytes,
            (None, Raw::Mapped(map)) => map,
            (None, Raw::Read(bytes)) => bytes,
        }
    }
}

/// One symbol and its CRC, as `modprobe --show-exports` and `--show-modversions` print them
/// (`0x%08x\tNAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolCrc {
    /// The modversions CRC (0 where the module records none).
    pub crc: u64,
    /// The symbol.
    pub name: String,
}

/// The symbols a module file exports, as libkmod's `kmod_module_get_symbols` lists them: its
/// `__crc_NAME` symbols with their CRCs in symbol-table order or, in a module built without
/// modversions (or stripped), the names of `__ksymtab_strings` with CRC 0. Empty when it
/// exports nothing.
pub fn file_exports(path: &Path) -> Result<Vec<SymbolCrc>, Error> {
    module_symbols(path, |module| {
        Ok(module
            .depmod_exports()?
            .into_iter()
            .map(|s| (s.crc, s.name))
            .collect())
    })
}

/// The `__versions` entries of a module file (the CRCs of the symbols it was built against),
/// in section order, as libkmod's `kmod_module_get_versions` lists them. Empty when the
/// module has no `__versions`.
pub fn file_versions(path: &Path) -> Result<Vec<SymbolCrc>, Error> {
    module_symbols(path, |module| {
        Ok(module
            .versions()?
            .into_iter()
            .map(|v| (v.crc, v.name))
            .collect())
    })
}

/// The (CRC, symbol) pairs `list` takes from the module in the file at `path`.
fn module_symbols(
    path: &Path,
    list: impl for<'a> FnOnce(&Module<'a>) -> Result<Vec<(u64, &'a str)>, modkit_elf::Error>,
) -> Result<Vec<SymbolCrc>, Error> {
    let file = ModuleFile::open(path)?;
    let bytes = file.bytes();
    let elf = |cause| Error::Elf {
        path: path.to_owned(),
        cause,
    };
    let module = Module::parse(bytes).map_err(elf)?;
    Ok(list(&module)
        .map_err(elf)?
        .into_iter()
        .map(|(crc, name)| SymbolCrc {
            crc,
            name: name.to_owned(),
        })
        .collect())
}

/// Read a module file (compressed or not) and collect its records and signature fields.
pub fn file_info(path: &Path) -> Result<Info, Error> {
    let file = ModuleFile::open(path)?;
    let bytes = file.bytes();
    let elf = |cause| Error::Elf {
        path: path.to_owned(),
        cause,
    };
    let module = Module::parse(bytes).map_err(elf)?;
    if !module.has_modinfo() {
        // kmod: "could not get modinfo from 'NAME': No data available" (ENODATA).
        return Err(Error::NoModinfo {
            path: path.to_owned(),
        });
    }
    let mut info = Info::default();
    for record in module.modinfo() {
        info.records
            .push((record.key.to_vec(), record.value.to_vec()));
    }
    if let Ok(Some(sig)) = modkit_elf::signature(bytes) {
        info.push("sig_id", sig.id_type_name());
        info.push("signer", sig.signer.clone());
        info.push("sig_key", sig.sig_key_hex());
        info.push("sig_hashalgo", sig.hash_algo_name().as_bytes());
        info.push("signature", sig.signature_hex());
    }
    Ok(info)
}

/// A built-in module's records from `modules.builtin.modinfo` (`NAME.KEY=VALUE\0`...) in the
/// module directory `dir`; none when the file is absent (kernels before 5.2).
pub fn builtin_info(dir: &Path, name: &str) -> Result<Info, Error> {
    let path = dir.join("modules.builtin.modinfo");
    let mut info = Info::default();
    let data = match std::fs::read(&path) {
        Ok(data) => data,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(info),
        Err(cause) => return Err(Error::Io { path, cause }),
    };
    let prefix = format!("{name}.");
    for record in data.split(|&b| b == 0) {
        if let Some(rest) = record.strip_prefix(prefix.as_bytes()) {
            info.push_record(rest);
        }
    }
    Ok(info)
}
