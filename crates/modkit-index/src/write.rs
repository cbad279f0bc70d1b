//! The writer: builds the trie in memory the way depmod does and serialises it in either of
//! kmod's node orders.
//!
//! Insertion follows kmod `tools/depmod.c` (`index_insert`, `index_add_value`): the trie is
//! path-compressed, a key's values are kept in ascending priority order, and a new value goes
//! before the first existing value whose priority is greater than or equal to its own (so,
//! among equal priorities, the value inserted last comes first). Duplicate values are kept;
//! `insert` reports them as depmod does for its `-w` warning.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{
    CHILD_MAX, HEADER_LEN, MAGIC, NODE_CHILDS, NODE_MASK, NODE_PREFIX, NODE_VALUES, VERSION,
};
use crate::read::Index;

/// Node order in the written file. Both are read by every kmod version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// Each node before its children, children in ascending byte order; the root is at
    /// offset 12. What kmod >= 34 writes.
    #[default]
    PreOrder,
    /// Children before their parent, the root last. What kmod <= 33 (Debian 12's kmod 30)
    /// writes.
    PostOrder,
}

#[derive(Debug, Default)]
struct BuildNode {
    prefix: Vec<u8>,
    /// Sorted by byte; the `usize` indexes `IndexBuilder::nodes`.
    children: Vec<(u8, usize)>,
    /// Ascending priority, kmod's insertion rule.
    values: Vec<(u32, Box<str>)>,
}

impl BuildNode {
    fn child(&self, ch: u8) -> Option<usize> {
        self.children
            .binary_search_by_key(&ch, |&(c, _)| c)
            .ok()
            .map(|i| self.children[i].1)
    }

    /// Bytes this node takes in the file.
    fn size(&self) -> usize {
        let mut size = 0;
        if !self.prefix.is_empty() {
            size += self.prefix.len() + 1;
        }
        if let (Some(first), Some(last)) = (self.children.first(), self.children.last()) {
            size += 2 + 4 * (usize::from(last.0 - first.0) + 1);
        }
        if !self.values.is_empty() {
            size += 4 + self
                .values
                .iter()
                .map(|(_, v)| 4 + v.len() + 1)
                .sum::<usize>();
        }
        size
    }

    fn flags(&self) -> u32 {
        let mut flags = 0;
        if !self.prefix.is_empty() {
            flags |= NODE_PREFIX;
        }
        if !self.children.is_empty() {
            flags |= NODE_CHILDS;
        }
        if !self.values.is_empty() {
            flags |= NODE_VALUES;
        }
        flags
    }
}

/// Collects (key, value, priority) triples and writes a kmod index.
///
/// The same insertions in the same order always give the same bytes.
#[derive(Debug)]
pub struct IndexBuilder {
    /// `nodes[0]` is the root; its prefix is always empty.
    nodes: Vec<BuildNode>,
}

impl Default for IndexBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn check_ascii(what: &'static str, s: &str) -> Result<()> {
    match s.bytes().position(|b| b == 0 || b >= CHILD_MAX) {
        None => Ok(()),
        Some(position) => Err(Error::NotAscii {
            what,
            string: s.to_owned(),
            byte: s.as_bytes()[position],
            position,
        }),
    }
}

impl IndexBuilder {
    /// An empty index.
    pub fn new() -> Self {
        IndexBuilder {
            nodes: vec![BuildNode::default()],
        }
    }

    /// Rebuild the contents of an existing index, so that writing it back in the same layout
    /// gives the same bytes (for an index kmod wrote).
    pub fn from_index(index: &Index<'_>) -> Result<Self> {
        let mut builder = IndexBuilder::new();
        for entry in index.iter() {
            let entry = entry?;
            // Inserting in reverse keeps the stored order, equal priorities included.
            let values: Vec<_> = entry.values.collect();
            for v in values.iter().rev() {
                builder.insert(&entry.key, v.value, v.priority)?;
            }
        }
        Ok(builder)
    }

