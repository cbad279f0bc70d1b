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
//!
//! # Matching kmod
//!
//! The readers follow kmod 30 (`libkmod-elf.c`, `libkmod-module.c`, `libkmod-signature.c`,
//! `tools/modinfo.c`), and were checked against it on every module of Debian's 6.1 and 6.12
//! trees. What a kmod-compatible tool built on this crate must know:
//!
//! - [`ModInfo`] splits `.modinfo` as kmod does (leading NULs skipped, runs of NULs collapse,
//!   a record without `=` has an empty value). `modinfo` prints records in file order, then the
//!   signature fields, then `parm:` lines in the *reverse* of [`ModInfo::params`]' order.
//! - [`Module::depmod_exports`] and [`Module::depmod_imports`] give the symbols exactly as
//!   depmod sees them (exports from `__crc_` symbols, else `__ksymtab_strings`; imports with
//!   `__versions` CRCs, weak flags, and unreferenced `__versions` entries appended);
//!   [`Module::exports`] and [`Module::imports`] are the plain views.
//! - [`signature`] returns what kmod with OpenSSL reports; [`kmod_hex`] formats `sig_key` and
//!   `signature` as kmod does. Where it returns an error, kmod shows no signature fields.
//!
//! # Verifying signatures
//!
//! [`verify`] checks a module's signature as the kernel does, against trusted certificates
//! from a file ([`parse_certificates`], DER or PEM) or from a kernel image
//! ([`certificates_in_image`] over a vmlinux; [`bzimage::extract_vmlinux`] gets it out of a
//! bzImage). Its [`SignatureError`] says which of the kernel's classes a refusal falls in.
#![forbid(unsafe_code)]

pub mod bzimage;
mod comb;
mod compress;
mod der;
mod endian;
mod error;
mod modinfo;
mod module;
mod prepared;
mod rsa_pub;
#[cfg(test)]
mod seeded;
mod signature;
mod verify;

pub use compress::{Compression, DEFAULT_DECOMPRESS_LIMIT, decompress, detect_compression};
pub use endian::Endian;
pub use error::{Error, ResultExt};
pub use modinfo::{ModInfo, ModInfoRecord, Param, SoftDep};
pub use module::{DependencySymbol, ElfClass, ExportedSymbol, KmodSymbol, Module, SymbolVersion};
pub use signature::{ID_TYPE_PKCS7, SIGNATURE_MAGIC, Signature, kmod_hex, signature};
pub use verify::{
    Certificate, CertificateError, SignatureError, Verified, certificates_in_image,
    parse_certificates, verify,
};
