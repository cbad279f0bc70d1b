//! `modinfo`: show the `.modinfo` fields of kernel modules, byte for byte as kmod's modinfo does.
//!
//! The output format follows kmod's `tools/modinfo.c`: a `filename:` line, then every record in
//! file order as `key:` padded to 16 columns, parameters (`parm`/`parmtype` merged) last, and the
//! signature fields (`sig_id`, `signer`, `sig_key`, `sig_hashalgo`, `signature`) after the
//! records of a signed module.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use crate::common::{self, Exit};
use modkit::{ConfigFiles, Context, Info, ModuleRef};

const TOOL: &str = "modinfo";

/// Print `modinfo: ERROR: text`.
fn error(text: impl std::fmt::Display) {
    common::error(TOOL, text);
}

/// Show information about Linux kernel modules.
///
/// Each argument is a module file (a path ending in .ko, .ko.xz, .ko.zst or .ko.gz), or a
/// module name or alias looked up in /lib/modules/VERSION (built-in modules are described from
/// modules.builtin.modinfo).
#[derive(Debug, Parser)]
#[command(name = "modinfo", disable_version_flag = true, max_term_width = 100)]
struct Args {
    /// Print only 'author'
    #[arg(short = 'a', long = "author")]
    author: bool,
    /// Print only 'description'
    #[arg(short = 'd', long = "description")]
    description: bool,
    /// Print only 'license'
    #[arg(short = 'l', long = "license")]
    license: bool,
    /// Print only 'parm'
    #[arg(short = 'p', long = "parameters")]
    parameters: bool,
    /// Print only 'filename'
    #[arg(short = 'n', long = "filename")]
    filename: bool,
    /// Use \0 instead of \n
    #[arg(short = '0', long = "null")]
    null: bool,
    /// Print only provided FIELD
    #[arg(short = 'F', long = "field", value_name = "FIELD")]
    field: Option<String>,
    /// Use VERSION instead of `uname -r`
    #[arg(short = 'k', long = "set-version", value_name = "VERSION")]
    set_version: Option<String>,
    /// Use DIR as filesystem root for /lib/modules
    #[arg(short = 'b', long = "basedir", value_name = "DIR")]
    basedir: Option<PathBuf>,
    /// Show version
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// Modules: file names, module names or aliases
    #[arg(value_name = "MODULE")]
    modules: Vec<OsString>,
}

