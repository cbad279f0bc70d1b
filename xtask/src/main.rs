//! `cargo xtask`: the project's developer tasks, each a subcommand.
#![deny(unsafe_code)] // One exception: wait4(2) in `bench::measure`, for the child's peak RSS.

mod bench;
mod compat;
mod docs;
mod fuzz;
mod kernels;
mod killtest;
mod kmods;
mod tools;
mod vmtest;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Developer tasks for modkit. Run from anywhere inside the repository.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Download Debian's kernel headers (cached) and build the sample modules for each kernel.
    Kmods(kmods::Args),
    /// Boot Debian's kernels in QEMU and run the end-to-end scenarios with modkit's tools.
    Vmtest(vmtest::Args),
    /// Compare modkit's output with kmod's on Debian's module trees.
    Compat(compat::Args),
    /// Write the manual pages and the bash, zsh and fish completions of modkit and every tool.
    DistDocs(docs::Args),
    /// Benchmark modkit beside kmod 30 in one table (depmod, modprobe -R, modinfo, insmod, ...)
    /// with each row's goal; `bench initramfs`: modkit initramfs against mkinitramfs and dracut.
    Bench(bench::Args),
    /// Run the cargo-fuzz targets (crates/modkit-fuzz), each for a while, and report findings.
    Fuzz(fuzz::Args),
    /// Kill `modkit depmod` at random moments and check that no index is ever left damaged.
    Killtest(killtest::Args),
    /// List the tests whose last run skipped a check because something was missing (kmod, the
    /// kernel cache, pci.ids, a mount namespace), with what installs it.
    Skipped,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Kmods(args) => kmods::run(args),
        Task::Vmtest(args) => vmtest::run(args),
        Task::Compat(args) => compat::run(args),
        Task::DistDocs(args) => docs::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Fuzz(args) => fuzz::run(args),
        Task::Killtest(args) => killtest::run(args),
        Task::Skipped => list_skipped(),
    }
}

/// The repository root (the parent of this crate's directory).
pub(crate) fn project_root() -> PathBuf {
    let dir = env!("CARGO_MANIFEST_DIR");
    PathBuf::from(dir)
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Where downloads and extracted kernel trees are kept between runs (one rule, shared with the
/// tests: `modkit_testkit::cache_dir`).
pub(crate) fn cache_dir() -> PathBuf {
    modkit_testkit::cache_dir()
}

/// `cargo xtask skipped`: the tests whose last run skipped a check for a missing prerequisite.
fn list_skipped() -> Result<()> {
    let skipped = modkit_testkit::skipped();
    if skipped.is_empty() {
        println!(
            "no test skipped a check in its last run (records in {})",
            modkit_testkit::skipped_dir().display()
        );
        return Ok(());
    }
    for (test, why) in &skipped {
        println!("SKIPPED {test}: {why}");
    }
    println!(
        "{} test(s) skipped a check in their last run; under CI ({}=1 or CI=true) each is a failure",
        skipped.len(),
        modkit_testkit::CI_VARIABLE
    );
    Ok(())
}
