//! The image: the files of a closure laid out as `/lib/modules/VERSION` of the booted system,
//! with indexes written by modkit's depmod for exactly those modules, the firmware, the
//! modprobe.d lines, as a reproducible newc archive (modkit-cpio), compressed if asked.

use std::path::{Path, PathBuf};

use modkit_cpio::{Archive, Compression};

use super::firmware::Firmware;
use super::{Closure, Reason};

/// The tree's files copied as they are (when it has them): the build order, the built-in
/// modules and their records, which depmod turns into the built-in indexes.
pub const COPIED: [&str; 3] = [
    "modules.order",
    "modules.builtin",
    "modules.builtin.modinfo",
];

/// Where the selected modprobe.d lines go in the image.
pub const CONFIG_PATH: &str = "etc/modprobe.d/modkit.conf";

/// The directories an init mounts on, made in the image beside `/init`.
pub const INIT_DIRS: [&str; 5] = ["dev", "proc", "sys", "run", "sysroot"];

/// How to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The kernel release: the image has `/lib/modules/VERSION`.
    pub version: String,
    /// The mtime of every entry (`SOURCE_DATE_EPOCH`, or 0).
    pub mtime: u32,
    /// How to compress the archive.
    pub compression: Compression,
    /// The program to install as `/init` (a statically linked ELF executable, such as
    /// `modkit-init`), with `/dev/console` (which the kernel opens for it before it runs) and
    /// the [`INIT_DIRS`]; `None` for an image of modules only (to be appended to another).
    pub init: Option<PathBuf>,
}

/// Why a file is in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Why {
    /// A module file.
    Module {
        /// The module.
        name: String,
        /// Why the module is there.
        reason: Reason,
    },
    /// A file of the tree, copied.
    Copied,
    /// An index written by modkit's depmod for the image's modules.
    Index,
    /// Firmware named by these modules.
    Firmware(Vec<String>),
    /// The modprobe.d lines for the image's modules.
    Config,
    /// The init program, from this file.
    Init(PathBuf),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Module { name, reason } => write!(f, "{name}: {reason}"),
            Why::Copied => f.write_str("copied from the module directory"),
            Why::Index => f.write_str("index written by modkit depmod for these modules"),
            Why::Firmware(modules) => write!(f, "firmware of {}", modules.join(", ")),
            Why::Config => f.write_str("modprobe.d lines for these modules"),
            Why::Init(path) => write!(f, "the init program, from {}", path.display()),
        }
    }
}

/// One file of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its path in the image, without a leading `/`.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Why it is there.
    pub why: Why,
}

/// A built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Every file, sorted by path (directories are implied).
    pub files: Vec<File>,
    /// The archive, compressed as asked.
    pub bytes: Vec<u8>,
    /// What modkit's depmod said about the subset: its warnings as text, errors prefixed
    /// `ERROR: `, paths naming the tree's files.
    pub depmod_messages: Vec<String>,
}

/// Why building failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or the staging directory written.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done (`could not read`, `could not write`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// modkit's depmod failed on the image's modules.
    #[error("depmod over the image's modules in {}", dir.display())]
    Depmod {
        /// The staging module directory.
        dir: PathBuf,
        /// Why.
        source: modkit_depgraph::Error,
    },
    /// The init program is not an ELF executable.
    #[error("{} cannot be the image's /init: it is not an ELF executable ({cause})", path.display())]
    InitNotElf {
        /// The file.
        path: PathBuf,
        /// What the ELF reader said.
        cause: String,
    },
    /// The init program needs a dynamic loader, which the image does not have.
    #[error(
        "{} cannot be the image's /init: it is dynamically linked (interpreter {interpreter}) and \
         the image has no C library; build it statically, e.g. RUSTFLAGS='-C \
         target-feature=+crt-static' cargo build --profile init -p modkit-init --target \
         x86_64-unknown-linux-gnu",
        path.display()
    )]
    InitNotStatic {
        /// The file.
        path: PathBuf,
        /// Its `PT_INTERP`.
        interpreter: String,
    },
    /// Compressing the archive failed.
    #[error(transparent)]
    Compress(#[from] modkit_cpio::Error),
}

