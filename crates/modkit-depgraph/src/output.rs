//! The files depmod writes, produced in memory byte for byte as kmod 30 writes them
//! (`tools/depmod.c`: `output_deps`, `output_aliases`, ... and `depmod_output`), and written
//! atomically.

use std::io::Write as _;
use std::path::Path;

use modkit_index::{IndexBuilder, Layout};

use crate::diag::Diagnostics;
use crate::error::Error;
use crate::graph::{Depgraph, split_lines};
use crate::scan::{module_name, normalize_alias};

/// Which kmod's output to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// Node order of the `.bin` tries.
    pub layout: Layout,
    /// Write `modules.weakdep` (kmod >= 33).
    pub weakdep: bool,
    /// `-w`: warn about duplicate index entries.
    pub warn_dups: bool,
    /// `-P`: the symbol prefix stripped from symbol names.
    pub symbol_prefix: Option<u8>,
}

impl Flavor {
    /// kmod 30 (Debian 12): post-order tries, no modules.weakdep.
    pub fn kmod30() -> Flavor {
        Flavor {
            layout: Layout::PostOrder,
            weakdep: false,
            warn_dups: false,
            symbol_prefix: None,
        }
    }

    /// kmod >= 34: pre-order tries and modules.weakdep.
    pub fn kmod34() -> Flavor {
        Flavor {
            layout: Layout::PreOrder,
            weakdep: true,
            warn_dups: false,
            symbol_prefix: None,
        }
    }
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// File name in the module directory.
    pub name: &'static str,
    /// Its contents.
    pub bytes: Vec<u8>,
    /// A binary index (skipped with `-n`, which prints the text files only).
    pub binary: bool,
}

fn index_err(name: &'static str) -> impl FnOnce(modkit_index::Error) -> Error {
    move |source| Error::Index { name, source }
}

