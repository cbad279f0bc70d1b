//! The reader: walks the trie lazily over borrowed, owned or memory-mapped bytes.
//!
//! Every read is a checked slice access; nothing here panics or loops forever on bad input.
//! Lookups are bounded by the key length. Whole-subtree walks (wildcard search, iteration)
//! carry a budget of as many bytes as the file has: in a well-formed file each node is visited
//! once and nodes do not overlap, so the budget is never exhausted; a cycle or a node shared
//! by two parents exhausts it and gives [`Error::NotATree`].

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::fnmatch::fnmatch;
use crate::format::{
    CHILD_MAX, HEADER_LEN, MAGIC, NODE_CHILDS, NODE_MASK, NODE_PREFIX, NODE_VALUES, VERSION_MAJOR,
};

enum Storage<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

/// A kmod `.bin` index, ready for lookups.
///
/// Opening checks only the header; nodes are parsed when a lookup reaches them.
pub struct Index<'a> {
    data: Storage<'a>,
    root: u32,
    /// Distinct for every index made in this process, so a [`crate::WildMemo`] knows the
    /// index it was filled from.
    id: u64,
}

/// The next [`Index::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl fmt::Debug for Index<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("len", &self.as_bytes().len())
            .field("root", &format_args!("{:#010x}", self.root))
            .finish()
    }
}

/// One value of a key: the string and its priority (lower sorts first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Value<'a> {
    /// The priority stored with the value (depmod: the module's position in module order).
    pub priority: u32,
    /// The value string.
    pub value: &'a str,
}

