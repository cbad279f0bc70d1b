//! `initramfs`: write an initramfs image (newc cpio, compressed) with the modules a set of
//! devices, modules and filesystems needs, their firmware, their modprobe.d lines and indexes
//! written by modkit's depmod. The library side is `modkit::initramfs`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use modkit::cpio::Compression;
use modkit::initramfs::{self, Reason, Request, image};

use crate::common;
use crate::json::Json;

const TOOL: &str = "initramfs";

/// Write an initramfs with the kernel modules some devices, modules and filesystems need.
///
/// Every module chosen brings its dependencies (modules.dep), its soft dependencies (`pre:` and
/// `post:` of every matching softdep line, from modprobe.d and from the modules themselves)
/// and its weak dependencies, recursively. The image holds the module files under
/// /lib/modules/VERSION at their modules.dep paths, the tree's modules.order, modules.builtin
/// and modules.builtin.modinfo, the indexes modkit's depmod writes for just these modules, the
/// firmware their `firmware=` records name (from ROOT/lib/firmware, plain, .xz or .zst; one
/// warning lists what is absent), and /etc/modprobe.d/modkit.conf with the `options`,
/// `blacklist` and `softdep` lines that mention them, and /init: modkit-init (or --init FILE),
/// which loads what the devices need until the root= device appears, mounts it and switches
/// to it, with /dev/console and the directories it mounts on. Nothing else.
///
/// The image is reproducible: the same inputs give the same bytes (entries sorted, uid and gid
/// 0, every mtime from SOURCE_DATE_EPOCH, or 0). With -b ROOT and no -C, the modprobe.d
/// configuration is ROOT's (ROOT/etc/modprobe.d, ROOT/lib/modprobe.d, ...), not the host's.
#[derive(Debug, Parser)]
#[command(name = "initramfs", max_term_width = 100)]
struct Args {
    /// Write the image to FILE (required unless --list, --json or --check)
    #[arg(short = 'o', long = "output", value_name = "FILE", required_unless_present_any = ["list", "json", "check"])]
    output: Option<PathBuf>,
    /// Compress the image: zstd, xz (CRC32, as the kernel wants), gzip, or none
    #[arg(long, value_name = "HOW", default_value = "zstd", value_parser = Compression::NAMES)]
    compress: String,
    /// Print each file of the image with its size and why it is there
    #[arg(long)]
    list: bool,
    /// Print the files, built-in modules and missing firmware as one JSON object
    #[arg(long)]
    json: bool,
    /// A device's modalias, e.g. `pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00` (repeatable)
    #[arg(long = "device-alias", value_name = "MODALIAS")]
    device_aliases: Vec<String>,
    /// Read modaliases from FILE, one a line (blank lines and `#` comments skipped); `find
    /// /sys/devices -name modalias -exec cat {} +` on the target machine makes one
    #[arg(long = "device-aliases", value_name = "FILE")]
    device_alias_files: Vec<PathBuf>,
    /// A module by name, or anything modprobe takes (an alias, `symbol:NAME`) (repeatable)
    #[arg(long = "module", value_name = "NAME")]
    modules: Vec<String>,
    /// A filesystem type, found as the kernel asks for it (`fs-TYPE`) (repeatable)
    #[arg(long = "fs", value_name = "TYPE")]
    filesystems: Vec<String>,
    /// A portable image: every block, ATA, SCSI, NVMe, MD, virtio, MMC, USB-storage and USB
    /// host driver of the tree (by its directory under kernel/drivers), plus --fs
    #[arg(long)]
    generic: bool,
    /// What this machine needs to mount its root filesystem: the modaliases of the root's
    /// block device and its parents in sysfs (as device-modules finds them), its filesystem
    /// type, and for a device-mapper, LVM, LUKS or MD root the devices under it (slaves/,
    /// recursively) and the modules its layers need: dm_mod, dm_crypt, md-raid1 ... (a LUKS
    /// root's cipher modules are not in sysfs: add them with --module)
    #[arg(long)]
    host: bool,
    /// --host, and every device present (each modalias under /sys/devices): an image for
    /// this machine whatever disk it boots from
    #[arg(long = "host-all")]
    host_all: bool,
    /// The sysfs root for --host
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    sysfs: PathBuf,
    /// The mount table for --host
    #[arg(long, value_name = "FILE", default_value = "/proc/self/mountinfo")]
    mountinfo: PathBuf,
    /// The program to install as /init: a statically linked executable. Default:
    /// `modkit-init` beside this program
    #[arg(long, value_name = "FILE", conflicts_with = "no_init")]
    init: Option<PathBuf>,
    /// Write no /init (nor /dev/console): modules only, e.g. to append to another image
    #[arg(long = "no-init")]
    no_init: bool,
    /// Check the image IMAGE instead of writing one: print each module the request needs
    /// (with why) that IMAGE lacks, as Guix's missing-modules does; exit status 1 when any
    /// is missing. `--check IMAGE --host` asks whether this machine can boot from IMAGE
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["output", "list", "json"])]
    check: Option<PathBuf>,
    #[command(flatten)]
    dirs: common::ModuleDirArgs,
}

