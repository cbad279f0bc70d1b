//! depmod.d: where depmod looks for modules and which copy of a module wins.
//!
//! Parsed as kmod 30's tools/depmod.c does (`cfg_file_parse`, `cfg_load`):
//!
//! | line | meaning |
//! |---|---|
//! | `search DIR... built-in external` | directories (relative to `/lib/modules/VERSION`) in decreasing priority; `built-in` stands for every other directory of the tree, `external` for the `external` directories |
//! | `override MODULE KVER SUBDIR` | `SUBDIR/MODULE.ko*` wins over any other copy of `MODULE`, for kernels matching `KVER` |
//! | `external KVER DIR` | an absolute directory outside the tree searched too, for kernels matching `KVER` |
//! | `exclude DIR...` | directory names skipped while walking the tree (besides `build` and `source`) |
//!
//! With no `search` line at all, depmod searches `updates` first, then the rest of the tree
//! (kmod: "for backward compatibility add "updates" to the head of the search list").
//!
//! # Priorities
//!
//! When two files give the same module name, depmod keeps one (kmod's
//! `depmod_module_is_higher_priority`):
//! 1. overrides first: a file whose path (relative to the tree, without the `.ko*` extension)
//!    is `SUBDIR/MODULE` of an override wins. kmod walks the overrides from the **last** line
//!    read to the first, so of two overrides for one module the later line decides;
//!    [`DepmodConfig::overrides_for`] returns them in that order.
//! 2. otherwise each file gets the rank of the first `search` entry (in file order) whose
//!    directory is a prefix of its relative path (`DIR/`); a file under no listed directory
//!    gets the rank of `built-in` (or none at all, below every listed directory, when there is
//!    no `built-in`); a file from an `external` directory gets the rank of `external`. The
//!    lower rank (earlier `search` entry) wins; on a tie the file found first stays.
//!    [`DepmodConfig::rank`] computes this.
//!
//! The kernel version in `override` and `external` lines is matched as depmod does
//! (`cfg_kernel_matches`): `*` matches every kernel, anything else is a POSIX extended regular
//! expression searched (unanchored) in the version, and a pattern that does not compile
//! matches nothing. [`Override::matches_kernel`] and [`External::matches_kernel`] do this;
//! [`DepmodConfig::for_kernel`] keeps only the lines for one kernel. depmod itself drops
//! non-matching lines while parsing, which is the same.

use std::path::{Path, PathBuf};

use crate::Warning;
use crate::files::{self, Accept};
use crate::lines::{Tokens, logical_lines};

/// The default depmod.d directories of kmod 30 (`default_cfg_paths` in tools/depmod.c), in
/// the order that decides which of two files of the same name wins.
pub const DEFAULT_DIRS: [&str; 4] = [
    "/etc/depmod.d",
    "/run/depmod.d",
    "/usr/local/lib/depmod.d",
    "/lib/depmod.d",
];

/// What `search` lists, in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// A directory relative to `/lib/modules/VERSION` (as written: `updates`, `extra`, ...).
    Dir(String),
    /// `built-in`: every directory of the tree not listed elsewhere.
    BuiltIn,
    /// `external`: the directories of `external` lines.
    External,
}

/// `override MODULE KVER SUBDIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The module name as written (depmod does not normalise it).
    pub module: String,
    /// The kernel version pattern (`*` or a POSIX ERE).
    pub kernel: String,
    /// The directory relative to the tree where the winning copy lives.
    pub subdir: String,
}

/// `external KVER DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// The kernel version pattern (`*` or a POSIX ERE).
    pub kernel: String,
    /// The directory, absolute (not under the module tree).
    pub dir: String,
}

