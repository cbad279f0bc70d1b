//! The files depmod writes, rendered in memory byte for byte as kmod 30 renders them
//! (`tools/depmod.c`: `depmod_output` and its table of `output_*` functions): one function
//! per file, over the graph and the text inputs read before. Nothing here touches the file
//! system.

use std::io::Write as _;

use modkit_index::{IndexBuilder, Layout};
use rayon::prelude::*;

use crate::diag::Diagnostics;
use crate::error::Error;
use crate::graph::Depgraph;
use crate::io::{TextInput, split_lines};
use crate::scan::{module_name, normalize_alias};

/// Which kmod's output to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct OutputFile {
    /// File name in the module directory.
    pub name: &'static str,
    /// Its contents.
    pub bytes: Vec<u8>,
    /// A binary index (skipped with `-n`, which prints the text files only).
    pub binary: bool,
}

/// The inputs of the two built-in indexes, read only when the binary indexes are made (kmod
/// reads them only for those).
#[derive(Debug)]
pub(crate) struct BuiltinInputs {
    /// `modules.builtin`.
    pub(crate) modules: TextInput,
    /// `modules.builtin.modinfo`.
    pub(crate) modinfo: TextInput,
}

/// What every render function sees.
struct Inputs<'a> {
    graph: &'a Depgraph,
    flavor: Flavor,
    builtin: Option<&'a BuiltinInputs>,
}

/// A render function: the bytes of one file, and the messages kmod prints while writing it.
type Render = fn(&Inputs<'_>, &mut Diagnostics) -> Result<Vec<u8>, Error>;

/// Which files a run writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Always (printed on standard output with `-n`).
    Text,
    /// A text file of kmod >= 33 only ([`Flavor::weakdep`]).
    Weakdep,
    /// Only with the binary indexes.
    Binary,
}

/// Every file depmod writes, in kmod's order, with its render function.
const FILES: [(&str, Kind, Render); 11] = [
    ("modules.dep", Kind::Text, modules_dep),
    ("modules.dep.bin", Kind::Binary, modules_dep_bin),
    ("modules.alias", Kind::Text, modules_alias),
    ("modules.alias.bin", Kind::Binary, modules_alias_bin),
    ("modules.softdep", Kind::Text, modules_softdep),
    ("modules.weakdep", Kind::Weakdep, modules_weakdep),
    ("modules.symbols", Kind::Text, modules_symbols),
    ("modules.symbols.bin", Kind::Binary, modules_symbols_bin),
    ("modules.builtin.bin", Kind::Binary, modules_builtin_bin),
    (
        "modules.builtin.alias.bin",
        Kind::Binary,
        modules_builtin_alias_bin,
    ),
    ("modules.devname", Kind::Text, modules_devname),
];

/// Render every file, in the order kmod writes them: the text files, and the binary indexes
/// too when `builtin` (their inputs) is given. The files are rendered in parallel; their
/// messages are kept in file order. The first file that cannot be rendered stops the run, as
/// it stops kmod (the messages of the files before it are kept).
pub(crate) fn render(
    graph: &Depgraph,
    flavor: Flavor,
    builtin: Option<&BuiltinInputs>,
    diag: &mut Diagnostics,
) -> Result<Vec<OutputFile>, Error> {
    let inputs = Inputs {
        graph,
        flavor,
        builtin,
    };
    let wanted: Vec<&(&str, Kind, Render)> = FILES
        .iter()
        .filter(|(_, kind, _)| match kind {
            Kind::Text => true,
            Kind::Weakdep => flavor.weakdep,
            Kind::Binary => builtin.is_some(),
        })
        .collect();
    let rendered: Vec<Result<(Vec<u8>, Diagnostics), Error>> = wanted
        .par_iter()
        .map(|(_, _, render)| {
            let mut diag = Diagnostics::default();
            render(&inputs, &mut diag).map(|bytes| (bytes, diag))
        })
        .collect();
    let mut files = Vec::with_capacity(wanted.len());
    for (&&(name, kind, _), result) in wanted.iter().zip(rendered) {
        let (bytes, part) = result?;
        diag.messages.extend(part.messages);
        files.push(OutputFile {
            name,
            bytes,
            binary: kind == Kind::Binary,
        });
    }
    Ok(files)
}

