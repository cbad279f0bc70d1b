//! The ELF side of a module: header facts, sections, exported and imported symbols, `__versions`.
//!
//! The `elf` crate reads the file header and the section header table; everything after that
//! (symbols, CRCs, `__versions`) is read here, in the byte order the header gives, through
//! [`Endian`]'s checked reads.

use std::fmt;

use elf::ElfBytes;
use elf::abi;
use elf::endian::AnyEndian;
use elf::file::Class;
use elf::section::{SectionHeader, SectionHeaderTable};
use elf::string_table::StringTable;

use crate::{Compression, Endian, Error, ModInfo, detect_compression};

/// ELF class: 32- or 64-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElfClass {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

impl fmt::Display for ElfClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfClass::Elf32 => "ELF32",
            ElfClass::Elf64 => "ELF64",
        })
    }
}

/// A symbol the module exports (`EXPORT_SYMBOL*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExportedSymbol<'a> {
    /// The symbol name (without the `__ksymtab_` prefix).
    pub name: &'a str,
    /// Exported with `EXPORT_SYMBOL_GPL` (its `__ksymtab_NAME` lives in `__ksymtab_gpl`).
    pub gpl_only: bool,
    /// The modversions CRC from the matching `__crc_NAME` symbol, if the module has one.
    pub crc: Option<u64>,
}

/// An exported symbol exactly as kmod's depmod sees it (`kmod_elf_get_symbols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KmodSymbol<'a> {
    /// The symbol name.
    pub name: &'a str,
    /// The CRC (0 when taken from `__ksymtab_strings`; `u64::MAX` where kmod fails to resolve it).
    pub crc: u64,
}

/// A symbol the module needs, exactly as kmod's depmod sees it
/// (`kmod_elf_get_dependency_symbols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DependencySymbol<'a> {
    /// The symbol name.
    pub name: &'a str,
    /// The CRC recorded for it in `__versions` (0 if none).
    pub crc: u64,
    /// Weak reference (`STB_WEAK`): depmod does not warn when nobody exports it.
    pub weak: bool,
}

/// One `__versions` entry (`struct modversion_info`): a needed symbol and its expected CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbolVersion<'a> {
    /// The CRC (32-bit modules store a u32, 64-bit ones a u64).
    pub crc: u64,
    /// The symbol name (a leading `.`, used on ppc64, is dropped as kmod does).
    pub name: &'a str,
}

/// Size of `struct modversion_info` (kernel `include/linux/module.h`, kmod `kmod_modversion64`).
const MODVERSION_SIZE: usize = 64;
/// `STT_REGISTER`: not really undefined on SPARC (kmod `libkmod-elf.c`, from module-init-tools).
const STT_REGISTER: u8 = 13;
const KSYMTAB_PREFIX: &[u8] = b"__ksymtab_";
const CRC_PREFIX: &[u8] = b"__crc_";

/// Which sections of interest the header table holds (the first of each name, as kmod finds them).
#[derive(Debug, Clone, Copy, Default)]
struct Sections {
    modinfo: Option<usize>,
    versions: Option<usize>,
    ksymtab_strings: Option<usize>,
    ksymtab: Option<usize>,
    ksymtab_gpl: Option<usize>,
    symtab: Option<usize>,
}

/// A parsed view over the bytes of an uncompressed module.
///
/// Parsing reads the ELF header and the section header table and checks the `.modinfo` range;
/// everything else is read on request, from the borrowed bytes.
#[derive(Debug, Clone)]
pub struct Module<'a> {
    bytes: &'a [u8],
    class: ElfClass,
    endian: Endian,
    machine: u16,
    elf_type: u16,
    shdrs: SectionHeaderTable<'a, AnyEndian>,
    shstrtab: StringTable<'a>,
    sections: Sections,
    modinfo: &'a [u8],
}

