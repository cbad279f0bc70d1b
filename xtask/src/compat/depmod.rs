//! `cargo xtask compat`, depmod part: `modkit depmod --index-layout postorder` must write every
//! file kmod 30's depmod writes, byte for byte, on Debian's module trees (with and without the
//! sample modules in `extra/`), also when it works from its incremental cache (which must
//! really be used: nothing parsed when nothing changed, exactly the changed module after a
//! change); and kmod's own `modprobe --show-depends` must give the same answers over our
//! indexes as over kmod's.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use crate::compat::Tally;
use crate::kernels::KernelTree;
use crate::kmods;
use crate::tools::{DEPMOD_OUTPUTS, Kmod};

/// Module names given to one `modprobe -a --show-depends` run.
const BATCH: usize = 500;

/// Run every depmod check on `tree` with the `modkit` binary; each check reports its name and
/// [`Tally`] through `report_line`.
pub(crate) fn check(
    sh: &Shell,
    kmod: &Kmod,
    tree: &KernelTree,
    modkit: &Path,
    report_line: &mut dyn FnMut(String, Tally),
) -> Result<()> {
    let Kmod {
        depmod, modprobe, ..
    } = kmod;
    let scratch = crate::cache_dir().join("compat-depmod").join(&tree.release);
    for extra in [false, true] {
        let label = format!(
            "depmod {}{}",
            tree.series.as_str(),
            if extra { " +extra" } else { "" }
        );
        let sample = if extra {
            Some(kmods::build(sh, tree)?)
        } else {
            None
        };
        let kroot = scratch.join(if extra { "kmod-extra" } else { "kmod" });
        let mroot = scratch.join(if extra { "modkit-extra" } else { "modkit" });
        for root in [&kroot, &mroot] {
            make_root(sh, tree, root, sample.as_ref())?;
        }
        let release = &tree.release;
        let kout = cmd!(sh, "{depmod} -b {kroot} {release}")
            .quiet()
            .ignore_status()
            .output()
            .context("running kmod's depmod")?;
        // A scratch cache file: the runs depend neither on the host's cache nor on its
        // environment, and start from nothing.
        let cache = scratch.join(if extra { "extra.cache" } else { "plain.cache" });
        let _ = std::fs::remove_file(&cache);
        // `-v` adds the trace on stdout (not compared) and, on stderr, `depmod: INFO:` lines
        // with the cache's counts, which `cache_counts` takes out before stderr is compared.
        let mrun = |sh: &Shell, verbose: bool| {
            let v = verbose.then_some("-v");
            cmd!(
                sh,
                "{modkit} depmod --index-layout postorder --cache-file {cache} {v...} -b {mroot} {release}"
            )
            .quiet()
            .ignore_status()
            .output()
            .context("running modkit depmod")
        };
        let kdir = kroot.join("lib/modules").join(release);
        let mdir = mroot.join("lib/modules").join(release);

        // 1. A full run (the cache starts empty).
        let mout = mrun(sh, false)?;
        let mut diffs = compare_runs(&kout, &mout);
        let (compared, file_diffs) = compare_dirs(&kdir, &mdir)?;
        diffs += file_diffs;
        report_line(
            format!("{label}: files, full run"),
            tally(compared, &kout, diffs),
        );
        let modules = std::fs::read_to_string(kdir.join("modules.dep"))?
            .lines()
            .count();
        ensure!(
            modules > 0,
            "kmod's modules.dep in {} is empty",
            kdir.display()
        );

        // 2. Nothing changed: the run must see it from the cache and write nothing (every
        // output keeps its inode: depmod replaces a file it writes); then, with -v (which
        // skips that shortcut), take every module from the cache and parse none.
        let before = output_inodes(&mdir)?;
        let mout = mrun(sh, false)?;
        let mut diffs = compare_runs(&kout, &mout);
        let after = output_inodes(&mdir)?;
        if after != before {
            let rewritten: Vec<&String> = after
                .iter()
                .filter(|(name, ino)| before.get(*name) != Some(*ino))
                .map(|(name, _)| name)
                .collect();
            println!("  the cached re-run rewrote {rewritten:?} although nothing changed");
            diffs += 1;
        }
        let (mout, counts) = cache_counts(mrun(sh, true)?);
        diffs += compare_runs(&kout, &mout);
        diffs += expect_counts(counts, (0, modules), "cached re-run");
        let (compared, file_diffs) = compare_dirs(&kdir, &mdir)?;
        diffs += file_diffs;
        report_line(
            format!("{label}: files, cached re-run"),
            tally(compared, &kout, diffs),
        );

        // 3. An output removed and a module replaced (a new inode): rebuilt from the cache
        // plus exactly that module.
        std::fs::remove_file(mdir.join("modules.alias.bin"))?;
        let touched = first_module(&mdir)?;
        std::fs::copy(&touched, touched.with_extension("tmp"))?;
        std::fs::rename(touched.with_extension("tmp"), &touched)?;
        let (mout, counts) = cache_counts(mrun(sh, true)?);
        let mut diffs = compare_runs(&kout, &mout);
        diffs += expect_counts(counts, (1, modules - 1), "incremental run");
        let (compared, file_diffs) = compare_dirs(&kdir, &mdir)?;
        diffs += file_diffs;
        report_line(
            format!("{label}: files, incremental run after a change"),
            tally(compared, &kout, diffs),
        );

        // modprobe --show-depends over both sets of indexes, for every module name.
        let names = super::modprobe::module_names(&kdir)?;
        let mut t = Tally {
            compared: names.len(),
            ..Tally::default()
        };
        for chunk in names.chunks(BATCH) {
            let (k, status) = show_depends(sh, modprobe, &kroot, release, chunk)?;
            t.kmod_ran(status);
            let (m, _) = show_depends(sh, modprobe, &mroot, release, chunk)?;
            let k = k.replace(&kroot.display().to_string(), "ROOT");
            let m = m.replace(&mroot.display().to_string(), "ROOT");
            if k != m {
                let kl: Vec<&str> = k.lines().collect();
                let ml: Vec<&str> = m.lines().collect();
                let n = kl.iter().zip(&ml).filter(|(a, b)| a != b).count()
                    + kl.len().abs_diff(ml.len());
                t.diffs += n.max(1);
            }
        }
        report_line(
            format!("{label}: modprobe --show-depends over our indexes"),
            t,
        );
    }
    Ok(())
}