/// This tool's command line as clap sees it: its manual page and shell completions.
pub(crate) fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = match common::parse_args::<Args>(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let status = match run(&args, &mut out) {
        Ok(exit) => exit.into(),
        Err(message) => {
            common::error(TOOL, message);
            ExitCode::FAILURE
        }
    };
    if let Err(err) = out.flush() {
        return common::io_exit(TOOL, &err);
    }
    status
}

/// `SOURCE_DATE_EPOCH` as the archive's mtime, or 0.
fn mtime() -> Result<u32, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(text) => text.trim().parse().map_err(|_| {
            format!("SOURCE_DATE_EPOCH={text} is not a number of seconds from 0 to 4294967295")
        }),
    }
}

/// The modaliases of a --device-aliases file.
fn read_aliases(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("could not read modaliases from {}: {err}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

fn run(args: &Args, out: &mut impl Write) -> Result<common::Exit, String> {
    let mut exit = common::Exit::default();
    let mtime = mtime()?;
    let compression = Compression::from_name(&args.compress).unwrap_or_default();
    let mut request = Request {
        aliases: args.device_aliases.clone(),
        modules: args.modules.clone(),
        filesystems: args.filesystems.clone(),
        generic: args.generic,
        stacked: Vec::new(),
    };
    for file in &args.device_alias_files {
        request.aliases.extend(read_aliases(file)?);
    }
    if args.host || args.host_all {
        let text = std::fs::read_to_string(&args.mountinfo)
            .map_err(|err| format!("could not read {}: {err}", args.mountinfo.display()))?;
        let sysfs = modkit::sysfs::Sysfs::new(&args.sysfs);
        let host = initramfs::host::host_request(&sysfs, &text)
            .map_err(|err| format!("--host: {err}"))?
            .ok_or_else(|| format!("--host: no mount of / in {}", args.mountinfo.display()))?;
        request.aliases.extend(host.aliases);
        request.filesystems.extend(host.filesystems);
        request.stacked.extend(host.stacked);
        if args.host_all {
            let all = initramfs::host::all_devices_request(&sysfs)
                .map_err(|err| format!("--host-all: {err}"))?;
            for alias in all.aliases {
                if !request.aliases.contains(&alias) {
                    request.aliases.push(alias);
                }
            }
        }
    }
    if request == Request::default() {
        return Err(
            "nothing to put in the image: give --device-alias, --device-aliases, \
                    --module, --fs, --generic, --host or --host-all"
                .into(),
        );
    }

    let root = args
        .dirs
        .basedir
        .as_deref()
        .map_or_else(|| PathBuf::from("/"), PathBuf::from);
    // With -b ROOT and no -C, the configuration is ROOT's, not the host's.
    let config_files = if !args.dirs.config.is_empty() || args.dirs.basedir.is_none() {
        args.dirs.config_files()
    } else {
        modkit::ConfigFiles::Under(root.clone())
    };
    let dir = args.dirs.module_dir();
    if !dir.join("modules.dep.bin").is_file() {
        return Err(format!(
            "{}: no modules.dep.bin (not a module directory, or depmod has not run there)",
            dir.display()
        ));
    }
    let version = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ctx = args
        .dirs
        .open(TOOL, &config_files, None)
        .map_err(|err| err.to_string())?;

    let closure = initramfs::closure(&mut ctx, &request).map_err(|err| err.to_string())?;
    for warning in &closure.warnings {
        common::write_stderr(&format!("{TOOL}: WARNING: {warning}\n"));
    }
    for reason in &closure.unresolved {
        match reason {
            Reason::Named(name) => {
                common::error(
                    TOOL,
                    format_args!("Module {name} not found in directory {}", dir.display()),
                );
                exit.fail();
            }
            Reason::Stacked { name, what } => {
                common::error(
                    TOOL,
                    format_args!(
                        "--host: the root device layer {what} needs {name}, which is not in \
                         directory {}",
                        dir.display()
                    ),
                );
                exit.fail();
            }
            Reason::Filesystem(fs) => {
                common::error(
                    TOOL,
                    format_args!(
                        "filesystem {fs}: no module fs-{fs} or {fs} in directory {}",
                        dir.display()
                    ),
                );
                exit.fail();
            }
            // Many devices have no driver module (or a built-in one): not an error.
            _ => {}
        }
    }
    for (name, reason) in &closure.without_file {
        common::error(
            TOOL,
            format_args!("{name} ({reason}): no file for it in {}", dir.display()),
        );
        exit.fail();
    }

    if let Some(image) = &args.check {
        let provided = image_modules(image)?;
        let needed = closure.modules.iter().map(|m| m.name.as_str());
        let missing = modkit::devices::missing_modules(needed, &provided);
        let write_err = |err: io::Error| err.to_string();
        for name in &missing {
            let module = closure.modules.iter().find(|m| m.name == *name);
            let reason = module.map(|m| m.reason.to_string()).unwrap_or_default();
            writeln!(out, "{name}: {reason}").map_err(write_err)?;
        }
        if !missing.is_empty() {
            exit.fail();
        }
        return Ok(exit);
    }

    let firmware_dir = root.join("lib/firmware");
    let firmware = initramfs::firmware::find(&firmware_dir, &closure);
    if !firmware.missing.is_empty() {
        let list: Vec<String> = firmware
            .missing
            .iter()
            .map(|(name, modules)| format!("{name} ({})", modules.join(", ")))
            .collect();
        common::write_stderr(&format!(
            "{TOOL}: WARNING: {} firmware file(s) named by the modules are not in {}: {}\n",
            list.len(),
            firmware_dir.display(),
            list.join(", ")
        ));
    }
    let config_lines = initramfs::config_lines(&ctx, &closure);
    let options = image::Options {
        version,
        mtime,
        compression,
        init: init_program(args)?,
    };
    let built = image::build(&dir, &closure, &firmware, &config_lines, &options)
        .map_err(|err| error_chain(&err))?;
    for message in &built.depmod_messages {
        common::write_stderr(&format!("{TOOL}: WARNING: depmod: {message}\n"));
    }
    if let Some(path) = &args.output {
        // Replaced, never left half-written: a temporary beside it, renamed into place.
        modkit::index::write_atomic(path, &built.bytes)
            .map_err(|err| format!("could not write {}: {err}", path.display()))?;
    }

    let write_err = |err: io::Error| err.to_string();
    if args.json {
        writeln!(out, "{}", to_json(args, &closure, &firmware, &built)).map_err(write_err)?;
    } else if args.list {
        for file in &built.files {
            writeln!(out, "{:>10} {}  {}", file.size, file.path, file.why).map_err(write_err)?;
        }
        for (name, reason) in &closure.builtin {
            writeln!(out, "{:>10} {name}: {reason}", "built-in").map_err(write_err)?;
        }
    } else if let Some(path) = &args.output {
        writeln!(
            out,
            "{}: {} modules, {} firmware files, {} files, {} bytes ({})",
            path.display(),
            closure.modules.len(),
            firmware.found.len(),
            built.files.len(),
            built.bytes.len(),
            compression.name()
        )
        .map_err(write_err)?;
    }
    Ok(exit)
}

/// The file to install as /init: `--init`, else `modkit-init` beside this program; `None`
/// with `--no-init`.
fn init_program(args: &Args) -> Result<Option<PathBuf>, String> {
    if args.no_init {
        return Ok(None);
    }
    if let Some(init) = &args.init {
        return Ok(Some(init.clone()));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("modkit-init")));
    match beside {
        Some(path) if path.is_file() => Ok(Some(path)),
        _ => Err(format!(
            "no /init for the image: {} does not exist; build modkit-init (RUSTFLAGS='-C \
             target-feature=+crt-static' cargo build --profile init -p modkit-init --target \
             x86_64-unknown-linux-gnu) and pass --init FILE, or --no-init for an image of \
             modules only",
            beside.map_or_else(
                || "modkit-init beside this program".into(),
                |p| p.display().to_string()
            )
        )),
    }
}

/// The names of the module files under `lib/modules/` in the image at `path`: each archive
/// of it (the kernel takes several, one after another, each compressed or not) decompressed
/// by its magic and read.
fn image_modules(path: &Path) -> Result<Vec<String>, String> {
    let bytes =
        std::fs::read(path).map_err(|err| format!("could not read {}: {err}", path.display()))?;
    let bad = |what: String| format!("{}: {what}", path.display());
    let mut names = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let data = modkit::elf::decompress(rest, 4 << 30).map_err(|err| bad(err.to_string()))?;
        let compressed = matches!(data, std::borrow::Cow::Owned(_));
        let (members, end) = modkit::cpio::read(&data).map_err(|err| bad(err.to_string()))?;
        for member in members {
            let name = String::from_utf8_lossy(member.name);
            if member.is_file()
                && name.contains("lib/modules/")
                && modkit::name::path_ends_with_kmod_ext(&*name)
                && let Some(module) = modkit::name::path_to_modname(&*name)
            {
                names.push(module);
            }
        }
        if compressed {
            break;
        }
        rest = &rest[end..];
        // Archives are padded with zeros to a 4-byte boundary, or more, between them.
        let zeros = rest.iter().take_while(|&&b| b == 0).count();
        rest = &rest[zeros..];
    }
    Ok(names)
}

