//! modprobe.d and the kernel command line: aliases, blacklist, options, install/remove
//! commands and soft dependencies, parsed as kmod 30's libkmod-config.c does.
//!
//! | line | kept as |
//! |---|---|
//! | `alias PATTERN MODULE` | [`Alias`]; both normalised (`-` -> `_`, not inside `[...]`) |
//! | `blacklist MODULE` | [`Blacklist`]; normalised |
//! | `options MODULE ARGS...` | [`Options`]; module normalised, arguments as written after the one space or tab that ends the module name, tabs turned into spaces |
//! | `install MODULE COMMAND...`, `remove MODULE COMMAND...` | [`Command`]; module normalised, command as written |
//! | `softdep MODULE pre: A... post: B...` | [`SoftDep`]; module normalised, dependencies as written |
//! | `weakdep MODULE A...` | [`WeakDep`] (kmod >= 33; kmod 30 rejects the line) |
//! | `include`, `config` | skipped with kmod's "deprecated" warning |
//!
//! A line starting with `#` is a comment, but only in the first column: kmod splits an
//! indented `# ...` into words and rejects it as a bad line, and reads an indented directive
//! as usual. A `\` at the end of a line continues it.
//!
//! **Soft dependencies:** every `softdep` line is kept, in order. kmod 30 uses only the first
//! line whose module matches (a known complaint); callers that want all of them merge
//! [`ModprobeConfig::softdeps_for`] themselves. kmod's word splitter is reproduced exactly,
//! including its quirk that a value starting with a blank loses its first word
//! (`softdep m  pre: a` — two spaces — has no `pre:` section for kmod).
//!
//! **Kernel command line:** `MODULE.PARAM=VALUE` and `MODULE.PARAM` words become options for
//! the module (normalised), after those of the files; `modprobe.blacklist=A,B` (any number of
//! times) adds blacklist entries, *not* normalised, as kmod 30 does. kmod has no other
//! `modprobe.*` keys: `modprobe.x=y` is an option for a module named `modprobe`. Quoting
//! follows kmod's `kmod_config_parse_kcmdline`: `mod.p="a b"` keeps the space and the quotes,
//! and `"mod.p=a b"` (as some boot loaders write it) is re-quoted to `p="a b"`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// kmod normalises the module names of its configuration with `underscores` (libkmod-util.c),
// the rule of its `alias_normalize`: `-` as `_` outside `[...]`, unmatched brackets refused.
use modkit_glob::name::alias_normalize;

use crate::Warning;
use crate::files::{self, Accept};
use crate::lines::{Tokens, logical_lines};

/// kmod 30's default modprobe.d directories (`default_config_paths` in libkmod.c), in the
/// order that decides which of two files of the same name wins.
pub const DEFAULT_DIRS: [&str; 4] = [
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/lib/modprobe.d",
];

/// What `modprobe -c` prints after the configuration, before it dumps the indexes.
pub const END_OF_CONFIG: &str = "\n# End of configuration files. Dumping indexes now:\n\n";

/// Where a configuration entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file and the line (the last physical line of a continued line).
    File {
        /// The file.
        path: PathBuf,
        /// The line.
        line: u32,
    },
    /// The kernel command line.
    Cmdline,
}

/// `alias PATTERN MODULE`: a name or fnmatch pattern that stands for a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The pattern, normalised.
    pub pattern: String,
    /// The module (or another alias), normalised.
    pub module: String,
    /// Where the line is.
    pub origin: Origin,
}

/// `blacklist MODULE` or `modprobe.blacklist=MODULE` on the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blacklist {
    /// The module: normalised from a file, as written from the command line.
    pub module: String,
    /// Where the line is.
    pub origin: Origin,
}

/// `options MODULE ARGS` or `MODULE.PARAM=VALUE` on the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The module, normalised.
    pub module: String,
    /// The arguments as kmod keeps them (tabs turned into spaces).
    pub options: String,
    /// Where the line is.
    pub origin: Origin,
}

/// `install MODULE COMMAND` or `remove MODULE COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The module, normalised.
    pub module: String,
    /// The shell command, as written.
    pub command: String,
    /// Where the line is.
    pub origin: Origin,
}

/// `softdep MODULE pre: A B post: C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftDep {
    /// The module, normalised.
    pub module: String,
    /// Modules to load before it, as written.
    pub pre: Vec<String>,
    /// Modules to load after it, as written.
    pub post: Vec<String>,
    /// Where the line is.
    pub origin: Origin,
    /// For each word of the line in order, whether it went to `pre` (kmod 30's `modprobe -c`
    /// prints each section as the run of words from its first to its last, whatever lies
    /// between).
    sections: Vec<bool>,
}