/// The trie in `layout`, or the error naming the index it was for.
fn index(name: &'static str, builder: &IndexBuilder, layout: Layout) -> Result<Vec<u8>, Error> {
    builder.write(layout).map_err(index_err(name))
}

fn index_err(name: &'static str) -> impl FnOnce(modkit_index::Error) -> Error {
    move |error| Error::Index { name, error }
}

/// Each module's modules.dep line, without its newline, in module order: its path, a colon,
/// and every module it needs, in load order.
fn for_each_dep_line(
    graph: &Depgraph,
    mut each: impl FnMut(usize, &str) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut line = String::with_capacity(256);
    for (i, m) in graph.modules.iter().enumerate() {
        line.clear();
        line.push_str(m.candidate.dep_path());
        line.push(':');
        for &d in graph.all_dependencies(i) {
            line.push(' ');
            line.push_str(graph.modules[d as usize].candidate.dep_path());
        }
        each(i, &line)?;
    }
    Ok(())
}

/// modules.dep (kmod `output_deps`).
fn modules_dep(inputs: &Inputs<'_>, _: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(inputs.graph.modules.len() * 96);
    for_each_dep_line(inputs.graph, |_, line| {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        Ok(())
    })?;
    Ok(out)
}

/// modules.dep.bin: each modules.dep line under its module's name (kmod `output_deps_bin`).
fn modules_dep_bin(inputs: &Inputs<'_>, diag: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let name = "modules.dep.bin";
    let modules = &inputs.graph.modules;
    let mut idx = IndexBuilder::new();
    for_each_dep_line(inputs.graph, |i, line| {
        let dup = idx
            .insert(&modules[i].candidate.name, line, i as u32)
            .map_err(index_err(name))?;
        if dup && inputs.flavor.warn_dups {
            diag.warning(format!("duplicate module deps:\n{line}"));
        }
        Ok(())
    })?;
    index(name, &idx, inputs.flavor.layout)
}

/// modules.alias: every module's `alias=` values, as written (kmod `output_aliases`).
fn modules_alias(inputs: &Inputs<'_>, _: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let modules = &inputs.graph.modules;
    let mut out = Vec::with_capacity(modules.len() * 256);
    out.extend_from_slice(b"# Aliases extracted from modules themselves.\n");
    for m in modules {
        for span in &m.data.aliases {
            writeln!(out, "alias {} {}", m.data.str(span), m.candidate.name).expect("Vec write");
        }
    }
    Ok(out)
}

/// modules.alias.bin: the aliases normalised, an unmatched bracket skipped with a warning
/// (kmod `output_aliases_bin`).
fn modules_alias_bin(inputs: &Inputs<'_>, diag: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let name = "modules.alias.bin";
    let mut idx = IndexBuilder::new();
    for (i, m) in inputs.graph.modules.iter().enumerate() {
        for span in &m.data.aliases {
            let value = m.data.str(span);
            let Some(key) = normalize_alias(value) else {
                diag.warning(format!("Unmatched bracket in {value}"));
                continue;
            };
            let dup = idx
                .insert(&key, &m.candidate.name, i as u32)
                .map_err(index_err(name))?;
            if dup && inputs.flavor.warn_dups {
                diag.warning(format!(
                    "duplicate module alias:\n{key} {}",
                    m.candidate.name
                ));
            }
        }
    }
    index(name, &idx, inputs.flavor.layout)
}

/// modules.softdep (kmod `output_softdeps`).
fn modules_softdep(inputs: &Inputs<'_>, _: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"# Soft dependencies extracted from modules themselves.\n");
    for m in &inputs.graph.modules {
        for span in &m.data.softdeps {
            writeln!(out, "softdep {} {}", m.candidate.name, m.data.str(span)).expect("Vec write");
        }
    }
    Ok(out)
}