/// The values of one key, in file order (ascending priority when written by kmod).
#[derive(Clone, Debug)]
pub struct Values<'a> {
    /// The value records, already validated.
    data: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for Values<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // The records were validated when this iterator was made, so the fallbacks never fire.
        let priority = read_u32(self.data, 0).unwrap_or(0);
        let rest = self.data.get(4..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let value = std::str::from_utf8(&rest[..end]).unwrap_or_default();
        self.data = rest.get(end + 1..).unwrap_or_default();
        Some(Value { priority, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Values<'_> {}

impl<'a> Values<'a> {
    /// `count` value records at the start of `data`, already checked by
    /// [`Node::values_range`].
    pub(crate) fn validated(data: &'a [u8], count: u32) -> Values<'a> {
        Values {
            data,
            remaining: count,
        }
    }
}

/// One key of the index with its values, as produced by [`Index::iter`].
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    /// The key.
    pub key: String,
    /// Its values.
    pub values: Values<'a>,
}

/// Reusable buffers for [`Index::search_wild_into`], so repeated searches do not allocate.
#[derive(Debug, Default)]
pub struct WildScratch {
    pattern: Vec<u8>,
    stack: Vec<Frame>,
}

impl WildScratch {
    /// Empty buffers.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A parsed node header. Offsets are into the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub(crate) offset: usize,
    prefix_at: usize,
    prefix_len: usize,
    pub(crate) first: u8,
    /// Number of child slots (0 when the node has no child table).
    pub(crate) nchild: usize,
    children_at: usize,
    /// Offset of the value count, when the node has values.
    values_at: Option<usize>,
    /// Bytes of the header (prefix and child table), for the walk budget.
    header_len: usize,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub(crate) node: Node,
    pub(crate) next_child: usize,
    /// Length of the pattern/key buffer before this node's contribution.
    pub(crate) mark: usize,
}

pub(crate) fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl Node {
    /// Parse the node a reference points to; `at` is where the reference was read.
    pub(crate) fn read(data: &[u8], reference: u32, at: usize) -> Result<Option<Node>> {
        let offset = (reference & NODE_MASK) as usize;
        if offset == 0 {
            return Ok(None);
        }
        if offset < HEADER_LEN || offset > data.len() {
            return Err(Error::OffsetOutOfRange { at, reference });
        }
        let mut pos = offset;
        let (prefix_at, prefix_len) = if reference & NODE_PREFIX != 0 {
            let rest = &data[pos..];
            let len = rest.iter().position(|&b| b == 0).ok_or(Error::Truncated {
                offset,
                what: "prefix without NUL terminator",
            })?;
            let at = pos;
            pos += len + 1;
            (at, len)
        } else {
            (pos, 0)
        };
        let (first, nchild, children_at) = if reference & NODE_CHILDS != 0 {
            let range = data.get(pos..pos + 2).ok_or(Error::Truncated {
                offset,
                what: "child range",
            })?;
            let (first, last) = (range[0], range[1]);
            if first > last || last >= CHILD_MAX {
                return Err(Error::BadChildRange {
                    offset,
                    first,
                    last,
                });
            }
            let n = usize::from(last - first) + 1;
            let at = pos + 2;
            if data.len() - at < n * 4 {
                return Err(Error::Truncated {
                    offset,
                    what: "child table",
                });
            }
            pos = at + n * 4;
            (first, n, at)
        } else {
            (CHILD_MAX, 0, pos)
        };
        let values_at = if reference & NODE_VALUES != 0 {
            if data.len() - pos < 4 {
                return Err(Error::Truncated {
                    offset,
                    what: "value count",
                });
            }
            Some(pos)
        } else {
            None
        };
        Ok(Some(Node {
            offset,
            prefix_at,
            prefix_len,
            first,
            nchild,
            children_at,
            values_at,
            header_len: pos - offset,
        }))
    }

    pub(crate) fn prefix<'d>(&self, data: &'d [u8]) -> &'d [u8] {
        data.get(self.prefix_at..self.prefix_at + self.prefix_len)
            .unwrap_or_default()
    }

    /// The raw reference of child slot `i` and where it was read.
    pub(crate) fn slot(&self, data: &[u8], i: usize) -> (u32, usize) {
        let at = self.children_at + 4 * i;
        (read_u32(data, at).unwrap_or(0), at)
    }

    /// The child for byte `ch`, if any.
    pub(crate) fn child(&self, data: &[u8], ch: u8) -> Result<Option<Node>> {
        match self.child_ref(data, ch) {
            Some((reference, at)) => Node::read(data, reference, at),
            None => Ok(None),
        }
    }

    /// The raw reference of the child for byte `ch` and where it was read, unless the node
    /// has no slot for `ch` (a slot may still hold 0: no child).
    pub(crate) fn child_ref(&self, data: &[u8], ch: u8) -> Option<(u32, usize)> {
        let i = usize::from(ch.checked_sub(self.first)?);
        (i < self.nchild).then(|| self.slot(data, i))
    }

    /// Validate the value list and return it. `None` when the node has no values.
    pub(crate) fn values<'d>(&self, data: &'d [u8]) -> Result<Option<Values<'d>>> {
        Ok(self
            .values_range(data)?
            .map(|(start, end, count)| Values::validated(&data[start..end], count)))
    }

    /// Validate the value list and say where it is: the records' range of the file and their
    /// count. `None` when the node has no values (or a count of 0).
    pub(crate) fn values_range(&self, data: &[u8]) -> Result<Option<(usize, usize, u32)>> {
        let Some(at) = self.values_at else {
            return Ok(None);
        };
        let offset = self.offset;
        let count = read_u32(data, at).ok_or(Error::Truncated {
            offset,
            what: "value count",
        })?;
        let start = at + 4;
        // Each value takes at least 5 bytes: priority and NUL terminator.
        if count as usize > (data.len() - start) / 5 {
            return Err(Error::AbsurdCount { offset, count });
        }
        let mut pos = start;
        for _ in 0..count {
            let s = pos + 4;
            let rest = data.get(s..).ok_or(Error::Truncated {
                offset,
                what: "value priority",
            })?;
            let len = rest.iter().position(|&b| b == 0).ok_or(Error::Truncated {
                offset,
                what: "value without NUL terminator",
            })?;
            std::str::from_utf8(&rest[..len]).map_err(|_| Error::NotUtf8 { offset: s })?;
            pos = s + len + 1;
        }
        if count == 0 {
            return Ok(None);
        }
        Ok(Some((start, pos, count)))
    }
}

/// Bounds the total work of one whole-subtree walk to the size of the file.
pub(crate) struct Budget(pub(crate) usize);

