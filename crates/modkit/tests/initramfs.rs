//! `modkit::initramfs` on Debian's 6.1 and 6.12 trees, against kmod 30: the closure of 20 real
//! modaliases has the module set `modprobe --show-depends -a` prints for them, and a
//! virtio+ext4 image unpacked by GNU cpio resolves, through its own indexes and kmod's
//! modprobe, to the same modules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use modkit::initramfs::{self, Request, image};
use modkit_testkit::{Missing, Scratch, require};

/// Real modaliases of the devices of a QEMU q35 machine and a laptop, as sysfs shows them:
/// virtio disk and network (PCI function and virtio device), AHCI, SCSI disk and CD-ROM,
/// NVMe, Realtek Ethernet (softdep pre: realtek), Intel HDA on Tiger Lake (SOF's softdep pre:
/// snd-hda-codec-hdmi), a Realtek codec, e1000, xHCI, USB storage and HID, bochs, the PC
/// speaker, the keyboard controller (built in) and QEMU's fw_cfg.
const ALIASES: [&str; 20] = [
    "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
    "virtio:d00000002v00001AF4",
    "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00",
    "virtio:d00000001v00001AF4",
    "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
    "scsi:t-0x00",
    "scsi:t-0x05",
    "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02",
    "pci:v000010ECd00008168sv00001043sd00008677bc02sc00i00",
    "pci:v00008086d0000A0C8sv00001028sd00000A1Fbc04sc03i80",
    "hdaudio:v10EC1220r00100001a01",
    "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
    "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30",
    "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",
    "usb:v0627p0001d0000dc00dsc00dp00ic03isc00ip00in00",
    "hid:b0003g0001v00000627p00000001",
    "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00",
    "platform:pcspkr",
    "serio:ty01pr00id00ex00",
    "acpi:QEMU0002:",
];

/// The 6.1 tree with kmod 30's indexes, in a hard-linked scratch copy (depmod replaces its
/// outputs by rename, so the cache is never written), an empty modprobe.d, and kmod's
/// modprobe.
struct Tree {
    scratch: Scratch,
    version: String,
    modprobe: PathBuf,
}

impl Tree {
    fn new(test: &str) -> Option<Tree> {
        Tree::of("6.1", test)
    }

    fn of(series: &str, test: &str) -> Option<Tree> {
        let tree = require(test, modkit_testkit::kernel_modules_dir(series))?;
        let depmod = require(test, modkit_testkit::kmod("depmod"))?;
        let modprobe = require(test, modkit_testkit::kmod("modprobe"))?;
        let version = tree.file_name()?.to_str()?.to_owned();
        let scratch = Scratch::new(&format!("initramfs-{test}"));
        let dest = scratch.path().join("root/lib/modules");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::create_dir_all(scratch.path().join("conf")).unwrap();
        let cp = Command::new("cp")
            .arg("-al")
            .arg(&tree)
            .arg(&dest)
            .status()
            .unwrap();
        assert!(cp.success(), "cp -al {}", tree.display());
        let run = Command::new(depmod)
            .arg("-b")
            .arg(scratch.path().join("root"))
            .arg(&version)
            .status()
            .unwrap();
        assert!(run.success(), "kmod's depmod");
        Some(Tree {
            scratch,
            version,
            modprobe,
        })
    }

    fn root(&self) -> PathBuf {
        self.scratch.path().join("root")
    }

    fn conf(&self) -> PathBuf {
        self.scratch.path().join("conf")
    }

    fn context(&self) -> modkit::Context {
        let dir = self.root().join("lib/modules").join(&self.version);
        let (ctx, warnings) =
            modkit::Context::open(dir, &modkit::ConfigFiles::Paths(vec![self.conf()]), None)
                .expect("the module directory opens");
        assert!(warnings.is_empty(), "{warnings:?}");
        ctx
    }
}

/// The module names of kmod's `modprobe -d ROOT -S VERSION -C CONF --show-depends -a NAMES`,
/// which must succeed unless `must_succeed` is false.
fn kmod_show_depends_status(
    must_succeed: bool,
    modprobe: &Path,
    root: &Path,
    version: &str,
    conf: &Path,
    names: &[&str],
) -> BTreeSet<String> {
    let out = Command::new(modprobe)
        .arg("-d")
        .arg(root)
        .args(["-S", version, "-C"])
        .arg(conf)
        .args(["--show-depends", "-a"])
        .args(names)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success() || !must_succeed,
        "kmod's modprobe failed: {}",
        out.status
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("insmod "))
        .map(|rest| {
            let path = rest.split(' ').next().unwrap();
            modkit::name::path_to_modname(path).expect("a module path")
        })
        .collect()
}

