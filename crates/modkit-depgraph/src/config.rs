//! depmod.d: which directories win when a module name appears twice (`search`, `override`),
//! extra module directories (`external`) and directories to skip (`exclude`).
//!
//! The rules follow kmod 30 `tools/depmod.c` (`cfg_file_parse`, `cfg_load`,
//! `depmod_module_is_higher_priority`).

use std::path::{Path, PathBuf};

/// The configuration directories kmod 30's depmod reads, in its order (`default_cfg_paths`).
pub const DEFAULT_CONFIG_DIRS: &[&str] = &["/run/depmod.d", "/etc/depmod.d", "/lib/depmod.d"];

/// One entry of a `search` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// A subdirectory of the module directory (`updates`, `extra`, ...).
    Dir(String),
    /// `built-in`: the kernel's own directories (everything not matched by another entry).
    BuiltIn,
    /// `external`: the directories of `external` lines.
    External,
}

/// `override MODULE KVER SUBDIR`, kept only when KVER matches the kernel version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The module name (as in the file name, before the extension).
    pub module: String,
    /// The subdirectory of the module directory the module must come from.
    pub subdir: String,
}

/// A problem in a configuration file; depmod reports it and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number (0 for problems with the file as a whole).
    pub line: usize,
    /// What is wrong, in kmod's words.
    pub message: String,
}

/// The depmod configuration, with kmod's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepmodConfig {
    /// `search` entries, highest priority first.
    pub search: Vec<Search>,
    /// `override` lines matching the kernel version, in file order.
    pub overrides: Vec<Override>,
    /// `external` directories matching the kernel version, in file order.
    pub external: Vec<PathBuf>,
    /// `exclude` directory names.
    pub excludes: Vec<String>,
}

impl Default for DepmodConfig {
    /// No configuration file: kmod searches `updates` first, then the rest.
    fn default() -> Self {
        DepmodConfig {
            search: vec![Search::Dir("updates".into())],
            overrides: Vec::new(),
            external: Vec::new(),
            excludes: Vec::new(),
        }
    }
}

impl DepmodConfig {
    /// Load the `*.conf` files of `paths` (directories or single files) for kernel `kversion`:
    /// files sorted by name across all directories, the first of a name winning, as kmod does.
    pub fn load(paths: &[PathBuf], kversion: &str) -> (DepmodConfig, Vec<Warning>) {
        let mut warnings = Vec::new();
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            if !meta.is_dir() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                insert_sorted(&mut files, name, path.clone());
                continue;
            }
            let Ok(entries) = std::fs::read_dir(path) else {
                warnings.push(Warning {
                    path: path.clone(),
                    line: 0,
                    message: "could not read directory".into(),
                });
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name.len() < 6 || !name.ends_with(".conf") {
                    continue;
                }
                let full = path.join(&name);
                if full.is_dir() {
                    warnings.push(Warning {
                        path: full,
                        line: 0,
                        message: "Directories inside directories are not supported".into(),
                    });
                    continue;
                }
                insert_sorted(&mut files, name, full);
            }
        }
        let mut parsed = Parsed::default();
        for (_, file) in &files {
            match std::fs::read(file) {
                Ok(bytes) => parse_into(
                    &String::from_utf8_lossy(&bytes),
                    file,
                    kversion,
                    &mut parsed,
                    &mut warnings,
                ),
                Err(err) => warnings.push(Warning {
                    path: file.clone(),
                    line: 0,
                    message: format!("file parse {}: {err}", file.display()),
                }),
            }
        }
        (parsed.finish(), warnings)
    }

    /// Parse one configuration text (tests and callers with their own file handling).
    pub fn parse(text: &str, path: &Path, kversion: &str) -> (DepmodConfig, Vec<Warning>) {
        let mut parsed = Parsed::default();
        let mut warnings = Vec::new();
        parse_into(text, path, kversion, &mut parsed, &mut warnings);
        (parsed.finish(), warnings)
    }

    /// The priority of a module at `relpath` (relative to the module directory; `None` for a
    /// module outside it, i.e. from an `external` directory): a higher number wins. kmod keeps
    /// its search list in reverse, so the first entry of a `search` line has the highest index.
    fn priority(&self, relpath: Option<&str>) -> i64 {
        let n = self.search.len() as i64;
        let mut builtin = -1;
        let mut external = -1;
        let mut own = -1;
        // kmod walks its (reversed) list and the last match wins; in our order the first
        // match of a directory is the one with the highest kmod index.
        for (i, s) in self.search.iter().enumerate() {
            let kmod_index = n - 1 - i as i64;
            match s {
                Search::BuiltIn => {
                    if builtin < 0 {
                        builtin = kmod_index;
                    }
                }
                Search::External => {
                    if external < 0 {
                        external = kmod_index;
                    }
                }
                Search::Dir(dir) => {
                    if own < 0
                        && let Some(rel) = relpath
                        && rel.len() > dir.len()
                        && rel.starts_with(dir.as_str())
                        && rel.as_bytes()[dir.len()] == b'/'
                    {
                        own = kmod_index;
                    }
                }
            }
        }
        if relpath.is_none() {
            return external;
        }
        if own < 0 { builtin } else { own }
    }

    /// Whether the module already kept (`old`) beats a new one of the same name (`new`); paths
    /// relative to the module directory, `modname` the shared name. Ties keep the old one.
    pub fn keeps_existing(&self, modname: &str, old: Option<&str>, new: Option<&str>) -> bool {
        // kmod matches overrides as "SUBDIR/MODNAME" against the path without extension.
        let stem = |p: &str| -> String {
            let (dir, file) = p.rsplit_once('/').unwrap_or(("", p));
            let base = file.split('.').next().unwrap_or(file);
            if dir.is_empty() {
                base.to_owned()
            } else {
                format!("{dir}/{base}")
            }
        };
        for ov in &self.overrides {
            if ov.module.replace('-', "_") != modname {
                continue;
            }
            let wanted = format!("{}/{}", ov.subdir, ov.module);
            if new.is_some_and(|n| stem(n) == wanted) {
                return false;
            }
            if old.is_some_and(|o| stem(o) == wanted) {
                return true;
            }
        }
        self.priority(new) <= self.priority(old)
    }

    /// Whether a directory entry called `name` is skipped while scanning (`.`, `..`, `build`,
    /// `source` and `exclude` lines).
    pub fn is_excluded(&self, name: &str) -> bool {
        name == "."
            || name == ".."
            || name == "build"
            || name == "source"
            || self.excludes.iter().any(|e| e == name)
    }
}

