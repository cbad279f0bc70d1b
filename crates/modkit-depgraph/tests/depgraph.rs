//! The module database over small synthetic trees: module order, dependency order, cycles,
//! symbol resolution, the incremental cache (change times included), bad module files and
//! corrupt caches, modules of other architectures, and snapshots of every file for the sample
//! modules.
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::elf::{Spec, build};
use modkit_depgraph::{CacheLocation, Depmod, Error, Flavor, KernelSymbols, Level};

/// A scratch `lib/modules/1.0` directory, removed when dropped.
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        let root =
            std::env::temp_dir().join(format!("modkit-depgraph-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("lib/modules/1.0")).unwrap();
        Tree { root }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("lib/modules/1.0")
    }

    fn add(&self, rel: &str, spec: &Spec<'_>) -> PathBuf {
        self.add_bytes(rel, &build(spec))
    }

    fn add_bytes(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn order(&self, lines: &[&str]) {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(self.dir().join("modules.order"), text).unwrap();
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[derive(Debug)]
struct Run {
    files: BTreeMap<&'static str, Vec<u8>>,
    messages: Vec<(Level, String)>,
}

impl Run {
    fn text(&self, name: &str) -> String {
        String::from_utf8(self.files[name].clone()).unwrap()
    }
}

fn depmod(tree: &Tree) -> Depmod {
    Depmod::new(&tree.dir(), Flavor::kmod30())
}

fn run(mut d: Depmod) -> Result<Run, (Error, Vec<(Level, String)>)> {
    let result = d.generate();
    let messages: Vec<(Level, String)> = d
        .diagnostics
        .drain()
        .into_iter()
        .map(|m| (m.level, m.text))
        .collect();
    match result {
        Ok(g) => Ok(Run {
            files: g.files.into_iter().map(|f| (f.name, f.bytes)).collect(),
            messages,
        }),
        Err(e) => Err((e, messages)),
    }
}

/// The module names of modules.dep, in order.
fn dep_order(run: &Run) -> Vec<String> {
    run.text("modules.dep")
        .lines()
        .map(|l| {
            let p = l.split(':').next().unwrap();
            p.rsplit('/')
                .next()
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn dependencies_in_load_order() {
    let t = Tree::new("load-order");
    t.add("kernel/c.ko", &Spec::x86_64().exports(&["c_fn"]));
    t.add(
        "kernel/b.ko",
        &Spec::x86_64().exports(&["b_fn"]).imports(&["c_fn"]),
    );
    t.add(
        "kernel/a.ko",
        &Spec::x86_64().imports(&["b_fn", "c_fn", "printk"]),
    );
    t.add("kernel/d.ko", &Spec::x86_64().imports(&["c_fn"]));
    t.order(&["kernel/a.ko", "kernel/b.ko", "kernel/c.ko", "kernel/d.ko"]);
    let r = run(depmod(&t)).unwrap();
    assert_eq!(
        r.text("modules.dep"),
        "kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\nkernel/d.ko: kernel/c.ko\n"
    );
    // Without -e nothing is said about printk, which nobody exports.
    assert!(
        !r.messages.iter().any(|(_, t)| t.contains("printk")),
        "{:?}",
        r.messages
    );
}

#[test]
fn modules_order_first_then_the_rest() {
    let t = Tree::new("order");
    for name in ["m1", "m2", "m3", "m4", "m5", "m6"] {
        t.add(&format!("kernel/{name}.ko.xz"), &Spec::x86_64());
    }
    // The order file names the uncompressed path; unknown lines are ignored.
    t.order(&["kernel/m5.ko", "kernel/gone.ko", "kernel/m2.ko"]);
    let r = run(depmod(&t)).unwrap();
    let order = dep_order(&r);
    assert_eq!(&order[..2], ["m5", "m2"]);
    let mut rest = order[2..].to_vec();
    rest.sort();
    assert_eq!(rest, ["m1", "m3", "m4", "m6"]);
    // The rest follow kmod's hash table order, which is the same from run to run.
    assert_eq!(dep_order(&run(depmod(&t)).unwrap()), order);
}

#[test]
fn missing_or_corrupt_modules_order() {
    let t = Tree::new("no-order");
    t.add("kernel/m.ko", &Spec::x86_64());
    let r = run(depmod(&t)).unwrap();
    let dir = t.dir();
    assert_eq!(
        r.messages,
        vec![
            (
                Level::Warning,
                format!(
                    "could not open modules.order at {}: No such file or directory",
                    dir.display()
                )
            ),
            (
                Level::Warning,
                format!(
                    "could not open modules.builtin at {}: No such file or directory",
                    dir.display()
                )
            ),
            (
                Level::Warning,
                format!(
                    "could not open modules.builtin.modinfo at {}: No such file or directory",
                    dir.display()
                )
            ),
        ]
    );
    // Without modules.builtin*, kmod leaves those indexes empty (0 bytes).
    assert!(r.files["modules.builtin.bin"].is_empty());
    assert!(r.files["modules.builtin.alias.bin"].is_empty());
    std::fs::write(dir.join("modules.order"), "kernel/m.ko\nkernel/x.ko").unwrap();
    let r = run(depmod(&t)).unwrap();
    assert_eq!(
        r.messages[0],
        (
            Level::Error,
            format!(
                "{}/modules.order:2 corrupted line misses '\\n'",
                dir.display()
            )
        )
    );
}

#[test]
fn every_module_of_a_cycle_is_reported() {
    let t = Tree::new("cycle");
    t.add(
        "kernel/x.ko",
        &Spec::x86_64().exports(&["x_fn"]).imports(&["y_fn"]),
    );
    t.add(
        "kernel/y.ko",
        &Spec::x86_64().exports(&["y_fn"]).imports(&["x_fn"]),
    );
    t.add(
        "kernel/p.ko",
        &Spec::x86_64().exports(&["p_fn"]).imports(&["q_fn"]),
    );
    t.add(
        "kernel/q.ko",
        &Spec::x86_64().exports(&["q_fn"]).imports(&["r_fn"]),
    );
    t.add(
        "kernel/r.ko",
        &Spec::x86_64()
            .exports(&["r_fn"])
            .imports(&["p_fn", "base_fn"]),
    );
    t.add("kernel/base.ko", &Spec::x86_64().exports(&["base_fn"]));
    t.add("kernel/user.ko", &Spec::x86_64().imports(&["x_fn"]));
    t.order(&[
        "kernel/user.ko",
        "kernel/x.ko",
        "kernel/y.ko",
        "kernel/p.ko",
        "kernel/q.ko",
        "kernel/r.ko",
        "kernel/base.ko",
    ]);
    let (err, messages) = run(depmod(&t)).unwrap_err();
    assert!(matches!(err, Error::Cycles { count: 5 }), "{err}");
    let texts: Vec<&str> = messages.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "Cycle detected: x -> y -> x",
            "Cycle detected: p -> q -> r -> p",
            "Found 5 modules in dependency cycles!",
        ]
    );
    assert!(messages.iter().all(|(l, _)| *l == Level::Error));
}

#[test]
fn unknown_symbols_with_kernel_symbols() {
    let t = Tree::new("unknown");
    t.add(
        "kernel/a.ko",
        &Spec::x86_64()
            .imports(&["printk", "missing_fn", "__this_module"])
            .weak_imports(&["weak_fn"]),
    );
    t.order(&["kernel/a.ko"]);
    let map = t.root.join("System.map");
    std::fs::write(
        &map,
        "ffffffff81000000 T printk\nffffffff82000000 r __ksymtab_printk\nbad\n",
    )
    .unwrap();
    let mut d = depmod(&t);
    d.kernel = KernelSymbols::from_system_map(&map, &mut d.diagnostics).unwrap();
    d.resolve.print_unknown = true;
    let r = run(d).unwrap();
    let path = t.dir().join("kernel/a.ko");
    let texts: Vec<&str> = r.messages.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts[0],
        format!("{}:3: invalid line: bad\n", map.display())
    );
    assert_eq!(
        texts[1],
        format!("{} needs unknown symbol missing_fn", path.display())
    );
    assert_eq!(
        texts.iter().filter(|t| t.contains("needs unknown")).count(),
        1
    );
}

#[test]
fn later_module_owns_a_symbol_exported_twice() {
    let t = Tree::new("dup-export");
    t.add("kernel/first.ko", &Spec::x86_64().exports(&["shared"]));
    t.add("kernel/second.ko", &Spec::x86_64().exports(&["shared"]));
    t.add("kernel/user.ko", &Spec::x86_64().imports(&["shared"]));
    t.order(&["kernel/user.ko", "kernel/first.ko", "kernel/second.ko"]);
    let r = run(depmod(&t)).unwrap();
    assert_eq!(
        r.text("modules.symbols"),
        "# Aliases for symbols, used by symbol_request().\nalias symbol:shared second\n"
    );
    assert!(
        r.text("modules.dep")
            .starts_with("kernel/user.ko: kernel/second.ko\n")
    );
}

#[test]
fn symbol_prefix_is_stripped() {
    let t = Tree::new("prefix");
    t.add("kernel/e.ko", &Spec::x86_64().exports(&["_fn"]));
    t.add("kernel/u.ko", &Spec::x86_64().imports(&["_fn"]));
    t.order(&["kernel/u.ko", "kernel/e.ko"]);
    let mut d = depmod(&t);
    d.resolve.symbol_prefix = Some(b'_');
    d.flavor.symbol_prefix = Some(b'_');
    let r = run(d).unwrap();
    assert!(r.text("modules.symbols").contains("alias symbol:fn e\n"));
    assert!(
        r.text("modules.dep")
            .starts_with("kernel/u.ko: kernel/e.ko\n")
    );
}

/// The same tree built for other architectures gives the same files, byte for byte.
#[test]
fn any_class_and_byte_order() {
    let arches = [
        (true, false, 62u16, "x86-64"),
        (true, true, 22, "s390x"),
        (false, false, 40, "arm"),
        (false, true, 20, "ppc"),
        (true, false, 183, "arm64"),
    ];
    let mut results = Vec::new();
    for (class64, big, machine, name) in arches {
        let t = Tree::new(&format!("arch-{name}"));
        let spec = |s: Spec<'static>| s.arch(class64, big, machine);
        t.add(
            "kernel/c.ko",
            &spec(
                Spec::x86_64()
                    .exports(&["c_fn", "c_two"])
                    .modinfo(&["alias=char-major-10-1", "alias=devname:cdev"]),
            ),
        );
        t.add(
            "kernel/b.ko",
            &spec(
                Spec::x86_64()
                    .exports(&["b_fn"])
                    .imports(&["c_fn"])
                    .modinfo(&["alias=pci:v00001234d*", "softdep=pre: c"]),
            ),
        );
        t.add(
            "kernel/a.ko",
            &spec(Spec::x86_64().imports(&["b_fn", "c_two"])),
        );
        t.order(&["kernel/a.ko", "kernel/b.ko", "kernel/c.ko"]);
        let r = run(depmod(&t)).unwrap();
        assert!(
            r.text("modules.dep")
                .starts_with("kernel/a.ko: kernel/b.ko kernel/c.ko\n"),
            "{name}"
        );
        assert_eq!(
            r.text("modules.devname"),
            "# Device nodes to trigger on-demand module loading.\nc cdev c10:1\n",
            "{name}"
        );
        results.push((name, r.files));
    }
    for (name, files) in &results[1..] {
        assert_eq!(files, &results[0].1, "{name} differs from x86-64");
    }
}

#[test]
fn bad_module_files_are_named_and_keep_their_line() {
    let t = Tree::new("bad");
    t.add("kernel/good.ko", &Spec::x86_64());
    t.add_bytes("kernel/bad.ko", b"this is not an ELF file");
    let mut truncated = build(&Spec::x86_64().exports(&["x"]));
    truncated.truncate(100);
    t.add_bytes("kernel/short.ko", &truncated);
    t.order(&["kernel/good.ko", "kernel/bad.ko", "kernel/short.ko"]);
    let r = run(depmod(&t)).unwrap();
    assert_eq!(
        r.text("modules.dep"),
        "kernel/good.ko:\nkernel/bad.ko:\nkernel/short.ko:\n"
    );
    let bad = t.dir().join("kernel/bad.ko");
    let short = t.dir().join("kernel/short.ko");
    let errors: Vec<&String> = r
        .messages
        .iter()
        .filter(|(l, _)| *l == Level::Error)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("failed to load symbols from {}: ", bad.display())),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with(&format!(
            "failed to load symbols from {}: ",
            short.display()
        )),
        "{}",
        errors[1]
    );
}

/// A run with `cache`, written: its files, messages, load statistics and cache notes.
fn cached(t: &Tree, cache: &Path) -> (Run, modkit_depgraph::LoadStats, Vec<String>) {
    let mut d = depmod(t);
    d.cache = Some(CacheLocation::File(cache.to_path_buf()));
    let g = d.generate().unwrap();
    let messages = d.diagnostics.drain();
    d.write(&g).unwrap();
    let stats = g.stats;
    let files = g.files.into_iter().map(|f| (f.name, f.bytes)).collect();
    let messages = messages.into_iter().map(|m| (m.level, m.text)).collect();
    (Run { files, messages }, stats, d.diagnostics.notes)
}

#[test]
fn cache_invalidation() {
    let t = Tree::new("cache");
    let cache = t.root.join("depmod.cache");
    t.add("kernel/c.ko", &Spec::x86_64().exports(&["c_fn"]));
    t.add("kernel/b.ko", &Spec::x86_64().imports(&["c_fn"]));
    t.add("kernel/a.ko", &Spec::x86_64());
    t.order(&["kernel/a.ko", "kernel/b.ko", "kernel/c.ko"]);
    let (first, stats, _) = cached(&t, &cache);
    assert_eq!((stats.parsed, stats.cached), (3, 0));
    assert_eq!(
        first.text("modules.dep"),
        "kernel/a.ko:\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\n"
    );

    // Nothing changed: nothing to do.
    let (_, stats, _) = cached(&t, &cache);
    assert_eq!((stats.parsed, stats.cached), (0, 3));

    // An output removed: everything from the cache, files rewritten the same.
    std::fs::remove_file(t.dir().join("modules.dep")).unwrap();
    let (again, stats, _) = cached(&t, &cache);
    assert_eq!((stats.parsed, stats.cached), (0, 3));
    assert_eq!(again.files, first.files);

    // A module rewritten with new contents: only it is read again, and it counts.
    t.add("kernel/a.ko", &Spec::x86_64().imports(&["c_fn"]));
    let (changed, stats, _) = cached(&t, &cache);
    assert_eq!((stats.parsed, stats.cached), (1, 2));
    assert_eq!(
        changed.text("modules.dep"),
        "kernel/a.ko: kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\n"
    );

    // Same size and contents, new modification time: read again.
    let file = std::fs::File::options()
        .write(true)
        .open(t.dir().join("kernel/b.ko"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let (_, stats, _) = cached(&t, &cache);
    assert_eq!((stats.parsed, stats.cached), (1, 2));
}

/// A corrupt cache is not trusted: the module is read again and the files are the same. The
/// reason is a cache note, not one of depmod's messages, which are kmod's (and are replayed).
#[test]
fn corrupt_cache_is_ignored_with_a_note() {
    let t = Tree::new("corrupt-cache");
    let cache = t.root.join("depmod.cache");
    t.add("kernel/a.ko", &Spec::x86_64().exports(&["f"]));
    t.order(&["kernel/a.ko"]);
    let (good, _, notes) = cached(&t, &cache);
    assert!(notes.is_empty(), "{notes:?}");
    let mut bytes = std::fs::read(&cache).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0xff;
    std::fs::write(&cache, &bytes).unwrap();
    std::fs::remove_file(t.dir().join("modules.dep")).unwrap(); // force the entries to be read
    let (again, stats, notes) = cached(&t, &cache);
    assert_eq!(stats.parsed, 1);
    assert_eq!(again.files, good.files);
    assert_eq!(again.messages, good.messages);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("corrupt cache") && notes[0].contains(&cache.display().to_string()),
        "{}",
        notes[0]
    );
    // Rewritten by that run: the next one uses it.
    std::fs::remove_file(t.dir().join("modules.dep")).unwrap();
    let (_, stats, notes) = cached(&t, &cache);
    assert_eq!((stats.parsed, stats.cached, notes.len()), (0, 1, 0));
}

/// A module rewritten in place (same inode, same size, old mtime put back) is read again: the
/// change time is part of the key. Without it the old aliases would stay.
#[test]
fn cache_sees_a_module_rewritten_in_place() {
    use std::os::unix::fs::MetadataExt;
    let t = Tree::new("cache-ctime");
    let cache = t.root.join("depmod.cache");
    let path = t.add("kernel/a.ko", &Spec::x86_64().modinfo(&["alias=old-alias"]));
    t.add("kernel/b.ko", &Spec::x86_64());
    t.order(&["kernel/a.ko", "kernel/b.ko"]);
    let (first, _, _) = cached(&t, &cache);
    assert!(first.text("modules.alias").contains("alias old-alias a\n"));

    let new = build(&Spec::x86_64().modinfo(&["alias=new-alias"]));
    let before = std::fs::metadata(&path).unwrap();
    assert_eq!(before.len(), new.len() as u64);
    let mut file = std::fs::File::options().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, &new).unwrap();
    let times = std::fs::FileTimes::new().set_modified(before.modified().unwrap());
    file.set_times(times).unwrap();
    // The change time moves with the kernel's clock tick; set the times until it has moved.
    let start = std::time::Instant::now();
    while std::fs::metadata(&path).unwrap().ctime_nsec() == before.ctime_nsec()
        && std::fs::metadata(&path).unwrap().ctime() == before.ctime()
    {
        assert!(start.elapsed().as_secs() < 5, "the change time never moved");
        std::thread::sleep(std::time::Duration::from_millis(5));
        file.set_times(times).unwrap();
    }
    drop(file);
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (after.ino(), after.size(), after.mtime(), after.mtime_nsec()),
        (
            before.ino(),
            before.size(),
            before.mtime(),
            before.mtime_nsec()
        )
    );

    let (changed, stats, _) = cached(&t, &cache);
    assert_eq!((stats.parsed, stats.cached), (1, 1));
    let aliases = changed.text("modules.alias");
    assert!(
        aliases.contains("alias new-alias a\n") && !aliases.contains("old-alias"),
        "{aliases}"
    );
}