impl Budget {
    pub(crate) fn spend(&mut self, node: &Node) -> Result<()> {
        let cost = node.header_len.max(1);
        if cost > self.0 {
            return Err(Error::NotATree {
                offset: node.offset,
            });
        }
        self.0 -= cost;
        Ok(())
    }
}

/// Insert the way kmod's `add_value` does: before the first value of priority >= its own.
pub(crate) fn add_value<'a>(out: &mut Vec<Value<'a>>, v: Value<'a>) {
    let pos = out.partition_point(|x| x.priority < v.priority);
    out.insert(pos, v);
}

pub(crate) fn add_values<'a>(out: &mut Vec<Value<'a>>, node: &Node, data: &'a [u8]) -> Result<()> {
    if let Some(values) = node.values(data)? {
        for v in values {
            add_value(out, v);
        }
    }
    Ok(())
}

impl Index<'static> {
    /// Open an index file by memory-mapping it.
    ///
    /// depmod replaces index files by renaming a new file over them, so a mapped file is
    /// never rewritten in place under a reader.
    pub fn open(path: impl AsRef<Path>) -> Result<Index<'static>> {
        let path = path.as_ref();
        let io = |cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        };
        // Only a regular file: opening a FIFO would block until some writer came along, and
        // a directory or device is no index either.
        let not_regular = || {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ))
        };
        if !std::fs::metadata(path).map_err(io)?.is_file() {
            return Err(not_regular());
        }
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(not_regular());
        }
        let len = meta.len();
        if len < HEADER_LEN as u64 {
            return Err(Error::TooShort { len: len as usize });
        }
        // SAFETY: the mapping is read-only and private, but pages this process has not copied
        // still show the file: Rust's promise that the bytes behind `&[u8]` do not change holds
        // only while nobody modifies the file in place. depmod (kmod's and ours) replaces index
        // files by rename, never in place, so a mapped index keeps its old inode and contents.
        // Something else writing into the file would make this reader see changing bytes, and
        // truncating it under the mapping raises SIGBUS on the next access past the new end,
        // which kills the process (as it would kmod, which maps indexes the same way). Every
        // access is bounds-checked against the length mapped here.
        #[allow(unsafe_code, reason = "memmap2::Mmap::map is unsafe: see SAFETY")]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Index::new(Storage::Mapped(map))
    }

    /// Take ownership of index bytes (read from a file, or built in memory).
    pub fn from_vec(data: Vec<u8>) -> Result<Index<'static>> {
        Index::new(Storage::Owned(data))
    }
}

impl<'a> Index<'a> {
    /// Borrow index bytes, checking the header.
    pub fn from_bytes(data: &'a [u8]) -> Result<Index<'a>> {
        Index::new(Storage::Borrowed(data))
    }

    fn new(data: Storage<'a>) -> Result<Index<'a>> {
        let bytes: &[u8] = match &data {
            Storage::Borrowed(b) => b,
            Storage::Owned(v) => v,
            Storage::Mapped(m) => m,
        };
        let (Some(magic), Some(version), Some(root)) =
            (read_u32(bytes, 0), read_u32(bytes, 4), read_u32(bytes, 8))
        else {
            return Err(Error::TooShort { len: bytes.len() });
        };
        if magic != MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        if version >> 16 != VERSION_MAJOR {
            return Err(Error::UnsupportedVersion { found: version });
        }
        Ok(Index {
            data,
            root,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The whole file.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.data {
            Storage::Borrowed(b) => b,
            Storage::Owned(v) => v,
            Storage::Mapped(m) => m,
        }
    }

    /// This index's id: distinct for every index made in this process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn root(&self) -> Result<Option<Node>> {
        Node::read(self.as_bytes(), self.root, 8)
    }

    /// The node whose key is exactly `key`.
    fn find(&self, key: &[u8]) -> Result<Option<Node>> {
        let data = self.as_bytes();
        let mut node = self.root()?;
        let mut i = 0;
        while let Some(n) = node {
            let prefix = n.prefix(data);
            if key.get(i..i + prefix.len()) != Some(prefix) {
                return Ok(None);
            }
            i += prefix.len();
            let Some(&ch) = key.get(i) else {
                return Ok(Some(n));
            };
            node = n.child(data, ch)?;
            i += 1;
        }
        Ok(None)
    }

    /// The first value of `key` (the one of lowest priority), like kmod's `index_mm_search`.
    ///
    /// Allocation-free; this is what modprobe does for modules.dep.bin and
    /// modules.symbols.bin.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<&str>> {
        Ok(self
            .get_all(key)?
            .and_then(|mut v| v.next())
            .map(|v| v.value))
    }

    /// All values of `key` in file order, or `None` when the key is absent or has no values.
    pub fn get_all(&self, key: impl AsRef<[u8]>) -> Result<Option<Values<'_>>> {
        match self.find(key.as_ref())? {
            Some(n) => n.values(self.as_bytes()),
            None => Ok(None),
        }
    }

    /// Values of every stored key that, read as an fnmatch pattern, matches `key`; like kmod's
    /// `index_mm_searchwild` (used for modules.alias.bin).
    ///
    /// The result is ordered as kmod orders it: by ascending priority; values of equal
    /// priority come in the reverse of the order the walk found them. Duplicates are kept.
    pub fn search_wild(&self, key: impl AsRef<[u8]>) -> Result<Vec<Value<'_>>> {
        let mut out = Vec::new();
        self.search_wild_into(key, &mut WildScratch::new(), &mut out)?;
        Ok(out)
    }

