//! Typed errors for reading and writing index files; each names the file offset involved.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing an index.
///
/// Offsets are byte offsets into the index file.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, mapped, read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the OS said.
        cause: std::io::Error,
    },

    /// Fewer bytes than the 12-byte header.
    #[error("index is {len} bytes, shorter than its 12-byte header")]
    TooShort {
        /// Length of the data.
        len: usize,
    },

    /// The first word is not kmod's index magic.
    #[error("bad index magic {found:#010x} (expected 0xb007f457)")]
    BadMagic {
        /// The word found at offset 0.
        found: u32,
    },

    /// The major version (high 16 bits of the second word) is not 2.
    #[error("unsupported index version {found:#010x} (major version must be 2)")]
    UnsupportedVersion {
        /// The word found at offset 4.
        found: u32,
    },

    /// A node reference points outside the file (or into the header).
    #[error("node reference {reference:#010x} at offset {at} points outside the file")]
    OffsetOutOfRange {
        /// Where the reference was read (8 for the root reference).
        at: usize,
        /// The raw reference, flags included.
        reference: u32,
    },

    /// A node body runs past the end of the file.
    #[error("node at offset {offset} is truncated ({what})")]
    Truncated {
        /// Where the node starts.
        offset: usize,
        /// Which part of the node was cut off.
        what: &'static str,
    },

    /// A node's child range names a byte of 128 or more, or has first > last.
    #[error("node at offset {offset} has a bad child range {first}..={last}")]
    BadChildRange {
        /// Where the node starts.
        offset: usize,
        /// First child byte.
        first: u8,
        /// Last child byte.
        last: u8,
    },

    /// A node claims more values than could fit in the rest of the file.
    #[error("node at offset {offset} claims {count} values, more than the file can hold")]
    AbsurdCount {
        /// Where the node starts.
        offset: usize,
        /// The value count read.
        count: u32,
    },

    /// A string in the index is not valid UTF-8.
    #[error("string at offset {offset} is not valid UTF-8")]
    NotUtf8 {
        /// Where the string starts.
        offset: usize,
    },

    /// Node references do not form a tree (a cycle, or a node reached twice).
    #[error("node references do not form a tree (node at offset {offset} reached again)")]
    NotATree {
        /// The node at which the walk gave up.
        offset: usize,
    },

    /// The writer was given a key or value with a byte outside 7-bit ASCII (or a NUL).
    #[error(
        "{what} {string:?} has byte {byte:#04x} at position {position}: only 7-bit ASCII without NUL is allowed"
    )]
    NotAscii {
        /// `"key"` or `"value"`.
        what: &'static str,
        /// The rejected string.
        string: String,
        /// The offending byte.
        byte: u8,
        /// Its position in the string.
        position: usize,
    },

    /// The index would be larger than node references can address (256 MiB).
    #[error("index too large: {size} bytes exceeds the 28-bit node offset limit")]
    TooLarge {
        /// The offset that did not fit.
        size: usize,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::Error;

    #[test]
    fn a_cause_is_printed_in_the_message_not_returned_as_source() {
        let err = Error::Io {
            path: "modules.dep.bin".into(),
            cause: std::io::Error::other("disk on fire"),
        };
        assert_eq!(err.to_string(), "modules.dep.bin: disk on fire");
        assert!(err.source().is_none());
    }
}