/// Produce every file, in the order kmod writes them. `module_dir` is read for
/// `modules.builtin` and `modules.builtin.modinfo` (when `binaries` is set, as kmod reads them
/// only for the binary indexes).
pub fn render(
    graph: &Depgraph,
    module_dir: &Path,
    flavor: Flavor,
    binaries: bool,
    diag: &mut Diagnostics,
) -> Result<Vec<OutputFile>, Error> {
    let mut files = Vec::with_capacity(11);
    let n = graph.modules.len();

    type Part = Result<(Vec<OutputFile>, Diagnostics), Error>;
    let dep_part = || -> Part {
        let mut files = Vec::new();
        let mut diag = Diagnostics::default();
        let diag = &mut diag;
        // modules.dep and modules.dep.bin share the lines.
        let mut dep = Vec::with_capacity(n * 96);
        let mut dep_bin = IndexBuilder::new();
        let mut seen = Vec::new();
        let mut all = Vec::new();
        let mut line = String::with_capacity(256);
        for (i, m) in graph.modules.iter().enumerate() {
            graph.all_dependencies(i, &mut seen, &mut all);
            line.clear();
            line.push_str(m.candidate.dep_path());
            line.push(':');
            for &d in &all {
                line.push(' ');
                line.push_str(graph.modules[d as usize].candidate.dep_path());
            }
            dep.extend_from_slice(line.as_bytes());
            dep.push(b'\n');
            if binaries {
                let dup = dep_bin
                    .insert(&m.candidate.name, &line, i as u32)
                    .map_err(index_err("modules.dep.bin"))?;
                if dup && flavor.warn_dups {
                    diag.warning(format!("duplicate module deps:\n{line}"));
                }
            }
        }
        files.push(text("modules.dep", dep));
        if binaries {
            files.push(binary(
                "modules.dep.bin",
                dep_bin.write(flavor.layout),
                "modules.dep.bin",
            )?);
        }

        Ok((files, std::mem::take(diag)))
    };
    let alias_part = || -> Part {
        let mut files = Vec::new();
        let mut diag = Diagnostics::default();
        let diag = &mut diag;
        // Aliases.
        let mut alias = Vec::with_capacity(n * 256);
        alias.extend_from_slice(b"# Aliases extracted from modules themselves.\n");
        let mut alias_bin = IndexBuilder::new();
        for (i, m) in graph.modules.iter().enumerate() {
            for span in &m.data.aliases {
                let value = m.data.str(span);
                writeln!(alias, "alias {value} {}", m.candidate.name).expect("Vec write");
                if !binaries {
                    continue;
                }
                let Some(key) = normalize_alias(value) else {
                    diag.warning(format!("Unmatched bracket in {value}"));
                    continue;
                };
                let dup = alias_bin
                    .insert(&key, &m.candidate.name, i as u32)
                    .map_err(index_err("modules.alias.bin"))?;
                if dup && flavor.warn_dups {
                    diag.warning(format!(
                        "duplicate module alias:\n{key} {}",
                        m.candidate.name
                    ));
                }
            }
        }
        files.push(text("modules.alias", alias));
        if binaries {
            files.push(binary(
                "modules.alias.bin",
                alias_bin.write(flavor.layout),
                "modules.alias.bin",
            )?);
        }

        Ok((files, std::mem::take(diag)))
    };
    let other_part = || -> Part {
        let mut files = Vec::new();
        let mut diag = Diagnostics::default();
        let diag = &mut diag;
        let mut softdep = Vec::with_capacity(4096);
        softdep.extend_from_slice(b"# Soft dependencies extracted from modules themselves.\n");
        for m in &graph.modules {
            for span in &m.data.softdeps {
                writeln!(softdep, "softdep {} {}", m.candidate.name, m.data.str(span))
                    .expect("Vec write");
            }
        }
        files.push(text("modules.softdep", softdep));

        if flavor.weakdep {
            let mut weakdep = Vec::with_capacity(1024);
            weakdep.extend_from_slice(b"# Weak dependencies extracted from modules themselves.\n");
            for m in &graph.modules {
                for span in &m.data.weakdeps {
                    writeln!(weakdep, "weakdep {} {}", m.candidate.name, m.data.str(span))
                        .expect("Vec write");
                }
            }
            files.push(text("modules.weakdep", weakdep));
        }

        let mut symbols = Vec::with_capacity(graph.symbols.len() * 48);
        symbols.extend_from_slice(b"# Aliases for symbols, used by symbol_request().\n");
        let mut symbols_bin = IndexBuilder::new();
        let mut key = String::with_capacity(128);
        for &sym in &graph.symbols {
            let name = graph.symbol_name(sym, flavor.symbol_prefix);
            let owner = &graph.modules[sym.0 as usize].candidate.name;
            writeln!(symbols, "alias symbol:{name} {owner}").expect("Vec write");
            if binaries {
                key.clear();
                key.push_str("symbol:");
                key.push_str(name);
                let dup = symbols_bin
                    .insert(&key, owner, sym.0)
                    .map_err(index_err("modules.symbols.bin"))?;
                if dup && flavor.warn_dups {
                    diag.warning(format!("duplicate module syms:\n{key} {owner}"));
                }
            }
        }
        files.push(text("modules.symbols", symbols));
        if binaries {
            files.push(binary(
                "modules.symbols.bin",
                symbols_bin.write(flavor.layout),
                "modules.symbols.bin",
            )?);
        }
        Ok((files, std::mem::take(diag)))
    };
    let builtin_part = || -> Part {
        let mut files = Vec::new();
        let mut diag = Diagnostics::default();
        let diag = &mut diag;
        if binaries {
            files.push(builtin_bin(module_dir, flavor.layout, diag)?);
            files.push(builtin_alias_bin(module_dir, flavor.layout, diag)?);
        }
        Ok((files, std::mem::take(diag)))
    };
    // The parts are independent: build them on both cores, then keep kmod's order of
    // files and messages.
    let ((dep_r, alias_r), (other_r, builtin_r)) = rayon::join(
        || rayon::join(dep_part, alias_part),
        || rayon::join(other_part, builtin_part),
    );
    for part in [dep_r, alias_r, other_r, builtin_r] {
        let (part_files, part_diag) = part?;
        files.extend(part_files);
        diag.messages.extend(part_diag.messages);
    }

    let mut devname = Vec::new();
    for m in &graph.modules {
        match m.data.devname() {
            Some((name, kind, major, minor)) => {
                if devname.is_empty() {
                    devname.extend_from_slice(
                        b"# Device nodes to trigger on-demand module loading.\n",
                    );
                }
                writeln!(devname, "{} {name} {kind}{major}:{minor}", m.candidate.name)
                    .expect("Vec write");
            }
            None => {
                if let Some(name) = m
                    .data
                    .aliases
                    .iter()
                    .rev()
                    .find_map(|s| m.data.str(s).strip_prefix("devname:"))
                {
                    diag.error(format!(
                        "Module '{}' has devname ({name}) but lacks major and minor information. Ignoring.",
                        m.candidate.name
                    ));
                }
            }
        }
    }
    files.push(text("modules.devname", devname));
    Ok(files)
}

fn text(name: &'static str, bytes: Vec<u8>) -> OutputFile {
    OutputFile {
        name,
        bytes,
        binary: false,
    }
}

fn binary(
    name: &'static str,
    bytes: modkit_index::Result<Vec<u8>>,
    what: &'static str,
) -> Result<OutputFile, Error> {
    Ok(OutputFile {
        name,
        bytes: bytes.map_err(index_err(what))?,
        binary: true,
    })
}