    /// [`Index::search_wild`] with caller-owned buffers; `out` is cleared first.
    pub fn search_wild_into<'s>(
        &'s self,
        key: impl AsRef<[u8]>,
        scratch: &mut WildScratch,
        out: &mut Vec<Value<'s>>,
    ) -> Result<()> {
        out.clear();
        let key = key.as_ref();
        let data = self.as_bytes();
        // Each subtree walk gets its own budget: a valid trie may have the same subtree walked
        // once per `*`, `?` or `[` of the key along its path (kmod walks it as often), so only
        // a single walk is bounded by the file size. The walks number at most 3 per key byte.
        let budget = || Budget(data.len());
        let mut node = self.root()?;
        let mut i = 0;
        while let Some(n) = node {
            let prefix = n.prefix(data);
            for (j, &ch) in prefix.iter().enumerate() {
                if matches!(ch, b'*' | b'?' | b'[') {
                    let subkey = key.get(i + j..).unwrap_or_default();
                    scratch.pattern.clear();
                    return wild_all(data, n, j, subkey, scratch, out, &mut budget());
                }
                if key.get(i + j) != Some(&ch) {
                    return Ok(());
                }
            }
            i += prefix.len();
            let subkey = key.get(i..).unwrap_or_default();
            for wc in [b'*', b'?', b'['] {
                if let Some(child) = n.child(data, wc)? {
                    let mut budget = budget();
                    budget.spend(&child)?;
                    scratch.pattern.clear();
                    scratch.pattern.push(wc);
                    wild_all(data, child, 0, subkey, scratch, out, &mut budget)?;
                }
            }
            let Some(&ch) = key.get(i) else {
                return add_values(out, &n, data);
            };
            node = n.child(data, ch)?;
            i += 1;
        }
        Ok(())
    }

    /// Every key with its values, in key (byte) order, the order of kmod's `index dump`.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            data: self.as_bytes(),
            root: Some(self.root),
            key: Vec::new(),
            stack: Vec::new(),
            budget: Budget(self.as_bytes().len()),
            done: false,
        }
    }

    /// The whole index as text, one `key value` line per value, like kmod's `index_mm_dump`.
    pub fn dump(&self) -> Result<String> {
        let mut s = String::new();
        for entry in self.iter() {
            let entry = entry?;
            for v in entry.values {
                s.push_str(&entry.key);
                s.push(' ');
                s.push_str(v.value);
                s.push('\n');
            }
        }
        Ok(s)
    }
}

