//! The dependency graph: module order, symbol resolution, dependencies in load order and
//! cycles, computed as kmod 30's depmod computes them (`tools/depmod.c`: `depmod_modules_sort`,
//! `depmod_load_modules`, `depmod_load_dependencies`, `depmod_calculate_dependencies`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use crate::data::ModuleData;
use crate::diag::Diagnostics;
use crate::error::Error;
use crate::io::{TextInput, split_lines};
use crate::kernel::KernelSymbols;
use crate::khash;
use crate::scan::Candidate;

/// How depmod resolves symbols.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolveOptions {
    /// `-P`: a character stripped from the front of symbol names.
    pub symbol_prefix: Option<u8>,
    /// `-e`: warn about needed symbols nobody provides (and, with `-E`, CRC mismatches).
    pub print_unknown: bool,
    /// `-E` was given: compare CRCs.
    pub check_symvers: bool,
}

/// One module in the graph.
#[derive(Debug, Clone)]
pub struct GraphModule {
    /// Where it is.
    pub candidate: Candidate,
    /// What it says.
    pub data: ModuleData,
    /// Modules it needs symbols from, sorted in load order (most basic last).
    pub deps: Vec<u32>,
    /// Position in the topological order (kmod's `dep_sort_idx`).
    pub dep_sort_idx: u32,
}

/// The computed module database.
#[derive(Debug, Clone)]
pub struct Depgraph {
    /// Modules in depmod's order; the index is each module's priority in the indexes.
    pub modules: Vec<GraphModule>,
    /// Exported symbols that a module owns, as (module, export index), in the order depmod
    /// writes modules.symbols.
    pub symbols: Vec<(u32, u32)>,
    /// Every module's dependencies, direct or not, back to back (see
    /// [`Depgraph::all_dependencies`]); `all_ends[i]` is where module `i`'s end.
    all: Vec<u32>,
    all_ends: Vec<u32>,
}

#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Clone, Copy)]
struct Sym {
    /// (module, export) or none for the kernel's own symbols.
    owner: Option<(u32, u32)>,
    crc: u64,
}

fn strip_prefix(name: &str, prefix: Option<u8>) -> &str {
    match prefix {
        Some(p) if name.as_bytes().first() == Some(&p) => &name[1..],
        _ => name,
    }
}

/// Order the modules as depmod does: its by-name hash table order, then the modules listed in
/// `modules.order` (`order`) moved to the front in that file's order. `candidate` says where
/// each module is.
pub fn order_modules<T>(
    modules: &mut Vec<T>,
    candidate: impl Fn(&T) -> &Candidate,
    order: &TextInput,
    diag: &mut Diagnostics,
) {
    khash::sort_in_iteration_order(modules, khash::MODULE_BUCKETS, |m| {
        candidate(m).name.as_bytes()
    });
    let Some(bytes) = order.get(diag) else {
        return;
    };
    let lines: Vec<&[u8]> = split_lines(bytes).collect();
    if let Some(bad) = lines.iter().position(|l| !l.ends_with(b"\n")) {
        diag.error(format!(
            "{}/modules.order:{} corrupted line misses '\\n'",
            order.module_dir().display(),
            bad + 1
        ));
        return;
    }
    let total = lines.len() as i64 + 1;
    let mut by_path: FxMap<String, usize> = FxMap::default();
    by_path.reserve(modules.len());
    for (i, m) in modules.iter().enumerate() {
        if let Some(p) = candidate(m).uncompressed_relpath() {
            by_path.insert(p, i);
        }
    }
    // kmod's sort_idx: 1 for modules not in the file, (line - total) < 0 for the others.
    let mut sort_idx = vec![1i64; modules.len()];
    for (i, line) in lines.iter().enumerate() {
        let line = &line[..line.len() - 1];
        if let Ok(s) = std::str::from_utf8(line)
            && let Some(&m) = by_path.get(s)
        {
            sort_idx[m] = i as i64 + 1 - total;
        }
    }
    let mut keyed: Vec<(i64, T)> = sort_idx.into_iter().zip(modules.drain(..)).collect();
    // glibc's qsort is a stable merge sort here, like `sort_by_key`.
    keyed.sort_by_key(|(k, _)| *k);
    modules.extend(keyed.into_iter().map(|(_, m)| m));
}