impl SoftDep {
    /// A soft dependency with the `pre` words first, then the `post` words.
    pub fn new(module: String, pre: Vec<String>, post: Vec<String>, origin: Origin) -> SoftDep {
        let sections = pre
            .iter()
            .map(|_| true)
            .chain(post.iter().map(|_| false))
            .collect();
        SoftDep {
            module,
            pre,
            post,
            origin,
            sections,
        }
    }

    /// The value `modprobe -c` prints after the module name, as kmod 30's `softdep_to_char`
    /// builds it: `pre: ` and the words from the first `pre` word to the last one *in line
    /// order* (so `post` words written between them show up too), then the same for `post:`,
    /// with no blank between the two sections.
    pub fn kmod_value(&self) -> String {
        let all: Vec<&str> = {
            let (mut pre, mut post) = (self.pre.iter(), self.post.iter());
            self.sections
                .iter()
                .filter_map(|&is_pre| if is_pre { pre.next() } else { post.next() })
                .map(String::as_str)
                .collect()
        };
        let mut out = String::new();
        for (want, prefix) in [(true, "pre: "), (false, "post: ")] {
            let first = self.sections.iter().position(|&s| s == want);
            let last = self.sections.iter().rposition(|&s| s == want);
            if let (Some(first), Some(last)) = (first, last) {
                out.push_str(prefix);
                out.push_str(&all.get(first..=last).unwrap_or_default().join(" "));
            }
        }
        out
    }
}

/// `weakdep MODULE A B` (kmod >= 33): modules that may be needed, for initramfs builders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeakDep {
    /// The module, normalised.
    pub module: String,
    /// The weak dependencies, as written.
    pub deps: Vec<String>,
    /// Where the line is.
    pub origin: Origin,
}

/// The modprobe configuration, every list in the order kmod reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModprobeConfig {
    /// `alias` lines.
    pub aliases: Vec<Alias>,
    /// `blacklist` lines, then `modprobe.blacklist=` entries of the kernel command line.
    pub blacklist: Vec<Blacklist>,
    /// `options` lines, then `MODULE.PARAM` words of the kernel command line.
    pub options: Vec<Options>,
    /// `install` lines.
    pub install: Vec<Command>,
    /// `remove` lines.
    pub remove: Vec<Command>,
    /// `softdep` lines, all of them.
    pub softdeps: Vec<SoftDep>,
    /// `weakdep` lines.
    pub weakdeps: Vec<WeakDep>,
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// kmod's `kmod_config_add_softdep` word splitter, reproduced step by step (including its
/// treatment of a leading blank).
fn split_softdep(line: &str) -> (Vec<String>, Vec<String>, Vec<bool>) {
    #[derive(PartialEq)]
    enum Mode {
        None,
        Pre,
        Post,
    }
    let b = line.as_bytes();
    let (mut pre, mut post, mut sections) = (Vec::new(), Vec::new(), Vec::new());
    let mut mode = Mode::None;
    let mut was_space = false;
    let (mut p, mut s) = (0usize, 0usize);
    loop {
        let c = b.get(s).copied().unwrap_or(0);
        if c != 0 {
            if !is_c_space(c) {
                was_space = false;
                s += 1;
                continue;
            }
            if was_space {
                p = s + 1;
                s += 1;
                continue;
            }
            was_space = true;
            if p >= s {
                s += 1;
                continue;
            }
        }
        let word = b.get(p..s).unwrap_or_default();
        if word == b"pre:" {
            mode = Mode::Pre;
        } else if word == b"post:" {
            mode = Mode::Post;
        } else if c != 0 || !was_space {
            let w = String::from_utf8_lossy(word).into_owned();
            match mode {
                Mode::Pre => {
                    pre.push(w);
                    sections.push(true);
                }
                Mode::Post => {
                    post.push(w);
                    sections.push(false);
                }
                Mode::None => {}
            }
        }
        p = s + 1;
        if c == 0 {
            break;
        }
        s += 1;
    }
    (pre, post, sections)
}

impl ModprobeConfig {
    /// kmod 30's default directories, [`DEFAULT_DIRS`].
    pub fn default_dirs() -> Vec<PathBuf> {
        DEFAULT_DIRS.iter().map(PathBuf::from).collect()
    }

