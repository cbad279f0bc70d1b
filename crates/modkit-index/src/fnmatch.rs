//! `fnmatch(pattern, string, 0)` with glibc's semantics in the C locale, for wildcard lookups.
//!
//! The implementation (and its tests) live in `modkit-glob`, the canonical one; this module
//! re-exports it so that `modkit_index::fnmatch::fnmatch` keeps working.

pub use modkit_glob::fnmatch::fnmatch;