    /// True when nothing has been inserted.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1 && self.nodes[0].values.is_empty()
    }

    /// Add `value` with `priority` under `key`, as depmod's `index_insert` does.
    ///
    /// Returns true when `key` already had this exact value (it is added again all the same,
    /// like depmod, which only warns about it with `-w`). Keys and values must be 7-bit ASCII
    /// without NUL; anything else is refused, as depmod refuses it.
    pub fn insert(&mut self, key: &str, value: &str, priority: u32) -> Result<bool> {
        check_ascii("key", key)?;
        check_ascii("value", value)?;
        let key = key.as_bytes();
        let mut node = 0;
        let mut i = 0;
        loop {
            // Make the node's prefix a prefix of the rest of the key, splitting it if needed.
            let prefix = &self.nodes[node].prefix;
            let common = prefix
                .iter()
                .zip(&key[i..])
                .take_while(|(a, b)| a == b)
                .count();
            if common < prefix.len() {
                self.split(node, common);
            }
            i += common;
            let Some(&ch) = key.get(i) else {
                return Ok(self.add_value(node, value, priority));
            };
            match self.nodes[node].child(ch) {
                Some(child) => {
                    node = child;
                    i += 1;
                }
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(BuildNode {
                        prefix: key[i + 1..].to_vec(),
                        children: Vec::new(),
                        values: vec![(priority, value.into())],
                    });
                    let children = &mut self.nodes[node].children;
                    let pos = children.partition_point(|&(c, _)| c < ch);
                    children.insert(pos, (ch, child));
                    return Ok(false);
                }
            }
        }
    }

    /// Split `node` after `at` bytes of its prefix: the node keeps `prefix[..at]`, and a new
    /// child under byte `prefix[at]` takes the rest along with the values and children.
    fn split(&mut self, node: usize, at: usize) {
        let n = &mut self.nodes[node];
        let ch = n.prefix[at];
        let tail = BuildNode {
            prefix: n.prefix[at + 1..].to_vec(),
            children: std::mem::take(&mut n.children),
            values: std::mem::take(&mut n.values),
        };
        n.prefix.truncate(at);
        let child = self.nodes.len();
        self.nodes[node].children = vec![(ch, child)];
        self.nodes.push(tail);
    }

    fn add_value(&mut self, node: usize, value: &str, priority: u32) -> bool {
        let values = &mut self.nodes[node].values;
        let duplicate = values.iter().any(|(_, v)| &**v == value);
        let pos = values.partition_point(|&(p, _)| p < priority);
        values.insert(pos, (priority, value.into()));
        duplicate
    }

    /// Nodes in file order for `layout`.
    fn order(&self, layout: Layout) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.nodes.len());
        match layout {
            Layout::PreOrder => {
                let mut stack = vec![0];
                while let Some(n) = stack.pop() {
                    order.push(n);
                    stack.extend(self.nodes[n].children.iter().rev().map(|&(_, c)| c));
                }
            }
            Layout::PostOrder => {
                // (node, next child to visit)
                let mut stack = vec![(0, 0)];
                while let Some((n, next)) = stack.last_mut() {
                    let node = &self.nodes[*n];
                    if let Some(&(_, child)) = node.children.get(*next) {
                        *next += 1;
                        stack.push((child, 0));
                    } else {
                        order.push(*n);
                        stack.pop();
                    }
                }
            }
        }
        order
    }

    /// Serialise the index. Errors only when it would exceed the 256 MiB the format can
    /// address.
    pub fn write(&self, layout: Layout) -> Result<Vec<u8>> {
        let order = self.order(layout);
        let mut refs = vec![0u32; self.nodes.len()];
        let mut offset = HEADER_LEN;
        for &n in &order {
            if offset > NODE_MASK as usize {
                return Err(Error::TooLarge { size: offset });
            }
            refs[n] = offset as u32 | self.nodes[n].flags();
            offset += self.nodes[n].size();
        }
        let mut out = Vec::with_capacity(offset);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&refs[0].to_be_bytes());
        for &n in &order {
            let node = &self.nodes[n];
            if !node.prefix.is_empty() {
                out.extend_from_slice(&node.prefix);
                out.push(0);
            }
            if let (Some(&(first, _)), Some(&(last, _))) =
                (node.children.first(), node.children.last())
            {
                out.push(first);
                out.push(last);
                let mut children = node.children.iter().peekable();
                for ch in first..=last {
                    let r = match children.next_if(|&&(c, _)| c == ch) {
                        Some(&(_, child)) => refs[child],
                        None => 0,
                    };
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            if !node.values.is_empty() {
                out.extend_from_slice(&(node.values.len() as u32).to_be_bytes());
                for (priority, value) in &node.values {
                    out.extend_from_slice(&priority.to_be_bytes());
                    out.extend_from_slice(value.as_bytes());
                    out.push(0);
                }
            }
        }
        debug_assert_eq!(out.len(), offset);
        Ok(out)
    }
}

/// How far [`replace`] goes to make a replacement survive a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the new file before the rename and the directory after it: a power cut leaves the
    /// old file or the new one, never an empty one (images, files a user asked for).
    Synced,
    /// Only the rename, as kmod's depmod does: atomic against a killed process (readers and
    /// a killed run see the old file or the new one), not against a power cut, and an fsync
    /// per index would cost more than a whole incremental depmod.
    Renamed,
}

/// The temporary name [`replace`] writes `name` to: `.NAME.PID.tmp`, hidden and marked with
/// the writer's process, so a killed run's leftovers can be told apart and removed.
pub fn temporary_name(name: &std::ffi::OsStr) -> std::ffi::OsString {
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}.tmp", std::process::id()));
    tmp
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory
/// ([`temporary_name`]), renamed over `path`; with [`Durability::Synced`] fsync'd before and
/// the directory after. Readers see the old file or the new one, never a mix; the temporary
/// is removed when anything fails. Every file modkit replaces goes through here.
pub fn replace(path: impl AsRef<Path>, bytes: &[u8], durability: Durability) -> Result<()> {
    let path = path.as_ref();
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |cause| Error::Io { path: p, cause }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| Error::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
    })?;
    let tmp = dir.join(temporary_name(name));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        if durability == Durability::Synced {
            file.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    if durability == Durability::Synced {
        // Make the rename itself durable.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// [`replace`] with [`Durability::Synced`].
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, Durability::Synced)
}
