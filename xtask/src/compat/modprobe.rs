//! `cargo xtask compat`, modprobe part: `modprobe --show-depends` for every module name of a
//! tree, `modprobe -R` for a concrete string made from every alias pattern, and `modprobe -c`
//! on a set of test configurations, kmod 30's and ours over the same indexes, byte for byte
//! (stdout, stderr, exit status). Names go in batches through `-a`, which both tools accept; a
//! batch that differs is rerun name by name to count and show the differences.
//! `--show-exports FILE` and `--show-modversions FILE` for every module file of a tree
//! ([`check_symbols`]): kmod reads only the first file of a run, so each file is one run of
//! each tool, the runs spread over the machine's cores.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use xshell::{Shell, cmd};

use super::Tally;
use crate::tools::Kmod;

/// Names given to one `modprobe -a` run.
const BATCH: usize = 500;

/// Test configurations for `modprobe -c`: (file name, text).
const CONFIGS: &[&[(&str, &str)]] = &[
    &[(
        "a.conf",
        "alias my-alias hello-feature\nalias pci:v*d* snd_hda_intel\nblacklist pcspkr\n\
         options hello_api greeting=hi\too\noptions snd-hda-intel model=auto\n\
         install hello_api /bin/true $CMDLINE_OPTS\nremove hello_api /bin/true\n\
         softdep hello_feature pre: hello_api post: other\n# comment\n",
    )],
    &[
        (
            "b.conf",
            "bogus line here\nalias only-one\noptions x\nsoftdep m  pre: a\n",
        ),
        (
            "a.conf",
            // No `weakdep` here: kmod 30 rejects it, modkit reads it as kmod >= 33 does.
            "blacklist a\\\n  b\ninclude /etc/foo\n",
        ),
    ],
    &[],
];

