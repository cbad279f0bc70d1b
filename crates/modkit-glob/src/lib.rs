//! Module alias patterns with exactly the semantics kmod gets from glibc's
//! `fnmatch(pattern, key, 0)`, compiled matchers over one pattern ([`Glob`]) or many
//! ([`GlobSet`]), and the text `modules.alias` format ([`read_aliases`], [`write_modules_alias`],
//! [`AliasMatcher`]), and kmod's rules for module names and module file names ([`name`]: the one
//! copy the other crates use).
//!
//! Matching does no I/O and never allocates per pattern; only [`read_alias_file`] touches the
//! file system.
//!
//! ```
//! use modkit_glob::{Alias, AliasMatcher, Glob, GlobSetBuilder};
//!
//! assert!(Glob::new("acpi*:PNP0A0[38]:*").is_match("acpi:PNP0A08:"));
//!
//! let text = "# Aliases extracted from modules themselves.\n\
//!             alias virtio:d00000002v* virtio_blk\n\
//!             alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n";
//! let aliases = modkit_glob::parse_aliases(text, "modules.alias".as_ref())?;
//! let m = AliasMatcher::new(aliases);
//! assert_eq!(m.modules("virtio:d00000002v00001AF4"), ["virtio_blk"]);
//! # Ok::<(), modkit_glob::AliasError>(())
//! ```

#![forbid(unsafe_code)]

mod alias;
pub mod fnmatch;
mod glob;
pub mod name;
mod set;

pub use alias::{
    Alias, AliasError, AliasMatcher, MODULES_ALIAS_HEADER, parse_aliases, read_alias_file,
    read_aliases, write_alias_lines, write_modules_alias,
};
pub use fnmatch::fnmatch;
pub use glob::Glob;
pub use set::{GlobSet, GlobSetBuilder};
