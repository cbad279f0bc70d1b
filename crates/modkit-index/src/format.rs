//! Constants of the on-disk format.
//!
//! Source: kmod `libkmod/libkmod-index.c` and `tools/depmod.c` (`INDEX_MAGIC`, `INDEX_VERSION`,
//! `enum node_offset`, `INDEX_CHILDMAX`). All integers are big-endian.

/// First word of every index file ("BOOTFAST").
pub const MAGIC: u32 = 0xB007_F457;
/// Second word as written by kmod: major 2 (high 16 bits), minor 1. Readers check the major only.
pub const VERSION: u32 = 0x0002_0001;
/// The major version readers accept.
pub const VERSION_MAJOR: u32 = 2;
/// Size of the header: magic, version, root node reference.
pub const HEADER_LEN: usize = 12;

/// Node reference flag: the node starts with a NUL-terminated prefix.
pub const NODE_PREFIX: u32 = 0x8000_0000;
/// Node reference flag: the node has a value list.
pub const NODE_VALUES: u32 = 0x4000_0000;
/// Node reference flag: the node has a child table.
pub const NODE_CHILDS: u32 = 0x2000_0000;
/// Low 28 bits of a node reference: the node's file offset (0 = no node).
pub const NODE_MASK: u32 = 0x0FFF_FFFF;

/// Child bytes are 7-bit ASCII: a child table never names a byte of this value or more.
pub const CHILD_MAX: u8 = 128;
