//! The module database: scan a module tree, read every module once (in parallel), order the
//! modules, resolve their symbols against each other and the kernel's, compute dependencies in
//! load order, and produce every file kmod's depmod writes, byte for byte.
//!
//! ```no_run
//! use std::path::Path;
//! use modkit_depgraph::{DepmodConfig, Depmod, Flavor};
//!
//! let dir = Path::new("/lib/modules/6.1.0-56-amd64");
//! let mut depmod = Depmod::new(dir, Flavor::kmod30());
//! // Without this, the run uses kmod's built-in configuration and no depmod.d file.
//! for warning in depmod.read_config(&DepmodConfig::default_dirs(), "6.1.0-56-amd64") {
//!     eprintln!("depmod: ERROR: {warning}");
//! }
//! let generated = depmod.generate().expect("depmod"); // computes, writes nothing
//! for message in depmod.diagnostics.drain() {
//!     eprintln!("depmod: {}: {}", message.level, message.text);
//! }
//! depmod.write(&generated).expect("write"); // the files, then the cache if any
//! ```
//!
//! The layers, each in its module: `scan` finds the module files and reads them, `graph`
//! orders and resolves them, `render` renders each file, `run` ties them together with the
//! incremental `cache`. `graph` and `render` do no I/O: what they need from disk is read
//! before them, through `io`, which holds the file-system helpers (reading the module
//! directory's text inputs, writing through a temporary name, clearing what killed runs
//! left). [`guix`] has the small databases of Guix's `linux-modules.scm`.

#![deny(unsafe_code)] // One exception: mapping module files in `scan::read_module`.

mod cache;
mod config;
mod data;
mod diag;
mod error;
mod graph;
pub mod guix;
mod io;
mod kernel;
mod khash;
mod render;
mod run;
mod scan;

pub use cache::CacheLocation;
pub use config::DepmodConfig;
pub use data::ModuleData;
pub use diag::{Diagnostics, Level, Message};
pub use error::Error;
pub use graph::ResolveOptions;
pub use io::io_error_text;
pub use kernel::KernelSymbols;
pub use render::{Flavor, OutputFile};
pub use run::{Depmod, Generated, Phase};
pub use scan::LoadStats;
/// Whether `modules.dep` exists and no module file under the module directory is newer
/// (`depmod -A`; kmod's `depfile_up_to_date`).
pub use scan::up_to_date as modules_dep_up_to_date;

/// For `crates/modkit-fuzz` only: the private parsers the fuzz targets drive.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parse `bytes` as the entries section of a cache file, and again with their checksum
    /// appended (to get past it into the entry parser); whatever parses must write back and
    /// parse again to the same number of entries.
    pub fn cache_entries(bytes: &[u8]) {
        let _ = crate::cache::Cache::from_bytes(bytes);
        let mut file = bytes.to_vec();
        file.extend_from_slice(&crate::cache::fnv1a(bytes).to_le_bytes());
        if let Ok(cache) = crate::cache::Cache::from_bytes(&file) {
            let again = cache.to_bytes();
            let reread = crate::cache::Cache::from_bytes(&again).expect("own output reads back");
            assert_eq!(reread.len(), cache.len());
        }
    }

    /// A seed for [`cache_entries`]: the entries section of a cache file without its checksum,
    /// one entry of every kind (an export, a weak import, an alias, a softdep, a weakdep and a
    /// symbol error), written by the cache's own writer, so it is always the current format.
    pub fn cache_seed() -> Vec<u8> {
        use crate::data::{Export, Import, ModuleData, Span};
        let span = |start: u32, end: u32| -> Span { start..end };
        let data = ModuleData {
            arena: "sym_a sym_b alias_x pre: b c".to_owned(),
            exports: vec![Export {
                name: span(0, 5),
                crc: 0x1234,
            }],
            imports: vec![Import {
                name: span(6, 11),
                crc: 0,
                weak: true,
            }],
            aliases: vec![span(12, 19)],
            softdeps: vec![span(20, 26)],
            weakdeps: vec![span(27, 28)],
            symbol_error: Some("error text".to_owned()),
        };
        let key = crate::io::FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
            ctime_ns: 5,
        };
        let mut file = crate::cache::serialize([("kernel/a.ko", &key, &data)].into_iter());
        file.truncate(file.len() - 8);
        file
    }

    /// How many entries `section` (an entries section without its checksum, as [`cache_seed`]
    /// gives) holds, or why it does not parse.
    pub fn cache_entry_count(section: &[u8]) -> Result<usize, &'static str> {
        let mut file = section.to_vec();
        file.extend_from_slice(&crate::cache::fnv1a(section).to_le_bytes());
        crate::cache::Cache::from_bytes(&file).map(|cache| cache.len())
    }
}
