//! The `.modinfo` section: NUL-separated `key=value` records, read lazily and without copying.

use std::borrow::Cow;

/// One `key=value` record of `.modinfo`, as raw bytes (values need not be UTF-8).
///
/// A record without `=` has the whole string as key and an empty value, as in kmod's
/// `kmod_module_get_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModInfoRecord<'a> {
    /// The bytes before the first `=`.
    pub key: &'a [u8],
    /// The bytes after the first `=` (empty if there is none).
    pub value: &'a [u8],
}

impl<'a> ModInfoRecord<'a> {
    /// The key as text, if it is UTF-8 (kernel keys always are).
    pub fn key_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.key).ok()
    }

    /// The value as text, if it is UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.value).ok()
    }

    /// The key as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn key_lossy(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.key)
    }

    /// The value as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn value_lossy(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.value)
    }
}

/// The records of a `.modinfo` section, in file order.
///
/// `ModInfo` is itself an iterator over [`ModInfoRecord`]s; the typed accessors (`get`, `name`,
/// `params`, ...) always look at the whole section, however far the iterator has advanced.
///
/// Splitting follows kmod's `kmod_elf_get_strings`: leading NUL padding is skipped, runs of NULs
/// separate records, a final record without its NUL still counts, and a section with at most one
/// byte after the padding has no records.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModInfo<'a> {
    data: &'a [u8],
    pos: usize,
}

/// A parameter declared with `parm=` and/or `parmtype=` (`MODULE_PARM_DESC`, `module_param`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name (before the `:`).
    pub name: Cow<'a, str>,
    /// From the last `parm=NAME:DESCRIPTION` record for this name.
    pub description: Option<Cow<'a, str>>,
    /// From the last `parmtype=NAME:TYPE` record for this name.
    pub type_: Option<Cow<'a, str>>,
}

/// One `softdep=` record: `pre: a b post: c`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftDep<'a> {
    /// Modules to load before this one.
    pub pre: Vec<&'a str>,
    /// Modules to load after this one.
    pub post: Vec<&'a str>,
}

impl<'a> ModInfo<'a> {
    /// Read the records of a `.modinfo`-formatted byte string (a section's contents).
    pub fn from_bytes(section: &'a [u8]) -> ModInfo<'a> {
        let start = section
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(section.len());
        let rest = section.get(start..).unwrap_or_default();
        // kmod: "if (size <= 1) return 0" after skipping the padding.
        let data = if rest.len() <= 1 { &[][..] } else { rest };
        ModInfo { data, pos: 0 }
    }

    /// The section bytes the records are read from (after leading padding).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// A fresh iterator over all records, from the first.
    pub fn iter(&self) -> ModInfo<'a> {
        ModInfo {
            data: self.data,
            pos: 0,
        }
    }

