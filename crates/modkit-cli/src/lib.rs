//! The `modkit` multi-call binary's tools, dispatched on argv[0] or the first argument
//! ([`run`]), and their command lines as clap sees them ([`commands`]: what `cargo xtask
//! dist-docs` makes manual pages and shell completions of). The binary (`main.rs`) is `run`,
//! with [`memory`]'s allocator; nothing else here is public, and this library is no API to
//! build on.
#![deny(unsafe_code)] // Exceptions: SIGXFSZ in `depmod`, `memory` (SIGPIPE's is in the binary).

mod check;
mod coldplug;
mod common;
mod depmod;
mod device_modules;
mod initramfs;
mod insmod;
mod json;
mod kmod;
mod lsmod;
pub mod memory;
mod modinfo;
mod modprobe;
mod rmmod;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// A tool's entry point: it gets the whole argv, argv[0] being the tool's name.
type ToolMain = fn(Vec<OsString>) -> ExitCode;

/// A tool's command line as clap sees it (each tool module's `command`).
type ToolCommand = fn() -> clap::Command;

/// The tools this binary is, by the name it is called as: (name, one-line summary, entry point,
/// command line).
const TOOLS: &[(&str, &str, ToolMain, ToolCommand)] = &[
    (
        "check",
        "say whether a target kernel would accept modules, and why not",
        check::main,
        check::command,
    ),
    (
        "coldplug",
        "load the modules every present device needs",
        coldplug::main,
        coldplug::command,
    ),
    (
        "depmod",
        "write modules.dep and the module indexes",
        depmod::main,
        depmod::command,
    ),
    (
        "device-modules",
        "show the modules a device needs, in load order",
        device_modules::main,
        device_modules::command,
    ),
    (
        "initramfs",
        "write an initramfs with the modules devices and filesystems need",
        initramfs::main,
        initramfs::command,
    ),
    (
        "insmod",
        "insert one module file into the kernel",
        insmod::main,
        insmod::command,
    ),
    (
        "kmod",
        "kmod's own commands: list, static-nodes, help",
        kmod::main,
        kmod::command,
    ),
    (
        "lsmod",
        "list the loaded modules",
        lsmod::main,
        lsmod::command,
    ),
    (
        "modinfo",
        "show what a kernel module says about itself",
        modinfo::main,
        modinfo::command,
    ),
    (
        "modprobe",
        "load or remove modules with their dependencies",
        modprobe::main,
        modprobe::command,
    ),
    (
        "rmmod",
        "remove modules from the kernel",
        rmmod::main,
        rmmod::command,
    ),
];

/// Run the tool `args` names: argv[0] when it is a tool's name (a link), else the first
/// argument (`modkit TOOL ARGS...`), or `modkit`'s own options.
pub fn run(mut args: Vec<OsString>) -> ExitCode {
    let argv0 = args.first().cloned().unwrap_or_else(|| "modkit".into());
    let called_as = Path::new(&argv0)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();

    if let Some(tool) = find_tool(&called_as) {
        return tool(args);
    }

    // `modkit TOOL ARGS...`: the tool sees itself as argv[0], as through a link.
    match args.get(1).and_then(|arg| arg.to_str()) {
        Some("--list") => {
            for (name, _, _, _) in TOOLS {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Some("--version" | "-V") => {
            common::print_version();
            ExitCode::SUCCESS
        }
        Some("-h" | "--help") | None => {
            print_usage();
            if args.len() > 1 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Some(name) => match find_tool(name) {
            Some(tool) => {
                args.remove(0);
                tool(args)
            }
            None => {
                common::write_stderr(&format!(
                    "modkit: unknown tool '{name}' (see 'modkit --list')\n"
                ));
                ExitCode::from(1)
            }
        },
    }
}

/// Every command line of the binary, as clap sees it: `modkit` itself (its options, and each
/// tool as a subcommand with its one-line summary), then each tool under the name it is called
/// as, in `modkit --list`'s order.
pub fn commands() -> Vec<clap::Command> {
    let modkit = clap::Command::new("modkit")
        .about("find, describe, index, load and unload Linux kernel modules")
        .long_about(
            "One binary for the kmod tools and modkit's own: `modkit TOOL [ARGS...]`, or \
             TOOL [ARGS...] through a link named after the tool.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true)
        .arg(
            clap::Arg::new("list")
                .long("list")
                .action(clap::ArgAction::SetTrue)
                .help("List the tools, one a line"),
        )
        .subcommands(
            TOOLS
                .iter()
                .map(|(_, about, _, command)| command().about(*about)),
        );
    std::iter::once(modkit)
        .chain(TOOLS.iter().map(|(_, _, _, command)| command()))
        .collect()
}

/// The tool called `name`; from now on the out-of-memory line names it.
fn find_tool(name: &str) -> Option<ToolMain> {
    let (tool, _, main, _) = TOOLS.iter().find(|(tool, _, _, _)| *tool == name)?;
    memory::set_tool(tool);
    Some(*main)
}

fn print_usage() {
    println!(
        "modkit {}: find, describe, index, load and unload Linux kernel modules\n",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "Usage: modkit TOOL [ARGS...]   or, through a link named after the tool: TOOL [ARGS...]\n"
    );
    println!("Tools:");
    let width = TOOLS.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
    for (name, about, _, _) in TOOLS {
        println!("  {name:<width$}  {about}");
    }
    println!(
        "\nInstall the links with e.g. `for t in $(modkit --list); do ln -s modkit /usr/local/sbin/$t; done`."
    );
    println!("Run `modkit TOOL --help` for a tool's options.");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each tool's command line is named as the tool is called (its manual page and completion
    /// files take that name), and clap accepts every definition.
    #[test]
    fn every_tool_has_its_command_line() {
        let commands = commands();
        let names: Vec<&str> = commands.iter().map(clap::Command::get_name).collect();
        let mut expected = vec!["modkit"];
        expected.extend(TOOLS.iter().map(|(name, _, _, _)| *name));
        assert_eq!(names, expected);
        let subcommands: Vec<&str> = commands[0]
            .get_subcommands()
            .map(clap::Command::get_name)
            .collect();
        assert_eq!(subcommands, expected[1..]);
        for command in commands {
            command.debug_assert();
        }
    }
}