/// `root/lib/modules/RELEASE`: hard links to the cached tree (which is never written to),
/// plus copies of the sample modules in `extra/`.
fn make_root(
    sh: &Shell,
    tree: &KernelTree,
    root: &Path,
    sample: Option<&kmods::BuiltModules>,
) -> Result<()> {
    // The cached tree may hold indexes from elsewhere; both tools must start from none.
    let moddir = crate::tools::unindexed_root(sh, &tree.modules_dir, root, &tree.release)?;
    if let Some(sample) = sample {
        let extra = moddir.join("extra");
        std::fs::create_dir_all(&extra)?;
        for file in [&sample.hello_api, &sample.hello_feature] {
            let name = file.file_name().context("module file name")?;
            std::fs::copy(file, extra.join(name))
                .with_context(|| format!("copying {}", file.display()))?;
        }
    }
    Ok(())
}

/// The inode of each output file in `dir`: a run that writes nothing leaves them all.
fn output_inodes(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let mut inodes = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if DEPMOD_OUTPUTS.contains(&name.as_str()) {
            inodes.insert(name, entry.metadata()?.ino());
        }
    }
    ensure!(!inodes.is_empty(), "no output files in {}", dir.display());
    Ok(inodes)
}

/// Take modkit's `depmod: INFO:` lines (`-v`) out of a run's stderr, so the rest compares with
/// kmod's, and read the cache's counts from them: `depmod: INFO: P modules parsed, C from the
/// cache FILE` gives `Some((P, C))`; `None` when the run did not use the cache at all. Other
/// `INFO` lines (why the cache was not used) are printed.
fn cache_counts(mut out: std::process::Output) -> (std::process::Output, Option<(usize, usize)>) {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut counts = None;
    let mut rest = String::with_capacity(text.len());
    let mut notes = String::new();
    for line in text.split_inclusive('\n') {
        let Some(info) = line.strip_prefix("depmod: INFO: ") else {
            rest.push_str(line);
            continue;
        };
        let parsed = info.split_once(" modules parsed, ").and_then(|(p, c)| {
            let (c, _) = c.split_once(" from the cache ")?;
            Some((p.parse().ok()?, c.parse().ok()?))
        });
        match parsed {
            Some(c) => counts = Some(c),
            None => notes.push_str(line),
        }
    }
    if !notes.is_empty() {
        print!("  modkit depmod -v said:\n{notes}");
    }
    out.stderr = rest.into_bytes();
    (out, counts)
}

