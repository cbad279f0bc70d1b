//! The incremental cache: what was read from each module file, keyed by the file's identity
//! (device, inode, size, modification and change times in nanoseconds), so that a re-run only
//! parses the files that changed.
//!
//! Format (all integers little-endian): `MODKITDC`, u32 format version, u64 entry count, the
//! entries, then a u64 FNV-1a checksum of everything before it. A file that fails any check is
//! reported as corrupt and ignored; the next run rewrites it.
//!
//! The file lives in the host's cache directory ([`CacheLocation::host`]) or where the caller
//! puts it ([`CacheLocation::File`]), never in the tree depmod indexes: `depmod -b ROOT` writes
//! nothing in ROOT but the index files.

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

use crate::data::{Export, Import, ModuleData, Span};
use crate::error::Error;
use crate::io::FileKey;

const MAGIC: &[u8; 8] = b"MODKITDC";
/// Bump when [`ModuleData`], its extraction, [`FileKey`] or [`State`] changes meaning (2:
/// `ctime_ns`, `module_dir`).
const FORMAT_VERSION: u32 = 2;

/// Per-module results from an earlier run.
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<String, (FileKey, ModuleData)>,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Number of modules in the cache.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The data for `path` if the file is still the one it was read from.
    pub fn get(&self, path: &str, key: &FileKey) -> Option<ModuleData> {
        match self.entries.get(path) {
            Some((k, data)) if k == key => Some(data.clone()),
            _ => None,
        }
    }

    /// Remember the data read from `path`.
    #[cfg(test)]
    pub fn insert(&mut self, path: String, key: FileKey, data: ModuleData) {
        self.entries.insert(path, (key, data));
    }

    /// Read a cache file (its entries; see [`read_state`] for the run state in front of them).
    /// A missing file (or directory) is an empty cache; anything unreadable is an error naming
    /// the file (callers note it and go on without it).
    pub fn load(path: &Path) -> Result<Cache, Error> {
        use std::io::ErrorKind::{NotADirectory, NotFound};
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if matches!(e.kind(), NotFound | NotADirectory) => return Ok(Cache::new()),
            Err(error) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    what: "could not read cache",
                    error,
                });
            }
        };
        split_file(&bytes)
            .and_then(|(_, entries)| Cache::from_bytes(entries))
            .map_err(|reason| Error::CorruptCache {
                path: path.to_path_buf(),
                reason,
            })
    }

    /// Parse the bytes of a cache file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Cache, &'static str> {
        if bytes.len() < 8 + 4 + 8 + 8 {
            return Err("too short");
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if fnv1a(body).to_le_bytes() != sum {
            return Err("checksum mismatch");
        }
        let mut r = Reader {
            bytes: body,
            pos: 0,
        };
        if r.take(8)? != MAGIC {
            return Err("bad magic");
        }
        if r.u32()? != FORMAT_VERSION {
            return Err("other format version");
        }
        let count = r.u64()? as usize;
        if count > body.len() {
            return Err("entry count out of range");
        }
        let mut entries = HashMap::with_capacity(count);
        for _ in 0..count {
            let path = r.string()?;
            let key = get_key(&mut r)?;
            let arena = r.string()?;
            let limit = arena.len() as u32;
            let span = |r: &mut Reader<'_>| -> Result<Span, &'static str> {
                let (s, e) = (r.u32()?, r.u32()?);
                if s > e || e > limit {
                    return Err("string span out of range");
                }
                Ok(s..e)
            };
            let n = r.len()?;
            let mut exports = Vec::with_capacity(n);
            for _ in 0..n {
                exports.push(Export {
                    name: span(&mut r)?,
                    crc: r.u64()?,
                });
            }
            let n = r.len()?;
            let mut imports = Vec::with_capacity(n);
            for _ in 0..n {
                imports.push(Import {
                    name: span(&mut r)?,
                    crc: r.u64()?,
                    weak: r.take(1)?[0] != 0,
                });
            }
            let mut lists: [Vec<Span>; 3] = Default::default();
            for list in &mut lists {
                let n = r.len()?;
                list.reserve_exact(n);
                for _ in 0..n {
                    list.push(span(&mut r)?);
                }
            }
            let symbol_error = match r.take(1)?[0] {
                0 => None,
                _ => Some(r.string()?),
            };
            let [aliases, softdeps, weakdeps] = lists;
            let data = ModuleData {
                arena,
                exports,
                imports,
                aliases,
                softdeps,
                weakdeps,
                symbol_error,
            };
            // Spans must fall on character boundaries for `str()` to give them back.
            let ok = |s: &Span| {
                data.arena.is_char_boundary(s.start as usize)
                    && data.arena.is_char_boundary(s.end as usize)
            };
            if !data.exports.iter().all(|e| ok(&e.name))
                || !data.imports.iter().all(|i| ok(&i.name))
                || !data
                    .aliases
                    .iter()
                    .chain(&data.softdeps)
                    .chain(&data.weakdeps)
                    .all(ok)
            {
                return Err("string span not on a character boundary");
            }
            entries.insert(path, (key, data));
        }
        if r.pos != body.len() {
            return Err("trailing bytes");
        }
        Ok(Cache { entries })
    }

    /// Serialise the cache.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn to_bytes(&self) -> Vec<u8> {
        serialize(self.entries.iter().map(|(p, (k, d))| (p.as_str(), k, d)))
    }
}

