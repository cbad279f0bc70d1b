//! `coldplug`: load the modules every present device needs, as udev does at boot: every
//! modalias in sysfs is looked up as modprobe looks it up, blacklisted (kmod's rule: modules
//! found through an alias), built-in and loaded modules are skipped, and the rest are loaded
//! after their dependencies, independent ones side by side.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use modkit::coldplug::{self, Outcome, Plan};
use modkit::sysfs::Sysfs;
use modkit::{Level, Reporter, ShellRunner};

use crate::common;
use crate::json::Json;

const TOOL: &str = "coldplug";

/// Load the modules of every device present, dependencies first, independent modules in
/// parallel; then again for the devices that loading drivers made appear, until nothing new.
///
/// Prints what it loads (or, with --dry-run, would load) and what it skips and why; failures
/// go to standard error and make the exit status 1.
#[derive(Debug, Parser)]
#[command(name = "coldplug", max_term_width = 100)]
struct Args {
    /// Only print what would be loaded
    #[arg(short = 'n', long = "dry-run")]
    dry_run: bool,
    /// Print one JSON object: devices, modules with their status, skipped modules
    #[arg(long)]
    json: bool,
    /// Modules loaded at the same time (default: the number of CPUs, at most 4)
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// The sysfs root
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    sysfs: PathBuf,
    #[command(flatten)]
    modules: common::ModuleDirArgs,
}

/// Soft-dependency lookup failures and the like, as modprobe words them.
struct Messages;

impl Reporter for Messages {
    fn show(&mut self, _line: &str) {}

    fn message(&mut self, level: Level, text: &str) {
        let level = match level {
            Level::Log | Level::Error => common::Level::Error,
            Level::Warning => common::Level::Warning,
            Level::Info => return,
        };
        common::report(TOOL, level, text);
    }
}

/// This tool's command line as clap sees it: its manual page and shell completions.
pub(crate) fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Args = match common::parse_args(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let status = run(&args, &mut out);
    if let Err(err) = out.flush() {
        return common::io_exit(TOOL, &err);
    }
    status
}

fn run(args: &Args, out: &mut impl Write) -> ExitCode {
    let cmdline = common::kernel_cmdline();
    let mut ctx = match args.modules.context(TOOL, cmdline.as_deref()) {
        Ok(ctx) => ctx,
        Err(exit) => return exit,
    };
    let sysfs = Sysfs::new(&args.sysfs);
    let kernel = common::kernel_from_env();
    let result = if args.dry_run {
        sysfs
            .all_modaliases()
            .map_err(modkit::Error::from)
            .and_then(|devices| coldplug::plan(&mut ctx, &kernel, devices, &mut Messages))
            .map(|plan| (plan, None))
    } else {
        let jobs = args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)));
        coldplug::coldplug(
            &mut ctx,
            &kernel,
            &sysfs,
            &mut ShellRunner::default(),
            &mut Messages,
            jobs,
        )
        .map(|done| (done.plan, Some(done.outcomes)))
    };
    let (plan, outcomes) = match result {
        Ok(done) => done,
        Err(err) => {
            common::error(TOOL, err);
            return ExitCode::FAILURE;
        }
    };

    let mut failed = false;
    if let Some(outcomes) = &outcomes {
        for (step, outcome) in plan.steps.iter().zip(outcomes) {
            match outcome {
                Outcome::Failed(why) => {
                    failed = true;
                    common::error(TOOL, format_args!("could not load {}: {why}", step.name));
                }
                Outcome::DependencyFailed(dep) => {
                    failed = true;
                    common::error(
                        TOOL,
                        format_args!("{} not loaded: its dependency {dep} failed", step.name),
                    );
                }
                _ => {}
            }
        }
    }
    let written = if args.json {
        writeln!(out, "{}", json(&plan, outcomes.as_deref(), sysfs.root()))
    } else {
        text(&plan, outcomes.as_deref(), out)
    };
    if let Err(err) = written {
        return common::io_exit(TOOL, &err);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn text(plan: &Plan, outcomes: Option<&[Outcome]>, out: &mut impl Write) -> io::Result<()> {
    for (i, step) in plan.steps.iter().enumerate() {
        match outcomes.map(|o| &o[i]) {
            None => match &step.install {
                Some(command) => writeln!(out, "install {} {command}", step.name)?,
                None => {
                    let path = step
                        .path
                        .as_ref()
                        .map_or_else(|| "(no file)".to_owned(), |p| p.display().to_string());
                    let mut line = format!("load {} {path}", step.name);
                    if !step.params.is_empty() {
                        line.push(' ');
                        line.push_str(&step.params);
                    }
                    writeln!(out, "{line}")?;
                }
            },
            Some(Outcome::Loaded(_)) => writeln!(out, "loaded {}", step.name)?,
            Some(Outcome::Installed) => writeln!(out, "installed {}", step.name)?,
            Some(Outcome::AlreadyLoaded) => writeln!(out, "already loaded {}", step.name)?,
            Some(Outcome::Failed(_) | Outcome::DependencyFailed(_)) => {}
        }
    }
    for skip in &plan.skipped {
        writeln!(
            out,
            "skip {} ({}) for {}",
            skip.name,
            skip.reason.as_str(),
            skip.modalias
        )?;
    }
    Ok(())
}

fn json(plan: &Plan, outcomes: Option<&[Outcome]>, root: &Path) -> Json {
    let devices = plan
        .devices
        .iter()
        .map(|(path, alias)| {
            let rel = path.strip_prefix(root).unwrap_or(path);
            Json::Object(vec![
                ("path", Json::str(rel.display().to_string())),
                ("modalias", Json::str(alias)),
            ])
        })
        .collect();
    let names = |steps: &[usize]| Json::strings(steps.iter().map(|&d| &plan.steps[d].name));
    let modules = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let (status, error) = match outcomes.map(|o| &o[i]) {
                None => ("planned", None),
                Some(Outcome::Loaded(_)) => ("loaded", None),
                Some(Outcome::Installed) => ("installed", None),
                Some(Outcome::AlreadyLoaded) => ("already-loaded", None),
                Some(Outcome::Failed(why)) => ("failed", Some(why.clone())),
                Some(Outcome::DependencyFailed(dep)) => {
                    ("dependency-failed", Some(format!("{dep} failed")))
                }
            };
            Json::Object(vec![
                ("name", Json::str(&step.name)),
                (
                    "path",
                    step.path
                        .as_ref()
                        .map_or(Json::Null, |p| Json::str(p.display().to_string())),
                ),
                ("params", Json::str(&step.params)),
                (
                    "install",
                    step.install.as_ref().map_or(Json::Null, Json::str),
                ),
                ("depends", names(&step.deps)),
                ("soft_depends", names(&step.soft_deps)),
                ("modaliases", Json::strings(&step.modaliases)),
                ("status", Json::str(status)),
                ("error", error.map_or(Json::Null, Json::String)),
            ])
        })
        .collect();
    let skipped = plan
        .skipped
        .iter()
        .map(|s| {
            Json::Object(vec![
                ("name", Json::str(&s.name)),
                ("reason", Json::str(s.reason.as_str())),
                ("modalias", Json::str(&s.modalias)),
            ])
        })
        .collect();
    Json::Object(vec![
        ("devices", Json::Array(devices)),
        ("modules", Json::Array(modules)),
        ("skipped", Json::Array(skipped)),
        ("unmatched", Json::strings(&plan.unmatched)),
    ])
}