/// 1 (a difference) unless the run parsed and took from the cache exactly `(parsed, cached)`.
fn expect_counts(counts: Option<(usize, usize)>, want: (usize, usize), what: &str) -> usize {
    match counts {
        Some(c) if c == want => 0,
        Some((parsed, cached)) => {
            println!(
                "  {what}: parsed {parsed} and took {cached} from the cache; expected {} and {}",
                want.0, want.1
            );
            1
        }
        None => {
            println!("  {what}: no cache counts in the -v output; the cache was not used");
            1
        }
    }
}

/// Exit status and stderr must match (both runs print nothing on these trees).
fn compare_runs(kmod: &std::process::Output, modkit: &std::process::Output) -> usize {
    let mut diffs = 0;
    if kmod.status.code() != modkit.status.code() {
        println!(
            "  exit status: kmod {:?}, modkit {:?}",
            kmod.status.code(),
            modkit.status.code()
        );
        diffs += 1;
    }
    if kmod.stderr != modkit.stderr {
        println!(
            "  stderr differs:\n    kmod:   {}\n    modkit: {}",
            String::from_utf8_lossy(&kmod.stderr).trim_end(),
            String::from_utf8_lossy(&modkit.stderr).trim_end()
        );
        diffs += 1;
    }
    diffs
}

/// Compare the top-level files of two module directories: the same names, the same bytes.
/// Returns (files compared, differences).
fn compare_dirs(kmod: &Path, modkit: &Path) -> Result<(usize, usize)> {
    let list = |dir: &Path| -> Result<BTreeSet<String>> {
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    };
    let (k, m) = (list(kmod)?, list(modkit)?);
    let mut diffs = 0;
    for name in k.symmetric_difference(&m) {
        println!(
            "  {name}: only written by {}",
            if k.contains(name) { "kmod" } else { "modkit" }
        );
        diffs += 1;
    }
    let mut compared = 0;
    for name in k.intersection(&m) {
        compared += 1;
        let a = std::fs::read(kmod.join(name))?;
        let b = std::fs::read(modkit.join(name))?;
        if a != b {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            println!(
                "  {name}: differs at byte {at} (kmod {} bytes, modkit {} bytes)",
                a.len(),
                b.len()
            );
            diffs += 1;
        }
    }
    ensure!(compared > 0, "no files to compare in {}", kmod.display());
    Ok((compared, diffs))
}

/// The first module line of modules.dep, as a path.
fn first_module(dir: &Path) -> Result<PathBuf> {
    let dep = std::fs::read_to_string(dir.join("modules.dep"))?;
    let first = dep
        .lines()
        .next()
        .and_then(|l| l.split(':').next())
        .context("modules.dep is empty")?;
    Ok(dir.join(first))
}

fn show_depends(
    sh: &Shell,
    modprobe: &Path,
    root: &Path,
    release: &str,
    names: &[String],
) -> Result<(String, Option<i32>)> {
    let out = cmd!(
        sh,
        "{modprobe} -d {root} -S {release} -a --show-depends {names...}"
    )
    .quiet()
    .ignore_status()
    .output()
    .context("running kmod's modprobe --show-depends")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.push_str(&format!("status {:?}\n", out.status.code()));
    Ok((text, out.status.code()))
}

/// A check over `compared` files against one kmod run `kout`.
fn tally(compared: usize, kout: &std::process::Output, diffs: usize) -> Tally {
    let mut t = Tally {
        compared,
        diffs,
        ..Tally::default()
    };
    t.kmod_ran(kout.status.code());
    t
}

