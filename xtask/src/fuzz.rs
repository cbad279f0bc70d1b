//! `cargo xtask fuzz`: run the cargo-fuzz targets of `crates/modkit-fuzz` one after another,
//! each for a fixed time, seeded from the project's fixtures, and report per target how many
//! inputs ran and whether anything was found.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::project_root;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to fuzz each target
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Memory limit per fuzzer process, in MB (libFuzzer reports going over it as a finding)
    #[arg(long, default_value_t = 2048)]
    rss_limit_mb: u64,
    /// List the targets and exit
    #[arg(long)]
    list: bool,
    /// Only (re)write the seed corpora, do not fuzz
    #[arg(long)]
    seed_only: bool,
    /// Targets to run (default: all)
    targets: Vec<String>,
}

/// Where the fuzz crate lives (outside the workspace: it needs nightly and libFuzzer).
const FUZZ_DIR: &str = "crates/modkit-fuzz";

/// Seed files: a name and the bytes.
type Seeds = Vec<(String, Vec<u8>)>;

/// A fuzz target and the files its seed corpus is made from.
struct Target {
    name: &'static str,
    seeds: fn(&Path) -> Result<Seeds>,
}

const TARGETS: &[Target] = &[
    Target {
        name: "elf_module",
        seeds: seeds_plain_modules,
    },
    Target {
        name: "elf_decompress",
        seeds: seeds_all_modules,
    },
    Target {
        name: "elf_signature",
        seeds: seeds_signatures,
    },
    Target {
        name: "elf_verify",
        seeds: seeds_signatures,
    },
    Target {
        name: "elf_certificates",
        seeds: seeds_certificates,
    },
    Target {
        name: "index_read",
        seeds: seeds_indexes,
    },
    Target {
        name: "index_roundtrip",
        seeds: seeds_none,
    },
    Target {
        name: "fnmatch_libc",
        seeds: seeds_fnmatch,
    },
    Target {
        name: "config_modprobe",
        seeds: seeds_modprobe,
    },
    Target {
        name: "config_cmdline",
        seeds: seeds_cmdline,
    },
    Target {
        name: "config_depmod",
        seeds: seeds_depmod,
    },
    Target {
        name: "ere_libc",
        seeds: seeds_ere,
    },
    Target {
        name: "glob_match",
        seeds: seeds_fnmatch,
    },
    Target {
        name: "alias_text",
        seeds: seeds_alias_text,
    },
    Target {
        name: "depgraph_inputs",
        seeds: seeds_depgraph_inputs,
    },
    Target {
        name: "depgraph_cache",
        seeds: seeds_depgraph_cache,
    },
    Target {
        name: "sysfs_uevent",
        seeds: seeds_sysfs,
    },
];

