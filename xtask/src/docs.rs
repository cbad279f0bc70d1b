//! `cargo xtask dist-docs --out DIR`: the manual pages and the bash, zsh and fish completions of
//! `modkit` and of every tool, made from the tools' own clap definitions
//! (`modkit_cli::commands`), so they say what the tools accept: `DIR/man/man8/TOOL.8` (kmod's
//! tools are in section 8, and so are modkit's), `DIR/man/man8/kmod-COMMAND.8` for a `kmod`
//! command with options of its own (`static-nodes`), `DIR/completions/bash/TOOL`,
//! `DIR/completions/zsh/_TOOL` and `DIR/completions/fish/TOOL.fish`, each named as its
//! shell's completion directory wants it (README's install recipe copies them there).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap_complete::Shell;

/// The manual section of every page: system administration commands, as kmod's.
const SECTION: &str = "8";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `man/` and `completions/` into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let written = write(&args.out)?;
    println!(
        "dist-docs: {} files in {} (manual pages in man/man8, completions in completions/{{bash,zsh,fish}})",
        written.len(),
        args.out.display()
    );
    Ok(())
}

/// The shells completions are made for, with the file name each one's completion directory
/// looks a command up by: bash-completion loads `completions/NAME`, zsh's `fpath` `_NAME`,
/// fish `vendor_completions.d/NAME.fish`.
const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

fn completion_file(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    }
}

/// Write every page and completion file under `out`; the paths written.
pub(crate) fn write(out: &Path) -> Result<Vec<PathBuf>> {
    let man = out.join("man").join(format!("man{SECTION}"));
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: Vec<u8>| -> Result<()> {
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    let source = format!("modkit {}", env!("CARGO_PKG_VERSION"));
    for (i, mut command) in modkit_cli::commands().into_iter().enumerate() {
        command.build();
        let name = command.get_name().to_owned();
        // A tool's commands with options of their own get a page each (`kmod static-nodes`);
        // modkit's subcommands are the tools, which have theirs.
        let mut pages = vec![command.clone()];
        if i > 0 {
            pages.extend(
                command
                    .get_subcommands()
                    .filter(|sub| !sub.is_hide_set() && has_options(sub))
                    .cloned(),
            );
        }
        for page in pages {
            let man_page = clap_mangen::Man::new(page)
                .section(SECTION)
                .source(source.clone())
                .manual("System Administration");
            let mut bytes = Vec::new();
            man_page.render(&mut bytes)?;
            put(man.join(man_page.get_filename()), bytes)?;
        }
        for (shell, dir) in SHELLS {
            let dir = out.join("completions").join(dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut bytes = Vec::new();
            clap_complete::generate(*shell, &mut command, &name, &mut bytes);
            put(dir.join(completion_file(*shell, &name)), bytes)?;
        }
    }
    Ok(written)
}

/// Whether `command` has an option a user would look up (not only `-h`).
fn has_options(command: &clap::Command) -> bool {
    command
        .get_arguments()
        .any(|arg| !arg.is_hide_set() && arg.get_id() != "help" && !arg.is_positional())
}

#[cfg(test)]
mod tests {
    use super::*;
    use modkit_testkit::Scratch;
    use xshell::{Shell as Sh, cmd};

    /// A page's text with roff's escaped hyphens plain, as a reader sees it.
    fn page_text(path: &Path) -> String {
        std::fs::read_to_string(path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .replace("\\-", "-")
    }

    /// The options a page or completion must name: every visible long and short option.
    fn options(command: &clap::Command) -> Vec<String> {
        let mut found = Vec::new();
        for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                found.push(format!("--{long}"));
            }
            if let Some(short) = arg.get_short() {
                found.push(format!("-{short}"));
            }
        }
        found
    }

    #[test]
    fn every_tool_gets_a_page_naming_its_options_and_completions_in_each_shell() {
        let scratch = Scratch::new("dist-docs");
        let out = scratch.join("out");
        let written = write(&out).unwrap();
        let commands = modkit_cli::commands();
        let names: Vec<String> = commands.iter().map(|c| c.get_name().to_owned()).collect();
        for tool in [
            "modkit", "modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod", "kmod",
        ] {
            assert!(names.iter().any(|name| name == tool), "{tool} in {names:?}");
        }
        let mut options_checked = 0;
        for command in &commands {
            let name = command.get_name();
            let page = out.join(format!("man/man8/{name}.8"));
            let text = page_text(&page);
            assert!(text.starts_with(".ie"), "{name}.8 is roff: {text:.80}");
            assert!(text.contains(&format!(".TH {name} 8")), "{name}.8's title");
            for option in options(command) {
                assert!(text.contains(&option), "{name}.8 names {option}");
                options_checked += 1;
            }
            for (shell, dir) in SHELLS {
                let path = out
                    .join("completions")
                    .join(dir)
                    .join(completion_file(*shell, name));
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
                assert!(text.contains(name), "{} names {name}", path.display());
                // Every shell's file offers the long options (fish writes them as `-l NAME`).
                for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
                    if let Some(long) = arg.get_long() {
                        assert!(text.contains(long), "{} offers --{long}", path.display());
                    }
                }
            }
            // bash can parse what it would source.
            let bash = out.join("completions/bash").join(name);
            let sh = Sh::new().unwrap();
            cmd!(sh, "bash -n {bash}").quiet().run().unwrap();
        }
        assert!(
            options_checked > 100,
            "only {options_checked} options checked"
        );
        // The example, spelled out: modprobe's page and completions know --show-depends,
        // and `kmod static-nodes` has a page of its own with its formats' option.
        assert!(page_text(&out.join("man/man8/modprobe.8")).contains("--show-depends"));
        assert!(page_text(&out.join("man/man8/modprobe.8")).contains("--show-exports"));
        let static_nodes = page_text(&out.join("man/man8/kmod-static-nodes.8"));
        assert!(static_nodes.contains("--format"), "{static_nodes}");
        // modkit's own page lists the tools.
        assert!(page_text(&out.join("man/man8/modkit.8")).contains("device-modules"));
        // Pages: one per command and kmod-static-nodes; completions: one per command and shell.
        assert_eq!(written.len(), commands.len() * (1 + SHELLS.len()) + 1);
    }
}