/// Checks that `bytes` (the file `path`) can run as an initramfs's `/init`: an ELF executable
/// without an interpreter (`PT_INTERP`), that is, statically linked.
pub fn check_init(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use elf::ElfBytes;
    use elf::endian::AnyEndian;
    let not_elf = |cause: String| Error::InitNotElf {
        path: path.to_owned(),
        cause,
    };
    let file = ElfBytes::<AnyEndian>::minimal_parse(bytes).map_err(|e| not_elf(e.to_string()))?;
    if !matches!(file.ehdr.e_type, elf::abi::ET_EXEC | elf::abi::ET_DYN) {
        return Err(not_elf(format!(
            "ELF type {} is not an executable",
            file.ehdr.e_type
        )));
    }
    let segments = file
        .segments()
        .map(|s| s.iter().collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(interp) = segments.iter().find(|p| p.p_type == elf::abi::PT_INTERP) {
        let start = interp.p_offset as usize;
        let text = bytes
            .get(start..start.saturating_add(interp.p_filesz as usize))
            .map(|raw| {
                String::from_utf8_lossy(raw)
                    .trim_end_matches('\0')
                    .to_owned()
            })
            .unwrap_or_else(|| "unreadable".into());
        return Err(Error::InitNotStatic {
            path: path.to_owned(),
            interpreter: text,
        });
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        what: "could not read",
        path: path.to_owned(),
        source,
    })
}

/// Build the image of `closure` from the module directory `dir`: module files, the
/// [`COPIED`] files, the indexes modkit's depmod writes for these modules (in a staging copy
/// under the temporary directory, removed afterwards), `firmware.found`, `config_lines`
/// as [`CONFIG_PATH`] (left out when empty), and the init of [`Options::init`] (checked by
/// [`check_init`]).
pub fn build(
    dir: &Path,
    closure: &Closure,
    firmware: &Firmware,
    config_lines: &[String],
    options: &Options,
) -> Result<Image, Error> {
    let moddir = format!("lib/modules/{}", options.version);
    let mut files: Vec<(String, Vec<u8>, Why)> = Vec::new();
    for module in &closure.modules {
        files.push((
            format!("{moddir}/{}", module.rel),
            read(&module.path)?,
            Why::Module {
                name: module.name.clone(),
                reason: module.reason.clone(),
            },
        ));
    }
    for name in COPIED {
        let path = dir.join(name);
        if path.is_file() {
            let mut bytes = read(&path)?;
            if name == "modules.order" {
                bytes = order_of(&bytes, closure);
            }
            files.push((format!("{moddir}/{name}"), bytes, Why::Copied));
        }
    }

    let staging = Staging::new()?;
    let staged_moddir = staging.0.join(&moddir);
    // depmod's input: the module files hard-linked where the file system allows (no copy of
    // megabytes of modules), written otherwise; the copied tree files written.
    let module_sources = closure.modules.iter().map(|m| m.path.as_path());
    let sources = module_sources.map(Some).chain(std::iter::repeat(None));
    for ((path, bytes, _), source) in files.iter().zip(sources) {
        staging.link_or_write(path, source, bytes)?;
    }
    // An image may need no module at all (everything built in): depmod still gets its
    // directory, and writes empty indexes.
    std::fs::create_dir_all(&staged_moddir).map_err(|source| Error::Io {
        what: "could not create",
        path: staged_moddir.clone(),
        source,
    })?;
    let (indexes, messages) = depmod_indexes(&staged_moddir)?;
    // Name the tree's files, not the staging copy's.
    let staged = staged_moddir.display().to_string();
    let real = dir.display().to_string();
    let depmod_messages = messages.iter().map(|m| m.replace(&staged, &real)).collect();
    drop(staging);
    for (name, bytes) in indexes {
        files.push((format!("{moddir}/{name}"), bytes, Why::Index));
    }

    for found in &firmware.found {
        files.push((
            found.image_path.clone(),
            read(&found.file)?,
            Why::Firmware(found.modules.clone()),
        ));
    }
    if !config_lines.is_empty() {
        let mut text =
            String::from("# The modprobe.d lines for this image's modules (modkit initramfs).\n");
        for line in config_lines {
            text.push_str(line);
            text.push('\n');
        }
        files.push((CONFIG_PATH.to_owned(), text.into_bytes(), Why::Config));
    }

    let mut archive = Archive::new(options.mtime);
    // Module and firmware files that are compressed already (6.12's .ko.xz) go into an
    // archive of their own, stored as they are ahead of the compressed one: compressing
    // them again would cost time and win nothing.
    let mut stored = Archive::new(options.mtime);
    let mut any_stored = false;
    if let Some(init) = &options.init {
        let bytes = read(init)?;
        check_init(init, &bytes)?;
        files.push(("init".to_owned(), bytes, Why::Init(init.clone())));
        for dir in INIT_DIRS {
            archive.dir(dir);
        }
        archive.char_device("dev/console", 0o600, 5, 1);
    }
    let mut listed = Vec::with_capacity(files.len());
    for (path, bytes, why) in files {
        let mode = if matches!(why, Why::Init(_)) {
            0o755
        } else {
            0o644
        };
        let precompressed = matches!(why, Why::Module { .. } | Why::Firmware(_))
            && modkit_elf::detect_compression(&bytes) != modkit_elf::Compression::None;
        listed.push(File {
            path: path.clone(),
            size: bytes.len() as u64,
            why,
        });
        if precompressed && options.compression != Compression::None {
            stored.file(&path, mode, bytes);
            any_stored = true;
        } else {
            archive.file(&path, mode, bytes);
        }
    }
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    listed.dedup_by(|later, earlier| later.path == earlier.path);
    // The kernel unpacks archives one after another, each compressed or not
    // (init/initramfs.c, unpack_to_rootfs; Debian puts its early microcode so): the stored
    // one first, ending on a 4-byte boundary as a newc archive does.
    let mut bytes = if any_stored {
        stored.finish()
    } else {
        Vec::new()
    };
    bytes.extend(modkit_cpio::compress(
        &archive.finish(),
        options.compression,
    )?);
    Ok(Image {
        files: listed,
        bytes,
        depmod_messages,
    })
}

