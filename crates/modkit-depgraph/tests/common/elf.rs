//! A writer of small synthetic module files (ELF relocatable objects of any class and byte
//! order with `.modinfo`, `__ksymtab_strings`, `__versions` and a symbol table), for trees
//! whose dependencies a test wants to control exactly.

#![allow(dead_code)] // reason: each test binary uses a different subset

/// What the synthetic module contains.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// 64-bit (else 32-bit).
    pub class64: bool,
    /// Big-endian (else little-endian).
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `.modinfo` records (`key=value`).
    pub modinfo: Vec<&'a str>,
    /// Exported symbol names (through `__ksymtab_strings`).
    pub exports: Vec<&'a str>,
    /// Needed symbols: (name, weak).
    pub imports: Vec<(&'a str, bool)>,
}

impl<'a> Spec<'a> {
    /// An x86-64 module.
    pub fn x86_64() -> Spec<'a> {
        Spec {
            class64: true,
            big_endian: false,
            machine: 62,
            modinfo: Vec::new(),
            exports: Vec::new(),
            imports: Vec::new(),
        }
    }

    /// The same contents for another architecture.
    pub fn arch(mut self, class64: bool, big_endian: bool, machine: u16) -> Spec<'a> {
        self.class64 = class64;
        self.big_endian = big_endian;
        self.machine = machine;
        self
    }

    pub fn exports(mut self, names: &[&'a str]) -> Spec<'a> {
        self.exports.extend_from_slice(names);
        self
    }

    pub fn imports(mut self, names: &[&'a str]) -> Spec<'a> {
        self.imports.extend(names.iter().map(|n| (*n, false)));
        self
    }

    pub fn weak_imports(mut self, names: &[&'a str]) -> Spec<'a> {
        self.imports.extend(names.iter().map(|n| (*n, true)));
        self
    }

    pub fn modinfo(mut self, records: &[&'a str]) -> Spec<'a> {
        self.modinfo.extend_from_slice(records);
        self
    }
}

struct Out {
    bytes: Vec<u8>,
    big: bool,
}

impl Out {
    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }
    fn u64(&mut self, v: u64) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }
    /// An address-sized word.
    fn word(&mut self, class64: bool, v: u64) {
        if class64 {
            self.u64(v)
        } else {
            self.u32(v as u32)
        }
    }
    fn align(&mut self, n: usize) {
        while !self.bytes.len().is_multiple_of(n) {
            self.bytes.push(0);
        }
    }
}

/// Build the module file.
pub fn build(spec: &Spec<'_>) -> Vec<u8> {
    let c64 = spec.class64;
    let mut modinfo = Vec::new();
    for r in &spec.modinfo {
        modinfo.extend_from_slice(r.as_bytes());
        modinfo.push(0);
    }
    let mut ksymtab_strings = Vec::new();
    for e in &spec.exports {
        ksymtab_strings.extend_from_slice(e.as_bytes());
        ksymtab_strings.push(0);
    }
    let mut strtab = vec![0u8];
    let mut names = Vec::new();
    for (name, _) in &spec.imports {
        names.push(strtab.len() as u32);
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
    }
    // Symbol table: the null symbol, then one undefined global (or weak) per import.
    let mut symtab = Out {
        bytes: Vec::new(),
        big: spec.big_endian,
    };
    let sym_count = spec.imports.len() + 1;
    for i in 0..sym_count {
        let (name, info) = if i == 0 {
            (0, 0u8)
        } else {
            let bind = if spec.imports[i - 1].1 { 2 } else { 1 };
            (names[i - 1], bind << 4)
        };
        if c64 {
            symtab.u32(name);
            symtab.bytes.push(info);
            symtab.bytes.push(0);
            symtab.u16(0);
            symtab.u64(0);
            symtab.u64(0);
        } else {
            symtab.u32(name);
            symtab.u32(0);
            symtab.u32(0);
            symtab.bytes.push(info);
            symtab.bytes.push(0);
            symtab.u16(0);
        }
    }
    let section_names = [
        "",
        ".modinfo",
        "__ksymtab_strings",
        ".symtab",
        ".strtab",
        ".shstrtab",
    ];
    let mut shstrtab = Vec::new();
    let mut name_offsets = Vec::new();
    for n in section_names {
        name_offsets.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(n.as_bytes());
        shstrtab.push(0);
    }
    let ehsize = if c64 { 64 } else { 52 };
    let shentsize = if c64 { 64 } else { 40 };
    let mut out = Out {
        bytes: vec![0; ehsize],
        big: spec.big_endian,
    };
    // (type, data offset, size, link, info, entsize)
    let mut sections: Vec<(u32, usize, usize, u32, u32, u64)> = vec![(0, 0, 0, 0, 0, 0)];
    for (kind, data, link, info, entsize) in [
        (1u32, &modinfo, 0u32, 0u32, 0u64),
        (1, &ksymtab_strings, 0, 0, 0),
        (2, &symtab.bytes, 4, 1, if c64 { 24 } else { 16 }),
        (3, &strtab, 0, 0, 0),
        (3, &shstrtab, 0, 0, 0),
    ] {
        out.align(8);
        sections.push((kind, out.bytes.len(), data.len(), link, info, entsize));
        out.bytes.extend_from_slice(data);
    }
    out.align(8);
    let shoff = out.bytes.len();
    for (i, &(kind, off, size, link, info, entsize)) in sections.iter().enumerate() {
        out.u32(name_offsets[i]);
        out.u32(kind);
        out.word(c64, 0); // flags
        out.word(c64, 0); // addr
        out.word(c64, off as u64);
        out.word(c64, size as u64);
        out.u32(link);
        out.u32(info);
        out.word(c64, if kind == 2 { 8 } else { 1 });
        out.word(c64, entsize);
    }
    // The ELF header, now that the offsets are known.
    let mut h = Out {
        bytes: Vec::new(),
        big: spec.big_endian,
    };
    h.bytes.extend_from_slice(&[0x7f, b'E', b'L', b'F']);
    h.bytes.push(if c64 { 2 } else { 1 });
    h.bytes.push(if spec.big_endian { 2 } else { 1 });
    h.bytes.push(1);
    h.bytes.extend_from_slice(&[0; 9]);
    h.u16(1); // ET_REL
    h.u16(spec.machine);
    h.u32(1);
    h.word(c64, 0); // entry
    h.word(c64, 0); // phoff
    h.word(c64, shoff as u64);
    h.u32(0); // flags
    h.u16(ehsize as u16);
    h.u16(0);
    h.u16(0);
    h.u16(shentsize as u16);
    h.u16(sections.len() as u16);
    h.u16(5); // .shstrtab
    out.bytes[..ehsize].copy_from_slice(&h.bytes);
    out.bytes
}
