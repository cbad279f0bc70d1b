//! A fake kernel that records every module syscall and answers with scripted results, over fake
//! `/sys/module` and `/proc` trees: the loading logic of the tools is tested with it, without root.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::proc::ProcDir;
use crate::sysfs::SysModule;

/// Which syscall, for scripting results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syscall {
    /// `finit_module`.
    FinitModule,
    /// `init_module`.
    InitModule,
    /// `delete_module`.
    DeleteModule,
}

/// One recorded syscall, with its arguments.
#[derive(Clone, PartialEq, Eq)]
pub enum Call {
    /// `finit_module(fd, params, flags)`: the file the fd refers to (`/proc/self/fd` link, e.g.
    /// `/memfd:modkit-module (deleted)` for an in-memory file) and its size.
    FinitModule {
        /// Where the fd points.
        file: PathBuf,
        /// The file's size in bytes.
        size: u64,
        /// The parameters.
        params: String,
        /// The flags.
        flags: u32,
    },
    /// `init_module(image, len, params)`.
    InitModule {
        /// The image handed over.
        image: Vec<u8>,
        /// The parameters.
        params: String,
    },
    /// `delete_module(name, flags)`.
    DeleteModule {
        /// The module name.
        name: String,
        /// The flags.
        flags: u32,
    },
}

impl std::fmt::Debug for Call {
    // Images are large; show their length and first bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::FinitModule {
                file,
                size,
                params,
                flags,
            } => f
                .debug_struct("FinitModule")
                .field("file", file)
                .field("size", size)
                .field("params", params)
                .field("flags", flags)
                .finish(),
            Call::InitModule { image, params } => f
                .debug_struct("InitModule")
                .field("image_len", &image.len())
                .field("image_head", &&image[..image.len().min(8)])
                .field("params", params)
                .finish(),
            Call::DeleteModule { name, flags } => f
                .debug_struct("DeleteModule")
                .field("name", name)
                .field("flags", flags)
                .finish(),
        }
    }
}

/// A [`Kernel`] that records calls and returns scripted results (`Ok` once a script runs out).
#[derive(Debug)]
pub struct RecordingKernel {
    sys_module: SysModule,
    proc_dir: ProcDir,
    release: Option<String>,
    calls: RefCell<Vec<Call>>,
    script: RefCell<HashMap<Syscall, VecDeque<Result<(), Errno>>>>,
}

impl RecordingKernel {
    /// A fake kernel whose trees are the given (fake) directories.
    pub fn new(sys_module: SysModule, proc_dir: ProcDir) -> RecordingKernel {
        RecordingKernel {
            sys_module,
            proc_dir,
            release: None,
            calls: RefCell::default(),
            script: RefCell::default(),
        }
    }

    /// The same fake kernel, with `release` for its `uname -r` (without one, asking for the
    /// release fails with `ENOSYS`: a fake never answers with the host's).
    pub fn with_release(mut self, release: &str) -> RecordingKernel {
        self.release = Some(release.to_owned());
        self
    }

    /// Make the next not yet scripted call of `syscall` return `result`.
    pub fn script(&self, syscall: Syscall, result: Result<(), Errno>) -> &RecordingKernel {
        self.script
            .borrow_mut()
            .entry(syscall)
            .or_default()
            .push_back(result);
        self
    }

    /// The calls made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn answer(&self, syscall: Syscall, call: Call) -> Result<(), Errno> {
        self.calls.borrow_mut().push(call);
        self.script
            .borrow_mut()
            .get_mut(&syscall)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(()))
    }
}

impl Kernel for RecordingKernel {
    fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
        let link = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let call = Call::FinitModule {
            file: fs::read_link(&link).unwrap_or(link),
            size: file.metadata().map(|meta| meta.len()).unwrap_or(0),
            params: params.to_string_lossy().into_owned(),
            flags,
        };
        self.answer(Syscall::FinitModule, call)
    }

    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
        let call = Call::InitModule {
            image: image.to_vec(),
            params: params.to_string_lossy().into_owned(),
        };
        self.answer(Syscall::InitModule, call)
    }

    fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno> {
        let call = Call::DeleteModule {
            name: name.to_string_lossy().into_owned(),
            flags,
        };
        self.answer(Syscall::DeleteModule, call)
    }

    fn sys_module(&self) -> &SysModule {
        &self.sys_module
    }

    fn proc_dir(&self) -> &ProcDir {
        &self.proc_dir
    }

    fn release(&self) -> Result<String, Errno> {
        self.release.clone().ok_or(Errno(libc::ENOSYS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinuxKernel;

    #[test]
    fn a_fake_kernel_has_only_the_release_it_is_given() {
        let fake =
            || RecordingKernel::new(SysModule::new("/nonexistent"), ProcDir::new("/nonexistent"));
        assert_eq!(fake().release(), Err(Errno(libc::ENOSYS)));
        assert_eq!(
            fake().with_release("6.12.0-test").release().as_deref(),
            Ok("6.12.0-test")
        );
        // The real one asks uname(2), whatever its trees.
        let linux =
            LinuxKernel::with_trees(SysModule::new("/nonexistent"), ProcDir::new("/nonexistent"));
        assert_eq!(linux.release(), crate::kernel_release());
    }
}
