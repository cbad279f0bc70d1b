//! depmod.d as the scan uses it: which file wins when a module name appears twice (`search`,
//! `override`), extra directories (`external`) and names to skip (`exclude`). Parsing is
//! modkit-config's; the decision below follows kmod 30 `depmod_module_is_higher_priority`,
//! quirks included.

pub use modkit_config::depmod::{DepmodConfig, Search};

/// Whether the module already kept (at `old`) beats a new file with the same name (at `new`).
/// Paths are relative to the module directory, `None` for files outside it (`external`).
/// `config` must be [`DepmodConfig::for_kernel`] of the kernel being indexed.
pub fn keeps_existing(config: &DepmodConfig, old: Option<&str>, new: Option<&str>) -> bool {
    // Overrides: "SUBDIR/MODULE" against the path without its extension; the last line read
    // is consulted first.
    let stem = |p: &str| -> String {
        let (dir, file) = p.rsplit_once('/').unwrap_or(("", p));
        let base = file.split('.').next().unwrap_or(file);
        if dir.is_empty() {
            base.to_owned()
        } else {
            format!("{dir}/{base}")
        }
    };
    let (old_stem, new_stem) = (old.map(stem), new.map(stem));
    for ov in config.overrides.iter().rev() {
        let wanted = ov.path();
        if new_stem.as_deref() == Some(wanted.as_str()) {
            return false;
        }
        if old_stem.as_deref() == Some(wanted.as_str()) {
            return true;
        }
    }
    // kmod keeps its search list in reverse file order and numbers it from 0; for each entry
    // it tests the new path first and the old one only if the new did not match; the last
    // assignment stays. A higher number wins; a tie keeps the old file.
    let n = config.search.len() as i64;
    let covers = |dir: &str, path: Option<&str>| {
        path.is_some_and(|p| {
            p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/'
        })
    };
    let (mut builtin, mut external, mut new_prio, mut old_prio) = (-1i64, -1i64, -1i64, -1i64);
    for (file_index, s) in config.search.iter().enumerate().rev() {
        let i = n - 1 - file_index as i64;
        match s {
            Search::BuiltIn => builtin = i,
            Search::External => external = i,
            Search::Dir(dir) => {
                if covers(dir, new) {
                    new_prio = i;
                } else if covers(dir, old) {
                    old_prio = i;
                }
            }
        }
    }
    let fallback = |path: Option<&str>| if path.is_some() { builtin } else { external };
    if new_prio < 0 {
        new_prio = fallback(new);
    }
    if old_prio < 0 {
        old_prio = fallback(old);
    }
    new_prio <= old_prio
}

/// Whether a directory entry called `name` is skipped while scanning: `.`, `..`, `build`,
/// `source` and the `exclude` names.
pub fn is_excluded(config: &DepmodConfig, name: &str) -> bool {
    name == "."
        || name == ".."
        || name == "build"
        || name == "source"
        || config.excludes.iter().any(|e| e == name)
}

/// kmod's configuration without any depmod.d file: search `updates` first.
pub fn default_config() -> DepmodConfig {
    let mut c = DepmodConfig::default();
    c.finish();
    c
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> DepmodConfig {
        let mut c = DepmodConfig::default();
        let mut w = Vec::new();
        DepmodConfig::parse(text, Path::new("t.conf"), &mut c, &mut w);
        assert!(w.is_empty(), "{w:?}");
        c.finish();
        c.for_kernel("6.1.0-56-amd64")
    }

    #[test]
    fn default_searches_updates_first() {
        let cfg = default_config();
        assert!(!keeps_existing(
            &cfg,
            Some("kernel/a/m.ko"),
            Some("updates/m.ko")
        ));
        assert!(keeps_existing(
            &cfg,
            Some("updates/m.ko"),
            Some("kernel/a/m.ko")
        ));
        // A tie keeps the first one found.
        assert!(keeps_existing(
            &cfg,
            Some("kernel/a/m.ko"),
            Some("kernel/b/m.ko")
        ));
    }

    #[test]
    fn search_order_and_builtin() {
        let cfg = parse("search extra updates built-in\n");
        assert!(!keeps_existing(
            &cfg,
            Some("updates/m.ko"),
            Some("extra/m.ko")
        ));
        assert!(keeps_existing(
            &cfg,
            Some("updates/m.ko"),
            Some("kernel/m.ko")
        ));
        assert!(!keeps_existing(
            &cfg,
            Some("kernel/m.ko"),
            Some("updates/m.ko")
        ));
        // "updatesX/" is not under "updates/".
        assert!(keeps_existing(
            &cfg,
            Some("kernel/m.ko"),
            Some("updatesX/m.ko")
        ));
    }

    #[test]
    fn same_directory_quirk() {
        // kmod credits a directory to the new file only: the old one falls back to built-in,
        // so with built-in last the new file wins a tie kmod would otherwise keep.
        let cfg = parse("search updates built-in\n");
        assert!(!keeps_existing(
            &cfg,
            Some("updates/a/m.ko"),
            Some("updates/b/m.ko")
        ));
    }

    #[test]
    fn override_beats_search() {
        let cfg = parse("override m 6.1.* kernel/drivers\noverride z ^5 extra\n");
        assert_eq!(cfg.overrides.len(), 1);
        assert!(!keeps_existing(
            &cfg,
            Some("updates/m.ko"),
            Some("kernel/drivers/m.ko")
        ));
        assert!(keeps_existing(
            &cfg,
            Some("kernel/drivers/m.ko.xz"),
            Some("updates/m.ko")
        ));
    }

    #[test]
    fn excluded_names() {
        let cfg = parse("exclude tests\n");
        assert!(is_excluded(&cfg, "tests") && is_excluded(&cfg, "build"));
        assert!(!is_excluded(&cfg, "kernel"));
    }
}
