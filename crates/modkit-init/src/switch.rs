//! Switching to the real root, as busybox's and util-linux's `switch_root` do: move the
//! pseudo filesystems under the new root, delete the initramfs's files (they live in RAM and
//! nothing can reach them once the root moves), make the new root `/`, and run its init.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use sys_mount::{Mount, MountFlags, UnmountFlags, unmount};

/// The mounts an initramfs made that the real system keeps.
pub const KEPT_MOUNTS: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// The programs the kernel tries when `init=` is not given, in its order.
pub const DEFAULT_INITS: [&str; 4] = ["/sbin/init", "/etc/init", "/bin/init", "/bin/sh"];

fn context(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |err| io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Makes `new_root` (a mount point in the initramfs) the root: moves [`KEPT_MOUNTS`] under it
/// (or detaches those it has no directory for), deletes the initramfs's files without
/// crossing into other filesystems, moves `new_root` onto `/` and chroots into it.
pub fn switch_root(new_root: &Path) -> io::Result<()> {
    for mount in KEPT_MOUNTS {
        let target = new_root.join(&mount[1..]);
        if target.is_dir() {
            Mount::builder()
                .fstype("none")
                .flags(MountFlags::MOVE)
                .mount(mount, &target)
                .map_err(context(format!("moving {mount} to {}", target.display())))?;
        } else {
            let _ = unmount(mount, UnmountFlags::DETACH);
        }
    }
    let initramfs = std::fs::metadata("/").map_err(context("reading /".into()))?;
    remove_tree(Path::new("/"), initramfs.dev(), new_root);
    std::env::set_current_dir(new_root)
        .map_err(context(format!("changing to {}", new_root.display())))?;
    Mount::builder()
        .fstype("none")
        .flags(MountFlags::MOVE)
        .mount(".", "/")
        .map_err(context(format!("moving {} to /", new_root.display())))?;
    std::os::unix::fs::chroot(".").map_err(context("chroot to the new root".into()))?;
    std::env::set_current_dir("/").map_err(context("changing to / in the new root".into()))
}

/// Removes what is under `dir` on the device `dev`, leaving `keep` and other filesystems'
/// mount points alone. Best effort: what cannot be removed stays (it only costs memory).
fn remove_tree(dir: &Path, dev: u64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if path == keep || meta.dev() != dev {
                continue;
            }
            remove_tree(&path, dev, keep);
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The init to run in the (new) root: `init=` when given (the kernel tries nothing else),
/// else the first of [`DEFAULT_INITS`] that exists; the paths tried when none does.
pub fn find_init(requested: Option<&str>) -> Result<PathBuf, Vec<String>> {
    let candidates: Vec<&str> = match requested {
        Some(init) => vec![init],
        None => DEFAULT_INITS.to_vec(),
    };
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .ok_or_else(|| candidates.iter().map(|s| s.to_string()).collect())
}

/// Runs `init` in place of this process with this process's arguments (those the kernel did
/// not take) and environment, as the kernel starts init; returns only on failure.
pub fn exec_init(init: &Path) -> io::Error {
    std::process::Command::new(init)
        .args(std::env::args_os().skip(1))
        .exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_tree_but_keeps_the_new_root() {
        // A directory of its own (this unit test ships in the published crate, which has no
        // modkit-testkit); removed at the end.
        let root = std::env::temp_dir().join(format!("modkit-init-switch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let sysroot = root.join("sysroot");
        std::fs::create_dir_all(sysroot.join("sbin")).unwrap();
        std::fs::write(sysroot.join("sbin/init"), b"").unwrap();
        std::fs::create_dir_all(root.join("lib/modules/6.1.0/kernel")).unwrap();
        std::fs::write(root.join("lib/modules/6.1.0/kernel/a.ko"), b"x").unwrap();
        std::fs::write(root.join("init"), b"x").unwrap();
        std::os::unix::fs::symlink("init", root.join("linuxrc")).unwrap();
        let dev = std::fs::metadata(&root).unwrap().dev();
        remove_tree(&root, dev, &sysroot);
        let left: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["sysroot"]);
        assert!(sysroot.join("sbin/init").is_file());
        // Another device's directory is left alone.
        remove_tree(&root, dev + 1, Path::new("/nowhere"));
        assert!(sysroot.join("sbin/init").is_file());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn finds_the_init() {
        // `init=` names the only candidate.
        assert_eq!(
            find_init(Some("/nonexistent/init")),
            Err(vec!["/nonexistent/init".to_owned()])
        );
        let this = std::env::current_exe().unwrap();
        assert_eq!(find_init(this.to_str()), Ok(this.clone()));
    }
}
