//! The bad-input suite: damaged and hostile files given to the tools themselves (`modinfo`,
//! `depmod`, `rmmod`, `lsmod`). Each case runs the real binary under a memory cap
//! (`ulimit -v`) and a deadline, and checks that it ends non-zero with an error on stderr
//! naming the file and the problem, or, where kmod accepts the input, that it ends normally.
//! Never a panic, a hang or a runaway allocation.
//!
//! The parsers have their own truncation and corruption tests; this file is the one place that
//! counts the bad inputs end to end, and prints the count.
#![forbid(unsafe_code)]

#[path = "../../modkit-depgraph/tests/common/elf.rs"]
#[allow(unreachable_pub, missing_debug_implementations)] // reason: shared test helper
mod elf;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modkit::index::{IndexBuilder, Layout};
use modkit_testkit::Scratch;

/// Address space for one tool run: far below what a decompression bomb or a looping index
/// reader would take, well above what the tools need (the decompression cap is 256 MiB).
const MEMORY_KB: u64 = 1 << 20;
/// Longest a run may take: a guard against hangs only; every case takes milliseconds.
const DEADLINE: Duration = Duration::from_secs(60);
const VERSION: &str = "6.1.0-bad";

/// What a run printed and how it ended.
#[derive(Debug)]
struct Run {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

/// Run `modkit ARGS` with `env`, under the memory cap and the deadline.
fn modkit(args: &[&str], env: &[(&str, &Path)], cwd: &Path) -> Run {
    modkit_within(Some(MEMORY_KB), args, env, cwd)
}

/// [`modkit`] under an address-space limit of `limit_kb` (none: the shell's own).
fn modkit_within(limit_kb: Option<u64>, args: &[&str], env: &[(&str, &Path)], cwd: &Path) -> Run {
    // `ulimit -v` through sh: no unsafe `pre_exec` needed, and the limit holds for the exec'd
    // binary. `trap '' XFSZ` is not wanted here (only the depmod size-limit case sets it).
    let limit = limit_kb.map_or_else(String::new, |kb| format!("ulimit -v {kb} && "));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{limit}exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_modkit"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MODKIT_PROC")
        .env_remove("MODKIT_SYS_MODULE")
        .env_remove("MODKIT_LIB_MODULES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_deadline(cmd, args)
}

fn run_with_deadline(mut cmd: Command, what: &[&str]) -> Run {
    let mut child = cmd.spawn().expect("spawn sh");
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("modkit {what:?} still running after {DEADLINE:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        code: status.code(),
    }
}

/// `ROOT/lib/modules/VERSION` of a scratch root.
fn module_dir(s: &Scratch) -> PathBuf {
    s.join(format!("lib/modules/{VERSION}"))
}

fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../kmods/fixtures")
        .join(rel);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A failure as the suite wants it: non-zero exit, no panic, and stderr naming `file` and
/// containing `problem`.
#[track_caller]
fn assert_fails(run: &Run, file: &str, problem: &str) {
    assert_no_crash(run);
    assert!(
        run.code.is_some_and(|c| c != 0),
        "expected a failure, got {:?}\nstderr: {}",
        run.code,
        run.stderr
    );
    assert!(
        run.stderr.contains(file),
        "stderr does not name {file}:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(problem),
        "stderr does not say {problem:?}:\n{}",
        run.stderr
    );
}

/// No panic, no death by signal (a kill by the memory cap shows as SIGABRT/SIGSEGV).
#[track_caller]
fn assert_no_crash(run: &Run) {
    assert!(
        run.code.is_some(),
        "killed by a signal\nstderr: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("memory allocation"),
        "crashed:\n{}",
        run.stderr
    );
}

/// Counts the cases as they run, and prints the total when the test ends.
struct Tally(&'static str, usize);

impl Tally {
    fn add(&mut self, n: usize) {
        self.1 += n;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            println!("bad-input suite, {}: {} bad inputs", self.0, self.1);
        }
    }
}

// ---- module files -------------------------------------------------------------------------

/// Field offsets of an ELF64 little-endian header (the fixtures are x86-64).
const E_SHOFF: usize = 0x28;
const E_SHNUM: usize = 0x3C;
const E_SHSTRNDX: usize = 0x3E;

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Offset of the section header of the section called `name` in an ELF64 LE file.
fn section_header(b: &[u8], name: &str) -> usize {
    let shoff = get_u64(b, E_SHOFF) as usize;
    let shnum = u16::from_le_bytes([b[E_SHNUM], b[E_SHNUM + 1]]) as usize;
    let shstrndx = u16::from_le_bytes([b[E_SHSTRNDX], b[E_SHSTRNDX + 1]]) as usize;
    let strtab = get_u64(b, shoff + shstrndx * 64 + 0x18) as usize;
    (0..shnum)
        .map(|i| shoff + i * 64)
        .find(|&h| {
            let n = u32::from_le_bytes(b[h..h + 4].try_into().unwrap()) as usize;
            let s = &b[strtab + n..];
            &s[..s.iter().position(|&c| c == 0).unwrap()] == name.as_bytes()
        })
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// A zstd frame of `total` zero bytes made of RLE blocks: a few KB that decompress to
/// gigabytes (RFC 8878: frame header without content size, window 128 KiB, RLE blocks).
fn zstd_bomb(total: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    let mut out = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    let mut left = total;
    while left > 0 {
        let n = left.min(BLOCK);
        left -= n;
        let last = u32::from(left == 0);
        let header = ((n as u32) << 3) | (1 << 1) | last;
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(0);
    }
    out
}

#[test]
fn modinfo_on_damaged_module_files() {
    let mut tally = Tally("modinfo on module files", 0);
    let s = Scratch::new("bad-input-modinfo-files");
    let good = fixture("6.1/hello_feature.ko");

    // Every proper prefix, all in one run: modinfo reports each and goes on.
    let mut args = Vec::new();
    for len in 0..good.len() {
        args.push(s.write(format!("trunc/{len}.ko"), &good[..len]));
    }
    let arg_strs: Vec<&str> = args.iter().map(|p| p.to_str().unwrap()).collect();
    let run = modkit(&[&["modinfo"][..], &arg_strs].concat(), &[], &s.0);
    assert_no_crash(&run);
    assert_ne!(run.code, Some(0));
    let errors: Vec<&str> = run.stderr.lines().collect();
    for (len, p) in arg_strs.iter().enumerate() {
        assert!(
            errors.iter().any(|l| l.contains(&format!("{p}:"))),
            "prefix of {len} bytes: no error naming {p}"
        );
    }
    // kmod prints the `filename:` line before it finds the module unreadable; nothing else.
    assert!(
        run.stdout.lines().all(|l| l.starts_with("filename:")),
        "a truncated module printed more than its file name"
    );
    tally.add(good.len());

    // Header damage, each its own file and run.
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut magic = good.clone();
    magic[3] = b'G';
    cases.push(("bad-magic.ko", magic, "ELF"));
    cases.push(("text.ko", b"this is not a module\n".to_vec(), "ELF"));
    let mut class = good.clone();
    class[4] = 3;
    cases.push(("bad-class.ko", class, "class"));
    let mut shoff = good.clone();
    put_u64(&mut shoff, E_SHOFF, 0xFFFF_FFFF_FFFF_0000);
    cases.push(("huge-shoff.ko", shoff, "Could not read bytes in range"));
    let mut shnum = good.clone();
    put_u16(&mut shnum, E_SHNUM, 0xFFFF);
    cases.push(("huge-shnum.ko", shnum, "Could not read bytes in range"));
    let mut shstrndx = good.clone();
    put_u16(&mut shstrndx, E_SHSTRNDX, 0xFFF0);
    cases.push(("bad-shstrndx.ko", shstrndx, "section"));
    let h = section_header(&good, ".modinfo");
    let mut off = good.clone();
    put_u64(&mut off, h + 0x18, 0x7FFF_FFFF_FFFF_FFF0);
    cases.push(("modinfo-offset-huge.ko", off, ".modinfo"));
    let mut size = good.clone();
    put_u64(&mut size, h + 0x20, 0xFFFF_FFFF_FFFF);
    cases.push(("modinfo-size-huge.ko", size, ".modinfo"));
    let mut zstd = vec![];
    zstd.extend_from_slice(&zstd_bomb(4 << 30));
    cases.push(("bomb.ko.zst", zstd, "limit"));
    let xz = fixture("6.12/hello_api.ko.xz");
    cases.push(("truncated.ko.xz", xz[..xz.len() / 2].to_vec(), "xz"));
    let mut gz = fixture("6.12/hello_api.ko.gz");
    let n = gz.len();
    gz[n - 6] ^= 0xFF; // the CRC32 of the content
    cases.push(("bad-crc.ko.gz", gz, "gzip"));
    let zst = fixture("6.12/hello_api.ko.zst");
    cases.push(("truncated.ko.zst", zst[..zst.len() - 7].to_vec(), "zstd"));
    cases.push(("empty.ko", Vec::new(), "ELF"));

    let mut wrong = Vec::new();
    for (name, bytes, problem) in &cases {
        let p = s.write(name, bytes);
        let run = modkit(&["modinfo", p.to_str().unwrap()], &[], &s.0);
        assert_no_crash(&run);
        if run.code == Some(0) || !run.stderr.contains(name) || !run.stderr.contains(problem) {
            wrong.push(format!(
                "{name}: exit {:?}, wanted {problem:?}: {}",
                run.code, run.stderr
            ));
        }
        tally.add(1);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn modinfo_on_odd_modules_kmod_accepts() {
    let mut tally = Tally("modinfo on odd but readable modules", 0);
    let s = Scratch::new("bad-input-modinfo-odd");
    let good = fixture("6.1/hello_feature.ko");
    let h = section_header(&good, ".modinfo");
    let (at, len) = (
        get_u64(&good, h + 0x18) as usize,
        get_u64(&good, h + 0x20) as usize,
    );

    // .modinfo without a single NUL: kmod reads it as one record running to the section end.
    let mut no_nul = good.clone();
    for b in &mut no_nul[at..at + len] {
        if *b == 0 {
            *b = b'x';
        }
    }
    // .modinfo overlapping the ELF header: garbage records, but within the file.
    let mut overlap = good.clone();
    put_u64(&mut overlap, h + 0x18, 0);
    put_u64(&mut overlap, h + 0x20, 64);
    // A signature trailer whose length points before the start of the file.
    let mut sig = good.clone();
    sig.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x00]);
    sig.extend_from_slice(b"~Module signature appended~\n");
    for (name, bytes) in [
        ("no-nul.ko", no_nul),
        ("overlap.ko", overlap),
        ("bad-sig.ko", sig),
    ] {
        let p = s.write(name, &bytes);
        let run = modkit(&["modinfo", p.to_str().unwrap()], &[], &s.0);
        assert_no_crash(&run);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert!(
            run.stdout.starts_with("filename:"),
            "{name}: {}",
            run.stdout
        );
        assert!(
            run.stdout.len() < 64 << 10,
            "{name}: output out of proportion"
        );
        tally.add(1);
    }
}

// ---- index files --------------------------------------------------------------------------

/// A module directory holding `hello_api.ko` and a modules.dep.bin naming it.
fn indexed_tree(s: &Scratch) -> PathBuf {
    let dir = module_dir(s);
    fs::create_dir_all(dir.join("extra")).unwrap();
    fs::write(dir.join("extra/hello_api.ko"), fixture("6.1/hello_api.ko")).unwrap();
    write_index(
        &dir.join("modules.dep.bin"),
        &[("hello_api", "extra/hello_api.ko:")],
    );
    dir
}

fn write_index(path: &Path, entries: &[(&str, &str)]) {
    let mut b = IndexBuilder::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        b.insert(k, v, i as u32).unwrap();
    }
    fs::write(path, b.write(Layout::PostOrder).unwrap()).unwrap();
}

/// A hand-made index: the 12-byte header with `root`, then `body` at offset 12.
fn raw_index(root: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xB007_F457u32.to_be_bytes());
    v.extend_from_slice(&0x0002_0001u32.to_be_bytes());
    v.extend_from_slice(&root.to_be_bytes());
    v.extend_from_slice(body);
    v
}