/// The whole depmod.d configuration, every list in the order of the lines read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepmodConfig {
    /// `search` entries in file order, first = highest priority. [`DepmodConfig::load`] adds
    /// kmod's default (`updates`) when no `search` line was read; [`DepmodConfig::parse`] does
    /// not (call [`DepmodConfig::finish`] after parsing by hand).
    pub search: Vec<Search>,
    /// `override` lines in file order (see [`DepmodConfig::overrides_for`] for kmod's order).
    pub overrides: Vec<Override>,
    /// `external` lines in file order.
    pub external: Vec<External>,
    /// `exclude` directory names in file order.
    pub excludes: Vec<String>,
}

/// Does a depmod.d kernel pattern match `kernel`? (`cfg_kernel_matches` in tools/depmod.c.)
pub fn kernel_matches(pattern: &str, kernel: &str) -> bool {
    pattern == "*" || crate::ere::search(pattern, kernel).unwrap_or(false)
}

impl Override {
    /// Does this line apply to `kernel`?
    pub fn matches_kernel(&self, kernel: &str) -> bool {
        kernel_matches(&self.kernel, kernel)
    }

    /// The path (relative to the tree, no extension) this override makes win:
    /// `SUBDIR/MODULE`, as depmod compares it.
    pub fn path(&self) -> String {
        format!("{}/{}", self.subdir, self.module)
    }
}

impl External {
    /// Does this line apply to `kernel`?
    pub fn matches_kernel(&self, kernel: &str) -> bool {
        kernel_matches(&self.kernel, kernel)
    }
}

impl DepmodConfig {
    /// kmod 30's default directories, [`DEFAULT_DIRS`].
    pub fn default_dirs() -> Vec<PathBuf> {
        DEFAULT_DIRS.iter().map(PathBuf::from).collect()
    }

    /// Reads the configuration from `dirs` (directories or single files, like depmod's
    /// default list or its `-C` arguments): `*.conf` files sorted by name across all of them,
    /// the first file of a name winning, then kmod's default `search updates` when no
    /// `search` line was read. Missing directories are skipped silently, as depmod does.
    pub fn load(dirs: &[PathBuf]) -> (DepmodConfig, Vec<Warning>) {
        let mut config = DepmodConfig::default();
        let mut warnings = Vec::new();
        let list = files::list(dirs, Accept::Conf, &mut warnings);
        files::parse_all(&list, &mut warnings, |text, file, w| {
            DepmodConfig::parse(text, file, &mut config, w)
        });
        config.finish();
        (config, warnings)
    }

    /// Parses one depmod.d file's `text` (named `file` in warnings) into `into`. Bad lines
    /// become warnings and parsing goes on.
    pub fn parse(text: &str, file: &Path, into: &mut DepmodConfig, warnings: &mut Vec<Warning>) {
        for line in logical_lines(text) {
            if line.text.is_empty() || line.text.starts_with('#') {
                continue;
            }
            let mut tok = Tokens::new(&line.text);
            let Some(cmd) = tok.word() else { continue };
            let bad = |warnings: &mut Vec<Warning>| {
                warnings.push(Warning::BadDepmodLine {
                    file: file.to_path_buf(),
                    line: line.number,
                    start: cmd.to_owned(),
                })
            };
            match cmd {
                "search" => {
                    while let Some(word) = tok.word() {
                        into.search.push(match word {
                            "built-in" => Search::BuiltIn,
                            "external" => Search::External,
                            dir => Search::Dir(dir.to_owned()),
                        });
                    }
                }
                "override" => match (tok.word(), tok.word(), tok.word()) {
                    (Some(module), Some(kernel), Some(subdir)) => into.overrides.push(Override {
                        module: module.to_owned(),
                        kernel: kernel.to_owned(),
                        subdir: subdir.to_owned(),
                    }),
                    _ => bad(warnings),
                },
                "external" => match (tok.word(), tok.word()) {
                    (Some(kernel), Some(dir)) => into.external.push(External {
                        kernel: kernel.to_owned(),
                        dir: dir.to_owned(),
                    }),
                    _ => bad(warnings),
                },
                "exclude" => {
                    while let Some(word) = tok.word() {
                        into.excludes.push(word.to_owned());
                    }
                }
                "include" | "make_map_files" => warnings.push(Warning::NotImplemented {
                    file: file.to_path_buf(),
                    line: line.number,
                    command: cmd.to_owned(),
                }),
                _ => bad(warnings),
            }
        }
    }