impl Depgraph {
    /// Resolve symbols and compute dependencies for modules already in depmod's order.
    pub fn build(
        modules: impl IntoIterator<Item = (Candidate, ModuleData)>,
        kernel: &KernelSymbols,
        options: ResolveOptions,
        diag: &mut Diagnostics,
    ) -> Result<Depgraph, Error> {
        let mut graph: Vec<GraphModule> = modules
            .into_iter()
            .map(|(candidate, data)| GraphModule {
                candidate,
                data,
                deps: Vec::new(),
                dep_sort_idx: u32::MAX,
            })
            .collect();
        let n = graph.len();

        let exports: usize = graph.iter().map(|m| m.data.exports.len()).sum();
        let mut users = vec![0u32; n];
        let owned: Vec<(u32, u32)>;
        {
            let mut table: FxMap<&str, Sym> = FxMap::default();
            table.reserve(exports + kernel.symbols.len() + 3);
            for (name, crc) in &kernel.symbols {
                table.insert(
                    name.as_str(),
                    Sym {
                        owner: None,
                        crc: *crc,
                    },
                );
            }
            if kernel.given {
                // kmod `depmod_add_fake_syms`.
                table.insert(
                    "__this_module",
                    Sym {
                        owner: None,
                        crc: 0,
                    },
                );
                table.insert(
                    "_GLOBAL_OFFSET_TABLE_",
                    Sym {
                        owner: None,
                        crc: 0,
                    },
                );
                table.entry("TOC.").or_insert(Sym {
                    owner: None,
                    crc: 0,
                });
            }
            // Later modules replace earlier owners, as kmod's hash_add does.
            for (mi, m) in graph.iter().enumerate() {
                for (ei, e) in m.data.exports.iter().enumerate() {
                    let name = strip_prefix(m.data.str(&e.name), options.symbol_prefix);
                    table.insert(
                        name,
                        Sym {
                            owner: Some((mi as u32, ei as u32)),
                            crc: e.crc,
                        },
                    );
                }
            }
            owned = table.values().filter_map(|s| s.owner).collect();

            // Each module's imports are looked up on its own (the table is only read), in
            // parallel; what is said about them is kept per module and said in module order.
            let verbose = diag.verbose;
            let table = &table;
            let graph_ref = &graph;
            let resolved: Vec<(Vec<u32>, Vec<String>, Vec<String>)> = graph
                .par_iter()
                .map(|m| {
                    let (mut deps, mut warnings, mut trace) = (Vec::new(), Vec::new(), Vec::new());
                    for imp in &m.data.imports {
                        let raw = m.data.str(&imp.name);
                        let name = raw.strip_prefix('.').unwrap_or(raw);
                        let name = strip_prefix(name, options.symbol_prefix);
                        let Some(sym) = table.get(name) else {
                            if options.print_unknown && !imp.weak {
                                warnings.push(format!(
                                    "{} needs unknown symbol {raw}",
                                    m.candidate.path
                                ));
                            }
                            continue;
                        };
                        if options.check_symvers
                            && sym.crc != imp.crc
                            && !imp.weak
                            && options.print_unknown
                        {
                            warnings.push(format!(
                                "{} disagrees about version of symbol {raw}",
                                m.candidate.path
                            ));
                        }
                        let Some((owner, _)) = sym.owner else {
                            continue;
                        };
                        if !deps.contains(&owner) {
                            deps.push(owner);
                            if verbose {
                                trace.push(format!(
                                    "{} needs \"{raw}\": {}",
                                    m.candidate.path, graph_ref[owner as usize].candidate.path
                                ));
                            }
                        }
                    }
                    (deps, warnings, trace)
                })
                .collect();
            let mut all_deps: Vec<Vec<u32>> = Vec::with_capacity(n);
            for (deps, warnings, trace) in resolved {
                for &owner in &deps {
                    users[owner as usize] += 1;
                }
                for text in warnings {
                    diag.warning(text);
                }
                diag.trace.extend(trace);
                all_deps.push(deps);
            }
            for (m, deps) in graph.iter_mut().zip(all_deps) {
                m.deps = deps;
            }
        }

        // Topological sort, modules without users first (kmod's roots stack).
        let mut remaining = users.clone();
        let mut roots: Vec<u32> = (0..n as u32)
            .filter(|&i| remaining[i as usize] == 0)
            .collect();
        let mut sorted = 0u32;
        while let Some(src) = roots.pop() {
            graph[src as usize].dep_sort_idx = sorted;
            sorted += 1;
            for &dst in &graph[src as usize].deps {
                remaining[dst as usize] -= 1;
                if remaining[dst as usize] == 0 {
                    roots.push(dst);
                }
            }
        }
        if (sorted as usize) < n {
            let count = report_cycles(&graph, &remaining, diag);
            return Err(Error::Cycles { count });
        }
        for i in 0..n {
            let mut deps = std::mem::take(&mut graph[i].deps);
            deps.sort_by_key(|&d| graph[d as usize].dep_sort_idx);
            graph[i].deps = deps;
        }

        // modules.symbols order: kmod's symbol hash table.
        let name_of = |&(m, e): &(u32, u32)| -> &str {
            let d = &graph[m as usize].data;
            strip_prefix(d.str(&d.exports[e as usize].name), options.symbol_prefix)
        };
        let mut keyed: Vec<(u32, (u32, u32))> = owned
            .iter()
            .map(|s| {
                (
                    khash::bucket(name_of(s).as_bytes(), khash::SYMBOL_BUCKETS),
                    *s,
                )
            })
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| name_of(&a.1).cmp(name_of(&b.1))));
        let owned: Vec<(u32, u32)> = keyed.into_iter().map(|(_, s)| s).collect();
        // Each module's dependencies, direct or not, computed once for modules.dep and
        // modules.dep.bin.
        let mut all = Vec::with_capacity(n * 4);
        let mut all_ends = Vec::with_capacity(n);
        let mut seen = vec![u32::MAX; n];
        let mut one = Vec::new();
        for i in 0..n {
            sorted_dependencies(&graph, i, &mut seen, &mut one);
            all.extend_from_slice(&one);
            all_ends.push(all.len() as u32);
        }
        Ok(Depgraph {
            modules: graph,
            symbols: owned,
            all,
            all_ends,
        })
    }

    /// Every module `index` needs, directly or not, in load order as modules.dep lists them.
    pub fn all_dependencies(&self, index: usize) -> &[u32] {
        let start = match index {
            0 => 0,
            i => self.all_ends[i - 1] as usize,
        };
        &self.all[start..self.all_ends[index] as usize]
    }

    /// The name of a symbol of `self.symbols`.
    pub fn symbol_name(&self, (m, e): (u32, u32), prefix: Option<u8>) -> &str {
        let d = &self.modules[m as usize].data;
        strip_prefix(d.str(&d.exports[e as usize].name), prefix)
    }
}

