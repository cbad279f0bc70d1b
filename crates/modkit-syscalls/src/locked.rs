//! A [`Kernel`] behind a lock, for threads that share one kernel that cannot be shared as it
//! is: a [`crate::RecordingKernel`] records into a `RefCell`, so coldplug's worker pool runs
//! against it through this adapter in tests.

use std::ffi::CStr;
use std::fs::File;
use std::sync::{Mutex, MutexGuard};

use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::proc::ProcDir;
use crate::sysfs::SysModule;

/// Any [`Kernel`] behind a lock: the syscalls take turns; the trees are read without it.
#[derive(Debug)]
pub struct LockedKernel<K> {
    inner: Mutex<K>,
    sys: SysModule,
    proc: ProcDir,
}

impl<K: Kernel> LockedKernel<K> {
    /// `kernel`, behind a lock.
    pub fn new(kernel: K) -> LockedKernel<K> {
        LockedKernel {
            sys: kernel.sys_module().clone(),
            proc: kernel.proc_dir().clone(),
            inner: Mutex::new(kernel),
        }
    }

    /// The kernel back.
    pub fn into_inner(self) -> K {
        self.inner.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// The kernel, locked (a panic in another thread holding it does not poison it for good).
    fn lock(&self) -> MutexGuard<'_, K> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Kernel> Kernel for LockedKernel<K> {
    fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
        self.lock().finit_module(file, params, flags)
    }
    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
        self.lock().init_module(image, params)
    }
    fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno> {
        self.lock().delete_module(name, flags)
    }
    fn sys_module(&self) -> &SysModule {
        &self.sys
    }
    fn proc_dir(&self) -> &ProcDir {
        &self.proc
    }
    fn release(&self) -> Result<String, Errno> {
        self.lock().release()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Call, RecordingKernel, Syscall};

    #[test]
    fn threads_share_a_recording_kernel_through_the_lock() {
        let recording = RecordingKernel::new(SysModule::new("/nowhere/sys"), ProcDir::new("/p"));
        recording.script(Syscall::DeleteModule, Err(Errno(libc::EBUSY)));
        let kernel = LockedKernel::new(recording);
        assert_eq!(
            kernel.sys_module().root(),
            std::path::Path::new("/nowhere/sys")
        );
        let results: Vec<Result<(), Errno>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|name| {
                    let kernel = &kernel;
                    scope.spawn(move || {
                        let name = std::ffi::CString::new(name).unwrap();
                        kernel.delete_module(&name, 0)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // One of the two got the scripted EBUSY, the other the default success.
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        let mut names: Vec<String> = kernel
            .into_inner()
            .calls()
            .into_iter()
            .map(|call| match call {
                Call::DeleteModule { name, .. } => name,
                other => panic!("{other:?}"),
            })
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
    }
}