fn fixtures(kernel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../kmods/fixtures")
        .join(kernel)
}

/// Every file for the sample modules in `extra/`, as insta snapshots (binary indexes as dumps).
#[test]
fn sample_modules_snapshots() {
    let t = Tree::new("fixtures");
    for m in ["hello_api.ko", "hello_feature.ko"] {
        let bytes = std::fs::read(fixtures("6.1").join(m)).unwrap();
        t.add_bytes(&format!("extra/{m}"), &bytes);
    }
    let r = run(depmod(&t)).unwrap();
    let mut snapshot = String::new();
    for (name, bytes) in &r.files {
        snapshot.push_str(&format!("==> {name} ({} bytes)\n", bytes.len()));
        if name.ends_with(".bin") {
            if !bytes.is_empty() {
                let index = modkit_index::Index::from_bytes(bytes).unwrap();
                snapshot.push_str(&index.dump().unwrap());
            }
        } else {
            snapshot.push_str(&String::from_utf8_lossy(bytes));
        }
    }
    insta::assert_snapshot!(snapshot);
    // hello_feature needs hello_api.
    assert_eq!(
        r.text("modules.dep"),
        "extra/hello_api.ko:\nextra/hello_feature.ko: extra/hello_api.ko\n"
    );
}

#[test]
fn guix_databases() {
    let t = Tree::new("guix");
    t.add(
        "kernel/fs/fuse.ko.xz",
        &Spec::x86_64().modinfo(&[
            "alias=char-major-10-229",
            "alias=devname:fuse",
            "alias=fs-fuse",
        ]),
    );
    t.add(
        "kernel/net/snd-dummy.ko",
        &Spec::x86_64().modinfo(&["alias=snd-card-dummy"]),
    );
    let modules = modkit_depgraph::guix::modules_in(&t.dir()).unwrap();
    assert_eq!(
        String::from_utf8(modkit_depgraph::guix::module_name_database(&modules)).unwrap(),
        "fuse kernel/fs/fuse.ko.xz\nsnd_dummy kernel/net/snd-dummy.ko\n"
    );
    assert_eq!(
        String::from_utf8(modkit_depgraph::guix::alias_database(&modules)).unwrap(),
        "# Aliases extracted from modules themselves.\nalias char-major-10-229 fuse\n\
         alias devname:fuse fuse\nalias fs-fuse fuse\nalias snd-card-dummy snd_dummy\n"
    );
    modkit_depgraph::guix::write_module_device_database(&t.dir()).unwrap();
    assert_eq!(
        std::fs::read_to_string(t.dir().join("modules.devname")).unwrap(),
        "# Device nodes to trigger on-demand module loading.\nfuse fuse c10:229\n"
    );
}

