//! Read what a Linux kernel module file says about itself: `.modinfo`, exported and imported
//! symbols, modversions CRCs, and the appended signature, for any ELF class and byte order.
//!
//! Everything works on borrowed bytes and never panics, whatever the input:
//!
//! ```no_run
//! # fn main() -> Result<(), modkit_elf::Error> {
//! let file = std::fs::read("hello.ko.xz").unwrap();
//! let bytes = modkit_elf::decompress(&file, modkit_elf::DEFAULT_DECOMPRESS_LIMIT)?;
//! let module = modkit_elf::Module::parse(&bytes)?;
//! println!("{:?}", module.modinfo().name());
//! for export in module.exports()? {
//!     println!("{} gpl={}", export.name, export.gpl_only);
//! }
//! if let Some(sig) = modkit_elf::signature(&bytes)? {
//!     println!("signer: {}", sig.signer());
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod compress;
mod der;
mod error;
mod modinfo;
mod module;
mod signature;

pub use compress::{Compression, DEFAULT_DECOMPRESS_LIMIT, decompress, detect_compression};
pub use error::{Error, ResultExt};
pub use modinfo::{ModInfo, ModInfoRecord, Param, SoftDep};
pub use module::{
    DependencySymbol, ElfClass, Endian, ExportedSymbol, KmodSymbol, Module, SymbolVersion,
};
pub use signature::{ID_TYPE_PKCS7, SIGNATURE_MAGIC, Signature, kmod_hex, signature};