    /// Reads the configuration as modprobe does: the `*.conf` (and `*.alias`) files of
    /// `paths` (directories or single files; [`ModprobeConfig::default_dirs`], or what `-C`
    /// names) sorted by file name across all of them, the first file of a name winning; then
    /// the kernel command line `cmdline` (the text of `/proc/cmdline`), when given.
    pub fn load(paths: &[PathBuf], cmdline: Option<&str>) -> (ModprobeConfig, Vec<Warning>) {
        let mut config = ModprobeConfig::default();
        let mut warnings = Vec::new();
        let list = files::list(paths, Accept::ConfOrAlias, &mut warnings);
        files::parse_all(&list, &mut warnings, |text, file, w| {
            config.parse(text, file, w)
        });
        if let Some(cmdline) = cmdline {
            config.parse_cmdline(cmdline, &mut warnings);
        }
        (config, warnings)
    }

    /// Parses one modprobe.d file's `text` (named `file` in warnings and origins), appending
    /// to `self`. Bad lines become warnings and parsing goes on.
    pub fn parse(&mut self, text: &str, file: &Path, warnings: &mut Vec<Warning>) {
        for line in logical_lines(text) {
            if line.text.is_empty() || line.text.starts_with('#') {
                continue;
            }
            let origin = || Origin::File {
                path: file.to_path_buf(),
                line: line.number,
            };
            let mut tok = Tokens::new(&line.text);
            let Some(cmd) = tok.word() else { continue };
            let ok = match cmd {
                "alias" => match (
                    tok.word().and_then(alias_normalize),
                    tok.word().and_then(alias_normalize),
                ) {
                    (Some(pattern), Some(module)) => {
                        self.aliases.push(Alias {
                            pattern,
                            module,
                            origin: origin(),
                        });
                        true
                    }
                    _ => false,
                },
                "blacklist" => match tok.word().and_then(alias_normalize) {
                    Some(module) => {
                        self.blacklist.push(Blacklist {
                            module,
                            origin: origin(),
                        });
                        true
                    }
                    None => false,
                },
                "options" => match (tok.word().map(alias_normalize), tok.rest()) {
                    (Some(Some(module)), Some(rest)) => {
                        let options = rest.replace('\t', " ");
                        self.options.push(Options {
                            module,
                            options,
                            origin: origin(),
                        });
                        true
                    }
                    _ => false,
                },
                "install" | "remove" => match (tok.word().map(alias_normalize), tok.rest()) {
                    (Some(Some(module)), Some(command)) => {
                        let entry = Command {
                            module,
                            command: command.to_owned(),
                            origin: origin(),
                        };
                        if cmd == "install" {
                            &mut self.install
                        } else {
                            &mut self.remove
                        }
                        .push(entry);
                        true
                    }
                    _ => false,
                },
                "softdep" => match (tok.word().map(alias_normalize), tok.rest()) {
                    (Some(Some(module)), Some(rest)) => {
                        let (pre, post, sections) = split_softdep(rest);
                        self.softdeps.push(SoftDep {
                            module,
                            pre,
                            post,
                            origin: origin(),
                            sections,
                        });
                        true
                    }
                    _ => false,
                },
                "weakdep" => match (tok.word().map(alias_normalize), tok.rest()) {
                    (Some(Some(module)), Some(rest)) => {
                        let deps = rest
                            .split(|c: char| c.is_ascii() && is_c_space(c as u8))
                            .filter(|w| !w.is_empty())
                            .map(str::to_owned)
                            .collect();
                        self.weakdeps.push(WeakDep {
                            module,
                            deps,
                            origin: origin(),
                        });
                        true
                    }
                    _ => false,
                },
                "include" | "config" => {
                    warnings.push(Warning::Deprecated {
                        file: file.to_path_buf(),
                        line: line.number,
                        command: cmd.to_owned(),
                    });
                    true
                }
                _ => false,
            };
            if !ok {
                warnings.push(Warning::BadLine {
                    file: file.to_path_buf(),
                    line: line.number,
                    start: cmd.to_owned(),
                });
            }
        }
    }