impl<'a> Module<'a> {
    /// Parse the ELF structure of an uncompressed module (decompress first with
    /// [`crate::decompress`]; compressed input is an [`Error::Compressed`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Module<'a>, Error> {
        let compression = detect_compression(bytes);
        if compression != Compression::None {
            return Err(Error::Compressed(compression));
        }
        if !bytes.starts_with(&abi::ELFMAGIC) {
            return Err(Error::NotElf {
                found: bytes.iter().take(4).copied().collect(),
            });
        }
        let elf = ElfBytes::<AnyEndian>::minimal_parse(bytes)
            .map_err(|e| Error::elf("file header", e))?;
        let (shdrs, shstrtab) = elf
            .section_headers_with_strtab()
            .map_err(|e| Error::elf("section header table", e))?;
        let shdrs = shdrs.ok_or(Error::Malformed {
            what: "ELF header",
            offset: 0,
            expected: "a section header table (e_shoff is 0)",
        })?;
        let shstrtab = shstrtab.ok_or(Error::Malformed {
            what: "ELF header",
            offset: 0,
            expected: "a section name string table (e_shstrndx is 0)",
        })?;

        let mut sections = Sections::default();
        for (index, shdr) in shdrs.iter().enumerate().skip(1) {
            let Ok(name) = shstrtab.get_raw(shdr.sh_name as usize) else {
                continue;
            };
            let slot = match name {
                b".modinfo" => &mut sections.modinfo,
                b"__versions" => &mut sections.versions,
                b"__ksymtab_strings" => &mut sections.ksymtab_strings,
                b"__ksymtab" => &mut sections.ksymtab,
                b"__ksymtab_gpl" => &mut sections.ksymtab_gpl,
                _ if shdr.sh_type == abi::SHT_SYMTAB => &mut sections.symtab,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(index);
            }
        }

