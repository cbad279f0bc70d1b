//! Makes the cdylib a drop-in `libkmod.so.2`: its soname, Debian's symbol version nodes (the
//! linker version script `libkmod.map`, plus a `.symver` directive per function so each name
//! lands in its node even beside rustc's own export list), and the one C function the ABI
//! forces (`log_shim.c`: a `va_list` for the log callback).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let map = dir.join("libkmod.map");
    println!("cargo:rerun-if-changed={}", map.display());
    println!("cargo:rerun-if-changed=src/log_shim.c");
    let text = std::fs::read_to_string(&map).expect("libkmod.map is part of the crate");

    // `NODE {` opens a node; `\tNAME;` under `global:` names a function of it.
    let mut directives = String::from("std::arch::global_asm!(\n");
    let mut node = None;
    let mut global = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_suffix(" {") {
            node = Some(name.to_owned());
        } else if line == "global:" {
            global = true;
        } else if line == "local:" || line.starts_with('}') {
            global = false;
        } else if global && let (Some(node), Some(name)) = (&node, line.strip_suffix(';')) {
            let _ = writeln!(directives, "    \".symver {name}, {name}@@{node}\",");
        }
    }
    directives.push_str(");\n");
    std::fs::write(out.join("symver.rs"), directives).expect("OUT_DIR is writable");

    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkmod.so.2");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );

    cc::Build::new()
        .file("src/log_shim.c")
        .warnings(true)
        .compile("modkit_capi_log_shim");
}