impl Args {
    /// The one field to print, as kmod decides it: the last of -a -d -l -p -n -F wins there;
    /// clap does not keep the order, so an explicit -F wins, then the short forms.
    fn field(&self) -> Option<&str> {
        if let Some(field) = &self.field {
            return Some(field);
        }
        [
            (self.author, "author"),
            (self.description, "description"),
            (self.license, "license"),
            (self.parameters, "parm"),
            (self.filename, "filename"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
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
    if args.version {
        common::print_version();
        return ExitCode::SUCCESS;
    }
    if args.modules.is_empty() {
        error("missing module or filename.");
        return ExitCode::FAILURE;
    }

    let dir = modkit::module_dir(
        args.basedir.as_deref().map(Path::as_os_str),
        args.set_version.as_deref(),
    );
    // libkmod reads modprobe.d for configured aliases; bad lines are reported as kmod does.
    // Without a module directory, files are still described; each name says why it is not
    // found (kmod just says it is not).
    let mut ctx = Context::open(dir, &ConfigFiles::Default, None).map(|(ctx, warnings)| {
        for warning in &warnings {
            common::config_warning("modinfo", warning);
        }
        ctx
    });
    let printer = Printer {
        field: args.field(),
        separator: if args.null { b'\0' } else { b'\n' },
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut status = Exit::default();

    for arg in &args.modules {
        let path = Path::new(arg);
        let result = if is_module_filename(path) {
            match ModuleRef::from_path(path) {
                Ok(module) => printer.print(&mut out, &module, |_| modkit::file_info(path)),
                Err(_) => {
                    error(format_args!("Module file {} not found.", path.display()));
                    Err(Failed)
                }
            }
        } else {
            let name = arg.to_string_lossy();
            let ctx = match &mut ctx {
                Ok(ctx) => ctx,
                // A path names a file, which is what is missing: kmod's words say it.
                Err(_) if name.contains('/') => {
                    error(format_args!("Module {name} not found."));
                    status.fail();
                    continue;
                }
                Err(err) => {
                    error(format_args!("Module {name} not found: {err}"));
                    status.fail();
                    continue;
                }
            };
            match ctx.resolve(&name) {
                // kmod's lookup fails (EINVAL) on a name it cannot normalise.
                Ok(_) if modkit::name::alias_normalize(&name).is_none() => {
                    error(format_args!("Module alias {name} not found."));
                    Err(Failed)
                }
                Ok(modules) if modules.is_empty() => {
                    error(format_args!("Module {name} not found."));
                    Err(Failed)
                }
                Ok(modules) => {
                    let mut result = Ok(());
                    for module in &modules {
                        let info = |module: &ModuleRef| ctx.module_info(module);
                        if printer.print(&mut out, module, info).is_err() {
                            result = Err(Failed);
                        }
                    }
                    result
                }
                Err(err) => {
                    error(format_args!("Module alias {name} not found: {err:#}"));
                    Err(Failed)
                }
            }
        };
        if result.is_err() {
            status.fail();
        }
        if let Err(err) = out.flush() {
            return common::io_exit(TOOL, &err);
        }
    }
    status.into()
}

/// kmod takes an argument as a file when it names a regular file and, whole, ends in a module
/// extension with something before it (modinfo's `is_module_filename`): `./.ko` is a file,
/// `.ko` a name.
fn is_module_filename(path: &Path) -> bool {
    let is_file = std::fs::metadata(path).is_ok_and(|meta| meta.is_file());
    is_file && modkit::name::path_ends_with_kmod_ext(path)
}

/// A module could not be described; the error has been printed.
#[derive(Debug)]
struct Failed;

struct Printer<'a> {
    field: Option<&'a str>,
    separator: u8,
}

/// A merged module parameter, as kmod's modinfo builds it from `parm=` and `parmtype=`.
struct Param<'a> {
    name: &'a [u8],
    description: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
}

impl Printer<'_> {
    /// Print what `info` says of `module`.
    fn print(
        &self,
        out: &mut impl Write,
        module: &ModuleRef,
        info: impl FnOnce(&ModuleRef) -> Result<Info, modkit::Error>,
    ) -> Result<(), Failed> {
        let sep = self.separator;
        let field = self.field;
        let write = |out: &mut dyn Write, parts: &[&[u8]]| {
            for part in parts {
                // A write error (EPIPE) surfaces at the next flush; nothing to do here.
                let _ = out.write_all(part);
            }
        };

        let filename: Vec<u8> = match module {
            ModuleRef::Builtin { name } => {
                match field {
                    None => write(
                        out,
                        &[
                            format!("{:<16}", "name:").as_bytes(),
                            name.as_bytes(),
                            &[sep],
                        ],
                    ),
                    Some("name") => write(out, &[name.as_bytes(), &[sep]]),
                    Some(_) => {}
                }
                b"(builtin)".to_vec()
            }
            ModuleRef::File { path, .. } => path.as_os_str().as_encoded_bytes().to_vec(),
        };
        match field {
            Some("filename") => {
                write(out, &[&filename, &[sep]]);
                return Ok(());
            }
            None => write(
                out,
                &[format!("{:<16}", "filename:").as_bytes(), &filename, &[sep]],
            ),
            Some(_) => {}
        }

        let info = match info(module) {
            Ok(info) => info,
            Err(err) => {
                let _ = out.flush();
                // kmod's wording (an errno string), then what exactly is wrong and where.
                let (errno, detail) = (err.errno_text(), err.detail());
                error(format_args!(
                    "could not get modinfo from '{}': {errno} ({detail})",
                    module.name()
                ));
                return Err(Failed);
            }
        };

        let mut params: Vec<Param<'_>> = Vec::new();
        if field == Some("parm") {
            collect_params(&info.records, &mut params);
            for param in params.iter().rev() {
                match (param.description, param.kind) {
                    (None, kind) => write(
                        out,
                        &[param.name, b": (", kind.unwrap_or_default(), b")", &[sep]],
                    ),
                    (Some(desc), Some(kind)) => {
                        write(out, &[param.name, b":", desc, b" (", kind, b")", &[sep]])
                    }
                    (Some(desc), None) => write(out, &[param.name, b":", desc, &[sep]]),
                }
            }
            return Ok(());
        }

        for (key, value) in &info.records {
            let (key, value) = (key.as_slice(), value.as_slice());
            if let Some(field) = field {
                if key == field.as_bytes() {
                    write(out, &[value, &[sep]]);
                }
                continue;
            }
            if key == b"parm" || key == b"parmtype" {
                continue;
            }
            if sep == b'\0' {
                write(out, &[key, b"=", value, &[sep]]);
                continue;
            }
            // printf("%s:%-*s%s", key, 15 - keylen, "", value): a negative width pads too.
            let pad = 15usize.abs_diff(key.len());
            write(out, &[key, b":", " ".repeat(pad).as_bytes(), value, &[sep]]);
        }
        if field.is_some() {
            return Ok(());
        }

        collect_params(&info.records, &mut params);
        for param in params.iter().rev() {
            let label = format!("{:<16}", "parm:");
            match (param.description, param.kind) {
                (None, kind) => write(
                    out,
                    &[
                        label.as_bytes(),
                        param.name,
                        b":",
                        kind.unwrap_or_default(),
                        &[sep],
                    ],
                ),
                (Some(desc), Some(kind)) => write(
                    out,
                    &[
                        label.as_bytes(),
                        param.name,
                        b":",
                        desc,
                        b" (",
                        kind,
                        b")",
                        &[sep],
                    ],
                ),
                (Some(desc), None) => {
                    write(out, &[label.as_bytes(), param.name, b":", desc, &[sep]])
                }
            }
        }
        Ok(())
    }
}

/// Merge `parm=NAME:DESC` and `parmtype=NAME:TYPE` records by name, in first-seen order; kmod
/// prints them newest first (its list is built by prepending), so callers iterate in reverse.
/// A record without `:` is reported and skipped, as kmod does.
fn collect_params<'a>(records: &'a [(Vec<u8>, Vec<u8>)], params: &mut Vec<Param<'a>>) {
    for (key, value) in records {
        let is_parm = key.as_slice() == b"parm";
        if !is_parm && key.as_slice() != b"parmtype" {
            continue;
        }
        let Some(colon) = value.iter().position(|&b| b == b':') else {
            error(format_args!(
                "Found invalid \"{}={}\": missing ':'",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value)
            ));
            continue;
        };
        let (name, rest) = (&value[..colon], &value[colon + 1..]);
        let index = match params.iter().position(|param| param.name == name) {
            Some(index) => index,
            None => {
                params.push(Param {
                    name,
                    description: None,
                    kind: None,
                });
                params.len() - 1
            }
        };
        if is_parm {
            params[index].description = Some(rest);
        } else {
            params[index].kind = Some(rest);
        }
    }
}