/// The big-endian check: Debian's s390x 6.1 kernel modules (fetched with apt through a private
/// package list under `cache_dir()/foreign/`, the host's apt and dpkg configuration untouched),
/// indexed by both tools on this x86-64 host; files, messages (with `-e -F System.map`,
/// thousands of warnings) and status must match. An `Err` means the package could not be had
/// (no network, say): the caller reports it in the summary, and under CI fails.
pub(crate) fn check_foreign(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    report_line: &mut dyn FnMut(String, Tally),
) -> Result<()> {
    let (root, release) =
        fetch_s390x(sh).context("Debian's s390x kernel package could not be fetched")?;
    let scratch = crate::cache_dir().join("compat-depmod").join(&release);
    let kroot = scratch.join("kmod");
    let mroot = scratch.join("modkit");
    let system_map = root.join("boot").join(format!("System.map-{release}"));
    let source = root.join("lib/modules").join(&release);
    for r in [&kroot, &mroot] {
        crate::tools::linked_root(sh, &source, r, &release)?;
    }
    let depmod = &kmod.depmod;
    for (what, flags) in [("plain", vec![]), ("-e -F System.map", vec!["-e", "-F"])] {
        let mut kargs: Vec<String> = vec!["-b".into(), kroot.display().to_string()];
        let mut margs: Vec<String> = vec![
            "depmod".into(),
            "--index-layout".into(),
            "postorder".into(),
            "--no-cache".into(),
            "-b".into(),
            mroot.display().to_string(),
        ];
        for f in &flags {
            kargs.push((*f).into());
            margs.push((*f).into());
        }
        if !flags.is_empty() {
            kargs.push(system_map.display().to_string());
            margs.push(system_map.display().to_string());
        }
        kargs.push(release.clone());
        margs.push(release.clone());
        let mut kout = cmd!(sh, "{depmod} {kargs...}")
            .quiet()
            .ignore_status()
            .output()?;
        let mut mout = cmd!(sh, "{modkit} {margs...}")
            .quiet()
            .ignore_status()
            .output()?;
        kout.stderr = String::from_utf8_lossy(&kout.stderr)
            .replace(&kroot.display().to_string(), "ROOT")
            .into_bytes();
        mout.stderr = String::from_utf8_lossy(&mout.stderr)
            .replace(&mroot.display().to_string(), "ROOT")
            .into_bytes();
        let mut diffs = compare_runs(&kout, &mout);
        let (compared, file_diffs) = compare_dirs(
            &kroot.join("lib/modules").join(&release),
            &mroot.join("lib/modules").join(&release),
        )?;
        diffs += file_diffs;
        let lines = kout.stderr.iter().filter(|&&b| b == b'\n').count();
        report_line(
            format!("depmod s390x ({release}) {what}: files + {lines} message lines"),
            tally(compared, &kout, diffs),
        );
    }
    Ok(())
}

/// Debian's newest 6.1 s390x kernel image, extracted under `cache_dir()/foreign/`; returns
/// (root, release). apt reads the host's sources but keeps its s390x package lists and
/// downloads in `foreign/apt/`, so neither `dpkg --add-architecture` nor the host's lists are
/// touched.
fn fetch_s390x(sh: &Shell) -> Result<(PathBuf, String)> {
    let base = std::path::absolute(crate::cache_dir().join("foreign"))?;
    let apt = base.join("apt");
    for dir in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(apt.join(dir))?;
    }
    let options: Vec<String> = [
        "APT::Architecture=s390x".to_owned(),
        "APT::Architectures=s390x".to_owned(),
        format!("Dir::State::Lists={}", apt.join("lists").display()),
        format!("Dir::Cache={}", apt.join("cache").display()),
        "Debug::NoLocking=1".to_owned(),
        "APT::Sandbox::User=root".to_owned(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_owned(), o])
    .collect();
    let options = &options;
    let search = || -> Result<Option<String>> {
        let list = cmd!(
            sh,
            "apt-cache {options...} search --names-only ^linux-image-6\\.1\\.0-[0-9]+-s390x$"
        )
        .quiet()
        .read()
        .context("apt-cache search (s390x lists)")?;
        Ok(list
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .max_by_key(|p| {
                p.trim_start_matches("linux-image-6.1.0-")
                    .split('-')
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0)
            })
            .map(str::to_owned))
    };
    let package = match search()? {
        Some(p) => p,
        None => {
            println!(
                "compat: fetching Debian's s390x package lists into {} (the host's apt is not changed)",
                apt.display()
            );
            cmd!(sh, "apt-get {options...} update -q")
                .quiet()
                .ignore_stdout()
                .run()
                .context("apt-get update of the private s390x lists")?;
            search()?.context("no linux-image-6.1.0-*-s390x package in Debian's s390x lists")?
        }
    };
    let release = package.trim_start_matches("linux-image-").to_owned();
    let root = base.join(&release);
    if !root
        .join("lib/modules")
        .join(&release)
        .join("modules.order")
        .exists()
    {
        let _dir = sh.push_dir(&base);
        println!("compat: downloading {package} (s390x)");
        cmd!(sh, "apt-get {options...} download -q {package}")
            .quiet()
            .run()
            .context("downloading the s390x kernel")?;
        let deb = std::fs::read_dir(&base)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_")))
            })
            .context("the downloaded .deb")?;
        let tmp = base.join(format!(".{release}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        cmd!(sh, "dpkg-deb -x {deb} {tmp}").run()?;
        let _ = std::fs::remove_dir_all(&root);
        std::fs::rename(&tmp, &root)?;
        std::fs::remove_file(&deb)?;
    }
    Ok((root, release))
}