pub fn run(args: Args) -> Result<()> {
    if args.list {
        for t in TARGETS {
            println!("{}", t.name);
        }
        return Ok(());
    }
    let root = project_root();
    let selected: Vec<&Target> = if args.targets.is_empty() {
        TARGETS.iter().collect()
    } else {
        args.targets
            .iter()
            .map(|name| {
                TARGETS.iter().find(|t| t.name == name).with_context(|| {
                    format!("no fuzz target {name} (cargo xtask fuzz --list shows them)")
                })
            })
            .collect::<Result<_>>()?
    };
    let fuzz_dir = root.join(FUZZ_DIR);
    for t in &selected {
        let corpus = fuzz_dir.join("corpus").join(t.name);
        fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = (t.seeds)(&root).with_context(|| format!("seeds for {}", t.name))?;
        for (name, bytes) in &seeds {
            let path = corpus.join(format!("seed-{name}"));
            fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        println!(
            "fuzz: {}: {} seed(s) in {}",
            t.name,
            seeds.len(),
            corpus.display()
        );
    }
    if args.seed_only {
        return Ok(());
    }

    let sh = Shell::new()?;
    sh.change_dir(&root);
    ensure_cargo_fuzz(&sh)?;
    let mut results = Vec::new();
    for t in &selected {
        println!("fuzz: {} for {} s", t.name, args.seconds);
        results.push(run_target(&sh, &fuzz_dir, t.name, &args)?);
    }

    let mut report = String::from("\nfuzz summary:\n");
    for r in &results {
        let verdict = match &r.finding {
            None => "no finding".to_owned(),
            Some(f) => format!("FOUND: {f}"),
        };
        let _ = writeln!(
            report,
            "  {:<16} {:>12} executions in {:>4} s  corpus {:>5}  {verdict}",
            r.name, r.executions, r.seconds, r.corpus
        );
    }
    print!("{report}");
    let found = results.iter().filter(|r| r.finding.is_some()).count();
    if found > 0 {
        bail!("{found} fuzz target(s) found a problem; the inputs are in {FUZZ_DIR}/artifacts/");
    }
    Ok(())
}

/// What one fuzzing run gave.
#[derive(Debug)]
struct Outcome {
    name: &'static str,
    executions: u64,
    seconds: u64,
    corpus: usize,
    /// The crash, leak, timeout or memory finding, with the artifact path.
    finding: Option<String>,
}

fn ensure_cargo_fuzz(sh: &Shell) -> Result<()> {
    if crate::tools::runs(cmd!(sh, "cargo fuzz --version")) {
        return Ok(());
    }
    println!("fuzz: installing cargo-fuzz");
    cmd!(sh, "cargo install cargo-fuzz")
        .run()
        .context("cargo install cargo-fuzz")
}

fn run_target(sh: &Shell, fuzz_dir: &Path, name: &'static str, args: &Args) -> Result<Outcome> {
    let corpus = fuzz_dir.join("corpus").join(name);
    let artifacts = fuzz_dir.join("artifacts").join(name);
    fs::create_dir_all(&artifacts)?;
    let artifact_prefix = format!("-artifact_prefix={}/", artifacts.display());
    let time = format!("-max_total_time={}", args.seconds);
    let rss = format!("-rss_limit_mb={}", args.rss_limit_mb);
    let output = cmd!(
        sh,
        "cargo +nightly fuzz run --fuzz-dir {fuzz_dir} {name} {corpus}
            -- {time} {rss} {artifact_prefix} -timeout=20
               -print_final_stats=1"
    )
    .ignore_status()
    .quiet()
    .output()
    .with_context(|| format!("running cargo fuzz for {name}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let log_path = artifacts.join("last-run.log");
    fs::write(&log_path, log.as_bytes())?;
    let stats = parse_stats(&log);
    let corpus_len = fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
    let finding = if output.status.success() {
        None
    } else {
        let what = log
            .lines()
            .find(|l| l.contains("==ERROR: libFuzzer") || l.contains("panicked at"))
            .or_else(|| log.lines().find(|l| l.starts_with("error")))
            .unwrap_or("the fuzzer failed")
            .trim()
            .to_owned();
        let input = log
            .lines()
            .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim()))
            .unwrap_or("no input written");
        Some(format!(
            "{what} (input: {input}; log: {})",
            log_path.display()
        ))
    };
    if finding.is_some() && stats.executions == 0 && !log.contains("#") {
        // It did not even start: a build failure. Show it rather than a bare verdict.
        eprintln!("{log}");
    }
    Ok(Outcome {
        name,
        executions: stats.executions,
        seconds: stats.seconds.unwrap_or(args.seconds),
        corpus: corpus_len,
        finding,
    })
}

#[derive(Debug, Default, PartialEq)]
struct Stats {
    executions: u64,
    seconds: Option<u64>,
}

/// libFuzzer's numbers: `stat::number_of_executed_units: N` (with `-print_final_stats=1`),
/// `Done N runs in S second(s)`, else the last `#N ...` status line (after a crash).
fn parse_stats(log: &str) -> Stats {
    let mut stats = Stats::default();
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            if let Ok(n) = n.trim().parse() {
                stats.executions = n;
            }
        } else if let Some(rest) = line.strip_prefix("Done ") {
            let mut words = rest.split_whitespace();
            if let Some(Ok(n)) = words.next().map(str::parse) {
                stats.executions = stats.executions.max(n);
            }
            stats.seconds = words.nth(2).and_then(|s| s.parse().ok());
        } else if let Some(rest) = line.strip_prefix('#')
            && let Some(Ok(n)) = rest.split_whitespace().next().map(str::parse::<u64>)
        {
            stats.executions = stats.executions.max(n);
        }
    }
    stats
}

/// Regular files under `dir` (recursively, not following symlinks) whose names satisfy `keep`,
/// sorted.
fn files(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let path = entry.path();
            // Not through symlinks: the fake sysfs trees are full of loops.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(keep)
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Seeds named after their path relative to the root, read from disk.
fn read_seeds(root: &Path, paths: Vec<PathBuf>) -> Result<Seeds> {
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('/', "_");
            let bytes = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            Ok((name, bytes))
        })
        .collect()
}

fn module_files(root: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut all = files(&root.join("kmods/fixtures"), keep)?;
    all.extend(files(&root.join("crates/modkit-elf/testdata"), keep)?);
    all.retain(|p| !p.components().any(|c| c.as_os_str() == "kmod"));
    Ok(all)
}