/// The lines of a modules.order (`kernel/fs/ext4/ext4.ko`) that name a module of the
/// closure, in their order: depmod orders the image's modules by it, and the other
/// thousands of lines would only be bytes to compress.
fn order_of(text: &[u8], closure: &Closure) -> Vec<u8> {
    let names: std::collections::HashSet<&str> = closure.names().collect();
    let mut out = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        let path = line.strip_suffix(b"\n").unwrap_or(line);
        let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path);
        if modkit_glob::name::path_to_modname(path)
            .is_some_and(|name| names.contains(name.as_str()))
        {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Index files by name, and depmod's warnings.
type Indexes = (Vec<(String, Vec<u8>)>, Vec<String>);

/// The one call into modkit-depgraph (whose API is being reshaped): the files depmod writes
/// for the module directory `moddir`, as kmod 30 writes them (post-order tries, which every
/// kmod reads), no cache, no depmod.d, no kernel symbols; and its warnings.
fn depmod_indexes(moddir: &Path) -> Result<Indexes, Error> {
    let mut run = modkit_depgraph::Depmod::new(moddir, modkit_depgraph::Flavor::kmod30());
    let generated = run.generate().map_err(|source| Error::Depmod {
        dir: moddir.to_owned(),
        source,
    })?;
    let messages = run
        .diagnostics
        .drain()
        .into_iter()
        .filter_map(|m| match m.level {
            modkit_depgraph::Level::Info => None,
            modkit_depgraph::Level::Warning => Some(m.text),
            level => Some(format!("{level}: {}", m.text)),
        })
        .collect();
    let files = generated
        .files
        .into_iter()
        .map(|f| (f.name.to_owned(), f.bytes))
        .collect();
    Ok((files, messages))
}

/// A scratch directory for depmod's input, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new() -> Result<Staging, Error> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "modkit-initramfs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: "could not create",
            path: dir.clone(),
            source,
        })?;
        Ok(Staging(dir))
    }

    /// Puts `bytes` at `rel`: a hard link to `source` (the file they were read from) when
    /// there is one and the file system allows it, else a new file.
    fn link_or_write(&self, rel: &str, source: Option<&Path>, bytes: &[u8]) -> Result<(), Error> {
        let path = self.0.join(rel);
        let failed = |source| Error::Io {
            what: "could not write",
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        if let Some(source) = source
            && std::fs::hard_link(source, &path).is_ok()
        {
            return Ok(());
        }
        std::fs::write(&path, bytes).map_err(failed)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
