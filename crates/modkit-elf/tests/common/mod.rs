//! Shared test helpers: a synthetic ELF module builder and textual reports of what the crate reads.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::fmt::Write as _;

use modkit_elf::{Module, decompress, detect_compression, signature};

/// Root of the project's sample-module fixtures.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../kmods/fixtures");
/// This crate's own test modules (small GPL modules from Debian's kernels).
pub const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read test file {path}: {e}"))
}

/// Everything the crate reads from a module file, as text for snapshots.
///
/// With `redact_signature`, signature bytes that change whenever the fixture is rebuilt (key
/// serial and signature) are replaced by their length.
pub fn report(file: &[u8], redact_signature: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "compression: {}", detect_compression(file));
    let bytes = match decompress(file, modkit_elf::DEFAULT_DECOMPRESS_LIMIT) {
        Ok(b) => b,
        Err(e) => return format!("{out}decompress error: {e}\n"),
    };
    let module = match Module::parse(&bytes) {
        Ok(m) => m,
        Err(e) => return format!("{out}parse error: {e}\n"),
    };
    let _ = writeln!(
        out,
        "elf: {} {} machine {} type {}",
        module.class(),
        module.endian(),
        module.machine(),
        module.elf_type()
    );
    out.push_str("modinfo:\n");
    for r in module.modinfo() {
        let _ = writeln!(out, "  {}={:?}", r.key_lossy(), r.value_lossy());
    }
    let info = module.modinfo();
    let _ = writeln!(out, "name: {:?}", info.name());
    let _ = writeln!(out, "depends: {:?}", info.depends());
    let _ = writeln!(out, "softdeps: {:?}", info.softdeps());
    let _ = writeln!(out, "aliases: {:?}", info.aliases().collect::<Vec<_>>());
    let _ = writeln!(out, "import_ns: {:?}", info.import_ns().collect::<Vec<_>>());
    let _ = writeln!(out, "firmware: {:?}", info.firmware().collect::<Vec<_>>());
    let _ = writeln!(
        out,
        "license: {:?} author: {:?} description: {:?}",
        info.license(),
        info.author(),
        info.description()
    );
    let _ = writeln!(
        out,
        "vermagic: {:?} srcversion: {:?} intree: {:?} retpoline: {:?}",
        info.vermagic(),
        info.srcversion(),
        info.intree(),
        info.retpoline()
    );
    out.push_str("params:\n");
    for p in info.params() {
        let _ = writeln!(
            out,
            "  {} desc={:?} type={:?}",
            p.name, p.description, p.type_
        );
    }
    section(
        &mut out,
        "exports",
        module.exports().map(|v| {
            v.iter()
                .map(|e| format!("{} gpl={} crc={}", e.name, e.gpl_only, hex(e.crc)))
                .collect()
        }),
    );
    section(
        &mut out,
        "depmod_exports",
        module.depmod_exports().map(|v| {
            v.iter()
                .map(|e| format!("{} crc={:#010x}", e.name, e.crc))
                .collect()
        }),
    );
    section(
        &mut out,
        "imports",
        module
            .imports()
            .map(|v| v.iter().map(|s| s.to_string()).collect()),
    );
    section(
        &mut out,
        "depmod_imports",
        module.depmod_imports().map(|v| {
            v.iter()
                .map(|d| format!("{} crc={:#010x} weak={}", d.name, d.crc, d.weak))
                .collect()
        }),
    );
    section(
        &mut out,
        "versions",
        module.versions().map(|v| {
            v.iter()
                .map(|s| format!("{:#010x} {}", s.crc, s.name))
                .collect()
        }),
    );
    match signature(&bytes) {
        Ok(None) => out.push_str("signature: none\n"),
        Err(e) => {
            let _ = writeln!(out, "signature error: {e}");
        }
        Ok(Some(sig)) => {
            let _ = writeln!(out, "signature:");
            let _ = writeln!(
                out,
                "  algo={} ({}) hash_algo={} id_type={} ({})",
                sig.algo,
                sig.algo_name(),
                sig.hash_algo,
                sig.id_type,
                sig.id_type_name()
            );
            let _ = writeln!(out, "  signer: {:?}", sig.signer());
            let _ = writeln!(out, "  sig_hashalgo: {}", sig.hash_algo_name());
            let _ = writeln!(out, "  digest_algorithm: {:?}", sig.digest_algorithm);
            if redact_signature {
                // A fresh key gets a random serial: its length (and so the PKCS#7 length) varies.
                let _ = writeln!(out, "  module_len: {}", sig.module_len);
                let _ = writeln!(out, "  sig_key: [serial, redacted]");
                let _ = writeln!(out, "  signature: [{} bytes]", sig.signature.len());
            } else {
                let _ = writeln!(
                    out,
                    "  module_len: {} raw_len: {}",
                    sig.module_len, sig.raw_len
                );
                let _ = writeln!(out, "  sig_key: {}", sig.sig_key_hex());
                let _ = writeln!(out, "  signature: {}", sig.signature_hex());
            }
        }
    }
    out
}

