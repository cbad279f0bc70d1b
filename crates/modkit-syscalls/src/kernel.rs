//! The kernel interface as a trait: the three module syscalls and the trees that describe the
//! loaded modules, with the loading and unloading logic of insmod/rmmod on top as provided
//! methods, so that logic runs unchanged against [`LinuxKernel`] and a
//! [`RecordingKernel`](crate::RecordingKernel).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use modkit_elf::Compression;

use crate::Error;
use crate::errno::{Errno, LoadFailure, UnloadFailure};
use crate::proc::{LoadedModule, ProcDir};
use crate::sys;
use crate::sysfs::{InitState, SysModule};

/// The largest module this code decompresses in user space; no real module comes near it.
pub const MAX_MODULE_SIZE: u64 = 1 << 30;

/// How to load a module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Ignore symbol version CRCs (`MODULE_INIT_IGNORE_MODVERSIONS`; insmod/modprobe `-f`).
    pub ignore_modversions: bool,
    /// Ignore the kernel version magic (`MODULE_INIT_IGNORE_VERMAGIC`; insmod/modprobe `-f`).
    pub ignore_vermagic: bool,
}

impl LoadOptions {
    /// Both of `-f`'s overrides.
    pub fn force() -> LoadOptions {
        LoadOptions {
            ignore_modversions: true,
            ignore_vermagic: true,
        }
    }

    /// The `finit_module` flags for these options.
    pub fn init_flags(self) -> u32 {
        let mut flags = 0;
        if self.ignore_modversions {
            flags |= sys::MODULE_INIT_IGNORE_MODVERSIONS;
        }
        if self.ignore_vermagic {
            flags |= sys::MODULE_INIT_IGNORE_VERMAGIC;
        }
        flags
    }
}

/// How a module was handed to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadMethod {
    /// `finit_module` on the file as it is (uncompressed).
    Finit,
    /// `finit_module` with `MODULE_INIT_COMPRESSED_FILE`: the kernel decompressed it.
    KernelDecompressed(Compression),
    /// Decompressed here, then `init_module` (or `finit_module` on an in-memory file when `-f`
    /// needs flags that `init_module` has no room for).
    UserDecompressed(Compression),
    /// `init_module` on the file's bytes because this kernel has no `finit_module`.
    InitModule,
}

/// Why a module could not be loaded.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be opened (kmod: `could not load module PATH: ...`).
    #[error("could not open {}: {}", path.display(), Errno::from_io(cause))]
    Open {
        /// The module file.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
    /// The file could not be read.
    #[error("could not read {}: {cause}", path.display())]
    Read {
        /// The module file.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
    /// The file is compressed and would not decompress.
    #[error("could not decompress {}: {cause}", path.display())]
    Decompress {
        /// The module file.
        path: PathBuf,
        /// Why.
        cause: modkit_elf::Error,
    },
    /// The parameters contain a NUL byte, which the kernel cannot be given.
    #[error("parameters for {} contain a NUL byte", path.display())]
    Params {
        /// The module file.
        path: PathBuf,
    },
    /// The kernel refused the module.
    #[error("{failure}")]
    Kernel {
        /// The module file.
        path: PathBuf,
        /// What the kernel said.
        failure: LoadFailure,
    },
}

/// How to unload a module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnloadOptions {
    /// Skip the in-use checks and pass `O_TRUNC` (needs `CONFIG_MODULE_FORCE_UNLOAD`; dangerous).
    pub force: bool,
}

impl UnloadOptions {
    /// The `delete_module` flags: always `O_NONBLOCK` (never wait for the reference count to
    /// drop, as kmod), plus `O_TRUNC` to force.
    pub fn delete_flags(self) -> u32 {
        let mut flags = libc::O_NONBLOCK as u32;
        if self.force {
            flags |= libc::O_TRUNC as u32;
        }
        flags
    }
}

/// Why a module could not be unloaded. `Display` is kmod's rmmod wording (after `rmmod: ERROR: `).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnloadError {
    /// Built into the kernel: it cannot be unloaded.
    #[error("Module {name} is builtin.")]
    Builtin {
        /// The module name.
        name: String,
    },
    /// No module of this name is loaded.
    #[error("Module {name} is not currently loaded")]
    NotLoaded {
        /// The module name.
        name: String,
    },
    /// Other loaded modules use it.
    #[error("Module {name} is in use by:{}", holders.iter().map(|h| format!(" {h}")).collect::<String>())]
    InUseBy {
        /// The module name.
        name: String,
        /// The modules using it.
        holders: Vec<String>,
    },
    /// Its reference count is not zero (something other than a module holds it).
    #[error("Module {name} is in use")]
    InUse {
        /// The module name.
        name: String,
    },
    /// The kernel has no `refcnt` for the module: it was built without `CONFIG_MODULE_UNLOAD`.
    #[error("Module unloading is not supported")]
    UnloadingNotSupported,
    /// The name contains a NUL byte.
    #[error("invalid module name {name:?}")]
    InvalidName {
        /// The module name.
        name: String,
    },
    /// The kernel refused (kmod: `could not remove module NAME: ...`).
    #[error("could not remove module {name}: {failure}")]
    Kernel {
        /// The module name.
        name: String,
        /// What the kernel said.
        failure: UnloadFailure,
    },
}