        let mut module = Module {
            bytes,
            class: match elf.ehdr.class {
                Class::ELF32 => ElfClass::Elf32,
                Class::ELF64 => ElfClass::Elf64,
            },
            endian: match elf.ehdr.endianness {
                AnyEndian::Little => Endian::Little,
                AnyEndian::Big => Endian::Big,
            },
            machine: elf.ehdr.e_machine,
            elf_type: elf.ehdr.e_type,
            shdrs,
            shstrtab,
            sections,
            modinfo: &[],
        };
        if let Some(index) = sections.modinfo {
            module.modinfo = module.section_data(index, "section .modinfo")?;
        }
        Ok(module)
    }

    /// The module bytes this view borrows.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// 32- or 64-bit.
    pub fn class(&self) -> ElfClass {
        self.class
    }

    /// Byte order.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// `e_machine` (62 = x86-64, 183 = AArch64, 22 = s390, ...).
    pub fn machine(&self) -> u16 {
        self.machine
    }

    /// `e_type` (1 = `ET_REL` for every loadable module).
    pub fn elf_type(&self) -> u16 {
        self.elf_type
    }

    /// The `.modinfo` records, in file order (empty if there is no `.modinfo`).
    pub fn modinfo(&self) -> ModInfo<'a> {
        ModInfo::from_bytes(self.modinfo)
    }

    /// Whether the module has a `.modinfo` section at all. kmod's `modinfo` fails on a module
    /// without one ("could not get modinfo from 'NAME': No data available") where
    /// [`Module::modinfo`] is simply empty.
    pub fn has_modinfo(&self) -> bool {
        self.sections.modinfo.is_some()
    }

    /// The contents of the first section called `name`, if there is one.
    pub fn section(&self, name: &str) -> Result<Option<&'a [u8]>, Error> {
        for (index, shdr) in self.shdrs.iter().enumerate().skip(1) {
            if self.shstrtab.get_raw(shdr.sh_name as usize).ok() == Some(name.as_bytes()) {
                return self.section_data(index, "section").map(Some);
            }
        }
        Ok(None)
    }

    /// The names of all sections, in header order (index 0 excluded; unreadable names skipped).
    pub fn section_names(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.shdrs
            .iter()
            .skip(1)
            .filter_map(|shdr| self.shstrtab.get_raw(shdr.sh_name as usize).ok())
    }

    /// Symbols the module exports, from its `__ksymtab_NAME` symbols, in symbol-table order.
    ///
    /// `gpl_only` comes from the section the symbol lives in (`__ksymtab_gpl`); the CRC from the
    /// matching `__crc_NAME` symbol. A module without a symbol table is an error (the kernel
    /// cannot load it either).
    pub fn exports(&self) -> Result<Vec<ExportedSymbol<'a>>, Error> {
        let symtab = self.symbol_table()?;
        let mut exports = Vec::new();
        let mut crcs: Vec<(&'a [u8], u64)> = Vec::new();
        for (index, sym) in symtab.iter() {
            if sym.shndx == abi::SHN_UNDEF || sym.kind() == abi::STT_SECTION {
                continue;
            }
            let is_ksymtab = symtab.name_starts_with(&sym, KSYMTAB_PREFIX);
            if !is_ksymtab && !symtab.name_starts_with(&sym, CRC_PREFIX) {
                continue;
            }
            let name = self.symbol_name(&symtab, &sym, index)?;
            if let Some(exported) = name.strip_prefix(KSYMTAB_PREFIX) {
                let gpl_only = match self.ksymtab_kind(sym.shndx) {
                    Some(gpl) => gpl,
                    None => continue,
                };
                exports.push(ExportedSymbol {
                    name: self.utf8(exported, "exported symbol name")?,
                    gpl_only,
                    crc: None,
                });
            } else if let Some(crc_of) = name.strip_prefix(CRC_PREFIX) {
                crcs.push((crc_of, self.resolve_crc(sym.value, sym.shndx)));
            }
        }
        if !crcs.is_empty() {
            crcs.sort_unstable_by_key(|&(name, _)| name);
            for export in &mut exports {
                if let Ok(i) = crcs.binary_search_by_key(&export.name.as_bytes(), |&(n, _)| n) {
                    export.crc = crcs.get(i).map(|&(_, crc)| crc);
                }
            }
        }
        Ok(exports)
    }

    /// Exported symbols exactly as kmod 30's depmod derives them for `modules.symbols`: the
    /// `__crc_NAME` symbols (with their resolved CRC), or, when there are none (or the symbol
    /// table is unusable), the strings of `__ksymtab_strings` with CRC 0.
    pub fn depmod_exports(&self) -> Result<Vec<KmodSymbol<'a>>, Error> {
        if let Some(symbols) = self.crc_symbols()? {
            return Ok(symbols);
        }
        let Some(index) = self.sections.ksymtab_strings else {
            return Ok(Vec::new());
        };
        let data = self.section_data(index, "section __ksymtab_strings")?;
        let base = self.section_offset(index, "section __ksymtab_strings")?;
        let mut symbols = Vec::new();
        let mut pos = 0usize;
        for piece in data.split(|&b| b == 0) {
            if !piece.is_empty() {
                symbols.push(KmodSymbol {
                    name: self.utf8_at(piece, "__ksymtab_strings entry", base + pos as u64)?,
                    crc: 0,
                });
            }
            pos += piece.len() + 1;
        }
        Ok(symbols)
    }

    /// `__crc_` symbols; `None` where kmod falls back to `__ksymtab_strings`.
    fn crc_symbols(&self) -> Result<Option<Vec<KmodSymbol<'a>>>, Error> {
        let Ok(symtab) = self.symbol_table() else {
            return Ok(None);
        };
        let mut symbols = Vec::new();
        for (index, sym) in symtab.iter() {
            // kmod falls back when a name offset is outside the string table.
            if usize::try_from(sym.name).map_or(true, |n| n >= symtab.strtab.len()) {
                return Ok(None);
            }
            if !symtab.name_starts_with(&sym, CRC_PREFIX) {
                continue;
            }
            let name = self.symbol_name(&symtab, &sym, index)?;
            let name = name.strip_prefix(CRC_PREFIX).unwrap_or(name);
            symbols.push(KmodSymbol {
                name: self.utf8(name, "__crc_ symbol name")?,
                crc: self.resolve_crc(sym.value, sym.shndx),
            });
        }
        Ok(if symbols.is_empty() {
            None
        } else {
            Some(symbols)
        })
    }

    /// Names of the undefined symbols of `.symtab` (what the module needs from others), in
    /// symbol-table order, skipping what kmod's depmod skips: the null symbol, empty names,
    /// and `STT_REGISTER` symbols on SPARC.
    pub fn imports(&self) -> Result<Vec<&'a str>, Error> {
        let symtab = self.symbol_table()?;
        let sparc = self.is_sparc();
        let mut imports = Vec::new();
        for (index, sym) in symtab.iter() {
            if let Some(name) = self.import_name(&symtab, &sym, index, sparc)? {
                imports.push(name);
            }
        }
        Ok(imports)
    }

    /// Imports exactly as kmod 30's depmod sees them: [`Module::imports`] with the CRC that
    /// `__versions` records for each and its weak flag, followed by the `__versions` entries no
    /// symbol refers to (`module_layout`), as kmod appends them.
    pub fn depmod_imports(&self) -> Result<Vec<DependencySymbol<'a>>, Error> {
        let symtab = self.symbol_table()?;
        // kmod ignores a __versions section whose size is not a whole number of entries.
        let versions = match self.versions_table() {
            Ok(v) => v,
            Err(Error::Malformed { .. }) => None,
            Err(e) => return Err(e),
        };
        let entries: Vec<(&'a [u8], u64)> = match versions {
            Some(table) => self
                .modversions(table)
                .map(|entry| entry.map(|e| (until_nul(e.name), e.crc)))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        // Sorted view for lookup; kmod takes the first entry of a name.
        let mut sorted: Vec<(usize, &'a [u8])> =
            entries.iter().enumerate().map(|(i, e)| (i, e.0)).collect();
        sorted.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(&b.0)));
        let mut visited = vec![false; entries.len()];

        let sparc = self.is_sparc();
        let mut out = Vec::new();
        for (index, sym) in symtab.iter() {
            let Some(name) = self.import_name(&symtab, &sym, index, sparc)? else {
                continue;
            };
            let start = sorted.partition_point(|&(_, n)| n < name.as_bytes());
            let crc = match sorted.get(start) {
                Some(&(i, n)) if n == name.as_bytes() => {
                    if let Some(v) = visited.get_mut(i) {
                        *v = true;
                    }
                    entries.get(i).map_or(0, |e| e.1)
                }
                _ => 0,
            };
            out.push(DependencySymbol {
                name,
                crc,
                weak: sym.bind() == abi::STB_WEAK,
            });
        }
        for (i, &(name, crc)) in entries.iter().enumerate() {
            if !visited.get(i).copied().unwrap_or(true) {
                out.push(DependencySymbol {
                    name: self.utf8(name, "__versions symbol name")?,
                    crc,
                    weak: false,
                });
            }
        }
        Ok(out)
    }

    /// The `__versions` entries (CRCs of the symbols the module was built against), in order.
    /// Empty if the module has no `__versions` (built without `CONFIG_MODVERSIONS`).
    pub fn versions(&self) -> Result<Vec<SymbolVersion<'a>>, Error> {
        let Some(table) = self.versions_table()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(table.data.len() / MODVERSION_SIZE);
        for entry in self.modversions(table) {
            let entry = entry?;
            if !entry.name.contains(&0) {
                return Err(Error::Malformed {
                    what: "__versions entry name",
                    offset: entry.name_offset,
                    expected: "a NUL-terminated name within the 64-byte entry",
                });
            }
            let name = until_nul(entry.name);
            let name = name.strip_prefix(b".").unwrap_or(name);
            out.push(SymbolVersion {
                crc: entry.crc,
                name: self.utf8_at(name, "__versions entry name", entry.name_offset)?,
            });
        }
        Ok(out)
    }

    // ---- helpers -------------------------------------------------------------------------

    fn is_sparc(&self) -> bool {
        matches!(self.machine(), abi::EM_SPARC | abi::EM_SPARCV9)
    }

    fn crc_size(&self) -> usize {
        match self.class() {
            ElfClass::Elf32 => 4,
            ElfClass::Elf64 => 8,
        }
    }

    fn import_name(
        &self,
        symtab: &Symtab<'a>,
        sym: &Sym,
        index: usize,
        sparc: bool,
    ) -> Result<Option<&'a str>, Error> {
        if sym.shndx != abi::SHN_UNDEF {
            return Ok(None);
        }
        if sparc && sym.kind() == STT_REGISTER {
            return Ok(None);
        }
        let name = self.symbol_name(symtab, sym, index)?;
        if name.is_empty() {
            return Ok(None);
        }
        self.utf8(name, "symbol name").map(Some)
    }

    /// `__versions` contents, checked to be whole entries.
    fn versions_table(&self) -> Result<Option<VersionsTable<'a>>, Error> {
        let Some(index) = self.sections.versions else {
            return Ok(None);
        };
        let data = self.section_data(index, "section __versions")?;
        let offset = self.section_offset(index, "section __versions")?;
        if data.len() % MODVERSION_SIZE != 0 {
            return Err(Error::Malformed {
                what: "section __versions",
                offset,
                expected: "a size that is a multiple of 64 (struct modversion_info)",
            });
        }
        Ok(Some(VersionsTable { data, offset }))
    }

    /// The entries of `__versions` (`struct modversion_info`: a CRC as wide as the class's
    /// `unsigned long`, then the name field to the end of the 64 bytes), in order.
    fn modversions(
        &self,
        table: VersionsTable<'a>,
    ) -> impl Iterator<Item = Result<Modversion<'a>, Error>> + '_ {
        let crc_size = self.crc_size();
        table
            .data
            .chunks_exact(MODVERSION_SIZE)
            .enumerate()
            .map(move |(i, entry)| {
                let entry_offset = table.offset + (i * MODVERSION_SIZE) as u64;
                let malformed = || Error::Malformed {
                    what: "__versions entry",
                    offset: entry_offset,
                    expected: "a CRC and a name in 64 bytes",
                };
                let (crc, name) = entry.split_at_checked(crc_size).ok_or_else(malformed)?;
                Ok(Modversion {
                    crc: self.endian.uint(crc).ok_or_else(malformed)?,
                    name,
                    name_offset: entry_offset + crc_size as u64,
                })
            })
    }

    fn symbol_table(&self) -> Result<Symtab<'a>, Error> {
        let index = self
            .sections
            .symtab
            .ok_or(Error::MissingSection(".symtab"))?;
        let symtab = self.header(index, "section .symtab")?;
        let data = self.section_data(index, "section .symtab")?;
        let strtab = self.section_data(symtab.sh_link as usize, "string table of .symtab")?;
        let entsize = match self.class() {
            ElfClass::Elf32 => 16,
            ElfClass::Elf64 => 24,
        };
        if data.len() % entsize != 0 {
            return Err(Error::Malformed {
                what: "section .symtab",
                offset: symtab.sh_offset,
                expected: "a size that is a multiple of the symbol size",
            });
        }
        Ok(Symtab {
            data,
            strtab,
            entsize,
            endian: self.endian,
        })
    }

    fn symbol_name(&self, symtab: &Symtab<'a>, sym: &Sym, index: usize) -> Result<&'a [u8], Error> {
        symtab.name(sym).ok_or_else(|| Error::Malformed {
            what: "symbol name",
            offset: u64::try_from(index).unwrap_or(u64::MAX),
            expected: "a NUL-terminated string inside the symbol string table \
                       (offset is the symbol index)",
        })
    }

    /// `Some(true)` for a GPL-only ksymtab section, `Some(false)` for a plain one, `None` else.
    fn ksymtab_kind(&self, shndx: u16) -> Option<bool> {
        let index = usize::from(shndx);
        if Some(index) == self.sections.ksymtab_gpl {
            return Some(true);
        }
        if Some(index) == self.sections.ksymtab {
            return Some(false);
        }
        // Unlinked objects keep one section per symbol: `___ksymtab_gpl+NAME`, `___ksymtab+NAME`.
        let shdr = self.shdrs.get(index).ok()?;
        let name = self.shstrtab.get_raw(shdr.sh_name as usize).ok()?;
        if name.starts_with(b"___ksymtab_gpl+") {
            Some(true)
        } else if name.starts_with(b"___ksymtab+") {
            Some(false)
        } else {
            None
        }
    }

    /// kmod's `kmod_elf_resolve_crc`: an absolute value is the CRC itself, otherwise it is the
    /// offset of a u32 in its section; `u64::MAX` when that is out of range.
    fn resolve_crc(&self, value: u64, shndx: u16) -> u64 {
        if shndx == abi::SHN_ABS || shndx == abi::SHN_UNDEF {
            return value;
        }
        let Ok(data) = self.section_data(usize::from(shndx), "crc section") else {
            return u64::MAX;
        };
        usize::try_from(value)
            .ok()
            .and_then(|at| self.endian.u32(data, at))
            .map_or(u64::MAX, u64::from)
    }

    fn header(&self, index: usize, what: &'static str) -> Result<SectionHeader, Error> {
        self.shdrs.get(index).map_err(|e| Error::elf(what, e))
    }

    fn section_offset(&self, index: usize, what: &'static str) -> Result<u64, Error> {
        Ok(self.header(index, what)?.sh_offset)
    }

    /// The bytes of section `index`, bounds-checked (NOBITS sections are empty).
    fn section_data(&self, index: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let shdr = self.header(index, what)?;
        if shdr.sh_type == abi::SHT_NOBITS {
            return Ok(&[]);
        }
        let out_of_bounds = || Error::OutOfBounds {
            what,
            offset: shdr.sh_offset,
            size: shdr.sh_size,
            len: self.bytes.len() as u64,
        };
        let start = usize::try_from(shdr.sh_offset).map_err(|_| out_of_bounds())?;
        let size = usize::try_from(shdr.sh_size).map_err(|_| out_of_bounds())?;
        let end = start.checked_add(size).ok_or_else(out_of_bounds)?;
        self.bytes.get(start..end).ok_or_else(out_of_bounds)
    }

    fn utf8(&self, bytes: &'a [u8], what: &'static str) -> Result<&'a str, Error> {
        let offset = self.offset_of(bytes);
        self.utf8_at(bytes, what, offset)
    }

    fn utf8_at(&self, bytes: &'a [u8], what: &'static str, offset: u64) -> Result<&'a str, Error> {
        std::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { what, offset })
    }

    /// Offset of a sub-slice of the module bytes (for error messages).
    fn offset_of(&self, sub: &[u8]) -> u64 {
        (sub.as_ptr() as usize).wrapping_sub(self.bytes.as_ptr() as usize) as u64
    }
}

