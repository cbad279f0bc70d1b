//! The crate's typed error: what went wrong, where (offset), and what was expected.

use std::path::{Path, PathBuf};

use crate::Compression;

/// Everything that can go wrong while reading a module file.
///
/// Messages are lowercase and self-contained (no `source()` chain to repeat them), so both
/// `{err}` and anyhow's `{err:#}` print each fact once. The CLI adds the file name with
/// [`Error::with_path`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`crate::Module::parse`] was handed compressed bytes.
    #[error("module data is {0}-compressed; decompress it first")]
    Compressed(Compression),

    /// The first bytes are not `\x7fELF`.
    #[error("not an ELF file: expected magic 7f 45 4c 46 at offset 0, found {found:02x?}")]
    NotElf {
        /// Up to the first four bytes of the input.
        found: Vec<u8>,
    },

    /// The ELF reader (the `elf` crate) rejected a structure.
    #[error("malformed ELF {context}: {message}")]
    Elf {
        /// Which structure was being read.
        context: &'static str,
        /// The reader's own description (offsets, expected sizes), as text: the `elf` crate's
        /// error type is not part of this API, so upgrading that crate breaks no caller.
        message: String,
    },

    /// A structure points outside the file.
    #[error(
        "{what} at offset {offset:#x} with size {size:#x} extends beyond the end of the data ({len:#x} bytes)"
    )]
    OutOfBounds {
        /// What was being read, e.g. `section .modinfo`.
        what: &'static str,
        /// Where it starts, in bytes from the start of the (decompressed) module.
        offset: u64,
        /// How long it claims to be.
        size: u64,
        /// How long the data really is.
        len: u64,
    },

    /// A structure is there but its content does not have the expected shape.
    #[error("{what} at offset {offset:#x}: expected {expected}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Where, in bytes from the start of the data being read.
        offset: u64,
        /// What the format requires there.
        expected: &'static str,
    },

    /// A name that must be text is not UTF-8.
    #[error("{what} at offset {offset:#x} is not valid UTF-8")]
    InvalidUtf8 {
        /// What was being read, e.g. `symbol name`.
        what: &'static str,
        /// Where the string starts.
        offset: u64,
    },

    /// A section the request needs is absent.
    #[error("module has no {0} section")]
    MissingSection(&'static str),

    /// The decompressor reported corrupt or truncated input.
    #[error("{format} data is corrupt or truncated: {message}")]
    Decompress {
        /// Which format was being decoded.
        format: Compression,
        /// The decompressor's description.
        message: String,
    },

    /// The decompressor could not allocate its buffers (under an address-space limit): the
    /// file may be fine, and a caller that indexes modules must not treat it as damaged.
    #[error("out of memory while decompressing {format} data")]
    OutOfMemory {
        /// Which format was being decoded.
        format: Compression,
    },

    /// Decompression produced more than the caller's limit.
    #[error("{format} data decompresses to more than the limit of {limit} bytes")]
    TooLarge {
        /// Which format was being decoded.
        format: Compression,
        /// The limit that was exceeded.
        limit: u64,
    },

    /// The module-signature trailer is present but unusable.
    #[error("module signature trailer at offset {offset:#x}: {reason}")]
    Signature {
        /// Offset of the `struct module_signature` (or of the magic).
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The PKCS#7 (DER) signature blob cannot be read.
    #[error("PKCS#7 signature: expected {expected} at offset {offset:#x} of the signature data")]
    Der {
        /// Offset inside the DER blob.
        offset: u64,
        /// What the reader needed there.
        expected: &'static str,
    },

    /// A kernel image (bzImage) cannot be read.
    #[error("kernel image: {what}")]
    Image {
        /// What is wrong with it.
        what: String,
    },

    /// Another error, with the file it came from.
    #[error("{}: {inner}", path.display())]
    WithPath {
        /// The file being read.
        path: PathBuf,
        /// What went wrong in it.
        inner: Box<Error>,
    },
}

impl Error {
    /// Wrap this error with the path of the file it concerns (no-op if it already has one).
    #[must_use]
    pub fn with_path(self, path: impl AsRef<Path>) -> Error {
        match self {
            Error::WithPath { .. } => self,
            other => Error::WithPath {
                path: path.as_ref().to_path_buf(),
                inner: Box::new(other),
            },
        }
    }

    /// The path attached with [`Error::with_path`], if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::WithPath { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The error without its path wrapper.
    pub fn kind(&self) -> &Error {
        match self {
            Error::WithPath { inner, .. } => inner.kind(),
            other => other,
        }
    }

    pub(crate) fn elf(context: &'static str, cause: elf::ParseError) -> Error {
        Error::Elf {
            context,
            message: cause.to_string(),
        }
    }
}

/// Extension for `Result<T, Error>`: attach a path in one call.
pub trait ResultExt<T> {
    /// Attach `path` to the error, if any.
    fn with_path(self, path: impl AsRef<Path>) -> Result<T, Error>;
}

impl<T> ResultExt<T> for Result<T, Error> {
    fn with_path(self, path: impl AsRef<Path>) -> Result<T, Error> {
        self.map_err(|e| e.with_path(path))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::Error;

    #[test]
    fn a_cause_is_printed_in_the_message_not_returned_as_source() {
        let err = Error::MissingSection(".symtab").with_path("x.ko");
        assert_eq!(err.to_string(), "x.ko: module has no .symtab section");
        assert!(err.source().is_none());
    }
}
