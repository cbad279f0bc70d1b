//! kmod's rules for module names and module file names, the one copy in modkit: which files
//! are modules, the module name of a file, a name or alias normalised (kmod 30
//! `libkmod/libkmod-util.c`).
//!
//! What kmod 30 does, checked against its binary (Debian 12):
//! - a module *name* has every `-` made `_`, inside `[...]` too, and ends at its first `.`
//!   (`rmmod 'a[x-y]'` and `rmmod snd-hda.intel` report `a[x_y]` and `snd_hda`);
//! - an *alias* keeps the `-` of a `[...]` range and its `.`s, and is refused with an unmatched
//!   bracket (`modprobe`, `modinfo` and depmod's alias index);
//! - a module file's name must be longer than its extension (depmod skips a file named `.ko`,
//!   `modinfo .ko` looks up the name `.ko`);
//! - the base name of a path ending in `/` is empty, and such a path names no module (`rmmod
//!   DIR/` says "could not use module DIR/: No such file or directory").
//!
//! Names are taken whole: kmod 30 aborts ("stack smashing detected") on a name of 4095
//! (`PATH_MAX - 1`) bytes or more, so there is no truncation of its to copy.

use std::ffi::OsStr;

/// The file name endings of module files, uncompressed first (kmod's `kmod_exts`).
///
/// kmod lists a compressed ending only when built with that decompressor; Debian 12's kmod 30
/// has no zlib, so its depmod skips `.ko.gz` files. modkit reads all three compressions.
pub const MODULE_EXTENSIONS: [&str; 4] = [".ko", ".ko.gz", ".ko.xz", ".ko.zst"];

/// Whether `path` ends in a module extension with something before it (kmod's
/// `path_ends_with_kmod_ext`).
///
/// kmod asks this of a file name in depmod's walk and of the whole argument in modinfo (for a
/// regular file), so `.ko` is no module file but `./.ko` is.
pub fn path_ends_with_kmod_ext(path: impl AsRef<OsStr>) -> bool {
    let path = path.as_ref().as_encoded_bytes();
    MODULE_EXTENSIONS
        .iter()
        .any(|ext| path.len() > ext.len() && path.ends_with(ext.as_bytes()))
}

/// The module name of a file (kmod's `path_to_modname`): its base name (what follows the last
/// `/`) as [`modname_normalize`] makes it. `None` when the base name is empty (`""`, `dir/`),
/// where kmod fails with `ENOENT`.
pub fn path_to_modname(path: impl AsRef<OsStr>) -> Option<String> {
    let path = path.as_ref().as_encoded_bytes();
    let base = match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    };
    if base.is_empty() {
        return None;
    }
    Some(modname_normalize_bytes(base))
}

/// A module name as kmod keeps it (kmod's `modname_normalize`, used by
/// `kmod_module_new_from_name`): up to the first `.` (or NUL), with every `-` as `_`.
pub fn modname_normalize(name: &str) -> String {
    modname_normalize_bytes(name.as_bytes())
}

fn modname_normalize_bytes(name: &[u8]) -> String {
    let end = name
        .iter()
        .position(|&b| b == b'.' || b == 0)
        .unwrap_or(name.len());
    let normalized: Vec<u8> = name[..end]
        .iter()
        .map(|&b| if b == b'-' { b'_' } else { b })
        .collect();
    String::from_utf8_lossy(&normalized).into_owned()
}