/// Serialise cache entries (path, identity, data) without building a [`Cache`].
pub fn serialize<'a>(
    entries: impl Iterator<Item = (&'a str, &'a FileKey, &'a ModuleData)>,
) -> Vec<u8> {
    let mut entries: Vec<_> = entries.collect();
    // Sorted, so that the same content gives the same file.
    entries.sort_unstable_by_key(|e| e.0);
    let mut out = Vec::with_capacity(1 << 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    let put_span = |out: &mut Vec<u8>, s: &Span| {
        out.extend_from_slice(&s.start.to_le_bytes());
        out.extend_from_slice(&s.end.to_le_bytes());
    };
    for (path, key, data) in entries {
        put_str(&mut out, path);
        put_key(&mut out, key);
        put_str(&mut out, &data.arena);
        out.extend_from_slice(&(data.exports.len() as u64).to_le_bytes());
        for e in &data.exports {
            put_span(&mut out, &e.name);
            out.extend_from_slice(&e.crc.to_le_bytes());
        }
        out.extend_from_slice(&(data.imports.len() as u64).to_le_bytes());
        for i in &data.imports {
            put_span(&mut out, &i.name);
            out.extend_from_slice(&i.crc.to_le_bytes());
            out.push(u8::from(i.weak));
        }
        for list in [&data.aliases, &data.softdeps, &data.weakdeps] {
            out.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for s in list {
                put_span(&mut out, s);
            }
        }
        match &data.symbol_error {
            None => out.push(0),
            Some(e) => {
                out.push(1);
                put_str(&mut out, e);
            }
        }
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// What the last run saw and wrote: if a new run sees the same inputs and finds the outputs it
/// wrote untouched, there is nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Hash of every input ([`Fingerprint`]): module files' identities, modules.order,
    /// modules.builtin*, the options and configuration, the kernel symbols.
    pub fingerprint: u64,
    /// The module directory that was indexed (once it is gone, [`prune`] removes the file).
    pub module_dir: String,
    /// The directory the outputs went to.
    pub out_dir: String,
    /// Each output file and its identity right after it was written.
    pub outputs: Vec<(String, FileKey)>,
    /// The messages the run printed (level 0 error, 1 warning, 2 info), replayed when nothing
    /// changed so a re-run says what a full run would.
    pub messages: Vec<(u8, String)>,
}

const FILE_MAGIC: &[u8; 8] = b"MODKITDS";

impl State {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.outputs.len() * 64);
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        for dir in [&self.module_dir, &self.out_dir] {
            out.extend_from_slice(&(dir.len() as u64).to_le_bytes());
            out.extend_from_slice(dir.as_bytes());
        }
        out.extend_from_slice(&(self.outputs.len() as u64).to_le_bytes());
        for (name, key) in &self.outputs {
            out.extend_from_slice(&(name.len() as u64).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            put_key(&mut out, key);
        }
        out.extend_from_slice(&(self.messages.len() as u64).to_le_bytes());
        for (level, text) in &self.messages {
            out.push(*level);
            out.extend_from_slice(&(text.len() as u64).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<State, &'static str> {
        let mut r = Reader { bytes, pos: 0 };
        let fingerprint = r.u64()?;
        let module_dir = r.string()?;
        let out_dir = r.string()?;
        let n = r.len()?;
        let mut outputs = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string()?;
            outputs.push((name, get_key(&mut r)?));
        }
        let n = r.len()?;
        let mut messages = Vec::with_capacity(n);
        for _ in 0..n {
            let level = r.take(1)?[0];
            messages.push((level, r.string()?));
        }
        if r.pos != bytes.len() {
            return Err("trailing bytes");
        }
        Ok(State {
            fingerprint,
            module_dir,
            out_dir,
            outputs,
            messages,
        })
    }
}

fn put_key(out: &mut Vec<u8>, key: &FileKey) {
    out.extend_from_slice(&key.dev.to_le_bytes());
    out.extend_from_slice(&key.ino.to_le_bytes());
    out.extend_from_slice(&key.size.to_le_bytes());
    out.extend_from_slice(&key.mtime_ns.to_le_bytes());
    out.extend_from_slice(&key.ctime_ns.to_le_bytes());
}

fn get_key(r: &mut Reader<'_>) -> Result<FileKey, &'static str> {
    Ok(FileKey {
        dev: r.u64()?,
        ino: r.u64()?,
        size: r.u64()?,
        mtime_ns: r.i128()?,
        ctime_ns: r.i128()?,
    })
}

/// Split a cache file into its state and its entries: `MODKITDS`, u64 state length, the state,
/// u64 checksum of the state, then the entries section.
fn split_file(bytes: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(8)? != FILE_MAGIC {
        return Err("bad magic");
    }
    if r.u32()? != FORMAT_VERSION {
        return Err("other format version");
    }
    let n = r.len()?;
    let state = r.take(n)?;
    if r.u64()? != fnv1a(state) {
        return Err("state checksum mismatch");
    }
    Ok((state, &bytes[r.pos..]))
}

/// Read just the state of a cache file (`None` if missing or unusable: then the run does the
/// work and rewrites it).
pub fn read_state(path: &Path) -> Option<State> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 20];
    file.read_exact(&mut head).ok()?;
    let n = usize::try_from(u64::from_le_bytes(head[12..20].try_into().ok()?)).ok()?;
    if n > 64 << 20 {
        return None;
    }
    let mut rest = vec![0u8; n + 8];
    file.read_exact(&mut rest).ok()?;
    let mut all = head.to_vec();
    all.extend_from_slice(&rest);
    let (state, _) = split_file(&all).ok()?;
    State::from_bytes(state).ok()
}

/// The bytes of a whole cache file: the state, then the entries (from [`serialize`]).
pub fn file_bytes(state: &State, entries: &[u8]) -> Vec<u8> {
    let s = state.to_bytes();
    let mut out = Vec::with_capacity(s.len() + entries.len() + 32);
    out.extend_from_slice(FILE_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(&s);
    out.extend_from_slice(&fnv1a(&s).to_le_bytes());
    out.extend_from_slice(entries);
    out
}

/// Where the incremental cache of a module directory lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheLocation {
    /// A file of the host's cache directory, one per module directory
    /// ([`CacheLocation::host`]). Saving it also removes the files there whose module directory
    /// no longer exists: an initramfs or package build indexes a fresh temporary tree each
    /// time, and its cache would otherwise stay forever.
    Host(PathBuf),
    /// A file the caller chose; nothing next to it is touched.
    File(PathBuf),
}

impl CacheLocation {
    /// The host's cache file for `module_dir` of kernel `kversion`, from this process's
    /// environment: `$MODKIT_CACHE` (the same base the dev tooling keeps kernel downloads in),
    /// else `$XDG_CACHE_HOME/modkit`, else `$HOME/.cache/modkit`, else `/var/cache/modkit`
    /// (root with no home: early boot, a bare chroot); empty or relative values are skipped, as
    /// the XDG base directory spec asks. Keyed by the canonical path of `module_dir` (as given
    /// if it cannot be resolved; such a run fails anyway); see [`CacheLocation::host_in`].
    pub fn host(module_dir: &Path, kversion: &str) -> CacheLocation {
        let canonical =
            std::fs::canonicalize(module_dir).unwrap_or_else(|_| module_dir.to_path_buf());
        CacheLocation::host_in(
            &cache_base(|name| std::env::var_os(name)),
            &canonical,
            kversion,
        )
    }

    /// The cache file of module directory `module_dir` under the cache directory `base`:
    /// `BASE/depmod/HASH-VERSION.cache`, HASH being 16 hex digits of a fixed FNV-1a over the
    /// bytes of the path (pass the canonical one). The hash is the same on every run and
    /// platform, so each module directory (each `-b ROOT`) keeps its own file; the version is
    /// there for people looking, with `/` made `_` so it stays one file name.
    pub fn host_in(base: &Path, module_dir: &Path, kversion: &str) -> CacheLocation {
        let hash = fnv1a(module_dir.as_os_str().as_encoded_bytes());
        let mut version: String = kversion.replace('/', "_");
        // Well within NAME_MAX with the hash and suffix, whatever version string was given.
        if let Some((i, _)) = version.char_indices().nth(128) {
            version.truncate(i);
        }
        CacheLocation::Host(
            base.join("depmod")
                .join(format!("{hash:016x}-{version}.cache")),
        )
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        match self {
            CacheLocation::Host(path) | CacheLocation::File(path) => path,
        }
    }
}

/// The directory modkit keeps its caches in, from the environment (`var` reads a variable);
/// see [`CacheLocation::host`].
fn cache_base(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(dir) = absolute("MODKIT_CACHE") {
        dir
    } else if let Some(dir) = absolute("XDG_CACHE_HOME") {
        dir.join("modkit")
    } else if let Some(dir) = absolute("HOME") {
        dir.join(".cache/modkit")
    } else {
        PathBuf::from("/var/cache/modkit")
    }
}

/// Whether `name` is a file name [`CacheLocation::host_in`] gives.
fn is_host_cache_name(name: &str) -> bool {
    name.len() > 17
        && name.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit)
        && name.as_bytes()[16] == b'-'
        && name.ends_with(".cache")
}