const PREFIX: u32 = 0x8000_0000;
const VALUES: u32 = 0x4000_0000;
const CHILDS: u32 = 0x2000_0000;

#[test]
fn modinfo_with_damaged_indexes() {
    let mut tally = Tally("modinfo with damaged indexes", 0);
    let s = Scratch::new("bad-input-indexes");
    let dir = indexed_tree(&s);
    let root = s.0.to_str().unwrap();

    // Sanity: the tree works before it is damaged.
    let ok = modkit(
        &["modinfo", "-b", root, "-k", VERSION, "hello_api"],
        &[],
        &s.0,
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);

    let good = fs::read(dir.join("modules.dep.bin")).unwrap();
    // A node whose only child (for 'h') is the node itself: a loop.
    let mut looping = vec![b'h', b'h'];
    looping.extend_from_slice(&(12 | CHILDS).to_be_bytes());
    // A child table for bytes 0x80..0x80 (not 7-bit ASCII).
    let mut high = vec![0x80, 0x80];
    high.extend_from_slice(&(16 | VALUES).to_be_bytes());
    high.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, b'x', 0]);
    // A value that is not UTF-8, under key "hello_api".
    let mut value = b"hello_api\0".to_vec();
    value.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0xFF, 0xFE, b':', 0]);
    // A prefix without its NUL, running to the end of the file.
    let unterminated = b"hello_api".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad magic",
            [b"\xde\xad\xbe\xef".as_slice(), &good[4..]].concat(),
            "magic",
        ),
        ("header only", good[..8].to_vec(), "header"),
        (
            "bad version",
            raw_index(12, &[])
                .iter()
                .enumerate()
                .map(|(i, &b)| if i == 4 { 9 } else { b })
                .collect(),
            "version",
        ),
        (
            "root outside",
            raw_index(0x0FFF_FFF0 | VALUES, &[]),
            "outside",
        ),
        ("root in header", raw_index(4 | PREFIX, &[]), "outside"),
        ("loop", raw_index(12 | CHILDS, &looping), "modules.dep.bin"),
        (
            "non-ascii child",
            raw_index(12 | CHILDS, &high),
            "modules.dep.bin",
        ),
        (
            "non-utf8 value",
            raw_index(12 | PREFIX | VALUES, &value),
            "modules.dep.bin",
        ),
        (
            "unterminated prefix",
            raw_index(12 | PREFIX, &unterminated),
            "truncated",
        ),
        (
            "truncated values",
            raw_index(12 | VALUES, &[0, 0, 0, 9, 0, 0]),
            "truncated",
        ),
        (
            "every third byte gone",
            good.iter().step_by(3).copied().collect(),
            "modules.dep.bin",
        ),
    ];
    for (what, bytes, problem) in &cases {
        fs::write(dir.join("modules.dep.bin"), bytes).unwrap();
        let run = modkit(
            &["modinfo", "-b", root, "-k", VERSION, "hello_api"],
            &[],
            &s.0,
        );
        // A damaged index may also just not have the key; then kmod's "not found".
        if run.code == Some(1) && run.stderr.contains("not found") && !run.stderr.contains(".bin") {
            assert_no_crash(&run);
            assert!(
                !matches!(
                    *what,
                    "bad magic" | "header only" | "bad version" | "root outside"
                ),
                "{what}: the damage went unreported: {}",
                run.stderr
            );
        } else {
            assert_fails(&run, "modules.dep.bin", problem);
        }
        tally.add(1);
    }

    // Wildcard lookups walk the whole alias trie: a loop there must end too.
    fs::write(dir.join("modules.dep.bin"), &good).unwrap();
    let mut star_loop = vec![b'*', b'*'];
    star_loop.extend_from_slice(&(12 | CHILDS).to_be_bytes());
    fs::write(
        dir.join("modules.alias.bin"),
        raw_index(12 | CHILDS, &star_loop),
    )
    .unwrap();
    let run = modkit(
        &["modinfo", "-b", root, "-k", VERSION, "pci:v00001234d0001"],
        &[],
        &s.0,
    );
    assert_fails(&run, "modules.alias.bin", "modules.alias.bin");
    tally.add(1);
    fs::remove_file(dir.join("modules.alias.bin")).unwrap();

    // modules.dep.bin naming a file that does not exist, and one that is damaged.
    write_index(
        &dir.join("modules.dep.bin"),
        &[
            ("hello_api", "extra/gone.ko:"),
            ("hello_feature", "extra/bad.ko: extra/hello_api.ko"),
        ],
    );
    fs::write(dir.join("extra/bad.ko"), b"\x7fELF\x02\x01\x01").unwrap();
    let run = modkit(
        &["modinfo", "-b", root, "-k", VERSION, "hello_api"],
        &[],
        &s.0,
    );
    assert_fails(&run, "extra/gone.ko", "No such file");
    let run = modkit(
        &["modinfo", "-b", root, "-k", VERSION, "hello_feature"],
        &[],
        &s.0,
    );
    assert_fails(&run, "extra/bad.ko", "");
    tally.add(2);

    // An index that cannot be read. Root reads a chmod 000 file all the same, so then a
    // directory stands in for the file (reading it fails with EISDIR).
    fs::remove_file(dir.join("modules.dep.bin")).unwrap();
    let unreadable = if running_as_root() {
        println!("running as root: chmod 000 does not stop reads; using a directory instead");
        fs::create_dir(dir.join("modules.dep.bin")).unwrap();
        "directory"
    } else {
        write_index(
            &dir.join("modules.dep.bin"),
            &[("hello_api", "extra/hello_api.ko:")],
        );
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            dir.join("modules.dep.bin"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        "denied"
    };
    let run = modkit(
        &["modinfo", "-b", root, "-k", VERSION, "hello_api"],
        &[],
        &s.0,
    );
    let problem = if unreadable == "directory" {
        "not a regular file"
    } else {
        "denied"
    };
    assert_fails(&run, "modules.dep.bin", problem);
    tally.add(1);

    // A FIFO in place of an index: opening it would wait for a writer forever.
    let _ = fs::remove_dir(dir.join("modules.dep.bin"));
    let _ = fs::remove_file(dir.join("modules.dep.bin"));
    mkfifo(&dir.join("modules.dep.bin"));
    let run = modkit(
        &["modinfo", "-b", root, "-k", VERSION, "hello_api"],
        &[],
        &s.0,
    );
    assert_fails(&run, "modules.dep.bin", "not a regular file");
    let run = modkit(
        &[
            "modprobe",
            "-d",
            root,
            "-S",
            VERSION,
            "--show-depends",
            "hello_api",
        ],
        &[],
        &s.0,
    );
    assert_fails(&run, "modules.dep.bin", "not a regular file");
    tally.add(2);
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

fn running_as_root() -> bool {
    // The owner of a file we just made is our effective uid.
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new("bad-input-uid");
    let uid = fs::metadata(s.write("mine", b"")).unwrap().uid();
    uid == 0
}

// ---- depmod -------------------------------------------------------------------------------

fn module(exports: &[&str], imports: &[&str], name: &str) -> Vec<u8> {
    let info = format!("name={name}");
    let spec = elf::Spec::x86_64()
        .exports(exports)
        .imports(imports)
        .modinfo(&["license=GPL", &info]);
    elf::build(&spec)
}

fn depmod(root: &Path) -> Run {
    modkit(
        &["depmod", "-b", root.to_str().unwrap(), VERSION],
        &[],
        root,
    )
}

#[test]
fn depmod_on_damaged_trees() {
    let mut tally = Tally("depmod on damaged trees", 0);

    // A dependency cycle.
    let s = Scratch::new("bad-input-depmod-cycle");
    let dir = module_dir(&s);
    s.write(
        format!("lib/modules/{VERSION}/x.ko"),
        module(&["x_sym"], &["y_sym"], "x"),
    );
    s.write(
        format!("lib/modules/{VERSION}/y.ko"),
        module(&["y_sym"], &["x_sym"], "y"),
    );
    let run = depmod(&s.0);
    assert_fails(
        &run,
        "Found 2 modules in dependency cycles",
        "Cycle detected",
    );
    assert!(
        run.stderr.contains("x -> y -> x") || run.stderr.contains("y -> x -> y"),
        "{}",
        run.stderr
    );
    tally.add(1);

    // A damaged module among good ones: named, the rest indexed.
    let s = Scratch::new("bad-input-depmod-badmod");
    let dir2 = module_dir(&s);
    s.write(
        format!("lib/modules/{VERSION}/good.ko"),
        module(&["g"], &[], "good"),
    );
    s.write(
        format!("lib/modules/{VERSION}/trunc.ko"),
        &module(&["t"], &[], "trunc")[..100],
    );
    s.write(format!("lib/modules/{VERSION}/junk.ko"), b"junk");
    let run = depmod(&s.0);
    assert_no_crash(&run);
    for name in ["trunc.ko", "junk.ko"] {
        assert!(
            run.stderr.contains(name),
            "{name} not named:\n{}",
            run.stderr
        );
    }
    let dep = fs::read_to_string(dir2.join("modules.dep")).unwrap_or_default();
    assert!(
        dep.contains("good.ko:"),
        "the good module is missing:\n{dep}"
    );
    tally.add(2);

    // modules.order with a last line that misses its newline.
    let s = Scratch::new("bad-input-depmod-order");
    let dir3 = module_dir(&s);
    s.write(format!("lib/modules/{VERSION}/a.ko"), module(&[], &[], "a"));
    s.write(
        format!("lib/modules/{VERSION}/modules.order"),
        b"a.ko\nb.ko",
    );
    let run = depmod(&s.0);
    assert_no_crash(&run);
    assert!(run.stderr.contains("modules.order:2"), "{}", run.stderr);
    assert!(dir3.join("modules.dep.bin").exists());
    tally.add(1);

    // A directory symlink loop inside the tree: the scan must end.
    let s = Scratch::new("bad-input-depmod-symloop");
    s.write(
        format!("lib/modules/{VERSION}/kernel/a.ko"),
        module(&[], &[], "a"),
    );
    symlink(".", module_dir(&s).join("kernel/loop")).unwrap();
    symlink("self", module_dir(&s).join("kernel/self")).unwrap();
    let run = depmod(&s.0);
    assert_no_crash(&run);
    tally.add(2);

    // FIFOs in place of modules.order and modules.builtin, and of a module file.
    let s = Scratch::new("bad-input-depmod-fifo");
    s.write(format!("lib/modules/{VERSION}/a.ko"), module(&[], &[], "a"));
    mkfifo(&module_dir(&s).join("modules.order"));
    mkfifo(&module_dir(&s).join("modules.builtin"));
    mkfifo(&module_dir(&s).join("fifo.ko"));
    let run = depmod(&s.0);
    assert_no_crash(&run);
    for name in ["modules.order", "modules.builtin", "fifo.ko"] {
        assert!(
            run.stderr.contains(name),
            "{name} not named:\n{}",
            run.stderr
        );
    }
    assert!(
        module_dir(&s).join("modules.dep.bin").exists(),
        "{}",
        run.stderr
    );
    tally.add(3);

    // A version whose directory does not exist.
    let s = Scratch::new("bad-input-depmod-missing");
    let run = depmod(&s.0);
    assert_fails(&run, VERSION, "");
    tally.add(1);

    // An index that cannot be replaced: modules.dep.bin is a directory.
    let s = Scratch::new("bad-input-depmod-unwritable");
    s.write(format!("lib/modules/{VERSION}/a.ko"), module(&[], &[], "a"));
    fs::create_dir_all(module_dir(&s).join("modules.dep.bin/sub")).unwrap();
    let run = depmod(&s.0);
    assert_fails(&run, "modules.dep.bin", "");
    tally.add(1);
    let _ = dir;
}

/// The files `depmod` wrote in `dir` (`modules.*` but its inputs), by name, with their bytes.
fn indexes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let inputs = [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ];
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("modules.") && !inputs.contains(&n.as_str()))
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Debian's trees under `ulimit -v`: at 96 MiB (where kmod 30's depmod completes) depmod writes
/// the indexes an unlimited run writes, even with 64 worker threads asked for; at 16 MiB it
/// ends with one line saying it ran out of memory and what it was doing, status 1, and the
/// indexes already there untouched. Never SIGABRT ("memory allocation of N bytes failed").
#[test]
fn depmod_under_memory_limits() {
    let mut tally = Tally("depmod under memory limits", 0);
    for series in ["6.1", "6.12"] {
        let test = format!("depmod_under_memory_limits ({series})");
        let Some(tree) = modkit_testkit::require(&test, modkit_testkit::kernel_modules_dir(series))
        else {
            continue;
        };
        let release = tree.file_name().unwrap().to_str().unwrap().to_owned();
        let s = Scratch::new(&format!("bad-input-memory-{series}"));
        let dir = s.join(format!("lib/modules/{release}"));
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        // Hard links: depmod replaces its files by rename, so the cache's own tree is never
        // written.
        let cp = Command::new("cp").arg("-al").arg(&tree).arg(&dir).status();
        assert!(cp.unwrap().success(), "cp -al {}", tree.display());
        let root = s.0.to_str().unwrap();
        let args = ["depmod", "--no-cache", "-b", root, &release];

        let reference = modkit_within(None, &args, &[], &s.0);
        assert_eq!(reference.code, Some(0), "{}", reference.stderr);
        let want = indexes(&dir);
        assert!(
            want.iter()
                .any(|(n, b)| n == "modules.dep.bin" && !b.is_empty()),
            "no indexes written: {want:?}"
        );
        for (name, _) in &want {
            fs::remove_file(dir.join(name)).unwrap();
        }

        let run = modkit_within(Some(96 << 10), &args, &[], &s.0);
        assert_eq!(run.code, Some(0), "at 96 MiB: {}", run.stderr);
        assert_eq!(run.stderr, reference.stderr, "at 96 MiB");
        assert!(indexes(&dir) == want, "at 96 MiB the indexes differ");
        tally.add(1);

        let run = modkit_within(
            Some(96 << 10),
            &args,
            &[("RAYON_NUM_THREADS", Path::new("64"))],
            &s.0,
        );
        assert_eq!(run.code, Some(0), "64 threads at 96 MiB: {}", run.stderr);
        assert!(indexes(&dir) == want, "64 threads: the indexes differ");
        tally.add(1);

        let run = modkit_within(Some(16 << 10), &args, &[], &s.0);
        assert_no_crash(&run);
        assert_eq!(run.code, Some(1), "at 16 MiB: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("depmod: ERROR: out of memory while "),
            "at 16 MiB, not one clear line:\n{}",
            run.stderr
        );
        assert!(indexes(&dir) == want, "at 16 MiB the old indexes changed");
        tally.add(1);
    }
}

