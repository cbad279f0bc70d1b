//! Path resolution confined to the sysfs root, like a chroot: `..` stops at the root, an
//! absolute link target `/sys/x` means `x` under the root,
//! and a bounded number of links is followed, so a loop is an error and never a hang.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Links followed in one resolution before it counts as a loop (Linux's `MAXSYMLINKS`).
pub(crate) const MAX_LINKS: usize = 40;

/// Components allowed in a resolved path; real sysfs device paths have a few dozen.
pub(crate) const MAX_DEPTH: usize = 128;

/// Resolve `rel` (relative to `root`) to its canonical form, a list of plain components
/// under `root` that exists and holds no symlink.
pub(crate) fn canonicalize(root: &Path, rel: &Path) -> Result<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    // Components still to walk, in reverse order (next one last).
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, rel);
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        out.push(c);
        let full = join(root, &out);
        if out.len() > MAX_DEPTH {
            return Err(Error::TooDeep {
                path: full,
                max: MAX_DEPTH,
            });
        }
        let meta = std::fs::symlink_metadata(&full).map_err(|e| Error::io(&full, e))?;
        if !meta.file_type().is_symlink() {
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(Error::SymlinkLoop {
                path: root.join(rel),
            });
        }
        let target = std::fs::read_link(&full).map_err(|e| Error::io(&full, e))?;
        out.pop();
        if target.is_absolute() {
            // `/sys/x` means `x` under the root, which stands for `/sys`; anything else is
            // outside it.
            let Ok(inside) = target.strip_prefix("/sys") else {
                return Err(Error::OutsideRoot { path: full, target });
            };
            out.clear();
            push_components(&mut pending, inside);
        } else {
            push_components(&mut pending, &target);
        }
    }
    Ok(out)
}

fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let start = pending.len();
    for c in path.components() {
        match c {
            Component::Normal(s) => pending.push(s.to_owned()),
            Component::ParentDir => pending.push("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    pending[start..].reverse();
}

/// `root` joined with `components`.
pub(crate) fn join(root: &Path, components: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(components);
    p
}