/// Remove the cache files in `dir` (a directory of [`CacheLocation::host_in`] files) whose
/// module directory no longer exists, all but `keep`, and the temporaries of runs killed while
/// saving one. Only files named as `host_in` names them are looked at, and a cache file only
/// with a readable state. Returns how many cache files were removed.
pub(crate) fn prune(dir: &Path, keep: &Path) -> usize {
    crate::io::remove_stale_temporaries(dir, is_host_cache_name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_host_cache_name) || path == keep {
            continue;
        }
        let gone = read_state(&path).is_some_and(|state| {
            matches!(
                std::fs::symlink_metadata(&state.module_dir),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            )
        });
        if gone && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The hash of a run's inputs, fed value by value through `Hash` (which delimits strings and
/// counts sequences, so no two inputs run together), never through a `Debug` text.
#[derive(Debug, Default)]
pub(crate) struct Fingerprint {
    bytes: Vec<u8>,
}

impl Hasher for Fingerprint {
    fn write(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn finish(&self) -> u64 {
        fnv1a(&self.bytes)
    }
}

/// A checksum over 8-byte words (FNV-1a style mixing, word at a time for speed).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h ^= u64::from_le_bytes(w.try_into().unwrap_or_default());
        h = h.wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
    for &b in words.remainder() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ bytes.len() as u64
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.bytes.get(self.pos..end).ok_or("truncated")?;
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "short")?,
        ))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "short")?,
        ))
    }
    fn i128(&mut self) -> Result<i128, &'static str> {
        Ok(i128::from_le_bytes(
            self.take(16)?.try_into().map_err(|_| "short")?,
        ))
    }
    /// A count of following items; each takes at least one byte, which bounds it.
    fn len(&mut self) -> Result<usize, &'static str> {
        let n = self.u64()? as usize;
        if n > self.bytes.len() - self.pos {
            return Err("count out of range");
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, &'static str> {
        let n = self.len()?;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| "string not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cache {
        let mut d = ModuleData {
            arena: "api_testprintkmodkit:hello-apipost: x".into(),
            ..ModuleData::default()
        };
        d.exports.push(Export { name: 0..8, crc: 7 });
        d.imports.push(Import {
            name: 8..14,
            crc: 0x1234,
            weak: true,
        });
        d.aliases.push(14..30);
        d.softdeps.push(30..37);
        let mut c = Cache::new();
        let key = FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: -4,
            ctime_ns: 5,
        };
        c.insert("/m/a.ko".into(), key, d);
        c
    }

    #[test]
    fn round_trip() {
        let c = sample();
        let bytes = c.to_bytes();
        let back = Cache::from_bytes(&bytes).unwrap();
        let key = FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: -4,
            ctime_ns: 5,
        };
        let d = back.get("/m/a.ko", &key).unwrap();
        assert_eq!(d.str(&d.aliases[0]), "modkit:hello-api");
        assert_eq!(Some(d), c.get("/m/a.ko", &key));
        // A changed identity is a miss, the change time included.
        assert!(
            back.get("/m/a.ko", &FileKey { mtime_ns: 5, ..key })
                .is_none()
        );
        assert!(
            back.get("/m/a.ko", &FileKey { ctime_ns: 6, ..key })
                .is_none()
        );
        assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        let bytes = sample().to_bytes();
        for len in 0..bytes.len() {
            assert!(
                Cache::from_bytes(&bytes[..len]).is_err(),
                "prefix {len} accepted"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(Cache::from_bytes(&b).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn corrupt_file_error_names_it() {
        let dir = std::env::temp_dir().join(format!("modkit-cache-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.cache");
        std::fs::write(&path, b"MODKITDC garbage garbage garbage").unwrap();
        let err = Cache::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("c.cache") && err.contains("corrupt cache"),
            "{err}"
        );
        assert_eq!(Cache::load(&dir.join("missing")).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cache_base_follows_the_environment() {
        fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
            move |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        }
        let all = [
            ("MODKIT_CACHE", "/m"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_base(env(&all[..])), Path::new("/m"));
        assert_eq!(cache_base(env(&all[1..])), Path::new("/x/modkit"));
        assert_eq!(cache_base(env(&all[2..])), Path::new("/h/.cache/modkit"));
        assert_eq!(cache_base(env(&[])), Path::new("/var/cache/modkit"));
        // Relative or empty values are not used.
        let relative = [
            ("XDG_CACHE_HOME", "cache"),
            ("HOME", ""),
            ("MODKIT_CACHE", ""),
        ];
        assert_eq!(cache_base(env(&relative)), Path::new("/var/cache/modkit"));
    }

    #[test]
    fn cache_file_names_are_stable() {
        let host_in = |base: &str, dir: &str, version: &str| {
            CacheLocation::host_in(Path::new(base), Path::new(dir), version)
                .path()
                .to_path_buf()
        };
        // Pinned: the name must not change between runs, builds or hosts, or every cache is lost.
        assert_eq!(
            host_in("/c", "/lib/modules/6.1.0-1-amd64", "6.1.0-1-amd64"),
            Path::new("/c/depmod/0f21372585377e9e-6.1.0-1-amd64.cache")
        );
        assert_ne!(
            host_in("/c", "/r/lib/modules/6.1.0-1-amd64", "6.1.0-1-amd64"),
            host_in("/c", "/lib/modules/6.1.0-1-amd64", "6.1.0-1-amd64")
        );
        // A version is one file name, however odd.
        let odd = host_in("/c", "/m", "1.0/../../x");
        assert_eq!(odd.parent(), Some(Path::new("/c/depmod")));
        assert!(is_host_cache_name(
            &odd.file_name().unwrap().to_string_lossy()
        ));
    }
}