// ---- sysfs and /proc ----------------------------------------------------------------------

#[test]
fn rmmod_and_lsmod_with_damaged_sysfs_and_proc() {
    let mut tally = Tally("rmmod and lsmod with damaged /sys/module and /proc", 0);
    let s = Scratch::new("bad-input-sysfs");
    let sys = s.join("sys/module");
    fs::create_dir_all(&sys).unwrap();
    // A module directory that is a symlink to itself, and holders that loop.
    symlink("looped", sys.join("looped")).unwrap();
    fs::create_dir_all(sys.join("a/holders")).unwrap();
    fs::write(sys.join("a/initstate"), "live\n").unwrap();
    fs::write(sys.join("a/refcnt"), "1\n").unwrap();
    symlink("../../a", sys.join("a/holders/a")).unwrap();
    let proc = s.join("proc");
    fs::create_dir_all(&proc).unwrap();
    fs::write(proc.join("modules"), "a 16384 1 a, Live 0x0\n").unwrap();
    let env = [
        ("MODKIT_SYS_MODULE", sys.as_path()),
        ("MODKIT_PROC", proc.as_path()),
    ];

    let run = modkit(&["rmmod", "looped"], &env, &s.0);
    assert_fails(&run, "looped", "");
    let run = modkit(&["rmmod", "a"], &env, &s.0);
    assert_fails(&run, "a", "in use");
    tally.add(2);

    // /proc/modules with garbage lines, a huge line, and no newline at the end.
    let mut garbage = b"\xff\xfe binary\n a b c d e f g h i j\n".to_vec();
    garbage.extend(std::iter::repeat_n(b'x', 1 << 20));
    fs::write(proc.join("modules"), &garbage).unwrap();
    let run = modkit(&["lsmod"], &env, &s.0);
    assert_no_crash(&run);
    tally.add(1);
}