#[test]
fn duplicate_aliases_warn_with_w() {
    let t = Tree::new("dups");
    t.add(
        "kernel/a.ko",
        &Spec::x86_64().modinfo(&["alias=same", "alias=same", "alias=bad]"]),
    );
    t.order(&["kernel/a.ko"]);
    let mut d = depmod(&t);
    d.flavor.warn_dups = true;
    let r = run(d).unwrap();
    let texts: Vec<&str> = r.messages.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        texts.contains(&"duplicate module alias:\nsame a"),
        "{texts:?}"
    );
    assert!(texts.contains(&"Unmatched bracket in bad]"), "{texts:?}");
    // Both copies are in the index, as kmod keeps them.
    let index = modkit_index::Index::from_bytes(&r.files["modules.alias.bin"]).unwrap();
    assert_eq!(index.get_all("same").unwrap().unwrap().count(), 2);
}

/// A directory link loop ends (kmod itself follows it until it runs out of file descriptors):
/// one copy of the module, an error naming the path where the walk stopped.
#[test]
fn symbolic_link_loops_end() {
    let t = Tree::new("link-loop");
    t.add("kernel/a.ko", &Spec::x86_64());
    std::os::unix::fs::symlink("..", t.dir().join("kernel/loop")).unwrap();
    t.order(&["kernel/a.ko"]);
    let r = run(depmod(&t)).unwrap();
    let dep = r.text("modules.dep");
    assert_eq!(dep.lines().count(), 1, "{dep}");
    assert!(dep.ends_with("a.ko:\n"), "{dep}");
    let loop_dir = t.dir().join("kernel/loop/kernel/loop");
    assert!(
        r.messages
            .iter()
            .any(|(l, m)| *l == Level::Error && m.contains(&*loop_dir.to_string_lossy())),
        "{:?}",
        r.messages
    );
}

