//! The index files of one module directory as a set: each opened (and mapped) on first use and
//! kept, looked up as kmod's `index_mm_search` and `index_mm_searchwild` do (what libkmod's
//! `kmod_ctx` keeps in its `indexes[]`).

use std::cell::{Cell, OnceCell, RefCell};
use std::path::{Path, PathBuf};

use modkit_index::{Index, Value, WildMemo, WildScratch};

use crate::Error;

/// The index files a lookup reads, in the module directory.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IndexFile {
    Dep = 0,
    Alias = 1,
    Symbols = 2,
    Builtin = 3,
    BuiltinAlias = 4,
}

impl IndexFile {
    const COUNT: usize = 5;

    fn file_name(self) -> &'static str {
        match self {
            IndexFile::Dep => "modules.dep.bin",
            IndexFile::Alias => "modules.alias.bin",
            IndexFile::Symbols => "modules.symbols.bin",
            IndexFile::Builtin => "modules.builtin.bin",
            IndexFile::BuiltinAlias => "modules.builtin.alias.bin",
        }
    }
}

/// Wildcard lookups in one index answered by walking its trie, as kmod does, before the walk
/// keeps what it reads in a [`WildMemo`]: a walk costs some 25 us on Debian's
/// modules.alias.bin, most of it in subtrees that every key of a bus walks again (`pci:v*`,
/// the 1,572 patterns of `of:N*`); kept, with a pattern set over each big one, they cost a
/// lookup a few microseconds. Keeping costs more than walking once, so one-off lookups never
/// pay for it and bulk lookups (`modprobe -a -R`, coldplug) barely pay for the walk.
const WILD_MEMO_AFTER: u32 = 256;

/// The indexes of a module directory, each opened once, when first asked for.
pub(crate) struct Indexes {
    dir: PathBuf,
    indexes: [OnceCell<Option<Index<'static>>>; IndexFile::COUNT],
    scratch: RefCell<WildScratch>,
    /// Per index: wildcard lookups so far, and the subtrees its walks kept once there were
    /// enough.
    wild_lookups: [Cell<u32>; IndexFile::COUNT],
    wild_memos: [RefCell<WildMemo>; IndexFile::COUNT],
    /// Wildcard lookups in one index before its walks keep what they read:
    /// [`WILD_MEMO_AFTER`], or 0 when the caller said many lookups are coming
    /// ([`Indexes::expect_lookups`]).
    wild_memo_after: u32,
}

impl Indexes {
    /// The indexes of the module directory `dir`; nothing is opened yet.
    pub(crate) fn new(dir: PathBuf) -> Indexes {
        Indexes {
            dir,
            indexes: Default::default(),
            scratch: RefCell::default(),
            wild_lookups: Default::default(),
            wild_memos: Default::default(),
            wild_memo_after: WILD_MEMO_AFTER,
        }
    }

    /// About `lookups` lookups are coming (`modprobe -a` with that many names): with at least
    /// [`WILD_MEMO_AFTER`] of them, an index's walks keep what they read from its first
    /// wildcard lookup on.
    pub(crate) fn expect_lookups(&mut self, lookups: usize) {
        if lookups >= WILD_MEMO_AFTER as usize {
            self.wild_memo_after = 0;
        }
    }

    /// The module directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index, opened on first use; `None` when the directory has none.
    pub(crate) fn open(&self, file: IndexFile) -> Result<Option<&Index<'static>>, Error> {
        let cell = &self.indexes[file as usize];
        if let Some(index) = cell.get() {
            return Ok(index.as_ref());
        }
        let path = self.dir.join(file.file_name());
        // A missing index finds nothing, and so does an empty one (kmod 30's depmod writes
        // 0-byte modules.builtin*.bin without modules.builtin); kmod fails on both quietly.
        // Any other damage, a header cut short included, is named in an error.
        let index = match Index::open(&path) {
            Ok(index) => Some(index),
            Err(modkit_index::Error::Io { cause, .. })
                if cause.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(modkit_index::Error::TooShort { len: 0 }) => None,
            Err(cause) => return Err(Error::Index { path, cause }),
        };
        Ok(cell.get_or_init(|| index).as_ref())
    }

    fn error(&self, file: IndexFile, cause: modkit_index::Error) -> Error {
        Error::Index {
            path: self.dir.join(file.file_name()),
            cause,
        }
    }

    /// The first value of `key` in an index (kmod's `index_mm_search`).
    pub(crate) fn get(&self, file: IndexFile, key: &str) -> Result<Option<String>, Error> {
        let Some(index) = self.open(file)? else {
            return Ok(None);
        };
        index
            .get(key)
            .map(|v| v.map(str::to_owned))
            .map_err(|e| self.error(file, e))
    }

    /// The values of every pattern in an index matching `key` (kmod's `index_mm_searchwild`).
    ///
    /// After [`WILD_MEMO_AFTER`] lookups in one index, the walk keeps each wildcard subtree it
    /// reads ([`Index::search_wild_memo`]): the same answers in the same order, and the same
    /// error for damage the walk meets, some 10 times faster over many keys.
    pub(crate) fn wild(&self, file: IndexFile, key: &str) -> Result<Vec<String>, Error> {
        let Some(index) = self.open(file)? else {
            return Ok(Vec::new());
        };
        let count = &self.wild_lookups[file as usize];
        count.set(count.get().saturating_add(1));
        let mut out: Vec<Value<'_>> = Vec::new();
        if count.get() > self.wild_memo_after {
            let mut memo = self.wild_memos[file as usize].borrow_mut();
            index
                .search_wild_memo(key, &mut memo, &mut out)
                .map_err(|e| self.error(file, e))?;
            return Ok(out.iter().map(|v| v.value.to_owned()).collect());
        }
        let mut scratch = self.scratch.borrow_mut();
        index
            .search_wild_into(key, &mut scratch, &mut out)
            .map_err(|e| self.error(file, e))?;
        Ok(out.iter().map(|v| v.value.to_owned()).collect())
    }

    /// Write `alias KEY VALUE` for every entry of modules.alias.bin and modules.symbols.bin
    /// (kmod's `kmod_dump_index`). A missing index writes nothing.
    pub(crate) fn dump(&self, out: &mut impl std::io::Write) -> Result<(), Error> {
        for file in [IndexFile::Alias, IndexFile::Symbols] {
            let Some(index) = self.open(file)? else {
                continue;
            };
            for entry in index.iter() {
                let entry = entry.map_err(|e| self.error(file, e))?;
                for value in entry.values {
                    let _ = writeln!(out, "alias {} {}", entry.key, value.value);
                }
            }
        }
        Ok(())
    }
}
