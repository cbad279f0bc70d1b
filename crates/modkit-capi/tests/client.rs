//! The differential test of the C library: `client.c`, built once against Debian's
//! `libkmod.h`, runs over Debian's 6.1 and 6.12 module trees (indexed by kmod's own depmod)
//! with Debian's `libkmod.so.2` and then with modkit's (the same binary, `LD_LIBRARY_PATH`),
//! and must print the same: the context, configuration iteration, every index dumped, alias,
//! name, symbol, path and built-in lookups with each module's path, options, commands,
//! initstate, dependencies, soft dependencies, modinfo, versions, exports and imports.
#![forbid(unsafe_code)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use modkit_testkit::{Scratch, require};

use support::link_tree;

/// The configuration the client reads besides the tree's modules.softdep: one line of each
/// kind kmod knows, aimed at modules both kernels have.
const CONFIG: &str = "\
alias myalias e1000e
alias my-pattern* snd_hda_intel
options e1000e IntMode=1 debug=2
options myalias copybreak=5
install dummy /bin/true
remove dummy /bin/false
softdep e1000e pre: crc32c post: ptp
softdep e1000e pre: second-line-is-ignored
blacklist pcspkr
blacklist snd-pcsp
";

/// Every `step`-th item, at most `max`.
fn sample<T: Clone>(items: &[T], max: usize) -> Vec<T> {
    let step = items.len().div_ceil(max.max(1)).max(1);
    items.iter().step_by(step).cloned().collect()
}