fn kmod_show_depends(
    modprobe: &Path,
    root: &Path,
    version: &str,
    conf: &Path,
    names: &[&str],
) -> BTreeSet<String> {
    kmod_show_depends_status(true, modprobe, root, version, conf, names)
}

fn closure_names(ctx: &mut modkit::Context, request: &Request) -> BTreeSet<String> {
    let closure = initramfs::closure(ctx, request).unwrap();
    assert!(closure.warnings.is_empty(), "{:?}", closure.warnings);
    closure.names().map(str::to_owned).collect()
}

#[test]
fn closure_of_20_modaliases_is_what_kmod_shows_on_6_12() {
    // 6.12's modules are .ko.xz, and virtio_pci is built in there (its PCI alias finds
    // nothing, for kmod as for modkit).
    let Some(tree) = Tree::of(
        "6.12",
        "closure_of_20_modaliases_is_what_kmod_shows_on_6_12",
    ) else {
        return;
    };
    // kmod exits 1 here: it reports the two virtio PCI modaliases as not found.
    let kmod = kmod_show_depends_status(
        false,
        &tree.modprobe,
        &tree.root(),
        &tree.version,
        &tree.conf(),
        &ALIASES,
    );
    let request = Request {
        aliases: ALIASES.map(String::from).to_vec(),
        ..Request::default()
    };
    let ours = closure_names(&mut tree.context(), &request);
    eprintln!(
        "20 modaliases on 6.12: closure {} modules, kmod --show-depends {}",
        ours.len(),
        kmod.len()
    );
    assert!(kmod.len() > 50, "kmod resolved {} modules", kmod.len());
    assert_eq!(ours, kmod);
}

#[test]
fn closure_of_20_modaliases_is_what_kmod_shows() {
    let Some(tree) = Tree::new("closure_of_20_modaliases_is_what_kmod_shows") else {
        return;
    };
    let kmod = kmod_show_depends(
        &tree.modprobe,
        &tree.root(),
        &tree.version,
        &tree.conf(),
        &ALIASES,
    );
    let request = Request {
        aliases: ALIASES.map(String::from).to_vec(),
        ..Request::default()
    };
    let mut ctx = tree.context();
    let ours = closure_names(&mut ctx, &request);
    // No module of these has two softdep lines, so every-line and kmod's first-line rule
    // agree here (the next test covers the difference).
    ctx.set_first_softdep_only(true);
    let ours_first_only = closure_names(&mut ctx, &request);

    // What devices::modules_for_aliases gives: no soft dependencies.
    let aliases = request.aliases.clone();
    let without_softdeps: BTreeSet<String> = {
        let mut ctx = tree.context();
        let needed = modkit::devices::modules_for_aliases(&mut ctx, &aliases).unwrap();
        needed
            .load_order
            .iter()
            .map(|&id| ctx.name(id).to_owned())
            .collect()
    };
    eprintln!(
        "20 modaliases: closure {} modules, kmod --show-depends {}, modules_for_aliases {}",
        ours.len(),
        kmod.len(),
        without_softdeps.len()
    );
    assert!(kmod.len() > 50, "kmod resolved {} modules", kmod.len());
    assert_eq!(ours, kmod);
    assert_eq!(ours_first_only, kmod);
    for softdep in ["crct10dif_generic", "realtek", "snd_hda_codec_hdmi"] {
        assert!(ours.contains(softdep), "{softdep}");
        assert!(!without_softdeps.contains(softdep), "{softdep}");
    }
}