// ---- hostile names ------------------------------------------------------------------------
//
// The rule (kmod's): a module name from the command line, an alias or a configuration file is
// only ever a key looked up in the indexes; it never becomes a path. The only paths come from
// modules.dep (written by depmod, as trusted as the modules themselves): relative to the
// module directory, or absolute, as kmod allows (`libkmod-module.c`, `kmod_module_parse_depline`).
// An argument is read as a file only when it is an existing file with a module extension, as
// kmod's modinfo does.

#[test]
fn names_never_become_paths() {
    let mut tally = Tally("hostile names", 0);
    let s = Scratch::new("bad-input-names");
    let dir = indexed_tree(&s);
    let root = s.0.to_str().unwrap();
    // Decoys the names below would reach if they were joined to the module directory.
    s.write(
        format!("lib/modules/{VERSION}/../decoy.ko"),
        fixture("6.1/hello_api.ko"),
    );
    s.write(
        format!("lib/modules/{VERSION}/../decoy"),
        fixture("6.1/hello_api.ko"),
    );
    let cwd = s.join("deep/down/below");
    fs::create_dir_all(&cwd).unwrap();
    for name in [
        "../decoy",
        "../decoy.ko",
        "../../../../../../../../etc/passwd",
        "/etc/passwd",
        "extra/hello_api",
        "hello_api/../../decoy",
        "..",
        ".",
        "",
    ] {
        let run = modkit(&["modinfo", "-b", root, "-k", VERSION, name], &[], &cwd);
        assert_no_crash(&run);
        assert_eq!(run.code, Some(1), "{name:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name:?} printed {}", run.stdout);
        assert!(
            run.stderr.contains("not found") || run.stderr.contains("missing module"),
            "{name:?}: {}",
            run.stderr
        );
        tally.add(1);
    }

    // modprobe: the same names are keys too (but for `/...` and `./...`, which name a file
    // given on the command line, as with kmod >= 31).
    for name in [
        "../decoy",
        "../../../../../../../../etc/passwd",
        "hello_api/../../decoy",
    ] {
        let run = modkit(
            &[
                "modprobe",
                "-d",
                root,
                "-S",
                VERSION,
                "--show-depends",
                name,
            ],
            &[],
            &cwd,
        );
        assert_no_crash(&run);
        assert_eq!(run.code, Some(1), "modprobe {name:?}: {}", run.stderr);
        assert!(
            run.stdout.is_empty(),
            "modprobe {name:?} printed {}",
            run.stdout
        );
        assert!(
            run.stderr.contains("not found"),
            "modprobe {name:?}: {}",
            run.stderr
        );
        tally.add(1);
    }
    // A configuration file aliasing names to paths: still names.
    let conf = s.write(
        "conf/evil.conf",
        b"alias evil ../decoy\nalias evil2 /etc/passwd\n",
    );
    for name in ["evil", "evil2"] {
        let run = modkit(
            &[
                "modprobe",
                "-d",
                root,
                "-S",
                VERSION,
                "-C",
                conf.to_str().unwrap(),
                "--show-depends",
                name,
            ],
            &[],
            &cwd,
        );
        assert_no_crash(&run);
        // kmod 30 ends such a lookup quietly with 0 (an alias to no module); either way,
        // nothing named by the alias is opened.
        assert!(
            matches!(run.code, Some(0 | 1)),
            "modprobe {name:?}: {}",
            run.stderr
        );
        assert!(
            !run.stdout.contains("decoy") && !run.stdout.contains("passwd"),
            "{}",
            run.stdout
        );
        tally.add(1);
    }

    // An alias whose module name is a path: looked up as a name, never opened.
    write_index(
        &dir.join("modules.alias.bin"),
        &[("evil:*", "../decoy"), ("evil2:*", "/etc/passwd")],
    );
    for key in ["evil:x", "evil2:x"] {
        let run = modkit(&["modinfo", "-b", root, "-k", VERSION, key], &[], &cwd);
        assert_no_crash(&run);
        assert!(
            !run.stdout.contains("hello_api") && !run.stdout.contains("root:"),
            "{key}: {}",
            run.stdout
        );
        tally.add(1);
    }

    // modules.dep may name absolute paths (kmod allows them); such a path is read as a module
    // file and nothing else: /etc/passwd is not an ELF file.
    write_index(
        &dir.join("modules.dep.bin"),
        &[("hello_api", "/etc/passwd:")],
    );
    let run = modkit(
        &["modinfo", "-b", root, "-k", VERSION, "hello_api"],
        &[],
        &cwd,
    );
    assert_fails(&run, "/etc/passwd", "");
    assert!(!run.stdout.contains("root:"));
    tally.add(1);

    // rmmod: names with '/' or '..' are module names the kernel does not have.
    let sys = s.join("sys/module");
    fs::create_dir_all(&sys).unwrap();
    fs::create_dir_all(s.join("proc")).unwrap();
    fs::write(s.join("proc/modules"), "").unwrap();
    let proc = s.join("proc");
    let env = [
        ("MODKIT_SYS_MODULE", sys.as_path()),
        ("MODKIT_PROC", proc.as_path()),
    ];
    for name in ["../../../../etc", "/nonexistent/module", "a/b", ".."] {
        let run = modkit(&["rmmod", name], &env, &cwd);
        assert_no_crash(&run);
        assert_ne!(run.code, Some(0), "rmmod {name:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("rmmod: ERROR"),
            "rmmod {name:?}: {}",
            run.stderr
        );
        tally.add(1);
    }
}

