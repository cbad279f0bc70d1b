//! `modkit`: one multi-call binary for the kmod tools, dispatched on argv[0] or the first argument.
#![deny(unsafe_code)] // Exceptions: SIGPIPE's default action here, SIGXFSZ in `depmod`, `memory`.

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
mod memory;
mod modinfo;
mod modprobe;
mod rmmod;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// A tool's entry point: it gets the whole argv, argv[0] being the tool's name.
type ToolMain = fn(Vec<OsString>) -> ExitCode;

/// The tools this binary is, by the name it is called as: (name, one-line summary, entry point).
const TOOLS: &[(&str, &str, ToolMain)] = &[
    (
        "check",
        "say whether a target kernel would accept modules, and why not",
        check::main,
    ),
    (
        "coldplug",
        "load the modules every present device needs",
        coldplug::main,
    ),
    (
        "depmod",
        "write modules.dep and the module indexes",
        depmod::main,
    ),
    (
        "device-modules",
        "show the modules a device needs, in load order",
        device_modules::main,
    ),
    (
        "initramfs",
        "write an initramfs with the modules devices and filesystems need",
        initramfs::main,
    ),
    (
        "insmod",
        "insert one module file into the kernel",
        insmod::main,
    ),
    (
        "kmod",
        "kmod's own commands: list, static-nodes, help",
        kmod::main,
    ),
    ("lsmod", "list the loaded modules", lsmod::main),
    (
        "modinfo",
        "show what a kernel module says about itself",
        modinfo::main,
    ),
    (
        "modprobe",
        "load or remove modules with their dependencies",
        modprobe::main,
    ),
    ("rmmod", "remove modules from the kernel", rmmod::main),
];

fn main() -> ExitCode {
    memory::fit_address_space_limit();
    restore_default_sigpipe();
    let mut args: Vec<OsString> = std::env::args_os().collect();
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
            for (name, _, _) in TOOLS {
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

/// A write to a closed pipe ends the tool as it ends kmod's: killed by SIGPIPE, quietly, with
/// the status a shell reads as 141. Rust's runtime ignores the signal, which turns the write
/// into an error (and `println!` into a panic, exit 101).
#[allow(unsafe_code, reason = "signal(2) has no safe wrapper in std or libc")]
fn restore_default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler, so no code of ours runs on the signal; it only sets
    // this process's disposition back to what a C program such as kmod starts with (children
    // spawned by std get SIG_DFL anyway), before any thread or output exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The tool called `name`; from now on the out-of-memory line names it.
fn find_tool(name: &str) -> Option<ToolMain> {
    let (tool, _, main) = TOOLS.iter().find(|(tool, _, _)| *tool == name)?;
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
    for (name, about, _) in TOOLS {
        println!("  {name:<10} {about}");
    }
    println!(
        "\nInstall the links with e.g. `for t in $(modkit --list); do ln -s modkit /usr/local/sbin/$t; done`."
    );
    println!("Run `modkit TOOL --help` for a tool's options.");
}