#[test]
fn every_softdep_line_counts_where_kmod_30_takes_the_first() {
    let Some(tree) = Tree::new("every_softdep_line_counts_where_kmod_30_takes_the_first") else {
        return;
    };
    // btrfs has several `softdep=` records, so several lines in modules.softdep; kmod 30
    // loads only the first line's modules (that is the one intended difference).
    let request = Request {
        filesystems: vec!["btrfs".into()],
        ..Request::default()
    };
    let kmod = kmod_show_depends(
        &tree.modprobe,
        &tree.root(),
        &tree.version,
        &tree.conf(),
        &["fs-btrfs"],
    );
    let mut ctx = tree.context();
    let every_line = closure_names(&mut ctx, &request);
    ctx.set_first_softdep_only(true);
    let first_line = closure_names(&mut ctx, &request);
    assert!(kmod.contains("btrfs"));
    assert_eq!(first_line, kmod, "kmod's rule gives kmod's set");
    let extra: Vec<&String> = every_line.difference(&kmod).collect();
    assert!(!extra.is_empty(), "btrfs's later softdep lines add modules");
    assert!(kmod.is_subset(&every_line));
    let softdep = std::fs::read_to_string(
        tree.root()
            .join("lib/modules")
            .join(&tree.version)
            .join("modules.softdep"),
    )
    .unwrap();
    let later_lines: Vec<&str> = softdep
        .lines()
        .filter(|l| l.starts_with("softdep btrfs "))
        .skip(1)
        .collect();
    for module in &extra {
        // Each extra module is named (as written, `-` or `_`) on a later btrfs line, or is a
        // dependency of one that is.
        let named = later_lines.iter().any(|l| {
            l.split(' ')
                .any(|w| modkit::name::alias_normalize(w).as_deref() == Some(*module))
        });
        let dependency = ctx_dependency_of_named(&tree, &later_lines, module);
        assert!(
            named || dependency,
            "{module} comes from a later softdep line"
        );
    }
    eprintln!(
        "btrfs: kmod 30 {} modules, every softdep line {} (+{extra:?})",
        kmod.len(),
        every_line.len()
    );
}

fn ctx_dependency_of_named(tree: &Tree, lines: &[&str], module: &str) -> bool {
    let names: Vec<&str> = lines
        .iter()
        .flat_map(|l| l.split(' ').skip(2))
        .filter(|w| !w.ends_with(':'))
        .collect();
    let kmod = kmod_show_depends(
        &tree.modprobe,
        &tree.root(),
        &tree.version,
        &tree.conf(),
        &names,
    );
    kmod.contains(module)
}