    /// Parses the kernel command line (the text of `/proc/cmdline`) as kmod 30's
    /// `kmod_config_parse_kcmdline` does, appending options and blacklist entries.
    pub fn parse_cmdline(&mut self, cmdline: &str, warnings: &mut Vec<Warning>) {
        #[derive(PartialEq, Clone, Copy)]
        enum State {
            Ignore,
            Modname,
            Param,
            Value,
            Complete,
        }
        // kmod reads /proc/cmdline into a 4096-byte buffer (KCMD_LINE_SIZE), NUL included.
        let mut buf = cmdline.as_bytes().to_vec();
        buf.truncate(4095);
        let mut state = State::Modname;
        let mut quoted = false;
        let mut quote_start: Option<usize> = None;
        let mut modname = 0usize;
        let mut modname_end = 0usize;
        let mut param: Option<usize> = None;
        let mut value: Option<usize> = None;
        let mut p = 0usize;
        let mut go_on = true;
        while go_on {
            let c = buf.get(p).copied().unwrap_or(0);
            match c {
                b'"' => {
                    quoted = !quoted;
                    // A quote may only open a word; anywhere else outside a value the word
                    // is ill-formed.
                    if quoted && state == State::Modname && p == modname {
                        quote_start = Some(p);
                        modname = p + 1;
                    } else if state != State::Value {
                        state = State::Ignore;
                    }
                }
                // Every blank (isspace, newline included) ends a word; only the end of the
                // text ends the loop.
                c if c == 0 || is_c_space(c) => {
                    if c == 0 {
                        go_on = false;
                    }
                    if quoted && state == State::Value {
                    } else if quoted {
                        state = State::Ignore;
                    } else if state == State::Value || state == State::Param {
                        state = State::Complete;
                    } else {
                        modname = p + 1;
                        state = State::Modname;
                        quote_start = None;
                    }
                }
                b'.' => {
                    if state == State::Modname {
                        modname_end = p;
                        param = Some(p + 1);
                        state = State::Param;
                    } else if state == State::Param {
                        state = State::Ignore;
                    }
                }
                b'=' => {
                    if state == State::Param {
                        value = Some(p + 1);
                        state = State::Value;
                    } else if state == State::Modname {
                        state = State::Ignore;
                    }
                }
                _ => {}
            }
            if state == State::Complete {
                let text = |r: std::ops::Range<usize>| {
                    String::from_utf8_lossy(buf.get(r).unwrap_or_default()).into_owned()
                };
                let module = text(modname..modname_end);
                let mut par = param.map(|s| text(s..p)).unwrap_or_default();
                let val = value.map(|v| text(v..p));
                // Boot loaders pass `"mod.p=a b"`; kmod moves the quote to after the `=`.
                if let (Some(q), Some(v), Some(ps)) = (quote_start, value, param)
                    && q < modname
                    && v > ps
                {
                    par = format!("{}\"{}", text(ps..v), text(v..p));
                }
                self.cmdline_result(module, par, val, warnings);
                modname = p + 1;
                state = State::Modname;
                quote_start = None;
            }
            p += 1;
        }
    }

    /// kmod's `kcmdline_parse_result`.
    fn cmdline_result(
        &mut self,
        module: String,
        param: String,
        value: Option<String>,
        warnings: &mut Vec<Warning>,
    ) {
        if module == "modprobe" && param.starts_with("blacklist=") {
            let value = value.unwrap_or_default();
            for name in value.split(',') {
                self.blacklist.push(Blacklist {
                    module: name.to_owned(),
                    origin: Origin::Cmdline,
                });
            }
            return;
        }
        match alias_normalize(&module) {
            Some(module) => self.options.push(Options {
                module,
                options: param.replace('\t', " "),
                origin: Origin::Cmdline,
            }),
            None => warnings.push(Warning::BadCmdlineOption { word: module }),
        }
    }

    /// Is `module` (a normalised name) blacklisted?
    pub fn is_blacklisted(&self, module: &str) -> bool {
        self.blacklist.iter().any(|b| b.module == module)
    }

    /// The option strings for `module` (a normalised name), files first, then the kernel
    /// command line. kmod passes them to the kernel joined with spaces.
    pub fn options_for<'a>(&'a self, module: &'a str) -> impl Iterator<Item = &'a str> {
        self.options
            .iter()
            .filter(move |o| o.module == module)
            .map(|o| o.options.as_str())
    }

    /// Every `softdep` line for `module` (a normalised name), in order. kmod 30 honours only
    /// the first; merging them all is the caller's choice.
    pub fn softdeps_for<'a>(&'a self, module: &'a str) -> impl Iterator<Item = &'a SoftDep> {
        self.softdeps.iter().filter(move |s| s.module == module)
    }

    /// The `install` command for `module`: the first line for it, as kmod takes it.
    pub fn install_command(&self, module: &str) -> Option<&str> {
        self.install
            .iter()
            .find(|c| c.module == module)
            .map(|c| c.command.as_str())
    }

    /// The `remove` command for `module`: the first line for it, as kmod takes it.
    pub fn remove_command(&self, module: &str) -> Option<&str> {
        self.remove
            .iter()
            .find(|c| c.module == module)
            .map(|c| c.command.as_str())
    }