#[derive(Debug, Default)]
struct Parsed {
    /// In file order (kmod keeps them reversed and gives the last the highest index; the
    /// priority computation accounts for that).
    search_rev: Vec<Search>,
    overrides: Vec<Override>,
    external: Vec<PathBuf>,
    excludes: Vec<String>,
}

impl Parsed {
    fn finish(self) -> DepmodConfig {
        let search = if self.search_rev.is_empty() {
            vec![Search::Dir("updates".into())]
        } else {
            self.search_rev
        };
        DepmodConfig {
            search,
            overrides: self.overrides,
            external: self.external,
            excludes: self.excludes,
        }
    }
}

fn insert_sorted(files: &mut Vec<(String, PathBuf)>, name: String, path: PathBuf) {
    match files.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
        Ok(_) => {} // the first file of a name wins
        Err(pos) => files.insert(pos, (name, path)),
    }
}

/// kmod's `cfg_kernel_matches`: `*` or an extended regular expression. Without a regex engine
/// we support what depmod.d files use in practice: `*`, a literal version, and a pattern whose
/// only special characters are `.`, `*`, `^`, `$` (matched as a regex over the version).
fn kernel_matches(pattern: &str, kversion: &str) -> bool {
    pattern == "*" || simple_regex(pattern.as_bytes(), kversion.as_bytes())
}

/// A small unanchored regex matcher for `.`, `*`, `^`, `$` and literals (Pike/Kernighan style).
fn simple_regex(re: &[u8], text: &[u8]) -> bool {
    if let Some(rest) = re.strip_prefix(b"^") {
        return match_here(rest, text);
    }
    (0..=text.len()).any(|i| match_here(re, &text[i..]))
}

fn match_here(re: &[u8], text: &[u8]) -> bool {
    match re {
        [] => true,
        [b'$'] => text.is_empty(),
        [c, b'*', rest @ ..] => {
            let mut i = 0;
            loop {
                if match_here(rest, &text[i..]) {
                    return true;
                }
                if i < text.len() && (*c == b'.' || text[i] == *c) {
                    i += 1;
                } else {
                    return false;
                }
            }
        }
        [c, rest @ ..] => {
            !text.is_empty() && (*c == b'.' || text[0] == *c) && match_here(rest, &text[1..])
        }
    }
}