/// An error and its causes, `: `-separated, each once.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn to_json(
    args: &Args,
    closure: &initramfs::Closure,
    firmware: &initramfs::firmware::Firmware,
    built: &image::Image,
) -> Json {
    let files = built
        .files
        .iter()
        .map(|file| {
            Json::Object(vec![
                ("path", Json::str(&file.path)),
                ("size", Json::Number(file.size)),
                ("why", Json::str(file.why.to_string())),
            ])
        })
        .collect();
    let named = |list: &[(String, Reason)]| {
        Json::Array(
            list.iter()
                .map(|(name, reason)| {
                    Json::Object(vec![
                        ("name", Json::str(name)),
                        ("why", Json::str(reason.to_string())),
                    ])
                })
                .collect(),
        )
    };
    let unmatched: Vec<&str> = closure
        .unresolved
        .iter()
        .filter_map(|reason| match reason {
            Reason::Device(alias) => Some(alias.as_str()),
            _ => None,
        })
        .collect();
    Json::Object(vec![
        (
            "output",
            args.output
                .as_ref()
                .map_or(Json::Null, |p| Json::str(p.display().to_string())),
        ),
        ("compression", Json::str(&args.compress)),
        ("size", Json::Number(built.bytes.len() as u64)),
        ("modules", Json::Number(closure.modules.len() as u64)),
        ("files", Json::Array(files)),
        ("builtin", named(&closure.builtin)),
        ("unmatched_aliases", Json::strings(unmatched)),
        (
            "missing_firmware",
            Json::Array(
                firmware
                    .missing
                    .iter()
                    .map(|(name, modules)| {
                        Json::Object(vec![
                            ("name", Json::str(name)),
                            ("modules", Json::strings(modules)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}
