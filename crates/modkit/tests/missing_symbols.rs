//! The missing-symbol engine ([`modkit::missing_symbols`], [`Context::exporters_of`]) over the
//! sample modules and a fake kernel. What insmod prints with it is pinned in the CLI's
//! tests/insmod.rs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use modkit::Context;
use modkit::config::modprobe::ModprobeConfig;
use modkit::syscalls::{ProcDir, RecordingKernel, SysModule};
use modkit_index::{IndexBuilder, Layout};
use modkit_testkit::Scratch;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../kmods/fixtures")
        .canonicalize()
        .unwrap()
}

/// A scratch directory for one test (removed when dropped).
struct Dir(Scratch);

impl Dir {
    fn new(name: &str) -> Dir {
        Dir(Scratch::new(&format!("missing-{name}")))
    }

    fn join(&self, relative: &str) -> PathBuf {
        self.0.path().join(relative)
    }

    fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }

    /// A fake kernel whose `/proc` is in here: no module loaded, and in `/proc/kallsyms`
    /// everything the sample modules need but `api_test`.
    fn kernel(&self) -> RecordingKernel {
        self.write("proc/modules", "");
        let feature = fs::read(fixtures().join("6.1/hello_feature.ko")).unwrap();
        let module = modkit::elf::Module::parse(&feature).unwrap();
        let mut kallsyms = String::new();
        for symbol in module.imports().unwrap() {
            if symbol != "api_test" {
                kallsyms.push_str(&format!("0000000000000000 T {symbol}\n"));
            }
        }
        self.write("proc/kallsyms", kallsyms);
        RecordingKernel::new(
            SysModule::new(self.join("sys")),
            ProcDir::new(self.join("proc")),
        )
    }
}

/// Each exporter as (symbol, module, path).
fn exported(found: &modkit::MissingSymbols) -> Vec<(&str, &str, Option<&Path>)> {
    found
        .exported
        .iter()
        .map(|e| (e.symbol.as_str(), e.module.as_str(), e.path.as_deref()))
        .collect()
}

#[test]
fn module_files_are_read_until_the_deadline() {
    let scratch = Dir::new("deadline");
    let kernel = scratch.kernel();
    let file = scratch.write(
        "alone/hello_feature.ko",
        fs::read(fixtures().join("6.1/hello_feature.ko")).unwrap(),
    );
    // The fixtures directory as a module directory without indexes: its files are read.
    let mut tree = Context::new(fixtures(), ModprobeConfig::default());
    let later = Duration::from_secs(30);
    let found = modkit::missing_symbols(&kernel, &file, Some(&mut tree), later);
    let api = fixtures().join("6.1/hello_api.ko");
    assert_eq!(
        exported(&found),
        [("api_test", "hello_api", Some(api.as_path()))]
    );
    assert!(found.unexported.is_empty());

    // Past the deadline nothing is read, and nothing is claimed.
    let past = Duration::ZERO;
    let found = modkit::missing_symbols(&kernel, &file, Some(&mut tree), past);
    assert_eq!(exported(&found), []);
    assert_eq!(found.unexported, ["api_test"]);

    // Without a module directory only the module's own is read.
    let found = modkit::missing_symbols(&kernel, &file, None, later);
    assert_eq!(exported(&found), []);
    assert_eq!(found.unexported, ["api_test"]);

    // A file that cannot be read needs nothing anyone could tell.
    let junk = scratch.write("alone/junk.ko", "not an ELF file");
    let found = modkit::missing_symbols(&kernel, &junk, Some(&mut tree), later);
    assert_eq!(found, modkit::MissingSymbols::default());
    assert!(kernel.calls().is_empty());
}

#[test]
fn exporters_come_from_the_symbols_index() {
    let scratch = Dir::new("index");
    let mut builder = IndexBuilder::new();
    builder.insert("symbol:api_test", "hello_api", 2).unwrap();
    builder.insert("symbol:api_test", "api_twin", 1).unwrap();
    builder.insert("symbol:other", "other", 0).unwrap();
    scratch.write(
        "lib/modules/1.0/modules.symbols.bin",
        builder.write(Layout::PostOrder).unwrap(),
    );
    let mut ctx = Context::new(scratch.join("lib/modules/1.0"), ModprobeConfig::default());
    let names = |ctx: &mut Context, symbol: &str| -> Option<Vec<String>> {
        let ids = ctx.exporters_of(symbol).unwrap()?;
        Some(ids.into_iter().map(|id| ctx.name(id).to_owned()).collect())
    };
    // By priority, as modprobe's `symbol:` lookup finds them.
    assert_eq!(
        names(&mut ctx, "api_test"),
        Some(vec!["api_twin".into(), "hello_api".into()])
    );
    assert_eq!(names(&mut ctx, "nobody_exports_this"), Some(vec![]));
    let mut empty = Context::new(scratch.join("none"), ModprobeConfig::default());
    assert_eq!(names(&mut empty, "api_test"), None);

    // The engine takes the first, and its file from modules.dep.bin (none here).
    let kernel = scratch.kernel();
    let file = scratch.write(
        "alone/hello_feature.ko",
        fs::read(fixtures().join("6.12/hello_feature.ko")).unwrap(),
    );
    let later = Duration::from_secs(30);
    let found = modkit::missing_symbols(&kernel, &file, Some(&mut ctx), later);
    assert_eq!(exported(&found), [("api_test", "api_twin", None)]);
}
