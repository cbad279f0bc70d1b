//! Development tool: print what modkit-elf reads from modules, in the formats of kmod's
//! `modinfo` and `modprobe --dump-modversions`, for differential checks against kmod.
//!
//! Usage: `dump modinfo|versions|exports|depmod-exports|imports|depmod-imports FILE...`,
//! `dump bench DIR` (parse every module below DIR, report the time).
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use modkit_elf::{DEFAULT_DECOMPRESS_LIMIT, Module, ResultExt, decompress, signature};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((mode, files)) = args.split_first() else {
        eprintln!("usage: dump MODE FILE...");
        std::process::exit(2);
    };
    let mut failed = false;
    for file in files {
        let result = if mode == "bench" {
            bench(Path::new(file))
        } else {
            dump(mode, Path::new(file))
        };
        if let Err(e) = result {
            eprintln!("dump: {e}");
            failed = true;
        }
    }
    std::process::exit(i32::from(failed));
}

fn dump(mode: &str, path: &Path) -> Result<()> {
    let file = read(path)?;
    let bytes = decompress(&file, DEFAULT_DECOMPRESS_LIMIT).with_path(path)?;
    let module = Module::parse(&bytes).with_path(path)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match mode {
        "modinfo" => {
            let _ = writeln!(out, "{:<16}{}", "filename:", path.display());
            for r in module.modinfo() {
                if r.key == b"parm" || r.key == b"parmtype" {
                    continue;
                }
                let key = r.key_lossy();
                let pad = 15usize.saturating_sub(key.len());
                let _ = out.write_all(format!("{key}:{:pad$}", "").as_bytes());
                let _ = out.write_all(r.value);
                let _ = out.write_all(b"\n");
            }
            match signature(&bytes) {
                Ok(Some(sig)) => {
                    let _ = writeln!(out, "{:<16}{}", "sig_id:", sig.id_type_name());
                    let _ = writeln!(out, "{:<16}{}", "signer:", sig.signer());
                    let _ = writeln!(out, "{:<16}{}", "sig_key:", sig.sig_key_hex());
                    let _ = writeln!(out, "{:<16}{}", "sig_hashalgo:", sig.hash_algo_name());
                    let _ = writeln!(out, "{:<16}{}", "signature:", sig.signature_hex());
                }
                Ok(None) => {}
                Err(e) => eprintln!("dump: {}: no signature shown: {e}", path.display()),
            }
            for p in module.modinfo().params().iter().rev() {
                let line = match (&p.description, &p.type_) {
                    (None, Some(t)) => format!("{}:{}", p.name, t),
                    (Some(d), Some(t)) => format!("{}:{} ({})", p.name, d, t),
                    (Some(d), None) => format!("{}:{}", p.name, d),
                    (None, None) => continue,
                };
                let _ = writeln!(out, "{:<16}{}", "parm:", line);
            }
        }
        "versions" => {
            for v in module.versions().with_path(path)? {
                let _ = writeln!(out, "0x{:08x}\t{}", v.crc, v.name);
            }
        }
        "exports" => {
            for e in module.exports().with_path(path)? {
                let crc = e.crc.map_or("-".to_string(), |c| format!("0x{c:08x}"));
                let _ = writeln!(out, "{} {} {}", e.name, u8::from(e.gpl_only), crc);
            }
        }
        "depmod-exports" => {
            for e in module.depmod_exports().with_path(path)? {
                let _ = writeln!(out, "{} 0x{:08x}", e.name, e.crc);
            }
        }
        "imports" => {
            for name in module.imports().with_path(path)? {
                let _ = writeln!(out, "{name}");
            }
        }
        "depmod-imports" => {
            for d in module.depmod_imports().with_path(path)? {
                let _ = writeln!(out, "{} 0x{:08x} {}", d.name, d.crc, u8::from(d.weak));
            }
        }
        _ => return Err(format!("unknown mode {mode}").into()),
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.to_string_lossy().contains(".ko") {
            out.push(path);
        }
    }
}

fn bench(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    let start = Instant::now();
    let mut contents = Vec::with_capacity(files.len());
    for path in &files {
        let file = read(path)?;
        let bytes = decompress(&file, DEFAULT_DECOMPRESS_LIMIT)
            .with_path(path)?
            .into_owned();
        contents.push(bytes);
    }
    let loaded = start.elapsed();
    let start = Instant::now();
    let (mut exports, mut imports, mut records, mut bytes_total) = (0usize, 0usize, 0usize, 0usize);
    for (path, bytes) in files.iter().zip(&contents) {
        bytes_total += bytes.len();
        let module = Module::parse(bytes).with_path(path)?;
        records += module.modinfo().count();
        exports += module.depmod_exports().with_path(path)?.len();
        imports += module.depmod_imports().with_path(path)?.len();
        let _ = signature(bytes);
    }
    println!(
        "{} modules, {} MB, {records} modinfo records, {exports} exports, {imports} imports: \
         read+decompress {:.3} s, parse {:.3} s",
        files.len(),
        bytes_total >> 20,
        loaded.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
