//! The `/init` of an initramfs built by `modkit initramfs`, as a library: the pieces a Rust
//! init needs to get from the kernel to the root filesystem, and the `modkit-init` binary that
//! strings them together.
//!
//! - [`bootargs`]: the kernel command line as the kernel splits it, and the arguments an
//!   initramfs acts on (`root=UUID=|LABEL=|PARTUUID=|PARTLABEL=|/dev/NAME|MAJ:MIN`,
//!   `rootfstype=`, `rootflags=`, `ro`/`rw`, `rootwait`, `rootdelay=`, `init=`).
//! - [`probe`]: what is on a block device, from its first bytes: ext2/3/4, XFS and Btrfs
//!   superblocks (type, UUID, label) and GPT/MBR partition ids. Pure, over bytes.
//! - [`blockdev`]: the block devices in sysfs and what their nodes hold.
//! - [`boot`]: modkit's coldplug in rounds until the root device appears (with a limit, and
//!   one clear line when it does not), the filesystem's module, the mount.
//! - [`switch`]: move the pseudo filesystems, free the initramfs, chroot, exec init.
//!
//! Module loading is the facade's ([`modkit::coldplug`], [`modkit::probe`]) over the image's
//! own indexes; the kernel command line's `MODULE.PARAM=` and `modprobe.blacklist=` apply, as
//! with modprobe. Nothing here spawns a program but the final init.
#![forbid(unsafe_code)]

pub mod blockdev;
pub mod boot;
pub mod bootargs;
pub mod probe;
pub mod switch;

use std::io::Write;

/// Prints `modkit-init: TEXT` on the console in one write (so kernel messages cannot split
/// it); when standard output is not usable (the image has no /dev/console), to the kernel log.
pub fn say(text: &str) {
    let line = format!("modkit-init: {text}\n");
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
        && let Ok(mut kmsg) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg")
    {
        let _ = kmsg.write_all(line.as_bytes());
    }
}