    /// Applies kmod's default after all files are parsed: `search updates` when no `search`
    /// line was read. ([`DepmodConfig::load`] calls it.)
    pub fn finish(&mut self) {
        if self.search.is_empty() {
            self.search.push(Search::Dir("updates".to_owned()));
        }
    }

    /// The configuration for one kernel: `override` and `external` lines whose kernel pattern
    /// does not match `kernel` are dropped, as depmod drops them while parsing.
    pub fn for_kernel(&self, kernel: &str) -> DepmodConfig {
        DepmodConfig {
            search: self.search.clone(),
            overrides: self
                .overrides
                .iter()
                .filter(|o| o.matches_kernel(kernel))
                .cloned()
                .collect(),
            external: self
                .external
                .iter()
                .filter(|e| e.matches_kernel(kernel))
                .cloned()
                .collect(),
            excludes: self.excludes.clone(),
        }
    }

    /// The overrides in the order depmod consults them: last line first. The first one whose
    /// [`Override::path`] equals a candidate's path decides.
    pub fn overrides_for<'a>(&'a self, kernel: &'a str) -> impl Iterator<Item = &'a Override> {
        self.overrides
            .iter()
            .rev()
            .filter(move |o| o.matches_kernel(kernel))
    }

    /// The rank of a module file (0 = highest priority), as depmod ranks candidates with the
    /// same name: `relpath` is the path relative to `/lib/modules/VERSION` for a file in the
    /// tree, `None` for a file from an `external` directory. `None` means "below every
    /// `search` entry" (no `built-in`/`external` entry covers it).
    ///
    /// The rank is the index of the first `search` entry (in file order) that covers the file.
    /// Lower wins; `None` loses to every rank. depmod has one quirk this cannot express: when
    /// the same `search` directory covers both candidates, it credits only the new one and
    /// gives the old one the `built-in` rank.
    pub fn rank(&self, relpath: Option<&str>) -> Option<usize> {
        // depmod walks its list last line first and the last assignment stays, which is the
        // first matching entry in file order.
        let mut found = None;
        let mut builtin = None;
        let mut external = None;
        for (i, s) in self.search.iter().enumerate().rev() {
            match s {
                Search::BuiltIn => builtin = Some(i),
                Search::External => external = Some(i),
                Search::Dir(dir) => {
                    if let Some(rel) = relpath
                        && rel.len() > dir.len()
                        && rel.as_bytes()[dir.len()] == b'/'
                        && rel.starts_with(dir.as_str())
                    {
                        found = Some(i);
                    }
                }
            }
        }
        match relpath {
            Some(_) => found.or(builtin),
            None => external,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (DepmodConfig, Vec<String>) {
        let mut c = DepmodConfig::default();
        let mut w = Vec::new();
        DepmodConfig::parse(text, Path::new("/etc/depmod.d/t.conf"), &mut c, &mut w);
        (c, w.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_directive() {
        let (c, w) = parse(
            "# comment\n\nsearch updates extra built-in\tweak-updates external\n\
             override e1000e 6.1.0-28-amd64 updates/drivers\n\
             override foo * extra\n\
             external 6.1.* /opt/mods\n\
             exclude .debug  tmp\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.search,
            vec![
                Search::Dir("updates".into()),
                Search::Dir("extra".into()),
                Search::BuiltIn,
                Search::Dir("weak-updates".into()),
                Search::External,
            ]
        );
        assert_eq!(c.overrides[0].path(), "updates/drivers/e1000e");
        assert_eq!(c.overrides[1].kernel, "*");
        assert_eq!(
            c.external,
            vec![External {
                kernel: "6.1.*".into(),
                dir: "/opt/mods".into()
            }]
        );
        assert_eq!(c.excludes, vec![".debug", "tmp"]);
    }

    #[test]
    fn bad_lines_warn_with_file_and_line() {
        let (c, w) = parse(
            "override onlymodule\nexternal 6.1\nfrobnicate x\n  # indented comment\n\
             include /x\nmake_map_files\nsearch a \\\n b\noverride m\\\n",
        );
        assert_eq!(
            w,
            vec![
                "/etc/depmod.d/t.conf:1: ignoring bad line starting with 'override'",
                "/etc/depmod.d/t.conf:2: ignoring bad line starting with 'external'",
                "/etc/depmod.d/t.conf:3: ignoring bad line starting with 'frobnicate'",
                "/etc/depmod.d/t.conf:4: ignoring bad line starting with '#'",
                "/etc/depmod.d/t.conf:5: command include not implemented yet",
                "/etc/depmod.d/t.conf:6: command make_map_files not implemented yet",
                // kmod counts the continued last line and the end of file: 10.
                "/etc/depmod.d/t.conf:10: ignoring bad line starting with 'override'",
            ]
        );
        assert_eq!(
            c.search,
            vec![Search::Dir("a".into()), Search::Dir("b".into())]
        );
    }

    #[test]
    fn default_search_is_updates() {
        let mut c = parse("exclude x\n").0;
        c.finish();
        assert_eq!(c.search, vec![Search::Dir("updates".into())]);
        let mut c = parse("search\n").0;
        c.finish();
        assert_eq!(
            c.search,
            vec![Search::Dir("updates".into())],
            "an empty search line adds nothing"
        );
    }

    #[test]
    fn kernel_patterns() {
        let (c, _) = parse(
            "override a * x\noverride b 6.1.0-28-amd64 x\noverride c ^6\\.12 x\n\
             override d 6.1 x\noverride e ( x\nexternal * /a\nexternal ^5 /b\n",
        );
        let k = c.for_kernel("6.1.0-28-amd64");
        let names: Vec<_> = k.overrides.iter().map(|o| o.module.as_str()).collect();
        assert_eq!(names, ["a", "b", "d"]);
        assert_eq!(k.external.len(), 1);
        assert!(kernel_matches("*", ""));
        assert!(
            !kernel_matches("**", "6.1"),
            "only a lone * is special; ** is a bad regex"
        );
        let order: Vec<_> = c
            .overrides_for("6.12.1")
            .map(|o| o.module.as_str())
            .collect();
        assert_eq!(order, ["d", "c", "a"], "last line first, like depmod");
    }

    #[test]
    fn ranks_follow_search_order() {
        let (c, _) = parse("search updates extra built-in external\n");
        assert_eq!(c.rank(Some("updates/a.ko")), Some(0));
        assert_eq!(c.rank(Some("extra/x/a.ko")), Some(1));
        assert_eq!(c.rank(Some("kernel/a.ko")), Some(2));
        assert_eq!(
            c.rank(Some("updatesX/a.ko")),
            Some(2),
            "a prefix must end at a /"
        );
        assert_eq!(c.rank(None), Some(3));
        let mut c = parse("exclude x").0;
        c.finish();
        assert_eq!(c.rank(Some("updates/a.ko")), Some(0));
        assert_eq!(
            c.rank(Some("kernel/a.ko")),
            None,
            "no built-in: below everything"
        );
        assert_eq!(c.rank(None), None);
        let (c, _) = parse("search extra\nsearch updates extra built-in\n");
        assert_eq!(
            c.rank(Some("extra/a.ko")),
            Some(0),
            "first entry in file order counts"
        );
        assert_eq!(c.rank(Some("updates/a.ko")), Some(1));
    }
}
