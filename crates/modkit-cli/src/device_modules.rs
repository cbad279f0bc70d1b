//! `device-modules`: the modules a device needs, in load order with their dependencies (its
//! modaliases from sysfs, looked up as modprobe looks them up); with `--missing`, only those
//! not already provided (Guix's `missing-modules`, for checking an initrd's module list).

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use modkit::devices::{self, Device};
use modkit::sysfs::Sysfs;
use modkit::{Context, ModId};

use crate::common;
use crate::json::Json;

const TOOL: &str = "device-modules";

/// Show the kernel modules a device needs, dependencies first, one a line.
///
/// A DEVICE is a device node (`/dev/vda`, or `vda` in the --dev directory), a sysfs device
/// directory (`/sys/devices/...`, or `devices/...` under --sysfs), or a device number
/// (`block:254:0`, `char:4:64`). Its modaliases are those of its sysfs directory and every
/// parent directory; each is looked up as modprobe looks it up. Built-in modules are not
/// listed (--json shows them).
#[derive(Debug, Parser)]
#[command(name = "device-modules", max_term_width = 100)]
struct Args {
    /// Print only the modules not in --provided
    #[arg(long)]
    missing: bool,
    /// Modules already provided, e.g. an initrd's (comma- or space-separated; repeatable)
    #[arg(long, value_name = "LIST")]
    provided: Vec<String>,
    /// Print one JSON object: each device's modaliases and modules, and all modules
    #[arg(long)]
    json: bool,
    /// Match modaliases against this text modules.alias instead of the indexes (as Guix does)
    #[arg(long, value_name = "FILE")]
    alias_file: Option<PathBuf>,
    /// The sysfs root
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    sysfs: PathBuf,
    /// Where relative device node names are looked up
    #[arg(long, value_name = "DIR", default_value = "/dev")]
    dev: PathBuf,
    #[command(flatten)]
    modules: common::ModuleDirArgs,
    /// The devices
    #[arg(value_name = "DEVICE", required = true)]
    devices: Vec<String>,
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

/// One device's answer.
struct Found {
    spec: String,
    aliases: Vec<String>,
    needed: devices::Needed,
}

fn run(args: &Args, out: &mut impl Write) -> ExitCode {
    let mut exit = common::Exit::default();
    let mut ctx = match args.modules.context(TOOL, None) {
        Ok(ctx) => ctx,
        Err(exit) => return exit,
    };
    let sysfs = Sysfs::new(&args.sysfs).with_dev(&args.dev);
    let provided: Vec<String> = args
        .provided
        .iter()
        .flat_map(|list| list.split([',', ' ']))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();

    let known = match &args.alias_file {
        Some(path) => match devices::known_module_aliases(path) {
            Ok(known) => Some(known),
            Err(err) => {
                common::error(TOOL, err);
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };

    let mut found = Vec::new();
    for spec in &args.devices {
        let device = Device::parse(spec, &sysfs);
        let result = devices::device_module_aliases(&sysfs, &device).and_then(|aliases| {
            let needed = match &known {
                Some(known) => devices::modules_for_aliases_in(&mut ctx, known, &aliases)?,
                None => devices::modules_for_aliases(&mut ctx, &aliases)?,
            };
            Ok((aliases, needed))
        });
        match result {
            Ok((aliases, needed)) => found.push(Found {
                spec: spec.clone(),
                aliases,
                needed,
            }),
            Err(err) => {
                common::error(TOOL, format_args!("{spec}: {err}"));
                exit.fail();
            }
        }
    }

    // Every device's modules, each once, in the order the devices were given.
    let mut all: Vec<ModId> = Vec::new();
    for f in &found {
        for &id in &f.needed.load_order {
            if !all.iter().any(|&a| ctx.name(a) == ctx.name(id)) {
                all.push(id);
            }
        }
    }
    let names: Vec<String> = all.iter().map(|&id| ctx.name(id).to_owned()).collect();
    let shown: Vec<&str> = if args.missing {
        devices::missing_modules(names.iter().map(String::as_str), &provided)
    } else {
        names.iter().map(String::as_str).collect()
    };

    let written = if args.json {
        let module = |ctx: &mut Context, id: ModId| {
            let path = ctx.path(id).ok().flatten();
            Json::Object(vec![
                ("name", Json::str(ctx.name(id))),
                (
                    "path",
                    path.map_or(Json::Null, |p| Json::str(p.display().to_string())),
                ),
            ])
        };
        let mut devices_json = Vec::new();
        for f in &found {
            let matches = f
                .needed
                .matches
                .iter()
                .map(|(alias, ids)| {
                    Json::Object(vec![
                        ("modalias", Json::str(alias)),
                        ("modules", Json::strings(ids.iter().map(|&id| ctx.name(id)))),
                    ])
                })
                .collect();
            let modules = f
                .needed
                .load_order
                .iter()
                .map(|&id| module(&mut ctx, id))
                .collect();
            devices_json.push(Json::Object(vec![
                ("device", Json::str(&f.spec)),
                ("modaliases", Json::strings(&f.aliases)),
                ("matches", Json::Array(matches)),
                ("modules", Json::Array(modules)),
                (
                    "builtin",
                    Json::strings(f.needed.builtin.iter().map(|&id| ctx.name(id))),
                ),
            ]));
        }
        let mut top = vec![
            ("devices", Json::Array(devices_json)),
            ("modules", Json::strings(&names)),
        ];
        if args.missing {
            top.push(("missing", Json::strings(&shown)));
        }
        writeln!(out, "{}", Json::Object(top))
    } else {
        shown.iter().try_for_each(|name| writeln!(out, "{name}"))
    };
    if let Err(err) = written {
        return common::io_exit(TOOL, &err);
    }
    exit.into()
}