    /// Whether the section has no records.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The value of the first record with this key.
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.get_all(key).next()
    }

    /// The values of every record with this key, in file order.
    pub fn get_all<'k>(&self, key: &'k str) -> impl Iterator<Item = &'a [u8]> + 'k
    where
        'a: 'k,
    {
        self.iter()
            .filter(move |r| r.key == key.as_bytes())
            .map(|r| r.value)
    }

    /// The first value of `key` as text; `None` if absent or not UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every UTF-8 value of `key` (others are skipped; read them with [`ModInfo::get_all`]).
    pub fn get_all_str<'k>(&self, key: &'k str) -> impl Iterator<Item = &'a str> + 'k
    where
        'a: 'k,
    {
        self.get_all(key)
            .filter_map(|v| std::str::from_utf8(v).ok())
    }

    /// `name=`: the module name the build gave it.
    pub fn name(&self) -> Option<&'a str> {
        self.get_str("name")
    }

    /// `depends=`, split on `,`; empty entries (an empty `depends=`) yield nothing.
    pub fn depends(&self) -> Vec<&'a str> {
        self.get_str("depends")
            .map(|d| d.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// `softdep=` records, each parsed like a modprobe.d `softdep` line (without the module
    /// name): tokens after `pre:` go to `pre`, after `post:` to `post`, earlier ones are ignored.
    pub fn softdeps(&self) -> Vec<SoftDep<'a>> {
        self.get_all_str("softdep").map(parse_softdep).collect()
    }

    /// `weakdep=` values (kernel 6.8+).
    pub fn weakdeps(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all_str("weakdep")
    }

    /// `alias=` values, in file order.
    pub fn aliases(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all_str("alias")
    }

    /// `vermagic=`.
    pub fn vermagic(&self) -> Option<&'a str> {
        self.get_str("vermagic")
    }

    /// `license=` (the first one).
    pub fn license(&self) -> Option<Cow<'a, str>> {
        self.get("license").map(String::from_utf8_lossy)
    }

    /// `description=` (the first one).
    pub fn description(&self) -> Option<Cow<'a, str>> {
        self.get("description").map(String::from_utf8_lossy)
    }

    /// `author=` (the first one; see [`ModInfo::authors`]).
    pub fn author(&self) -> Option<Cow<'a, str>> {
        self.get("author").map(String::from_utf8_lossy)
    }

    /// Every `author=`, in file order.
    pub fn authors(&self) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.get_all("author").map(String::from_utf8_lossy)
    }

    /// `firmware=` values.
    pub fn firmware(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all_str("firmware")
    }

    /// `srcversion=`.
    pub fn srcversion(&self) -> Option<&'a str> {
        self.get_str("srcversion")
    }

    /// `intree=` (`Y` for in-tree modules).
    pub fn intree(&self) -> Option<&'a str> {
        self.get_str("intree")
    }

    /// `retpoline=` (`Y` when built with retpolines).
    pub fn retpoline(&self) -> Option<&'a str> {
        self.get_str("retpoline")
    }

    /// `import_ns=` values: symbol namespaces the module imports.
    pub fn import_ns(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all_str("import_ns")
    }

    /// Parameters from `parm=NAME:DESC` and `parmtype=NAME:TYPE`, merged by name, in the order
    /// names are first seen; a later record for the same name replaces the earlier value.
    /// Records without `:` are skipped (kmod's modinfo reports them as invalid).
    ///
    /// kmod's `modinfo` prints them in the *reverse* of this order (it prepends to a list).
    pub fn params(&self) -> Vec<Param<'a>> {
        let mut params: Vec<Param<'a>> = Vec::new();
        for record in self.iter() {
            let is_desc = match record.key {
                b"parm" => true,
                b"parmtype" => false,
                _ => continue,
            };
            let Some(colon) = record.value.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, rest) = record.value.split_at(colon);
            let text = String::from_utf8_lossy(rest.get(1..).unwrap_or_default());
            let index = match params.iter().position(|p| p.name.as_bytes() == name) {
                Some(i) => i,
                None => {
                    params.push(Param {
                        name: String::from_utf8_lossy(name),
                        description: None,
                        type_: None,
                    });
                    params.len() - 1
                }
            };
            if let Some(param) = params.get_mut(index) {
                if is_desc {
                    param.description = Some(text);
                } else {
                    param.type_ = Some(text);
                }
            }
        }
        params
    }
}

fn parse_softdep(value: &str) -> SoftDep<'_> {
    enum Mode {
        None,
        Pre,
        Post,
    }
    let mut dep = SoftDep::default();
    let mut mode = Mode::None;
    for token in value.split_ascii_whitespace() {
        match token {
            "pre:" => mode = Mode::Pre,
            "post:" => mode = Mode::Post,
            _ => match mode {
                Mode::Pre => dep.pre.push(token),
                Mode::Post => dep.post.push(token),
                Mode::None => {}
            },
        }
    }
    dep
}

impl<'a> Iterator for ModInfo<'a> {
    type Item = ModInfoRecord<'a>;