pub(crate) fn check(
    sh: &Shell,
    kmod: &Kmod,
    root: &Path,
    release: &str,
    label: &str,
    modkit: &Path,
    record: &mut dyn FnMut(String, Tally),
) -> Result<()> {
    let moddir = root.join("lib/modules").join(release);
    let scratch = crate::cache_dir()
        .join("compat")
        .join(format!("modprobe-{release}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let empty = scratch.join("empty.d");
    std::fs::create_dir_all(&empty)?;

    let base = |tool: &Path, ours: bool| -> Vec<String> {
        let mut args = vec![tool.display().to_string()];
        if ours {
            args.push("modprobe".to_owned());
            // Byte-for-byte with kmod 30 needs its first-softdep-line rule.
            args.push("--first-softdep-only".to_owned());
        }
        args
    };
    let run = |program: &[String], args: &[String]| -> Result<(Option<i32>, Vec<u8>, Vec<u8>)> {
        let (first, rest) = program.split_first().context("empty program")?;
        let out = cmd!(sh, "{first} {rest...} {args...}")
            .ignore_status()
            .quiet()
            .output()
            .with_context(|| format!("running {first}"))?;
        Ok((out.status.code(), out.stdout, out.stderr))
    };
    // The tree, the release and a configuration directory: every run's first arguments.
    let tree_args = |conf: &Path| {
        vec![
            "-d".to_owned(),
            root.display().to_string(),
            "-S".to_owned(),
            release.to_owned(),
            "-C".to_owned(),
            conf.display().to_string(),
        ]
    };
    let common = tree_args(&empty);
    let (kmod_cmd, ours_cmd) = (base(&kmod.modprobe, false), base(modkit, true));

    let compare = |check: &str, mode: &[&str], names: &[String]| -> Result<Tally> {
        let mut tally = Tally {
            compared: names.len(),
            ..Tally::default()
        };
        let mut shown = 0;
        for batch in names.chunks(BATCH) {
            let mut args = common.clone();
            args.extend(mode.iter().map(|s| s.to_string()));
            args.push("-a".to_owned());
            args.extend(batch.iter().cloned());
            let theirs = run(&kmod_cmd, &args)?;
            tally.kmod_ran(theirs.0);
            if theirs == run(&ours_cmd, &args)? {
                continue;
            }
            for name in batch {
                let mut args = common.clone();
                args.extend(mode.iter().map(|s| s.to_string()));
                args.push("-a".to_owned());
                args.push(name.clone());
                let (k, o) = (run(&kmod_cmd, &args)?, run(&ours_cmd, &args)?);
                if k != o {
                    tally.diffs += 1;
                    if shown < 5 {
                        shown += 1;
                        show_difference(&format!("{check} {name}"), &k, &o);
                    }
                }
            }
        }
        Ok(tally)
    };

    let names = module_names(&moddir)?;
    let tally = compare("--show-depends", &["--show-depends"], &names)?;
    record(format!("{label}: modprobe --show-depends NAME"), tally);

    let aliases = concrete_aliases(&moddir)?;
    let tally = compare("-R", &["-R"], &aliases)?;
    record(format!("{label}: modprobe -R MODALIAS"), tally);

    let mut tally = Tally {
        compared: CONFIGS.len(),
        ..Tally::default()
    };
    for (i, files) in CONFIGS.iter().enumerate() {
        let dir = scratch.join(format!("conf{i}"));
        std::fs::create_dir_all(&dir)?;
        for (name, text) in *files {
            std::fs::write(dir.join(name), text)?;
        }
        let mut args = tree_args(&dir);
        args.push("-c".to_owned());
        // Configuration errors come as libkmod logs them in both (`libkmod: ERROR
        // ../libkmod/libkmod-config.c:NNN FUNCTION: MESSAGE`): compared as they are.
        let (k, o) = (run(&kmod_cmd, &args)?, run(&ours_cmd, &args)?);
        tally.kmod_ran(k.0);
        if k != o {
            tally.diffs += 1;
            println!(
                "compat: -c with config set {i}: kmod {:?} {:?}, modkit {:?} {:?}",
                k.0,
                String::from_utf8_lossy(&k.2),
                o.0,
                String::from_utf8_lossy(&o.2)
            );
        }
    }
    record(format!("{label}: modprobe -c"), tally);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// What one run of a tool did: exit status, stdout, stderr.
pub(crate) type Run = (Option<i32>, Vec<u8>, Vec<u8>);

/// Print one difference: what was run, then kmod's run and modkit's.
pub(crate) fn show_difference(what: &str, kmod: &Run, ours: &Run) {
    println!(
        "compat: {what}: kmod {:?} {:?} {:?}, modkit {:?} {:?} {:?}",
        kmod.0,
        String::from_utf8_lossy(&kmod.1),
        String::from_utf8_lossy(&kmod.2),
        ours.0,
        String::from_utf8_lossy(&ours.1),
        String::from_utf8_lossy(&ours.2)
    );
}

/// What one worker of [`check_symbols`] found: the files it compared, kmod's successful runs,
/// and each file whose runs differ, with both runs.
type WorkerResult = Result<(usize, usize, Vec<(PathBuf, Run, Run)>)>;

/// `modprobe --show-exports FILE` and `modprobe --show-modversions FILE` (the CRC and name of
/// each symbol the module exports or imports with a version) for every module file in
/// `modules`, by kmod 30 and by modkit over the same tree, byte for byte. One check per mode;
/// a file is one run of each tool (kmod takes only the first), on as many threads as cores.
pub(crate) fn check_symbols(
    kmod: &Kmod,
    root: &Path,
    release: &str,
    label: &str,
    modkit: &Path,
    modules: &[PathBuf],
    record: &mut dyn FnMut(String, Tally),
) -> Result<()> {
    let scratch = crate::cache_dir()
        .join("compat")
        .join(format!("modprobe-symbols-{release}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let empty = scratch.join("empty.d");
    std::fs::create_dir_all(&empty)?;
    let (root, conf) = (root.display().to_string(), empty.display().to_string());
    let common = ["-d", root.as_str(), "-S", release, "-C", conf.as_str()];
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    for mode in ["--show-exports", "--show-modversions"] {
        let started = std::time::Instant::now();
        let run = |sh: &Shell, program: &Path, ours: bool, file: &Path| -> Result<Run> {
            let tool = ours.then_some("modprobe");
            let out = cmd!(sh, "{program} {tool...} {common...} {mode} {file}")
                .ignore_status()
                .quiet()
                .output()
                .with_context(|| format!("running {}", program.display()))?;
            Ok((out.status.code(), out.stdout, out.stderr))
        };
        let per_worker = modules.len().div_ceil(workers).max(1);
        let results: Vec<WorkerResult> = std::thread::scope(|scope| {
            let handles: Vec<_> = modules
                .chunks(per_worker)
                .map(|files| {
                    scope.spawn(move || {
                        let sh = Shell::new()?;
                        let (mut ok, mut diffs) = (0, Vec::new());
                        for file in files {
                            let theirs = run(&sh, &kmod.modprobe, false, file)?;
                            let ours = run(&sh, modkit, true, file)?;
                            ok += usize::from(theirs.0 == Some(0));
                            if theirs != ours {
                                diffs.push((file.clone(), theirs, ours));
                            }
                        }
                        Ok((files.len(), ok, diffs))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(anyhow!("a {mode} worker panicked")))
                })
                .collect()
        });
        let mut tally = Tally::default();
        for result in results {
            let (compared, ok, diffs) = result?;
            tally.compared += compared;
            tally.kmod_runs += compared;
            tally.kmod_ok += ok;
            for (file, k, o) in diffs {
                tally.diffs += 1;
                if tally.diffs <= 5 {
                    show_difference(&format!("{mode} {}", file.display()), &k, &o);
                }
            }
        }
        println!(
            "compat: {label}: modprobe {mode} FILE: {} files, {} differences ({:.1?} on {workers} threads)",
            tally.compared,
            tally.diffs,
            started.elapsed()
        );
        record(format!("{label}: modprobe {mode} FILE"), tally);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Every module name of modules.dep, in its order.
pub(crate) fn module_names(moddir: &Path) -> Result<Vec<String>> {
    let path = moddir.join("modules.dep");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(':').next())
        .filter_map(modkit_glob::name::path_to_modname)
        .collect())
}

/// One concrete string per alias pattern of modules.alias: `*` dropped, `?` as `x`, `[...]`
/// as its first member (`~` for a negated class); duplicates removed, sorted.
pub(crate) fn concrete_aliases(moddir: &Path) -> Result<Vec<String>> {
    let path: PathBuf = moddir.join("modules.alias");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some("alias"), Some(pattern)) = (words.next(), words.next()) else {
            continue;
        };
        let mut concrete = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {}
                '?' => concrete.push('x'),
                '[' => {
                    let mut first = None;
                    let negated = matches!(chars.peek(), Some('!' | '^'));
                    if negated {
                        chars.next();
                    }
                    for m in chars.by_ref() {
                        if m == ']' && first.is_some() {
                            break;
                        }
                        first.get_or_insert(m);
                    }
                    // A negated class: a character it is unlikely to exclude.
                    concrete.push(if negated { '~' } else { first.unwrap_or('x') });
                }
                c => concrete.push(c),
            }
        }
        // An argument that looks like an option would be taken as one by both tools.
        if !concrete.is_empty() && !concrete.starts_with('-') {
            out.insert(concrete);
        }
    }
    Ok(out.into_iter().collect())
}