/// The kernel's module interface.
///
/// Implementors supply the three syscalls and the two trees; the provided methods hold the
/// logic (which syscall, which flags, which fallback, which checks) and are what tools call.
pub trait Kernel {
    /// `finit_module(2)`.
    fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno>;
    /// `init_module(2)`.
    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno>;
    /// `delete_module(2)`.
    fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno>;
    /// The `/sys/module` tree.
    fn sys_module(&self) -> &SysModule;
    /// The `/proc` tree.
    fn proc_dir(&self) -> &ProcDir;

    /// The kernel's release, as `uname -r` prints it: [`crate::kernel_release`], unless the
    /// implementor stands for another kernel.
    fn release(&self) -> Result<String, Errno> {
        crate::kernel_release()
    }

    /// The loaded modules (`/proc/modules`), in the kernel's order.
    fn loaded_modules(&self) -> Result<Vec<LoadedModule>, Error> {
        self.proc_dir().modules()
    }

    /// The compression the kernel can decompress itself, if any (errors read as none).
    fn kernel_compression(&self) -> Option<Compression> {
        self.sys_module().compression().ok().flatten()
    }

    /// The modules using `name`: `/sys/module/NAME/holders`, else its `/proc/modules` line.
    fn holders(&self, name: &str) -> Vec<String> {
        if let Ok(Some(holders)) = self.sys_module().holders(name) {
            return holders;
        }
        self.loaded_modules()
            .ok()
            .and_then(|modules| modules.into_iter().find(|m| m.name == name))
            .map(|m| m.used_by)
            .unwrap_or_default()
    }

    /// The reference count of `name`: `/sys/module/NAME/refcnt`, else its `/proc/modules` line.
    fn refcount(&self, name: &str) -> Option<i64> {
        if let Ok(Some(refcnt)) = self.sys_module().refcnt(name) {
            return Some(refcnt);
        }
        self.loaded_modules()
            .ok()?
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.refcount)
    }

    /// Load the module file at `path` with `params` (space-separated `name=value`).
    ///
    /// Uncompressed: `finit_module` (falling back to `init_module` where it does not exist).
    /// Compressed with what the kernel decompresses: `finit_module` with
    /// `MODULE_INIT_COMPRESSED_FILE`, falling back to user space on `EOPNOTSUPP`. Otherwise
    /// decompressed here and given to `init_module`, or with `-f` to `finit_module` on an
    /// in-memory file so the force flags still apply.
    fn load(
        &self,
        path: &Path,
        params: &str,
        options: LoadOptions,
    ) -> Result<LoadMethod, LoadError> {
        load_module(self, path, params, options)
    }

    /// Unload the module `name` as kmod's rmmod does: unless forced, refuse a built-in, absent
    /// or used module before asking the kernel.
    fn unload(&self, name: &str, options: UnloadOptions) -> Result<(), UnloadError> {
        unload_module(self, name, options)
    }
}

fn load_module<K: Kernel + ?Sized>(
    kernel: &K,
    path: &Path,
    params: &str,
    options: LoadOptions,
) -> Result<LoadMethod, LoadError> {
    let params = CString::new(params).map_err(|_| LoadError::Params {
        path: path.to_owned(),
    })?;
    let mut file = File::open(path).map_err(|cause| LoadError::Open {
        path: path.to_owned(),
        cause,
    })?;
    let read_err = |cause| LoadError::Read {
        path: path.to_owned(),
        cause,
    };
    let kernel_err = |errno| LoadError::Kernel {
        path: path.to_owned(),
        failure: LoadFailure::from_errno(errno),
    };

    // Read the magic without moving the file position (finit_module reads from offset 0
    // anyway, but nothing here should depend on that).
    let mut head = [0u8; 8];
    let head_len = read_head(&file, &mut head).map_err(read_err)?;
    let compression = modkit_elf::detect_compression(&head[..head_len]);
    let flags = options.init_flags();

    if compression == Compression::None {
        return match kernel.finit_module(&file, &params, flags) {
            Ok(()) => Ok(LoadMethod::Finit),
            Err(errno) if errno.0 == libc::ENOSYS => {
                let image = file_bytes(&mut file).map_err(read_err)?;
                kernel
                    .init_module(image.bytes(), &params)
                    .map_err(kernel_err)?;
                Ok(LoadMethod::InitModule)
            }
            Err(errno) => Err(kernel_err(errno)),
        };
    }

    if kernel.kernel_compression() == Some(compression) {
        match kernel.finit_module(&file, &params, flags | sys::MODULE_INIT_COMPRESSED_FILE) {
            Ok(()) => return Ok(LoadMethod::KernelDecompressed(compression)),
            // The kernel names a decompressor but this one cannot use it: do it here.
            Err(errno) if errno.0 == libc::EOPNOTSUPP || errno.0 == libc::ENOSYS => {}
            Err(errno) => return Err(kernel_err(errno)),
        }
    }

    let bytes = file_bytes(&mut file).map_err(read_err)?;
    let image = modkit_elf::decompress(bytes.bytes(), MAX_MODULE_SIZE).map_err(|cause| {
        LoadError::Decompress {
            path: path.to_owned(),
            cause,
        }
    })?;
    if flags == 0 {
        kernel.init_module(&image, &params).map_err(kernel_err)?;
    } else {
        let memfd = sys::memfd_with(&image).map_err(|errno| read_err(errno.into()))?;
        kernel
            .finit_module(&memfd, &params, flags)
            .map_err(kernel_err)?;
    }
    Ok(LoadMethod::UserDecompressed(compression))
}

