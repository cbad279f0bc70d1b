//! What depmod needs from one module file, extracted once and kept in a compact owned form
//! (one string arena per module) so it can be cached between runs.

use std::ops::Range;

use modkit_elf::Module;

/// A string in [`ModuleData::arena`].
pub type Span = Range<u32>;

/// An exported symbol: name and CRC (kmod's `kmod_module_get_symbols`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Name in the arena.
    pub name: Span,
    /// CRC (0 without modversions).
    pub crc: u64,
}

/// A needed symbol (kmod's `kmod_module_get_dependency_symbols`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Name in the arena.
    pub name: Span,
    /// The CRC `__versions` expects.
    pub crc: u64,
    /// A weak reference: no warning when nobody exports it.
    pub weak: bool,
}

/// Everything depmod reads from one module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleData {
    /// All strings of this module, back to back.
    pub(crate) arena: String,
    /// Exported symbols, in kmod's order.
    pub(crate) exports: Vec<Export>,
    /// Needed symbols, in kmod's order.
    pub(crate) imports: Vec<Import>,
    /// `alias=` values, in `.modinfo` order.
    pub(crate) aliases: Vec<Span>,
    /// `softdep=` values, in `.modinfo` order.
    pub(crate) softdeps: Vec<Span>,
    /// `weakdep=` values, in `.modinfo` order.
    pub(crate) weakdeps: Vec<Span>,
    /// Why the symbols could not be read, if they could not (kmod reports it and goes on).
    pub(crate) symbol_error: Option<String>,
}

impl ModuleData {
    /// The `alias=` values, in `.modinfo` order.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.aliases.iter().map(|s| self.str(s))
    }

    /// The `softdep=` values, in `.modinfo` order.
    pub fn softdeps(&self) -> impl Iterator<Item = &str> {
        self.softdeps.iter().map(|s| self.str(s))
    }

    /// The `weakdep=` values, in `.modinfo` order.
    pub fn weakdeps(&self) -> impl Iterator<Item = &str> {
        self.weakdeps.iter().map(|s| self.str(s))
    }

    /// The exported symbols with their CRCs (0 without modversions), in kmod's order.
    pub fn exports(&self) -> impl Iterator<Item = (&str, u64)> {
        self.exports.iter().map(|e| (self.str(&e.name), e.crc))
    }

    /// The needed symbols, in kmod's order.
    pub fn imports(&self) -> impl Iterator<Item = &str> {
        self.imports.iter().map(|i| self.str(&i.name))
    }

    /// The string of a span.
    pub(crate) fn str(&self, span: &Span) -> &str {
        self.arena
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    fn push(&mut self, s: &str) -> Span {
        let start = self.arena.len() as u32;
        self.arena.push_str(s);
        start..self.arena.len() as u32
    }

    /// Extract from an uncompressed module. Unreadable symbol tables are recorded in
    /// `symbol_error` (the module still gets its modules.dep line, as with kmod); an unreadable
    /// file as a whole is the caller's error.
    pub fn from_module(module: &Module<'_>) -> ModuleData {
        let mut data = ModuleData::default();
        let modinfo = module.modinfo();
        let exports = module.depmod_exports();
        let imports = module.depmod_imports();
        let mut cap = modinfo.as_bytes().len();
        if let Ok(e) = &exports {
            cap += e.iter().map(|s| s.name.len()).sum::<usize>();
        }
        if let Ok(i) = &imports {
            cap += i.iter().map(|s| s.name.len()).sum::<usize>();
        }
        data.arena.reserve(cap);
        match exports {
            Ok(list) => {
                data.exports.reserve_exact(list.len());
                for sym in list {
                    let name = data.push(sym.name);
                    data.exports.push(Export { name, crc: sym.crc });
                }
            }
            Err(err) => data.symbol_error = Some(err.to_string()),
        }
        if let Ok(list) = imports {
            data.imports.reserve_exact(list.len());
            for sym in list {
                let name = data.push(sym.name);
                data.imports.push(Import {
                    name,
                    crc: sym.crc,
                    weak: sym.weak,
                });
            }
        }
        for record in modinfo.iter() {
            let slot = match record.key {
                b"alias" => 0,
                b"softdep" => 1,
                b"weakdep" => 2,
                _ => continue,
            };
            // Values that are not text cannot go into kmod's ASCII indexes either.
            let Some(value) = record.value_str() else {
                continue;
            };
            let span = data.push(value);
            match slot {
                0 => data.aliases.push(span),
                1 => data.softdeps.push(span),
                _ => data.weakdeps.push(span),
            }
        }
        data
    }

    /// The `modules.devname` entry of this module, as kmod's `output_devname` finds it: the
    /// first point in `.modinfo` order where both a `devname:` alias and a `char-major-M-N` or
    /// `block-major-M-N` alias have been seen. Returns (devname, type, major, minor).
    pub fn devname(&self) -> Option<(&str, char, u32, u32)> {
        let mut devname = None;
        let mut kind = None;
        for span in &self.aliases {
            let value = self.str(span);
            if let Some(name) = value.strip_prefix("devname:") {
                devname = Some(name);
            } else if let Some((maj, min)) = scan_major_minor(value, "char-major-") {
                kind = Some(('c', maj, min));
            } else if let Some((maj, min)) = scan_major_minor(value, "block-major-") {
                kind = Some(('b', maj, min));
            }
            if let (Some(name), Some((t, maj, min))) = (devname, kind) {
                return Some((name, t, maj, min));
            }
        }
        None
    }
}

/// `sscanf(value, "PREFIX%u-%u", &maj, &min) == 2`.
fn scan_major_minor(value: &str, prefix: &str) -> Option<(u32, u32)> {
    let rest = value.strip_prefix(prefix)?;
    let (maj, rest) = scan_u32(rest)?;
    let rest = rest.strip_prefix('-')?;
    let (min, _) = scan_u32(rest)?;
    Some((maj, min))
}

/// C's `%u`: optional white space, optional sign, decimal digits, wrapping like strtoul.
fn scan_u32(s: &str) -> Option<(u32, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let mut v: u32 = 0;
    for b in s[..digits].bytes() {
        v = v.wrapping_mul(10).wrapping_add(u32::from(b - b'0'));
    }
    Some((if neg { v.wrapping_neg() } else { v }, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_aliases(aliases: &[&str]) -> ModuleData {
        let mut d = ModuleData::default();
        for a in aliases {
            let s = d.push(a);
            d.aliases.push(s);
        }
        d
    }

    #[test]
    fn devname_needs_both_aliases() {
        assert_eq!(with_aliases(&["devname:fuse"]).devname(), None);
        assert_eq!(
            with_aliases(&["char-major-10-229", "x", "devname:fuse"]).devname(),
            Some(("fuse", 'c', 10, 229))
        );
        assert_eq!(
            with_aliases(&["devname:loop-control", "block-major-7-*", "block-major-7-0"]).devname(),
            Some(("loop-control", 'b', 7, 0))
        );
    }

    #[test]
    fn scan_like_sscanf() {
        assert_eq!(
            scan_major_minor("char-major-10-229x", "char-major-"),
            Some((10, 229))
        );
        assert_eq!(scan_major_minor("char-major-10-*", "char-major-"), None);
        assert_eq!(
            scan_major_minor("char-major- +4-1", "char-major-"),
            Some((4, 1))
        );
    }
}