fn seeds_plain_modules(root: &Path) -> Result<Seeds> {
    read_seeds(root, module_files(root, &|n| n.ends_with(".ko"))?)
}

fn seeds_all_modules(root: &Path) -> Result<Seeds> {
    let compressed = |n: &str| {
        [".ko.xz", ".ko.gz", ".ko.zst"]
            .iter()
            .any(|e| n.ends_with(e))
    };
    let mut seeds = read_seeds(root, module_files(root, &compressed)?)?;
    // One plain module too, small enough to mutate quickly.
    seeds.extend(read_seeds(
        root,
        vec![root.join("kmods/fixtures/6.1/hello_api.ko")],
    )?);
    Ok(seeds)
}

/// The raw signatures (PKCS#7) of the signed fixtures: the target appends the trailer itself.
fn seeds_signatures(root: &Path) -> Result<Seeds> {
    const MAGIC: &[u8] = b"~Module signature appended~\n";
    let mut seeds = Vec::new();
    for (name, bytes) in read_seeds(root, module_files(root, &|n| n.ends_with(".ko"))?)? {
        let Some(body) = bytes.strip_suffix(MAGIC) else {
            continue;
        };
        let Some(info) = body.len().checked_sub(12).and_then(|at| body.get(at..)) else {
            continue;
        };
        let sig_len = u32::from_be_bytes([info[8], info[9], info[10], info[11]]) as usize;
        let end = body.len() - 12;
        if let Some(sig) = end
            .checked_sub(sig_len)
            .and_then(|start| body.get(start..end))
        {
            seeds.push((name, sig.to_vec()));
        }
    }
    if seeds.is_empty() {
        bail!("no signed fixture found under kmods/fixtures");
    }
    Ok(seeds)
}

/// The test certificates of modkit-elf (DER and PEM), and two of them concatenated.
fn seeds_certificates(root: &Path) -> Result<Seeds> {
    let dir = root.join("crates/modkit-elf/testdata/sig");
    let mut seeds = read_seeds(
        root,
        files(&dir, &|n| n.ends_with(".x509") || n.ends_with(".pem"))?,
    )?;
    let both: Vec<u8> = seeds
        .iter()
        .filter(|(name, _)| name.ends_with(".x509"))
        .flat_map(|(_, bytes)| bytes.clone())
        .collect();
    if both.is_empty() {
        bail!("no certificate under {}", dir.display());
    }
    seeds.push(("concatenated.x509".into(), both));
    Ok(seeds)
}

fn seeds_indexes(root: &Path) -> Result<Seeds> {
    read_seeds(
        root,
        files(&root.join("crates/modkit-index/testdata"), &|n| {
            n.ends_with(".bin")
        })?,
    )
}

fn seeds_none(_: &Path) -> Result<Seeds> {
    Ok(Vec::new())
}

/// `PATTERN\0STRING` pairs: alias patterns from the index testdata against device keys, and
/// glibc's corner cases.
fn seeds_fnmatch(root: &Path) -> Result<Seeds> {
    let path = root.join("crates/modkit-index/testdata/modules.alias");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut pairs: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| p.contains(['*', '?', '[']))
        .step_by(97)
        .take(24)
        .map(|p| (p.to_owned(), p.replace('*', "x").replace('?', "y")))
        .collect();
    for (p, s) in [
        ("[[:alpha:]]*", "abc"),
        ("[!a-]x", "bx"),
        ("[]a]", "]"),
        ("\\*", "*"),
        ("[a-", "[a-"),
        ("[[=a=]]", "a"),
        ("*[[:foo:]]", "x"),
    ] {
        pairs.push((p.to_owned(), s.to_owned()));
    }
    Ok(pairs
        .into_iter()
        .enumerate()
        .map(|(i, (p, s))| {
            (
                format!("pair{i}"),
                [p.as_bytes(), b"\0", s.as_bytes()].concat(),
            )
        })
        .collect())
}

fn seeds_modprobe(root: &Path) -> Result<Seeds> {
    let dir = root.join("crates/modkit-config/testdata/modprobe");
    read_seeds(
        root,
        files(&dir, &|n| n.ends_with(".conf") || n.ends_with(".alias"))?,
    )
}

fn seeds_cmdline(root: &Path) -> Result<Seeds> {
    let dir = root.join("crates/modkit-config/testdata/modprobe");
    read_seeds(root, files(&dir, &|n| n == "cmdline")?)
}