/// modules.builtin.bin from modules.builtin (kmod `output_builtin_bin`); empty (0 bytes) when
/// there is no modules.builtin, as kmod leaves it.
fn builtin_bin(
    module_dir: &Path,
    layout: Layout,
    diag: &mut Diagnostics,
) -> Result<OutputFile, Error> {
    let name = "modules.builtin.bin";
    let Some(bytes) = read_optional(module_dir, "modules.builtin", diag) else {
        return Ok(OutputFile {
            name,
            bytes: Vec::new(),
            binary: true,
        });
    };
    let mut idx = IndexBuilder::new();
    for line in split_lines(&bytes) {
        if !line.first().is_some_and(u8::is_ascii_alphabetic) {
            diag.error(format!(
                "Invalid modules.builtin line: {}",
                String::from_utf8_lossy(line)
            ));
            continue;
        }
        let text = String::from_utf8_lossy(line);
        // kmod's path_to_modname stops at the first '.', or takes the newline along.
        let modname = module_name(&text);
        idx.insert(&modname, "", 0).map_err(index_err(name))?;
    }
    binary(name, idx.write(layout), name)
}

/// modules.builtin.alias.bin from modules.builtin.modinfo's `MODULE.alias=VALUE` records, in
/// record order (kmod 30 `output_builtin_alias_bin`).
fn builtin_alias_bin(
    module_dir: &Path,
    layout: Layout,
    diag: &mut Diagnostics,
) -> Result<OutputFile, Error> {
    let name = "modules.builtin.alias.bin";
    let Some(bytes) = read_optional(module_dir, "modules.builtin.modinfo", diag) else {
        return Ok(OutputFile {
            name,
            bytes: Vec::new(),
            binary: true,
        });
    };
    let mut idx = IndexBuilder::new();
    for record in bytes.split(|&b| b == 0) {
        // kmod reads "MODNAME." then "KEY=" then "VALUE\0"; a piece without its terminator is
        // skipped.
        let Some(dot) = record.iter().position(|&b| b == b'.') else {
            continue;
        };
        if dot == 0 {
            continue;
        }
        let (modname, rest) = (&record[..dot], &record[dot + 1..]);
        let Some(eq) = rest.iter().position(|&b| b == b'=') else {
            continue;
        };
        if &rest[..eq] != b"alias" {
            continue;
        }
        let value = &rest[eq + 1..];
        if value.is_empty() {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        let Some(alias) = normalize_alias(&value) else {
            diag.warning(format!("Unmatched bracket in {value}"));
            continue;
        };
        idx.insert(&alias, &String::from_utf8_lossy(modname), 0)
            .map_err(index_err(name))?;
    }
    binary(name, idx.write(layout), name)
}

/// Read a text input of the module directory, refusing anything but a regular file: a FIFO
/// would block the run until some writer came along.
pub(crate) fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    std::fs::read(path)
}

fn read_optional(module_dir: &Path, file: &str, diag: &mut Diagnostics) -> Option<Vec<u8>> {
    match read_regular(&module_dir.join(file)) {
        Ok(b) => Some(b),
        Err(err) => {
            diag.warning(format!(
                "could not open {file} at {}: {}",
                module_dir.display(),
                crate::io_error_text(&err)
            ));
            None
        }
    }
}

/// Remove the temporaries a killed run left behind: `.NAME.PID.tmp` where NAME is one of our
/// output files and process PID is gone. Nothing else is touched, and nothing at all when
/// `/proc` is not there to tell which runs are alive.
fn remove_stale_temporaries(dir: &Path, files: &[OutputFile]) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some((output, pid)) = rest.rsplit_once('.') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let ours = files.iter().any(|f| f.name == output);
        if ours && pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Write `bytes` to `dir/name` through a temporary file renamed into place, so readers (and a
/// killed run) see the old file or the new one, never a partial one. Like kmod, no fsync: the
/// rename is atomic against crashes of the process, and an fsync per file would cost more than
/// the whole incremental run.
pub fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let io = |path: &Path, what: &'static str| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, what, source }
    };
    let result = std::fs::write(&tmp, bytes)
        .map_err(io(&tmp, "could not write"))
        .and_then(|()| {
            std::fs::rename(&tmp, dir.join(name))
                .map_err(io(&dir.join(name), "could not rename into"))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Write all files into `dir` atomically, in order (after clearing what killed runs left).
pub fn write_all(dir: &Path, files: &[OutputFile]) -> Result<(), Error> {
    remove_stale_temporaries(dir, files);
    for f in files {
        write_file_atomic(dir, f.name, &f.bytes)?;
    }
    Ok(())
}