    /// The configuration part of `modprobe -c`, byte for byte as kmod 30 prints it: blacklist,
    /// install, remove, alias, options, softdep lines (kmod 30 has no weakdep; kmod >= 33
    /// prints `weakdep MODULE DEPS` after the softdeps, and so does this when there are
    /// any). modprobe then prints [`END_OF_CONFIG`] and the index dump.
    pub fn show_config(&self) -> String {
        let mut out = String::new();
        for b in &self.blacklist {
            let _ = writeln!(out, "blacklist {}", b.module);
        }
        for c in &self.install {
            let _ = writeln!(out, "install {} {}", c.module, c.command);
        }
        for c in &self.remove {
            let _ = writeln!(out, "remove {} {}", c.module, c.command);
        }
        for a in &self.aliases {
            let _ = writeln!(out, "alias {} {}", a.pattern, a.module);
        }
        for o in &self.options {
            let _ = writeln!(out, "options {} {}", o.module, o.options);
        }
        for s in &self.softdeps {
            let _ = writeln!(out, "softdep {} {}", s.module, s.kmod_value());
        }
        for w in &self.weakdeps {
            let _ = writeln!(out, "weakdep {} {}", w.module, w.deps.join(" "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (ModprobeConfig, Vec<Warning>) {
        let mut c = ModprobeConfig::default();
        let mut w = Vec::new();
        c.parse(text, Path::new("/etc/modprobe.d/t.conf"), &mut w);
        (c, w)
    }

    #[test]
    fn origins_and_lookups() {
        let (c, w) = parse(
            "options m-a x=1\nsoftdep m-a pre: p\nsoftdep m_a post: q \\\n r\n\
             blacklist m-a\ninstall m-a cmd1\ninstall m_a cmd2\nremove m-a rm1\noptions m_a y=2\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.options_for("m_a").collect::<Vec<_>>(), ["x=1", "y=2"]);
        assert!(c.is_blacklisted("m_a"));
        assert!(!c.is_blacklisted("m-a"), "lookups take normalised names");
        assert_eq!(c.install_command("m_a"), Some("cmd1"));
        assert_eq!(c.remove_command("m_a"), Some("rm1"));
        assert_eq!(c.remove_command("other"), None);
        let deps: Vec<_> = c.softdeps_for("m_a").collect();
        assert_eq!(deps.len(), 2, "every softdep line is kept");
        assert_eq!(deps[1].post, ["q", "r"]);
        assert_eq!(
            deps[1].origin,
            Origin::File {
                path: "/etc/modprobe.d/t.conf".into(),
                line: 4
            },
            "a continued line has the number of its last line"
        );
    }

    #[test]
    fn softdep_value_like_kmod() {
        let d = SoftDep::new(
            "m".into(),
            vec!["a".into(), "b".into()],
            vec!["c".into()],
            Origin::Cmdline,
        );
        assert_eq!(d.kmod_value(), "pre: a bpost: c");
        let (c, _) = parse("softdep m post: x pre: y post: z\n");
        assert_eq!(c.softdeps[0].pre, ["y"]);
        assert_eq!(c.softdeps[0].post, ["x", "z"]);
        assert_eq!(c.softdeps[0].kmod_value(), "pre: ypost: x y z");
    }

    #[test]
    fn cmdline_words() {
        let mut c = ModprobeConfig::default();
        let mut w = Vec::new();
        c.parse_cmdline(
            "quiet a-b.c=1 \"d.e=f g\" h.i=\"j k\" modprobe.blacklist=x,y-z x[.y=1 nodot=1\n",
            &mut w,
        );
        let opts: Vec<_> = c
            .options
            .iter()
            .map(|o| format!("{} {}", o.module, o.options))
            .collect();
        assert_eq!(opts, ["a_b c=1", "d e=\"f g\"", "h i=\"j k\""]);
        let bl: Vec<_> = c.blacklist.iter().map(|b| b.module.as_str()).collect();
        assert_eq!(
            bl,
            ["x", "y-z"],
            "kmod does not normalise command line blacklists"
        );
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "Ignoring bad option on kernel command line while parsing module name: 'x['"
        );
        assert!(c.options.iter().all(|o| o.origin == Origin::Cmdline));
    }

    #[test]
    fn cmdline_is_cut_like_kmods_buffer() {
        let mut c = ModprobeConfig::default();
        let mut w = Vec::new();
        let text = format!("{} m.p=1", "x".repeat(4091));
        c.parse_cmdline(&text, &mut w);
        assert_eq!(
            c.options[0].options, "p",
            "kmod reads 4095 bytes: `m.p` survives, `=1` not"
        );
    }
}