/// Fill `buf` from the start of `file` as far as the file goes; the number of bytes read.
fn read_head(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(len)
}

/// A module file's bytes: mapped ([`sys::map_file`]), or read where it cannot be mapped (not
/// a regular file, empty).
enum FileBytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl FileBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Read(bytes) => bytes,
        }
    }
}

fn file_bytes(file: &mut File) -> io::Result<FileBytes> {
    match sys::map_file(file) {
        Ok(map) => Ok(FileBytes::Mapped(map)),
        Err(_) => read_all(file).map(FileBytes::Read),
    }
}

fn read_all(file: &mut File) -> io::Result<Vec<u8>> {
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn unload_module<K: Kernel + ?Sized>(
    kernel: &K,
    name: &str,
    options: UnloadOptions,
) -> Result<(), UnloadError> {
    let owned = || name.to_owned();
    let c_name = CString::new(name).map_err(|_| UnloadError::InvalidName { name: owned() })?;
    // A module name never contains `/`: such a "name" (a path that does not exist, which kmod
    // takes as a name) is not loaded, and is never joined onto /sys/module.
    if name.contains('/') {
        return Err(UnloadError::NotLoaded { name: owned() });
    }
    if !options.force {
        // kmod 30's check_module_inuse (tools/rmmod.c): any error reading the state is "not
        // loaded". kmod takes "built-in" from modules.builtin and calls a directory without
        // `initstate` "coming"; the kernel makes such directories only for built-in modules
        // (and for a loading module in the instant before `initstate` appears).
        match kernel.sys_module().initstate(name) {
            Ok(InitState::Builtin) => return Err(UnloadError::Builtin { name: owned() }),
            Ok(InitState::NotLoaded) | Err(_) => {
                return Err(UnloadError::NotLoaded { name: owned() });
            }
            Ok(_) => {}
        }
        let holders = kernel.holders(name);
        if !holders.is_empty() {
            return Err(UnloadError::InUseBy {
                name: owned(),
                holders,
            });
        }
        // kmod reads the count from sysfs only; no file means a kernel that cannot unload.
        let refcount = match kernel.sys_module().refcnt(name) {
            Ok(Some(count)) => Some(count),
            Ok(None) => return Err(UnloadError::UnloadingNotSupported),
            Err(_) => kernel.refcount(name),
        };
        if refcount.is_some_and(|count| count != 0) {
            return Err(UnloadError::InUse { name: owned() });
        }
    }
    kernel
        .delete_module(&c_name, options.delete_flags())
        .map_err(|errno| UnloadError::Kernel {
            name: owned(),
            failure: UnloadFailure::from_errno(errno),
        })
}

/// The running kernel, through the real syscalls and trees (by default `/sys/module`, `/proc`).
#[derive(Debug, Clone, Default)]
pub struct LinuxKernel {
    sys_module: SysModule,
    proc_dir: ProcDir,
}

impl LinuxKernel {
    /// The running kernel, seen through the standard trees.
    pub fn new() -> LinuxKernel {
        LinuxKernel::default()
    }

    /// The running kernel, with the trees read from elsewhere (syscalls still go to the kernel).
    pub fn with_trees(sys_module: SysModule, proc_dir: ProcDir) -> LinuxKernel {
        LinuxKernel {
            sys_module,
            proc_dir,
        }
    }
}

impl Kernel for LinuxKernel {
    fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
        sys::finit_module(file, params, flags)
    }

    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
        sys::init_module(image, params)
    }

    fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno> {
        sys::delete_module(name, flags)
    }

    fn sys_module(&self) -> &SysModule {
        &self.sys_module
    }

    fn proc_dir(&self) -> &ProcDir {
        &self.proc_dir
    }
}