/// An alias (or a name looked up as one) as kmod keys it (kmod's `alias_normalize`, and its
/// `underscores` for the module names of configuration files and the kernel command line):
/// `-` as `_` outside `[...]`; it ends at a NUL. `None` when kmod refuses it (a `]` outside brackets
/// or an unterminated `[`): lookups find nothing and depmod leaves it out of
/// modules.alias.bin with "Unmatched bracket".
pub fn alias_normalize(alias: &str) -> Option<String> {
    let mut out = String::with_capacity(alias.len());
    let mut chars = alias.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return None,
            '[' => {
                out.push('[');
                loop {
                    let c = chars.next()?;
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            // Like a C string, the alias ends at a NUL.
            '\0' => break,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_replace_every_dash_and_end_at_the_first_dot() {
        assert_eq!(modname_normalize("snd-hda-intel"), "snd_hda_intel");
        // kmod 30: `rmmod 'a[x-y]'` -> "Module a[x_y] is not currently loaded".
        assert_eq!(modname_normalize("a[x-y]"), "a[x_y]");
        // kmod 30: `rmmod snd-hda.intel` -> "Module snd_hda is not currently loaded".
        assert_eq!(modname_normalize("snd-hda.intel"), "snd_hda");
        assert_eq!(modname_normalize("no_dot"), "no_dot");
        assert_eq!(modname_normalize(".ko"), "");
        assert_eq!(modname_normalize(""), "");
        assert_eq!(modname_normalize("a-\0-b"), "a_");
        // Only the base name of a path is cut: a name is not a path.
        assert_eq!(modname_normalize("/no-such/dir"), "/no_such/dir");
    }

    #[test]
    fn module_names_of_files() {
        let name = |p: &str| path_to_modname(p);
        assert_eq!(
            name("kernel/a/snd-hda-intel.ko.xz").as_deref(),
            Some("snd_hda_intel")
        );
        // depmod 30 indexes `kernel/a[x-y].ko` as the module "a[x_y]".
        assert_eq!(name("/m/a[x-y].ko").as_deref(), Some("a[x_y]"));
        assert_eq!(name("hello_api").as_deref(), Some("hello_api"));
        assert_eq!(name("/tmp/dir").as_deref(), Some("dir"));
        assert_eq!(name("x/.ko").as_deref(), Some(""));
        assert_eq!(name("/x/..").as_deref(), Some(""));
        // GNU basename of "dir/" is empty: kmod 30's `rmmod DIR/` cannot use it.
        assert_eq!(name("/tmp/dir/"), None);
        assert_eq!(name(""), None);
        assert_eq!(name("/"), None);
        // Bytes that are not UTF-8 survive as replacement characters.
        let raw = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/m/b\xff-c.ko");
        assert_eq!(path_to_modname(raw).as_deref(), Some("b\u{fffd}_c"));
    }

    #[test]
    fn module_extensions_need_a_name_before_them() {
        for yes in [
            "a.ko",
            "a.ko.gz",
            "a.ko.xz",
            "a.ko.zst",
            "./.ko",
            "/m/x/.ko.xz",
            "..ko",
        ] {
            assert!(path_ends_with_kmod_ext(yes), "{yes}");
        }
        // depmod 30 skips a file named `.ko`; `modinfo .ko` takes it for a name.
        for no in [
            ".ko", ".ko.gz", ".ko.xz", ".ko.zst", "", "a.o", "a.ko.bz2", "a.ko/", "ko",
        ] {
            assert!(!path_ends_with_kmod_ext(no), "{no}");
        }
        assert_eq!(MODULE_EXTENSIONS[0], ".ko");
    }

    #[test]
    fn aliases_keep_bracket_ranges() {
        assert_eq!(
            alias_normalize("snd-hda-intel").as_deref(),
            Some("snd_hda_intel")
        );
        assert_eq!(alias_normalize("a-[x-z]-b").as_deref(), Some("a_[x-z]_b"));
        assert_eq!(alias_normalize("a[x-y]").as_deref(), Some("a[x-y]"));
        // Dots stay: an alias is not cut like a module name.
        assert_eq!(
            alias_normalize("hello-api.ko").as_deref(),
            Some("hello_api.ko")
        );
        assert_eq!(
            alias_normalize("a[b-c]-d[-]-").as_deref(),
            Some("a[b-c]_d[-]_")
        );
        // No nesting, like kmod: the first `]` closes.
        assert_eq!(alias_normalize("a[[-]-").as_deref(), Some("a[[-]_"));
        assert_eq!(alias_normalize("a[[-]]"), None);
        assert_eq!(alias_normalize("").as_deref(), Some(""));
        assert_eq!(alias_normalize("a]"), None);
        assert_eq!(alias_normalize("a[b-"), None);
        assert_eq!(alias_normalize("a-\0-b").as_deref(), Some("a_"));
    }
}