/// Every module `index` needs, directly or not, in load order (kmod
/// `mod_get_all_sorted_dependencies`), into `out`. `seen[m]` is the last index `m` was seen
/// for (`u32::MAX` for none yet).
fn sorted_dependencies(graph: &[GraphModule], index: usize, seen: &mut [u32], out: &mut Vec<u32>) {
    out.clear();
    let stamp = index as u32;
    let mut stack: Vec<u32> = graph[index].deps.iter().rev().copied().collect();
    while let Some(d) = stack.pop() {
        if seen[d as usize] == stamp {
            continue;
        }
        seen[d as usize] = stamp;
        out.push(d);
        stack.extend(graph[d as usize].deps.iter().rev().copied());
    }
    out.sort_by_key(|&d| graph[d as usize].dep_sort_idx);
}

/// Report the dependency cycles as kmod 30 walks them (`depmod_report_cycles`): one
/// `Cycle detected: a -> b -> a` line per cycle in the order its walk meets them, then how many
/// modules are in cycles. `remaining` holds the users left after the topological sort:
/// non-zero for modules in a cycle and for modules only reachable from one.
///
/// kmod's walk: the modules with users left, in module order, are the roots still to try. Each
/// root in turn is walked depth first (a stack of paths, the last dependency first); reaching
/// the root again reports the path as a cycle and takes its modules off the roots; a module
/// without dependencies is taken off too. `visited` outlives each walk, so a root already
/// visited by an earlier walk reports itself alone (`Cycle detected: m`), as kmod does. kmod
/// would walk for ever round a cycle that does not pass through the root (depmod hangs); such
/// a path is not followed here, and the walks after it forget what earlier ones visited.
fn report_cycles(graph: &[GraphModule], remaining: &[u32], diag: &mut Diagnostics) -> usize {
    const NO_PARENT: usize = usize::MAX;
    let n = graph.len();
    let mut roots: std::collections::VecDeque<u32> = (0..n as u32)
        .filter(|&i| remaining[i as usize] > 0)
        .collect();
    let mut visited = vec![false; n];
    let mut in_cycle = vec![false; n];
    let on_path = |vertices: &[(u32, usize)], mut v: usize, m: u32| {
        while v != NO_PARENT {
            if vertices[v].0 == m {
                return true;
            }
            v = vertices[v].1;
        }
        false
    };
    // Set once a path was left out where kmod would have walked for ever: from then on there
    // is no kmod output to follow, and each walk starts afresh, so every cycle is still named.
    let mut diverged = false;
    while let Some(root) = roots.pop_front() {
        if diverged {
            visited.fill(false);
        }
        // Vertices are (module, parent vertex): the path to a vertex is its parent chain.
        let mut vertices: Vec<(u32, usize)> = vec![(root, NO_PARENT)];
        let mut stack = vec![0usize];
        while let Some(v) = stack.pop() {
            let m = vertices[v].0;
            if visited[m as usize] && m == root {
                let mut path = vec![m];
                let mut p = vertices[v].1;
                while p != NO_PARENT {
                    let module = vertices[p].0;
                    path.push(module);
                    in_cycle[module as usize] = true;
                    roots.retain(|&r| r != module);
                    p = vertices[p].1;
                }
                path.reverse();
                let names: Vec<&str> = path
                    .iter()
                    .map(|&p| graph[p as usize].candidate.name.as_str())
                    .collect();
                diag.error(format!("Cycle detected: {}", names.join(" -> ")));
                continue;
            }
            visited[m as usize] = true;
            let deps = &graph[m as usize].deps;
            if deps.is_empty() {
                roots.retain(|&r| r != m);
                continue;
            }
            for &d in deps {
                if d != root && on_path(&vertices, v, d) {
                    // A cycle that misses the root: kmod would go round it for ever.
                    diverged = true;
                    continue;
                }
                vertices.push((d, v));
                stack.push(vertices.len() - 1);
            }
        }
    }
    let count = in_cycle.iter().filter(|&&c| c).count();
    diag.error(format!("Found {count} modules in dependency cycles!"));
    count
}