/// The requests for the client: a sample of every kind of name the tree answers for, and
/// names it does not.
fn queries(dir: &Path) -> String {
    let text = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    let dep = text("modules.dep");
    let paths: Vec<&str> = dep.lines().filter_map(|l| l.split(':').next()).collect();
    let names: Vec<String> = paths
        .iter()
        .filter_map(|p| modkit::name::path_to_modname(Path::new(p)))
        .collect();
    let aliases_text = text("modules.alias");
    let aliases: Vec<&str> = aliases_text
        .lines()
        .filter_map(|l| l.strip_prefix("alias "))
        .filter_map(|l| l.rsplit_once(' ').map(|(pattern, _)| pattern))
        .collect();
    let symbols_text = text("modules.symbols");
    let symbols: Vec<&str> = symbols_text
        .lines()
        .filter_map(|l| l.strip_prefix("alias "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let builtin_text = text("modules.builtin");
    let builtin: Vec<String> = builtin_text
        .lines()
        .filter_map(|p| modkit::name::path_to_modname(Path::new(p)))
        .collect();
    let softdep_text = text("modules.softdep");
    let softdep: Vec<&str> = softdep_text
        .lines()
        .filter_map(|l| l.strip_prefix("softdep "))
        .filter_map(|l| l.split(' ').next())
        .collect();

    let mut q = String::new();
    for (i, name) in sample(&names, 160).iter().enumerate() {
        let how = ["lookup", "name", "namelookup", "lookup"][i % 4];
        q.push_str(&format!("{how} {name}\n"));
    }
    for path in sample(&paths, 20) {
        q.push_str(&format!("path {}/{path}\n", dir.display()));
    }
    for alias in sample(&aliases, 120) {
        q.push_str(&format!("lookup {alias}\n"));
    }
    for symbol in sample(&symbols, 60) {
        q.push_str(&format!("lookup {symbol}\n"));
    }
    for name in sample(&builtin, 30) {
        q.push_str(&format!("lookup {name}\nnamelookup {name}\nname {name}\n"));
    }
    for name in softdep {
        q.push_str(&format!("lookup {name}\n"));
    }
    for fixed in [
        "lookup myalias",
        "lookup my-pattern-x",
        "lookup dummy",
        "lookup pcspkr",
        "lookup snd-pcsp",
        "lookup e1000e",
        "lookup nonexistent_module_xyz",
        "lookup symbol:no_such_symbol",
        "lookup bad]name",
        "lookup unterminated[bracket",
        "namelookup nonexistent_module_xyz",
        "probe nonexistent_module_xyz",
        "name Some-Name.ko",
        "path /nonexistent/file.ko",
    ] {
        q.push_str(fixed);
        q.push('\n');
    }
    q
}

fn compare(series: &str) {
    let test = format!("client::same_answers_as_debian_libkmod_{series}");
    let Some(()) = require(&test, support::c_toolchain()) else {
        return;
    };
    let Some(_) = require(&test, support::debian_library()) else {
        return;
    };
    let Some(depmod) = require(&test, modkit_testkit::kmod("depmod")) else {
        return;
    };
    let Some(cached) = require(&test, modkit_testkit::kernel_modules_dir(series)) else {
        return;
    };
    let release = cached.file_name().unwrap().to_str().unwrap().to_owned();

    let scratch = Scratch::new(&format!("capi-client-{series}"));
    let root = scratch.join("root");
    let dir = root.join("lib/modules").join(&release);
    link_tree(&cached, &dir);
    let out = Command::new(&depmod)
        .arg("-b")
        .arg(&root)
        .arg(&release)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kmod's depmod: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = scratch.write("conf/test.conf", CONFIG);
    let config_dir: PathBuf = config.parent().unwrap().to_owned();
    let queries_file = scratch.write("queries", queries(&dir));

    let client = support::build_c(&scratch, "client");
    let ours = support::our_library_dir(&scratch);
    let args = [dir.as_path(), config_dir.as_path(), queries_file.as_path()];
    let debian = support::run_with(&client, &args, None);
    let modkit = support::run_with(&client, &args, Some(&ours));
    assert!(
        debian.status.success(),
        "with Debian's libkmod: {:?} {}",
        debian.status,
        String::from_utf8_lossy(&debian.stderr)
    );
    assert!(
        modkit.status.success(),
        "with modkit's libkmod: {:?} {}",
        modkit.status,
        String::from_utf8_lossy(&modkit.stderr)
    );
    let debian = String::from_utf8_lossy(&debian.stdout);
    let modkit = String::from_utf8_lossy(&modkit.stdout);
    let (d, m): (Vec<&str>, Vec<&str>) = (debian.lines().collect(), modkit.lines().collect());
    if let Some(i) = (0..d.len().max(m.len())).find(|&i| d.get(i) != m.get(i)) {
        let context =
            |lines: &[&str]| lines[i.saturating_sub(8)..(i + 4).min(lines.len())].join("\n");
        panic!(
            "{series}: first difference at line {} of {}:\n--- Debian's libkmod\n{}\n--- modkit's\n{}",
            i + 1,
            d.len(),
            context(&d),
            context(&m)
        );
    }

    // It compared something: modules described with their modinfo, dependencies, every
    // index, the configuration.
    let count = |prefix: &str| d.iter().filter(|l| l.starts_with(prefix)).count();
    let described = count("module ");
    let with_info = d
        .iter()
        .filter(|l| {
            l.strip_prefix("  info: ")
                .is_some_and(|n| n.parse::<i32>().is_ok_and(|n| n > 0))
        })
        .count();
    let with_deps = d
        .iter()
        .filter(|l| l.starts_with("  dependencies: "))
        .count();
    let dumped = d
        .iter()
        .filter(|l| l.starts_with("dump ") && l.split(' ').nth(2).is_some_and(|n| n == "0"))
        .count();
    println!(
        "{series}: {} lines identical; {described} modules described, {with_info} with modinfo, {dumped} indexes dumped",
        d.len()
    );
    assert!(d.len() > 10_000, "{series}: only {} lines", d.len());
    assert!(described > 300, "{series}: {described} modules described");
    assert!(
        with_info > 250,
        "{series}: {with_info} modules with modinfo"
    );
    assert!(with_deps > 300, "{series}: {with_deps} dependency lists");
    assert_eq!(dumped, 5, "{series}: every index dumps");
    assert!(
        d.iter().any(|l| l.starts_with("    sig_key=")),
        "{series}: no signature field compared"
    );
    assert!(
        d.iter()
            .any(|l| l.starts_with("  pre: ") && l.len() > "  pre: ".len()),
        "{series}: no soft dependency compared"
    );
    assert!(
        d.contains(&"  options: IntMode=1 debug=2 copybreak=5"),
        "{series}: the options of an alias were not compared"
    );
}

#[test]
fn same_answers_as_debian_libkmod_6_1() {
    compare("6.1");
}

#[test]
fn same_answers_as_debian_libkmod_6_12() {
    compare("6.12");
}