/// kmod's `index_mm_searchwild_all`: walk the subtree of `start` (post-order, children in
/// ascending byte order), building the pattern, and collect values of nodes whose pattern
/// matches `subkey`. The caller has put the pattern so far in `scratch.pattern`.
fn wild_all<'a>(
    data: &'a [u8],
    start: Node,
    j: usize,
    subkey: &[u8],
    scratch: &mut WildScratch,
    out: &mut Vec<Value<'a>>,
    budget: &mut Budget,
) -> Result<()> {
    let WildScratch { pattern, stack } = scratch;
    walk_subtree(data, start, j, pattern, stack, budget, |node, pattern| {
        if let Some(values) = node.values(data)?
            && fnmatch(pattern, subkey)
        {
            for v in values {
                add_value(out, v);
            }
        }
        Ok(())
    })
}

/// The walk of kmod's wildcard search over the subtree of `start`, from byte `j` of its
/// prefix on: post-order, children by ascending byte, each child paid from `budget` (the
/// caller paid for `start`). `pattern` holds what comes before the subtree; `visit` gets
/// every node with its whole pattern, and `pattern` is as it was when the walk ends.
pub(crate) fn walk_subtree(
    data: &[u8],
    start: Node,
    j: usize,
    pattern: &mut Vec<u8>,
    stack: &mut Vec<Frame>,
    budget: &mut Budget,
    mut visit: impl FnMut(Node, &[u8]) -> Result<()>,
) -> Result<()> {
    stack.clear();
    let mark = pattern.len();
    pattern.extend_from_slice(start.prefix(data).get(j..).unwrap_or_default());
    stack.push(Frame {
        node: start,
        next_child: 0,
        mark,
    });
    while let Some(top) = stack.last_mut() {
        let node = top.node;
        let own_mark = top.mark;
        let mut next = None;
        while top.next_child < node.nchild {
            let i = top.next_child;
            top.next_child += 1;
            let (reference, at) = node.slot(data, i);
            if let Some(child) = Node::read(data, reference, at)? {
                // nchild <= 128 - first, so this cannot overflow.
                next = Some((child, node.first + i as u8));
                break;
            }
        }
        if let Some((child, ch)) = next {
            budget.spend(&child)?;
            let mark = pattern.len();
            pattern.push(ch);
            pattern.extend_from_slice(child.prefix(data));
            stack.push(Frame {
                node: child,
                next_child: 0,
                mark,
            });
            continue;
        }
        stack.pop();
        visit(node, pattern)?;
        pattern.truncate(own_mark);
    }
    Ok(())
}

/// Iterator over all keys of an index; see [`Index::iter`]. Stops after the first error.
pub struct Iter<'a> {
    data: &'a [u8],
    root: Option<u32>,
    key: Vec<u8>,
    stack: Vec<Frame>,
    budget: Budget,
    done: bool,
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("depth", &self.stack.len())
            .finish()
    }
}

impl<'a> Iter<'a> {
    /// Push `node` (reached through child byte `ch`, none for the root) and report its values.
    fn enter(&mut self, node: Node, ch: Option<u8>) -> Result<Option<Entry<'a>>> {
        self.budget.spend(&node)?;
        let mark = self.key.len();
        self.key.extend(ch);
        self.key.extend_from_slice(node.prefix(self.data));
        self.stack.push(Frame {
            node,
            next_child: 0,
            mark,
        });
        match node.values(self.data)? {
            Some(values) => {
                let key = std::str::from_utf8(&self.key).map_err(|_| Error::NotUtf8 {
                    offset: node.prefix_at,
                })?;
                Ok(Some(Entry {
                    key: key.to_owned(),
                    values,
                }))
            }
            None => Ok(None),
        }
    }

    fn step(&mut self) -> Result<Option<Entry<'a>>> {
        if let Some(root) = self.root.take()
            && let Some(node) = Node::read(self.data, root, 8)?
            && let Some(e) = self.enter(node, None)?
        {
            return Ok(Some(e));
        }
        while let Some(top) = self.stack.last_mut() {
            let node = top.node;
            if top.next_child < node.nchild {
                let i = top.next_child;
                top.next_child += 1;
                let (reference, at) = node.slot(self.data, i);
                if let Some(child) = Node::read(self.data, reference, at)?
                    && let Some(e) = self.enter(child, Some(node.first + i as u8))?
                {
                    return Ok(Some(e));
                }
            } else {
                let mark = top.mark;
                self.stack.pop();
                self.key.truncate(mark);
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