fn hex(crc: Option<u64>) -> String {
    crc.map_or_else(|| "none".to_string(), |c| format!("{c:#010x}"))
}

fn section(out: &mut String, title: &str, items: Result<Vec<String>, modkit_elf::Error>) {
    match items {
        Ok(items) => {
            let _ = writeln!(out, "{title}: {}", items.len());
            for item in items {
                let _ = writeln!(out, "  {item}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "{title} error: {e}");
        }
    }
}

/// What kmod 30's `modinfo FILE` prints, minus the `filename:` line (kmod's format:
/// `tools/modinfo.c`, `libkmod-module.c`).
pub fn kmod_modinfo(file: &[u8]) -> String {
    let bytes = decompress(file, modkit_elf::DEFAULT_DECOMPRESS_LIMIT).expect("decompress");
    let module = Module::parse(&bytes).expect("parse");
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let pad = 15usize.saturating_sub(key.len());
        let _ = writeln!(out, "{key}:{:pad$}{value}", "");
    };
    for r in module.modinfo() {
        if r.key == b"parm" || r.key == b"parmtype" {
            continue;
        }
        line(&r.key_lossy(), &r.value_lossy());
    }
    if let Ok(Some(sig)) = signature(&bytes) {
        line("sig_id", sig.id_type_name());
        line("signer", &sig.signer());
        line("sig_key", &sig.sig_key_hex());
        line("sig_hashalgo", &sig.hash_algo_name());
        line("signature", &sig.signature_hex());
    }
    for p in module.modinfo().params().iter().rev() {
        let text = match (&p.description, &p.type_) {
            (None, Some(t)) => format!("{}:{t}", p.name),
            (Some(d), Some(t)) => format!("{}:{d} ({t})", p.name),
            (Some(d), None) => format!("{}:{d}", p.name),
            (None, None) => continue,
        };
        line("parm", &text);
    }
    out
}

// ---- synthetic ELF modules --------------------------------------------------------------

/// Section types used by the builder (ELF gABI).
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_NOBITS: u32 = 8;

pub struct Section {
    pub name: String,
    pub sh_type: u32,
    pub data: Vec<u8>,
    pub link: u32,
    /// Written instead of the real offset (to point outside the file, overlap, ...).
    pub offset_override: Option<u64>,
    pub size_override: Option<u64>,
}

pub struct Sym {
    pub name: String,
    pub shndx: u16,
    pub value: u64,
    /// `st_info`: bind << 4 | type.
    pub info: u8,
}

/// Builds an ELF relocatable of either class and byte order.
pub struct ElfBuilder {
    pub class64: bool,
    pub big: bool,
    pub machine: u16,
    pub sections: Vec<Section>,
    pub symbols: Vec<Sym>,
}

pub const STB_LOCAL: u8 = 0;
pub const STB_GLOBAL: u8 = 1;
pub const STB_WEAK: u8 = 2;
pub const STT_NOTYPE: u8 = 0;
pub const STT_SECTION: u8 = 3;

impl ElfBuilder {
    pub fn new(class64: bool, big: bool) -> ElfBuilder {
        ElfBuilder {
            class64,
            big,
            machine: if class64 { 22 } else { 8 }, // s390 / MIPS: big-endian kernels exist for both
            sections: Vec::new(),
            symbols: Vec::new(),
        }
    }

    /// Add a section; returns its index (the null section is 0).
    pub fn section(&mut self, name: &str, sh_type: u32, data: Vec<u8>) -> u16 {
        self.sections.push(Section {
            name: name.to_string(),
            sh_type,
            data,
            link: 0,
            offset_override: None,
            size_override: None,
        });
        self.sections.len() as u16
    }

    pub fn symbol(&mut self, name: &str, shndx: u16, value: u64, bind: u8, kind: u8) {
        self.symbols.push(Sym {
            name: name.to_string(),
            shndx,
            value,
            info: (bind << 4) | kind,
        });
    }

    pub fn u16(&self, v: u16) -> Vec<u8> {
        if self.big {
            v.to_be_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        }
    }

    pub fn u32(&self, v: u32) -> Vec<u8> {
        if self.big {
            v.to_be_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        }
    }

    pub fn u64(&self, v: u64) -> Vec<u8> {
        if self.big {
            v.to_be_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        }
    }

    /// A word of the class's size (Elf32_Addr/Off or Elf64_Addr/Off).
    pub fn word(&self, v: u64) -> Vec<u8> {
        if self.class64 {
            self.u64(v)
        } else {
            self.u32(v as u32)
        }
    }

    /// Serialize: header, section data, then .symtab/.strtab/.shstrtab, then section headers.
    pub fn build(&self) -> Vec<u8> {
        let mut sections: Vec<Section> = self
            .sections
            .iter()
            .map(|s| Section {
                name: s.name.clone(),
                sh_type: s.sh_type,
                data: s.data.clone(),
                link: s.link,
                offset_override: s.offset_override,
                size_override: s.size_override,
            })
            .collect();
        if !self.symbols.is_empty() {
            let mut strtab = vec![0u8];
            let entsize = if self.class64 { 24 } else { 16 };
            let mut symtab = vec![0u8; entsize];
            for sym in &self.symbols {
                let name_off = if sym.name.is_empty() {
                    0
                } else {
                    let off = strtab.len() as u32;
                    strtab.extend_from_slice(sym.name.as_bytes());
                    strtab.push(0);
                    off
                };
                if self.class64 {
                    symtab.extend(self.u32(name_off));
                    symtab.push(sym.info);
                    symtab.push(0);
                    symtab.extend(self.u16(sym.shndx));
                    symtab.extend(self.u64(sym.value));
                    symtab.extend(self.u64(0));
                } else {
                    symtab.extend(self.u32(name_off));
                    symtab.extend(self.u32(sym.value as u32));
                    symtab.extend(self.u32(0));
                    symtab.push(sym.info);
                    symtab.push(0);
                    symtab.extend(self.u16(sym.shndx));
                }
            }
            let strtab_index = sections.len() as u32 + 2;
            sections.push(Section {
                name: ".symtab".into(),
                sh_type: SHT_SYMTAB,
                data: symtab,
                link: strtab_index,
                offset_override: None,
                size_override: None,
            });
            sections.push(Section {
                name: ".strtab".into(),
                sh_type: SHT_STRTAB,
                data: strtab,
                link: 0,
                offset_override: None,
                size_override: None,
            });
        }
        let mut shstrtab = vec![0u8];
        let mut name_offsets = Vec::new();
        for s in sections
            .iter()
            .map(|s| s.name.as_str())
            .chain([".shstrtab"])
        {
            name_offsets.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(s.as_bytes());
            shstrtab.push(0);
        }
        sections.push(Section {
            name: ".shstrtab".into(),
            sh_type: SHT_STRTAB,
            data: shstrtab,
            link: 0,
            offset_override: None,
            size_override: None,
        });

        let ehsize = if self.class64 { 64 } else { 52 };
        let shentsize: u16 = if self.class64 { 64 } else { 40 };
        let mut out = vec![0u8; ehsize];
        let mut offsets = Vec::new();
        for s in &sections {
            while out.len() % 8 != 0 {
                out.push(0);
            }
            offsets.push(out.len() as u64);
            if s.sh_type != SHT_NOBITS {
                out.extend_from_slice(&s.data);
            }
        }
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let shoff = out.len() as u64;
        // Null section header.
        out.extend(vec![0u8; shentsize as usize]);
        for (i, s) in sections.iter().enumerate() {
            let offset = s.offset_override.unwrap_or(offsets[i]);
            let size = s.size_override.unwrap_or(s.data.len() as u64);
            let entsize = if s.sh_type == SHT_SYMTAB {
                if self.class64 { 24 } else { 16 }
            } else {
                0
            };
            out.extend(self.u32(name_offsets[i]));
            out.extend(self.u32(s.sh_type));
            out.extend(self.word(0)); // flags
            out.extend(self.word(0)); // addr
            out.extend(self.word(offset));
            out.extend(self.word(size));
            out.extend(self.u32(s.link));
            out.extend(self.u32(0)); // info
            out.extend(self.word(1)); // addralign
            out.extend(self.word(entsize));
        }
        let shnum = sections.len() as u16 + 1;
        let mut header = vec![0x7f, b'E', b'L', b'F'];
        header.push(if self.class64 { 2 } else { 1 });
        header.push(if self.big { 2 } else { 1 });
        header.push(1); // EI_VERSION
        header.extend([0u8; 9]);
        header.extend(self.u16(1)); // ET_REL
        header.extend(self.u16(self.machine));
        header.extend(self.u32(1));
        header.extend(self.word(0)); // entry
        header.extend(self.word(0)); // phoff
        header.extend(self.word(shoff));
        header.extend(self.u32(0)); // flags
        header.extend(self.u16(ehsize as u16));
        header.extend(self.u16(0)); // phentsize
        header.extend(self.u16(0)); // phnum
        header.extend(self.u16(shentsize));
        header.extend(self.u16(shnum));
        header.extend(self.u16(shnum - 1)); // .shstrtab is last
        out[..ehsize].copy_from_slice(&header);
        out
    }
}

/// A complete synthetic module: modinfo, exports (plain and GPL, with CRCs), imports (one
/// weak, one with an empty name that must be skipped), and __versions.
pub fn synthetic_module(class64: bool, big: bool) -> ElfBuilder {
    let mut b = ElfBuilder::new(class64, big);
    let modinfo = b"\0\0license=GPL\0name=synth\0depends=dep_a,dep_b\0alias=synth:*\0\
        parm=level:how loud\0parmtype=level:int\0parmtype=mode:charp\0\
        softdep=pre: first second post: third\0noequals\0vermagic=6.1.0 SMP mod_unload\0\0"
        .to_vec();
    let modinfo_idx = b.section(".modinfo", SHT_PROGBITS, modinfo);
    let mut versions = Vec::new();
    for (crc, name) in [(0x1122_3344u64, "module_layout"), (0x5566_7788, "printk")] {
        versions.extend(b.word(crc));
        let mut field = name.as_bytes().to_vec();
        field.resize(if class64 { 56 } else { 60 }, 0);
        versions.extend(field);
    }
    b.section("__versions", SHT_PROGBITS, versions);
    let ksymtab = b.section("__ksymtab", SHT_PROGBITS, vec![0; 12]);
    let ksymtab_gpl = b.section("__ksymtab_gpl", SHT_PROGBITS, vec![0; 12]);
    let mut crcs = b.u32(0xCAFE_BABE);
    crcs.extend(b.u32(0xDEAD_BEEF));
    let kcrctab = b.section("__kcrctab", SHT_PROGBITS, crcs);
    b.section(
        "__ksymtab_strings",
        SHT_PROGBITS,
        b"synth_fn\0synth_gpl_fn\0".to_vec(),
    );
    b.section(".bss", SHT_NOBITS, vec![0; 64]);
    b.symbol("", modinfo_idx, 0, STB_LOCAL, STT_SECTION);
    b.symbol("__ksymtab_synth_fn", ksymtab, 0, STB_LOCAL, STT_NOTYPE);
    b.symbol(
        "__ksymtab_synth_gpl_fn",
        ksymtab_gpl,
        0,
        STB_LOCAL,
        STT_NOTYPE,
    );
    b.symbol("__crc_synth_fn", kcrctab, 0, STB_LOCAL, STT_NOTYPE);
    b.symbol("__crc_synth_gpl_fn", kcrctab, 4, STB_LOCAL, STT_NOTYPE);
    b.symbol("printk", 0, 0, STB_GLOBAL, STT_NOTYPE);
    b.symbol("maybe_there", 0, 0, STB_WEAK, STT_NOTYPE);
    b.symbol("", 0, 0, STB_GLOBAL, STT_NOTYPE);
    b.symbol("synth_fn", modinfo_idx, 0, STB_GLOBAL, 2);
    b
}