/// modules.weakdep (kmod >= 33 `output_weakdeps`).
fn modules_weakdep(inputs: &Inputs<'_>, _: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"# Weak dependencies extracted from modules themselves.\n");
    for m in &inputs.graph.modules {
        for span in &m.data.weakdeps {
            writeln!(out, "weakdep {} {}", m.candidate.name, m.data.str(span)).expect("Vec write");
        }
    }
    Ok(out)
}

/// modules.symbols: each exported symbol and the module that owns it (kmod `output_symbols`).
fn modules_symbols(inputs: &Inputs<'_>, _: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let graph = inputs.graph;
    let mut out = Vec::with_capacity(graph.symbols.len() * 48);
    out.extend_from_slice(b"# Aliases for symbols, used by symbol_request().\n");
    for &sym in &graph.symbols {
        let name = graph.symbol_name(sym, inputs.flavor.symbol_prefix);
        let owner = &graph.modules[sym.0 as usize].candidate.name;
        writeln!(out, "alias symbol:{name} {owner}").expect("Vec write");
    }
    Ok(out)
}

/// modules.symbols.bin: `symbol:NAME` -> owner (kmod `output_symbols_bin`).
fn modules_symbols_bin(inputs: &Inputs<'_>, diag: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let name = "modules.symbols.bin";
    let graph = inputs.graph;
    let mut idx = IndexBuilder::new();
    let mut key = String::with_capacity(128);
    for &sym in &graph.symbols {
        let owner = &graph.modules[sym.0 as usize].candidate.name;
        key.clear();
        key.push_str("symbol:");
        key.push_str(graph.symbol_name(sym, inputs.flavor.symbol_prefix));
        let dup = idx.insert(&key, owner, sym.0).map_err(index_err(name))?;
        if dup && inputs.flavor.warn_dups {
            diag.warning(format!("duplicate module syms:\n{key} {owner}"));
        }
    }
    index(name, &idx, inputs.flavor.layout)
}

/// modules.builtin.bin from modules.builtin (kmod `output_builtin_bin`); empty (0 bytes) when
/// there is no modules.builtin, as kmod leaves it.
fn modules_builtin_bin(inputs: &Inputs<'_>, diag: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let name = "modules.builtin.bin";
    let Some(bytes) = inputs.builtin.and_then(|b| b.modules.get(diag)) else {
        return Ok(Vec::new());
    };
    let mut idx = IndexBuilder::new();
    for line in split_lines(bytes) {
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
    index(name, &idx, inputs.flavor.layout)
}

/// modules.builtin.alias.bin from modules.builtin.modinfo's `MODULE.alias=VALUE` records, in
/// record order (kmod 30 `output_builtin_alias_bin`); empty when there is no such file.
fn modules_builtin_alias_bin(
    inputs: &Inputs<'_>,
    diag: &mut Diagnostics,
) -> Result<Vec<u8>, Error> {
    let name = "modules.builtin.alias.bin";
    let Some(bytes) = inputs.builtin.and_then(|b| b.modinfo.get(diag)) else {
        return Ok(Vec::new());
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
    index(name, &idx, inputs.flavor.layout)
}

/// modules.devname: modules with a `devname:` alias and a `char-major-`/`block-major-` one;
/// one with the first but not the second is an error (kmod `output_devname`).
fn modules_devname(inputs: &Inputs<'_>, diag: &mut Diagnostics) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for m in &inputs.graph.modules {
        match m.data.devname() {
            Some((name, kind, major, minor)) => {
                if out.is_empty() {
                    out.extend_from_slice(b"# Device nodes to trigger on-demand module loading.\n");
                }
                writeln!(out, "{} {name} {kind}{major}:{minor}", m.candidate.name)
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
    Ok(out)
}