/// Nothing read from a module file, an alias or an index is ever run: modinfo, depmod and
/// lookups over a module whose `.modinfo` is full of shell syntax leave no trace.
#[test]
fn nothing_from_a_module_is_executed() {
    let mut tally = Tally("shell syntax in modules", 0);
    let s = Scratch::new("bad-input-noexec");
    let marker = |n: u32| s.join(format!("pwned{n}"));
    let records: Vec<String> = vec![
        "license=GPL".into(),
        "name=evil".into(),
        format!("alias=$(touch {})", marker(1).display()),
        format!("alias=`touch {}`", marker(2).display()),
        format!("description=; touch {} #", marker(3).display()),
        format!(
            "softdep=pre: $(touch {}) post: |touch {}",
            marker(4).display(),
            marker(5).display()
        ),
        format!("firmware=../../$(touch {})", marker(6).display()),
        format!("install=/bin/sh -c 'touch {}'", marker(7).display()),
        format!("parm=p:$(touch {})", marker(8).display()),
    ];
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    let bytes = elf::build(&elf::Spec::x86_64().modinfo(&records));
    let file = s.write(format!("lib/modules/{VERSION}/extra/evil.ko"), &bytes);
    let root = s.0.to_str().unwrap();

    let run = modkit(&["modinfo", file.to_str().unwrap()], &[], &s.0);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("$(touch"),
        "the records are shown as they are"
    );
    let run = depmod(&s.0);
    assert_no_crash(&run);
    let aliases = fs::read_to_string(module_dir(&s).join("modules.alias")).unwrap();
    assert!(aliases.contains("alias $(touch"), "{aliases}");
    for key in [
        format!("$(touch {})", marker(1).display()),
        "evil".to_owned(),
    ] {
        let run = modkit(&["modinfo", "-b", root, "-k", VERSION, &key], &[], &s.0);
        assert_no_crash(&run);
    }
    // modprobe resolves the alias to the module and prints what it would do; the options
    // from a configuration file are parameters, not commands.
    let conf = s.write(
        "conf/evil.conf",
        format!("options evil p=$(touch {})\n", marker(9).display()).as_bytes(),
    );
    let conf = conf.to_str().unwrap();
    let alias = format!("$(touch {})", marker(1).display());
    for args in [
        vec!["-n", alias.as_str()],
        vec!["--show-depends", alias.as_str()],
        vec!["-n", "evil"],
        vec!["-R", "evil:x"],
    ] {
        let mut full = vec!["modprobe", "-d", root, "-S", VERSION, "-C", conf];
        full.extend(args.iter().copied());
        let run = modkit(&full, &[], &s.0);
        assert_no_crash(&run);
    }
    let run = modkit(
        &[
            "modprobe",
            "-d",
            root,
            "-S",
            VERSION,
            "-C",
            conf,
            "--show-depends",
            &alias,
        ],
        &[],
        &s.0,
    );
    assert!(
        run.stdout.contains("evil.ko"),
        "the alias resolves: {}{}",
        run.stdout,
        run.stderr
    );
    tally.add(5);
    for n in 1..=9 {
        assert!(
            !marker(n).exists(),
            "{} was created: something ran",
            marker(n).display()
        );
    }
    tally.add(8);
}
