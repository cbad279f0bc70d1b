//! kmod's `.bin` index format (a radix trie): a lazy reader and a byte-compatible writer.
//!
//! depmod writes `modules.dep.bin`, `modules.alias.bin`, `modules.symbols.bin`,
//! `modules.builtin.bin` and `modules.builtin.alias.bin` in this format; modprobe, modinfo
//! and friends look names up in them. Each key maps to a list of string values, each with a
//! `u32` priority.
//!
//! # Format
//!
//! All integers are big-endian. A 12-byte header (magic `0xB007F457`, version `0x00020001`,
//! root node reference) is followed by nodes. A node reference is a `u32`: low 28 bits file
//! offset (0 = no node), flags `0x80000000` (prefix), `0x40000000` (values), `0x20000000`
//! (children). A node holds, as flagged: a NUL-terminated prefix (the rest of the edge
//! label), a child table (`u8` first, `u8` last, then a reference per byte in that range),
//! and values (`u32` count, then per value `u32` priority and a NUL-terminated string).
//! kmod <= 33 writes nodes in post-order, kmod >= 34 in pre-order ([`Layout`]); readers do
//! not care.
//!
//! # Reading
//!
//! ```
//! use modkit_index::{Index, IndexBuilder, Layout};
//!
//! let mut b = IndexBuilder::new();
//! b.insert("usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb_storage", 7)?;
//! b.insert("ext4", "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko", 3)?;
//! let bytes = b.write(Layout::PreOrder)?;
//!
//! let index = Index::from_bytes(&bytes)?;
//! assert_eq!(index.get("ext4")?, Some("kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko"));
//! let hits = index.search_wild("usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00")?;
//! assert_eq!(hits[0].value, "usb_storage");
//! # Ok::<(), modkit_index::Error>(())
//! ```
//!
//! # What depmod puts in each index (kmod 30)
//!
//! A module's *index* is its 0-based line number in `modules.dep` (modules listed in
//! `modules.order` first, in that order, then the rest).
//!
//! | file | key | value | priority |
//! |---|---|---|---|
//! | modules.dep.bin | module name | its `modules.dep` line | module index |
//! | modules.alias.bin | alias, `-` made `_` outside `[...]` | module name | module index |
//! | modules.symbols.bin | `symbol:NAME` | module name | module index |
//! | modules.builtin.bin | module name | empty | 0 |
//! | modules.builtin.alias.bin | alias, normalized as above | module name | 0 |
//!
//! Insertion order matters only among equal priorities: the value inserted last comes first.
//! depmod inserts modules.alias.bin values module by module in module order, each module's
//! aliases in `.modinfo` order; modules.builtin.alias.bin in `modules.builtin.modinfo` order.

#![deny(unsafe_code)] // One exception: mapping the file in `Index::open` (read.rs).

mod error;
pub mod fnmatch;
mod format;
mod memo;
mod read;
mod write;

pub use error::{Error, Result};
pub use format::{
    CHILD_MAX, HEADER_LEN, MAGIC, NODE_CHILDS, NODE_MASK, NODE_PREFIX, NODE_VALUES, VERSION,
    VERSION_MAJOR,
};
pub use memo::WildMemo;
pub use read::{Entry, Index, Iter, Value, Values, WildScratch};
pub use write::{Durability, IndexBuilder, Layout, replace, temporary_name, write_atomic};