fn seeds_depmod(root: &Path) -> Result<Seeds> {
    let dir = root.join("crates/modkit-config/testdata/depmod");
    read_seeds(root, files(&dir, &|n| n.ends_with(".conf"))?)
}

fn seeds_ere(_: &Path) -> Result<Seeds> {
    let pairs = [
        ("^6.1.0-[0-9]+-amd64$", "6.1.0-56-amd64"),
        ("(5|6)[.]1(2)?", "6.12.38+deb13-amd64"),
        ("^[[:digit:]]+[.][^.]*$", "6.1"),
        ("a{2,3}b?c*|x+", "aaab"),
        ("()|^$", ""),
        ("[]a-]+", "a]-"),
    ];
    Ok(pairs
        .iter()
        .enumerate()
        .map(|(i, (p, s))| {
            (
                format!("pair{i}"),
                [p.as_bytes(), b"\0", s.as_bytes()].concat(),
            )
        })
        .collect())
}

/// modules.alias texts: the index crate's, and the start of the glob crate's bigger one.
fn seeds_alias_text(root: &Path) -> Result<Seeds> {
    let mut seeds = read_seeds(
        root,
        vec![root.join("crates/modkit-index/testdata/modules.alias")],
    )?;
    let big = fs::read_to_string(root.join("crates/modkit-glob/testdata/modules.alias"))?;
    let head: String = big.lines().take(60).map(|l| format!("{l}\n")).collect();
    seeds.push(("glob-head".to_owned(), head.into_bytes()));
    seeds.push((
        "comments".to_owned(),
        b"# c\n\nalias a b\nalias  x*y  m  \n".to_vec(),
    ));
    Ok(seeds)
}

/// modules.order, modules.builtin and modules.builtin.modinfo of the index testdata (joined by
/// 0xFF, as the target splits them), with and without a depmod.d part.
fn seeds_depgraph_inputs(root: &Path) -> Result<Seeds> {
    let dir = root.join("crates/modkit-index/testdata");
    let mut parts = Vec::new();
    for name in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let p = dir.join(name);
        parts.push(fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
    }
    let order = b"kernel/extra/hello_feature.ko\nkernel/extra/hello_api.ko\n".to_vec();
    let conf = b"search updates built-in\noverride hello_api * extra\nexclude kernel/x\n".to_vec();
    Ok(vec![
        ("testdata".to_owned(), parts.join(&0xFF)),
        (
            "sample-order".to_owned(),
            [order.clone(), vec![0xFF], parts[1].clone()].concat(),
        ),
        (
            "with-conf".to_owned(),
            [order, vec![0xFF, 0xFF, 0xFF], conf].concat(),
        ),
    ])
}

/// A cache file's entries section without its checksum (the target appends it), one entry of
/// every kind, written by modkit-depgraph's own writer in its current format.
fn seeds_depgraph_cache(_: &Path) -> Result<Seeds> {
    Ok(vec![(
        "one-entry".to_owned(),
        modkit_depgraph::fuzzing::cache_seed(),
    )])
}

/// The sysfs crate's uevent files and its pci.ids sample.
fn seeds_sysfs(root: &Path) -> Result<Seeds> {
    let dir = root.join("crates/modkit-sysfs/testdata");
    let mut paths = files(&dir, &|n| n == "uevent")?;
    paths.truncate(40);
    paths.push(dir.join("pci.ids"));
    read_seeds(root, paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_from_final_line() {
        let log = "#2\tINITED cov: 10\n#4096\tpulse\nDone 123456 runs in 61 second(s)\n\
                   stat::number_of_executed_units: 123456\nstat::peak_rss_mb: 80\n";
        assert_eq!(
            parse_stats(log),
            Stats {
                executions: 123456,
                seconds: Some(61)
            }
        );
    }

    #[test]
    fn stats_after_crash() {
        let log = "#1024\tpulse\n#2048\tNEW cov: 3\n==1== ERROR: libFuzzer: deadly signal\n";
        assert_eq!(
            parse_stats(log),
            Stats {
                executions: 2048,
                seconds: None
            }
        );
    }

    /// The seed is a valid cache of the current format: with its checksum appended it parses,
    /// to its one entry.
    #[test]
    fn depgraph_cache_seed_parses() {
        let seeds = seeds_depgraph_cache(Path::new("/nonexistent")).unwrap();
        assert_eq!(seeds.len(), 1);
        assert_eq!(
            modkit_depgraph::fuzzing::cache_entry_count(&seeds[0].1),
            Ok(1)
        );
    }
}