/// `write` puts the files into `out_dir` (creating it), clears what killed runs left there,
/// and writes nothing for an up-to-date result; the module directory is left alone.
#[test]
fn write_goes_to_the_output_directory() {
    let t = Tree::new("out-dir");
    t.add("kernel/a.ko", &Spec::x86_64().exports(&["f"]));
    t.order(&["kernel/a.ko"]);
    let out = t.root.join("out/lib/modules/1.0");
    let mut d = depmod(&t);
    d.out_dir = Some(out.clone());
    let g = d.generate().unwrap();
    assert!(!g.up_to_date);
    d.write(&g).unwrap();
    let written: Vec<String> = {
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let mut expected: Vec<String> = g.files.iter().map(|f| f.name.to_owned()).collect();
    expected.sort();
    assert_eq!(written, expected);
    for f in &g.files {
        assert_eq!(
            std::fs::read(out.join(f.name)).unwrap(),
            f.bytes,
            "{}",
            f.name
        );
    }
    // The module directory has its inputs only.
    assert!(!t.dir().join("modules.dep").exists());

    // A temporary of a killed run (a PID no process has) goes; one of another file stays.
    std::fs::write(out.join(".modules.dep.4194305.tmp"), b"partial").unwrap();
    std::fs::write(out.join(".unrelated.4194305.tmp"), b"x").unwrap();
    let mut d = depmod(&t);
    d.out_dir = Some(out.clone());
    let g = d.generate().unwrap();
    d.write(&g).unwrap();
    assert!(!out.join(".modules.dep.4194305.tmp").exists());
    assert!(out.join(".unrelated.4194305.tmp").exists());
}

/// `read_config` reads depmod.d as the tool does (here `-C DIR`): its `exclude` applies and a
/// bad line comes back as a warning. A change of configuration is a change of input: the
/// cache's record of the last run does not hide it.
#[test]
fn read_config_and_the_cache_sees_configuration_changes() {
    let t = Tree::new("read-config");
    t.add("kernel/a.ko", &Spec::x86_64());
    t.add("skipped/b.ko", &Spec::x86_64());
    t.order(&["kernel/a.ko", "skipped/b.ko"]);
    let conf = t.root.join("depmod.d");
    std::fs::create_dir_all(&conf).unwrap();
    let cache = t.root.join("depmod.cache");
    let run_with = |config: Option<&str>| {
        if let Some(text) = config {
            std::fs::write(conf.join("a.conf"), text).unwrap();
        }
        let mut d = depmod(&t);
        let warnings = match config {
            Some(_) => d.read_config(std::slice::from_ref(&conf), "1.0"),
            None => Vec::new(),
        };
        d.cache = Some(CacheLocation::File(cache.clone()));
        let g = d.generate().unwrap();
        d.write(&g).unwrap();
        (g.up_to_date, warnings.len(), g.files)
    };
    let (_, _, files) = run_with(None);
    assert!(String::from_utf8_lossy(&files[0].bytes).contains("skipped/b.ko:"));
    let (up_to_date, _, _) = run_with(None);
    assert!(up_to_date, "nothing changed");
    let (up_to_date, warnings, files) = run_with(Some("exclude skipped\nbogus line\n"));
    assert!(!up_to_date, "the configuration changed");
    assert_eq!(warnings, 1);
    assert_eq!(files[0].name, "modules.dep");
    assert_eq!(String::from_utf8_lossy(&files[0].bytes), "kernel/a.ko:\n");
    let (up_to_date, _, _) = run_with(Some("exclude skipped\nbogus line\n"));
    assert!(up_to_date, "the same configuration again");
}

/// A file that cannot be rendered stops the run with an error naming it; the messages of the
/// files before it are kept, as kmod (which writes file by file) has printed them by then.
#[test]
fn an_index_that_cannot_be_built_stops_the_run_after_the_earlier_messages() {
    let t = Tree::new("bad-index");
    t.add("kernel/a.ko", &Spec::x86_64());
    t.order(&["kernel/a.ko"]);
    std::fs::write(t.dir().join("modules.builtin"), "1bad\nkernel/foo.ko\n").unwrap();
    std::fs::write(
        t.dir().join("modules.builtin.modinfo"),
        "foo.alias=caf\u{e9}\0",
    )
    .unwrap();
    let (err, messages) = run(depmod(&t)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Index {
                name: "modules.builtin.alias.bin",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        messages,
        vec![(
            Level::Error,
            "Invalid modules.builtin line: 1bad\n".to_owned()
        )]
    );
}