    fn next(&mut self) -> Option<ModInfoRecord<'a>> {
        let rest = self.data.get(self.pos..)?;
        let skip = rest.iter().position(|&b| b != 0)?;
        let rest = rest.get(skip..)?;
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let record = rest.get(..len)?;
        self.pos += skip + len;
        Some(match record.iter().position(|&b| b == b'=') {
            Some(eq) => ModInfoRecord {
                key: record.get(..eq).unwrap_or_default(),
                value: record.get(eq + 1..).unwrap_or_default(),
            },
            None => ModInfoRecord {
                key: record,
                value: &[],
            },
        })
    }
}

impl std::iter::FusedIterator for ModInfo<'_> {}

impl<'a> IntoIterator for &ModInfo<'a> {
    type Item = ModInfoRecord<'a>;
    type IntoIter = ModInfo<'a>;

    fn into_iter(self) -> ModInfo<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(data: &[u8]) -> Vec<(String, String)> {
        ModInfo::from_bytes(data)
            .map(|r| (r.key_lossy().into_owned(), r.value_lossy().into_owned()))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn splitting_follows_kmod() {
        assert_eq!(records(b""), vec![]);
        assert_eq!(records(b"\0\0\0"), vec![]);
        // kmod: at most one byte after the padding is no record at all.
        assert_eq!(records(b"\0\0a"), vec![]);
        assert_eq!(records(b"ab"), vec![pair("ab", "")]);
        assert_eq!(
            records(b"\0a=1\0\0\0b=x=y\0novalue\0c="),
            vec![
                pair("a", "1"),
                pair("b", "x=y"),
                pair("novalue", ""),
                pair("c", "")
            ]
        );
        assert_eq!(records(b"=v\0"), vec![pair("", "v")]);
    }

    #[test]
    fn iterator_and_accessors_are_independent() {
        let mut info = ModInfo::from_bytes(b"name=a\0alias=x\0alias=y\0name=b\0");
        assert_eq!(info.next().map(|r| r.key), Some(&b"name"[..]));
        assert_eq!(info.name(), Some("a"), "accessors see the whole section");
        assert_eq!(info.aliases().collect::<Vec<_>>(), vec!["x", "y"]);
        assert_eq!(info.get_all("name").count(), 2);
        assert_eq!(info.count(), 3, "the iterator goes on where it was");
    }

    #[test]
    fn depends_and_softdeps() {
        let info = ModInfo::from_bytes(b"depends=\0softdep=x pre: a  b\tpost: c pre: d\0");
        assert_eq!(info.depends(), Vec::<&str>::new());
        assert_eq!(
            info.softdeps(),
            vec![SoftDep {
                pre: vec!["a", "b", "d"],
                post: vec!["c"]
            }]
        );
        let info = ModInfo::from_bytes(b"depends=a,,b\0");
        assert_eq!(info.depends(), vec!["a", "b"]);
    }

    #[test]
    fn params_merge_like_kmod() {
        let info = ModInfo::from_bytes(
            b"parmtype=b:int\0parm=a:first\0parm=bad\0parm=a:second\0parm=b:desc: with colon\0",
        );
        let params = info.params();
        assert_eq!(params.len(), 2);
        assert_eq!(params[0].name, "b");
        assert_eq!(params[0].description.as_deref(), Some("desc: with colon"));
        assert_eq!(params[0].type_.as_deref(), Some("int"));
        assert_eq!(params[1].name, "a");
        assert_eq!(params[1].description.as_deref(), Some("second"));
        assert_eq!(params[1].type_, None);
    }

    #[test]
    fn non_utf8_values() {
        let info = ModInfo::from_bytes(b"author=J\xf6rg\0name=\xff\0");
        assert_eq!(info.get("author"), Some(&b"J\xf6rg"[..]));
        assert_eq!(info.author().as_deref(), Some("J\u{fffd}rg"));
        assert_eq!(info.name(), None, "identifiers must be UTF-8");
    }
}