/// Unpack a newc archive with GNU cpio into `dir`.
fn unpack(bytes: &[u8], dir: &Path) -> Result<(), Missing> {
    let cpio = ["/usr/bin/cpio", "/bin/cpio"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| Missing::new("GNU cpio in /usr/bin or /bin", "apt-get install cpio"))?;
    std::fs::create_dir_all(dir).unwrap();
    let mut child = Command::new(cpio)
        .args(["-id", "--quiet", "--no-absolute-filenames"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
    assert!(child.wait().unwrap().success(), "cpio -id");
    Ok(())
}

#[test]
fn virtio_ext4_image_resolves_through_its_own_indexes() {
    let test = "virtio_ext4_image_resolves_through_its_own_indexes";
    let Some(tree) = Tree::new(test) else {
        return;
    };
    let aliases = [
        "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
        "virtio:d00000002v00001AF4",
    ];
    let request = Request {
        aliases: aliases.map(String::from).to_vec(),
        filesystems: vec!["ext4".into()],
        ..Request::default()
    };
    let mut ctx = tree.context();
    let closure = initramfs::closure(&mut ctx, &request).unwrap();
    assert!(closure.unresolved.is_empty(), "{:?}", closure.unresolved);
    let names: BTreeSet<&str> = closure.names().collect();
    for module in [
        "virtio_pci",
        "virtio_blk",
        "ext4",
        "jbd2",
        "mbcache",
        "crc16",
    ] {
        assert!(names.contains(module), "{module} in {names:?}");
    }
    let reason = |name: &str| {
        closure
            .modules
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .reason
            .to_string()
    };
    assert_eq!(reason("crc16"), "dependency of ext4");
    assert_eq!(reason("virtio_blk"), "device virtio:d00000002v00001AF4");
    assert_eq!(reason("ext4"), "filesystem ext4");

    let firmware = initramfs::firmware::find(&tree.root().join("lib/firmware"), &closure);
    let lines = initramfs::config_lines(&ctx, &closure);
    let build = |mtime, compression| {
        let options = image::Options {
            version: tree.version.clone(),
            mtime,
            compression,
            init: None,
        };
        image::build(ctx.dir(), &closure, &firmware, &lines, &options).unwrap()
    };
    let plain = build(0, modkit::cpio::Compression::None);
    let again = build(0, modkit::cpio::Compression::None);
    assert_eq!(plain.bytes, again.bytes, "same inputs, same bytes");
    assert_ne!(
        plain.bytes,
        build(1, modkit::cpio::Compression::None).bytes,
        "mtime counts"
    );
    for compression in [
        modkit::cpio::Compression::Zstd,
        modkit::cpio::Compression::Xz,
        modkit::cpio::Compression::Gzip,
    ] {
        let image = build(0, compression);
        eprintln!(
            "virtio+ext4 on 6.1: {} modules, {} files, {} bytes as cpio, {} as {}",
            closure.modules.len(),
            plain.files.len(),
            plain.bytes.len(),
            image.bytes.len(),
            compression.name()
        );
        assert!(image.bytes.len() < plain.bytes.len());
    }
    let paths: Vec<&str> = plain.files.iter().map(|f| f.path.as_str()).collect();
    let moddir = format!("lib/modules/{}", tree.version);
    for file in [
        "modules.dep",
        "modules.dep.bin",
        "modules.alias.bin",
        "modules.order",
        "modules.builtin.bin",
        "modules.softdep",
    ] {
        assert!(
            paths.contains(&format!("{moddir}/{file}").as_str()),
            "{file}"
        );
    }
    assert!(
        paths.iter().all(|p| p.starts_with("lib/modules/")
            || p.starts_with("lib/firmware/")
            || p.starts_with("etc/modprobe.d/")),
        "{paths:?}"
    );

    let unpacked = tree.scratch.path().join("image");
    let Some(()) = require(test, unpack(&plain.bytes, &unpacked)) else {
        return;
    };
    let mut names_for_kmod: Vec<&str> = aliases.to_vec();
    names_for_kmod.push("fs-ext4");
    let kmod_in_image = kmod_show_depends(
        &tree.modprobe,
        &unpacked,
        &tree.version,
        &tree.conf(),
        &names_for_kmod,
    );
    let ours: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        kmod_in_image, ours,
        "kmod's modprobe over the image's own indexes"
    );
}

#[test]
fn init_goes_in_with_its_console_and_mount_points_and_must_be_static() {
    let scratch = modkit_testkit::Scratch::new("initramfs-init");
    let dir = scratch.path().join("lib/modules/6.1.0-test");
    std::fs::create_dir_all(&dir).unwrap();
    let closure = initramfs::Closure::default();
    let firmware = initramfs::firmware::Firmware::default();
    let init = scratch.path().join("modkit-init");
    std::fs::write(&init, modkit_testkit::static_elf()).unwrap();
    let options = image::Options {
        version: "6.1.0-test".into(),
        mtime: 0,
        compression: modkit::cpio::Compression::None,
        init: Some(init.clone()),
    };
    let built = image::build(&dir, &closure, &firmware, &[], &options).unwrap();
    let (members, _) = modkit::cpio::read(&built.bytes).unwrap();
    let entry = |path: &str| {
        members
            .iter()
            .find(|m| m.name == path.as_bytes())
            .unwrap_or_else(|| panic!("{path} in the image"))
    };
    assert_eq!(entry("init").mode, 0o100755);
    assert_eq!(entry("init").data, modkit_testkit::static_elf().as_slice());
    let console = entry("dev/console");
    assert_eq!(console.mode, 0o020600, "a character device");
    assert_eq!(console.rdev, (5, 1));
    for dir in image::INIT_DIRS {
        assert_eq!(entry(dir).mode, 0o040755, "{dir}");
    }
    assert_eq!(
        built
            .files
            .iter()
            .find(|f| f.path == "init")
            .unwrap()
            .why
            .to_string(),
        format!("the init program, from {}", init.display())
    );

    // Without an init: none of it.
    let bare = image::Options {
        init: None,
        ..options.clone()
    };
    let built = image::build(&dir, &closure, &firmware, &[], &bare).unwrap();
    let (members, _) = modkit::cpio::read(&built.bytes).unwrap();
    assert!(
        members
            .iter()
            .all(|m| m.name != b"init" && m.name != b"dev/console")
    );

    // This test program is dynamically linked: refused, naming its loader.
    let dynamic = std::env::current_exe().unwrap();
    let with = |init: &Path| image::Options {
        init: Some(init.to_owned()),
        ..options.clone()
    };
    let err = image::build(&dir, &closure, &firmware, &[], &with(&dynamic)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{} cannot be the image's /init: it is dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)",
            dynamic.display()
        )),
        "{text}"
    );
    assert!(text.contains("crt-static"), "{text}");
    let text_file = scratch.path().join("init.sh");
    std::fs::write(&text_file, "#!/bin/sh\n").unwrap();
    let err = image::build(&dir, &closure, &firmware, &[], &with(&text_file)).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{} cannot be the image's /init: it is not an ELF executable",
            text_file.display()
        )),
        "{err}"
    );
}