fn parse_into(
    text: &str,
    path: &Path,
    kversion: &str,
    out: &mut Parsed,
    warnings: &mut Vec<Warning>,
) {
    for (line_no, line) in logical_lines(text) {
        let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
        let Some(cmd) = words.next() else { continue };
        if cmd.starts_with('#') {
            continue;
        }
        let bad = |warnings: &mut Vec<Warning>| {
            warnings.push(Warning {
                path: path.to_path_buf(),
                line: line_no,
                message: format!("ignoring bad line starting with '{cmd}'"),
            });
        };
        match cmd {
            "search" => {
                for w in words {
                    out.search_rev.push(match w {
                        "built-in" => Search::BuiltIn,
                        "external" => Search::External,
                        dir => Search::Dir(dir.to_owned()),
                    });
                }
            }
            "override" => {
                let (Some(module), Some(version), Some(subdir)) =
                    (words.next(), words.next(), words.next())
                else {
                    bad(warnings);
                    continue;
                };
                if kernel_matches(version, kversion) {
                    out.overrides.push(Override {
                        module: module.to_owned(),
                        subdir: subdir.to_owned(),
                    });
                }
            }
            "external" => {
                let (Some(version), Some(dir)) = (words.next(), words.next()) else {
                    bad(warnings);
                    continue;
                };
                if kernel_matches(version, kversion) {
                    out.external.push(PathBuf::from(dir));
                }
            }
            "exclude" => {
                let mut any = false;
                for w in words {
                    out.excludes.push(w.to_owned());
                    any = true;
                }
                if !any {
                    bad(warnings);
                }
            }
            "include" | "make_map_files" => {}
            _ => bad(warnings),
        }
    }
}

/// Lines with `\` continuations joined, each with the number of its first physical line;
/// lines starting with `#` are comments.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = i + 1;
            if raw.starts_with('#') {
                continue;
            }
        }
        if let Some(cont) = raw.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
        } else {
            current.push_str(raw);
            out.push((start, std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (DepmodConfig, Vec<Warning>) {
        DepmodConfig::parse(text, Path::new("t.conf"), "6.1.0-56-amd64")
    }

    #[test]
    fn default_searches_updates_first() {
        let cfg = DepmodConfig::default();
        assert!(!cfg.keeps_existing("m", Some("kernel/a/m.ko"), Some("updates/m.ko")));
        assert!(cfg.keeps_existing("m", Some("updates/m.ko"), Some("kernel/a/m.ko")));
        // A tie keeps the first one found.
        assert!(cfg.keeps_existing("m", Some("kernel/a/m.ko"), Some("kernel/b/m.ko")));
    }

    #[test]
    fn search_order_and_builtin() {
        let (cfg, warnings) = parse("search extra updates built-in\n");
        assert!(warnings.is_empty());
        assert_eq!(
            cfg.search,
            vec![
                Search::Dir("extra".into()),
                Search::Dir("updates".into()),
                Search::BuiltIn
            ]
        );
        assert!(!cfg.keeps_existing("m", Some("updates/m.ko"), Some("extra/m.ko")));
        assert!(cfg.keeps_existing("m", Some("updates/m.ko"), Some("kernel/m.ko")));
        assert!(!cfg.keeps_existing("m", Some("kernel/m.ko"), Some("updates/m.ko")));
        // "updatesX/" is not under "updates/".
        assert!(cfg.keeps_existing("m", Some("kernel/m.ko"), Some("updatesX/m.ko")));
    }

    #[test]
    fn override_beats_search() {
        let (cfg, _) = parse("override m 6.1.* kernel/drivers\noverride z ^5 extra\n");
        assert_eq!(cfg.overrides.len(), 1);
        assert!(!cfg.keeps_existing("m", Some("updates/m.ko"), Some("kernel/drivers/m.ko")));
        assert!(cfg.keeps_existing("m", Some("kernel/drivers/m.ko.xz"), Some("updates/m.ko")));
    }

    #[test]
    fn bad_lines_warn_with_line_numbers() {
        let (cfg, warnings) = parse("# c\nsearch a \\\n b\nbogus x\noverride m\nexclude tests\n");
        assert_eq!(cfg.excludes, vec!["tests".to_owned()]);
        assert_eq!(
            cfg.search,
            vec![Search::Dir("a".into()), Search::Dir("b".into())]
        );
        let lines: Vec<_> = warnings
            .iter()
            .map(|w| (w.line, w.message.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (4, "ignoring bad line starting with 'bogus'"),
                (5, "ignoring bad line starting with 'override'")
            ]
        );
        assert!(cfg.is_excluded("tests") && cfg.is_excluded("build") && !cfg.is_excluded("kernel"));
    }

    #[test]
    fn version_patterns() {
        assert!(kernel_matches("*", "x"));
        assert!(kernel_matches("6.1.0-56-amd64", "6.1.0-56-amd64"));
        assert!(kernel_matches("^6.1", "6.1.0"));
        assert!(kernel_matches("amd64$", "6.1.0-56-amd64"));
        assert!(!kernel_matches("^5.*", "6.1.0"));
    }
}
