//! Module names as kmod spells them: from file names, normalised (`-` as `_`), and the file
//! name extensions of module files.

use std::path::Path;

/// File name extensions of module files, as kmod's `path_ends_with_kmod_ext` knows them.
const MODULE_EXTENSIONS: &[&[u8]] = &[b".ko", b".ko.gz", b".ko.xz", b".ko.zst"];

/// Does this path end in a module file extension (`.ko`, `.ko.gz`, `.ko.xz`, `.ko.zst`)?
pub fn has_module_extension(path: &[u8]) -> bool {
    MODULE_EXTENSIONS.iter().any(|ext| path.ends_with(ext))
}

/// The module name of a module file: its base name up to the first `.`, with `-` as `_`
/// (kmod's `path_to_modname`).
pub fn module_name_from_path(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let stem = base.split('.').next().unwrap_or_default();
    normalize_name(stem)
}

/// A module name with `-` as `_` (kmod's `alias_normalize`, outside `[...]`); a name kmod
/// would refuse for its brackets still gets every `-` turned into `_`.
pub fn normalize_name(name: &str) -> String {
    modkit_glob::normalize_alias(name).unwrap_or_else(|| name.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_outside_brackets() {
        assert_eq!(normalize_name("snd-hda-intel"), "snd_hda_intel");
        assert_eq!(normalize_name("pci:v[a-f]-x"), "pci:v[a-f]_x");
        assert_eq!(
            module_name_from_path(Path::new("/x/hello-api.ko.xz")),
            "hello_api"
        );
        assert!(has_module_extension(b"a/b.ko.zst"));
        assert!(!has_module_extension(b"a/b.ko.bz2"));
    }
}