/// One symbol-table entry, the fields kmod reads (`Elf32_Sym`/`Elf64_Sym`).
#[derive(Debug, Clone, Copy)]
struct Sym {
    name: u32,
    info: u8,
    shndx: u16,
    value: u64,
}

impl Sym {
    fn bind(&self) -> u8 {
        self.info >> 4
    }

    fn kind(&self) -> u8 {
        self.info & 0xf
    }
}

/// The symbol table and its string table, decoded on the fly (the hot path of depmod: a
/// direct decoder is several times faster than a generic one here).
#[derive(Debug, Clone, Copy)]
struct Symtab<'a> {
    data: &'a [u8],
    strtab: &'a [u8],
    /// 16 for ELF32, 24 for ELF64.
    entsize: usize,
    endian: Endian,
}

impl<'a> Symtab<'a> {
    /// Entries with their index, from 1 (entry 0 is the null symbol). The entries are whole
    /// (`chunks_exact` of the entry size, checked by [`Module::symbol_table`]), so decoding
    /// cannot run short; if it did, the walk would end there.
    fn iter(&self) -> impl Iterator<Item = (usize, Sym)> + 'a {
        let this = *self;
        self.data
            .chunks_exact(self.entsize)
            .enumerate()
            .skip(1)
            .map_while(move |(i, raw)| Some((i, this.decode(raw)?)))
    }

    /// One `Elf32_Sym` (name, value, size, info, other, shndx) or `Elf64_Sym` (name, info,
    /// other, shndx, value, size).
    fn decode(&self, raw: &[u8]) -> Option<Sym> {
        let e = self.endian;
        Some(if self.entsize == 16 {
            Sym {
                name: e.u32(raw, 0)?,
                value: u64::from(e.u32(raw, 4)?),
                info: *raw.get(12)?,
                shndx: e.u16(raw, 14)?,
            }
        } else {
            Sym {
                name: e.u32(raw, 0)?,
                info: *raw.get(4)?,
                shndx: e.u16(raw, 6)?,
                value: e.u64(raw, 8)?,
            }
        })
    }

    /// The name's bytes up to its NUL; `None` if out of range or unterminated.
    fn name(&self, sym: &Sym) -> Option<&'a [u8]> {
        let rest = self.strtab.get(usize::try_from(sym.name).ok()?..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        rest.get(..end)
    }

    fn name_starts_with(&self, sym: &Sym, prefix: &[u8]) -> bool {
        usize::try_from(sym.name)
            .ok()
            .and_then(|start| self.strtab.get(start..))
            .is_some_and(|rest| rest.starts_with(prefix))
    }
}

/// The `__versions` section: its bytes (whole entries) and its file offset.
#[derive(Debug, Clone, Copy)]
struct VersionsTable<'a> {
    data: &'a [u8],
    offset: u64,
}

/// One `__versions` entry, the CRC read in the module's byte order.
#[derive(Debug, Clone, Copy)]
struct Modversion<'a> {
    crc: u64,
    /// The name field: the name, a NUL and padding to the end of the entry.
    name: &'a [u8],
    /// Where the name field starts in the file.
    name_offset: u64,
}

/// The bytes before the first NUL (all of them if there is none).
fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}
