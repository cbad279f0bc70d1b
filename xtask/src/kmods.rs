//! `cargo xtask kmods`: build the sample modules in `kmods/` against Debian's kernel headers,
//! and (with `--update-fixtures`) write the committed test modules in `kmods/fixtures/`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::kernels::{self, KernelTree, Series};

pub mod check;

/// Build the sample modules in kmods/ (hello_api, hello_feature, fault_*, check_*) for Debian's
/// kernels.
///
/// Downloads and extracts the kernel packages on first use (cached in ~/.cache/modkit, or
/// $MODKIT_CACHE), then builds out of tree; the sources in kmods/ stay clean. Prints the
/// path of each built module.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which Debian kernel to build for.
    #[arg(long, value_name = "SERIES", default_value = "all", value_parser = ["6.1", "6.12", "all"])]
    kernel: String,

    /// Also rewrite the committed test modules in kmods/fixtures/ for every kernel: stripped
    /// .ko files, for 6.12 also .ko.xz/.ko.zst/.ko.gz and a signed hello_api (throwaway key).
    #[arg(long)]
    update_fixtures: bool,
}

/// The sample modules built for one kernel.
#[derive(Debug, Clone)]
pub struct BuiltModules {
    /// `hello_api.ko`, exporting `api_test`, with debug info.
    pub hello_api: PathBuf,
    /// `hello_feature.ko`, which needs `api_test`, with debug info.
    pub hello_feature: PathBuf,
    /// The fault-injection modules (`vmtest::FAULT_MODULES`, each needing `api_test`), by name.
    pub faults: Vec<(&'static str, PathBuf)>,
    /// The modules of `modkit check`'s VM scenario (`kmods/check_*`).
    pub check: check::CheckModules,
}

impl BuiltModules {
    /// The hello and fault modules, by name (`check`'s cases are in [`BuiltModules::check`]).
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("hello_api", self.hello_api.as_path()),
            ("hello_feature", self.hello_feature.as_path()),
        ]
        .into_iter()
        .chain(
            self.faults
                .iter()
                .map(|(name, path)| (*name, path.as_path())),
        )
    }
}

pub fn run(args: Args) -> Result<()> {
    let sh = Shell::new()?;
    let series = Series::select(&args.kernel)?;
    if args.update_fixtures && series.len() != Series::all().len() {
        bail!("--update-fixtures rewrites the fixtures of every kernel; drop --kernel");
    }
    let mut built = Vec::new();
    for series in series {
        let kernel = kernels::ensure(&sh, series)?;
        let modules = build(&sh, &kernel)?;
        for (_, path) in modules.all() {
            println!("{}", path.display());
        }
        built.push((kernel, modules));
    }
    if args.update_fixtures {
        write_fixtures(&sh, &built)?;
    }
    Ok(())
}

/// The sample modules, in build order (`hello_feature` uses `hello_api`'s symbol).
const MODULES: [&str; 2] = ["hello_api", "hello_feature"];

/// Every module to build, in build order: [`MODULES`], then the fault-injection modules
/// (which call `hello_api`'s symbol too).
fn all_modules() -> impl Iterator<Item = &'static str> {
    MODULES
        .into_iter()
        .chain(::vmtest::FAULT_MODULES.iter().copied())
}

/// Builds the sample modules against `kernel`'s headers, out of tree; cached per kernel release
/// in `cache_dir()/build/RELEASE/` and rebuilt when the sources or the kernel packages change.
pub fn build(sh: &Shell, kernel: &KernelTree) -> Result<BuiltModules> {
    let cache =
        std::path::absolute(crate::cache_dir()).context("cannot resolve the cache directory")?;
    let out = cache.join("build").join(&kernel.release);
    let built = BuiltModules {
        hello_api: out.join("hello_api.ko"),
        hello_feature: out.join("hello_feature.ko"),
        faults: ::vmtest::FAULT_MODULES
            .iter()
            .map(|name| (*name, out.join(format!("{name}.ko"))))
            .collect(),
        check: check::CheckModules::in_dir(&out),
    };
    kernels::remove_stale(sh, &cache.join("build"), &format!(".{}.", kernel.release));
    let inputs = build_inputs(kernel)?;
    let inputs_path = out.join(".inputs");
    let up_to_date = std::fs::read_to_string(&inputs_path).is_ok_and(|old| old == inputs)
        && built.all().all(|(_, path)| path.exists())
        && built.check.all_exist();
    if up_to_date {
        eprintln!("modules for {}: up to date", kernel.release);
        return Ok(built);
    }

    eprint!(
        "building {}, {} for {}...",
        all_modules().collect::<Vec<_>>().join(", "),
        check::MODULES.join(", "),
        kernel.release
    );
    let _ = std::io::stderr().flush();
    let start = Instant::now();
    // A private build directory: two runs at once (say kmods and vmtest) must not share one.
    let work = cache
        .join("build")
        .join(format!(".{}.work-{}", kernel.release, std::process::id()));
    let result = build_in(sh, kernel, &work, &out);
    let _ = sh.remove_path(&work);
    if let Err(err) = result {
        eprintln!(" failed");
        return Err(err);
    }
    replace_file(&inputs_path, inputs.as_bytes())?;
    eprintln!(" done ({:.1} s)", start.elapsed().as_secs_f64());
    Ok(built)
}

/// What a build depends on: the kernel packages, our make flags and the sources themselves.
fn build_inputs(kernel: &KernelTree) -> Result<String> {
    let mut text = String::from("# modkit: the sample modules here were built from:\n");
    writeln!(text, "kernel {}", kernel.packages.join(" "))?;
    writeln!(text, "root {}", kernel.root.display())?;
    for module in all_modules().chain(check::MODULES.iter().copied()) {
        for (name, contents) in sources(module)? {
            writeln!(text, "== {module}/{name}\n{contents}")?;
        }
    }
    Ok(text)
}

/// The source files of one module (Kbuild, Makefile, *.c, *.h), sorted by name.
fn sources(module: &str) -> Result<Vec<(String, String)>> {
    let dir = crate::project_root().join("kmods").join(module);
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let wanted =
            name == "Kbuild" || name == "Makefile" || name.ends_with(".c") || name.ends_with(".h");
        if wanted && path.is_file() {
            let contents = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.push((name, contents));
        }
    }
    files.sort();
    ensure!(!files.is_empty(), "no module sources in {}", dir.display());
    Ok(files)
}

fn build_in(sh: &Shell, kernel: &KernelTree, work: &Path, out: &Path) -> Result<()> {
    let _ = sh.remove_path(work);
    let mut extra_symbols = Vec::new();
    for module in all_modules() {
        make(sh, kernel, work, module, &extra_symbols, &[])?;
        extra_symbols.push(work.join(module).join("Module.symvers"));
    }
    for module in all_modules() {
        let ko = work.join(module).join(format!("{module}.ko"));
        let bytes =
            std::fs::read(&ko).with_context(|| format!("make did not produce {}", ko.display()))?;
        replace_file(&out.join(format!("{module}.ko")), &bytes)?;
    }
    check::build_in(sh, kernel, work, out)
}

/// Builds `kmods/MODULE` in `work/MODULE` against `kernel`'s headers, with the exports of
/// `extra_symbols` (other modules' `Module.symvers`) and `extra_args` for make.
fn make(
    sh: &Shell,
    kernel: &KernelTree,
    work: &Path,
    module: &str,
    extra_symbols: &[PathBuf],
    extra_args: &[&str],
) -> Result<()> {
    let headers = &kernel.headers;
    let jobs = format!(
        "-j{}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Map the cache's paths away so that the modules (their debug info and hence their build
    // id) are the same bytes wherever the cache and the build directory are.
    let kcflags = format!(
        "KCFLAGS=-ffile-prefix-map={}/=/ -ffile-prefix-map={}/=",
        kernel.root.display(),
        work.display()
    );
    // 6.12's kbuild runs pahole to add BTF to modules; without pahole that fails. BTF is of no
    // use to the tests, so switch it off for every kernel.
    let no_btf = "CONFIG_DEBUG_INFO_BTF_MODULES=";
    let dir = work.join(module);
    sh.create_dir(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, contents) in sources(module)? {
        sh.write_file(dir.join(&name), contents)?;
    }
    let symvers: Vec<String> = extra_symbols
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let symvers = symvers.join(" ");
    let symvers_arg = (!symvers.is_empty()).then(|| format!("KBUILD_EXTRA_SYMBOLS={symvers}"));
    let output = cmd!(
        sh,
        "make -s {jobs} -C {headers} M={dir} {no_btf} {kcflags} {symvers_arg...} {extra_args...} modules"
    )
    .quiet()
    .ignore_status()
    .output()
    .context("cannot run make")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "make for {module} against {} failed ({}):\n{}{stderr}",
            headers.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }
    if !stderr.trim().is_empty() && extra_args.is_empty() {
        eprintln!("\n{stderr}");
    }
    Ok(())
}

/// Writes `path` through a temporary file and a rename, so readers never see half a file.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("no parent directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().context("no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// The subject of the throwaway signing key; the rest follows the kernel's default
/// `certs/default_x509.genkey`.
const SIGNING_CN: &str = "modkit test signing key";

fn write_fixtures(sh: &Shell, built: &[(KernelTree, BuiltModules)]) -> Result<()> {
    let fixtures = crate::project_root().join("kmods/fixtures");
    let mut listing = Vec::new();
    for (kernel, modules) in built {
        let dir = fixtures.join(kernel.series.as_str());
        let _ = sh.remove_path(&dir);
        sh.create_dir(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = Vec::new();
        for (module, ko) in [
            ("hello_api", &modules.hello_api),
            ("hello_feature", &modules.hello_feature),
        ] {
            let dest = dir.join(format!("{module}.ko"));
            // What INSTALL_MOD_STRIP=1 does.
            cmd!(sh, "strip --strip-debug -o {dest} {ko}")
                .quiet()
                .run()
                .with_context(|| format!("cannot strip {}", ko.display()))?;
            files.push(dest);
        }
        if kernel.series == Series::V6_12 {
            let plain = files.clone();
            for ko in &plain {
                files.extend(compress(sh, ko)?);
            }
            let signed = dir.join("signed");
            sh.create_dir(&signed)?;
            let dest = signed.join("hello_api.ko");
            sh.copy_file(dir.join("hello_api.ko"), &dest)?;
            sign(sh, kernel, &dest)?;
            files.push(dest.clone());
            files.push(xz(sh, &dest)?);
        }
        check_fixtures(sh, &dir)?;
        listing.push((kernel, files));
    }
    let readme = fixtures.join("README.md");
    sh.write_file(&readme, fixtures_readme(&fixtures, &listing))?;
    eprintln!("wrote {}", fixtures.display());
    for (_, files) in &listing {
        for file in files {
            println!("{}", file.display());
        }
    }
    Ok(())
}

/// Writes `ko.xz`, `ko.zst` and `ko.gz` next to `ko`, the way kbuild's `Makefile.modinst` does.
fn compress(sh: &Shell, ko: &Path) -> Result<Vec<PathBuf>> {
    let xz = xz(sh, ko)?;
    let zst = with_suffix(ko, ".zst");
    cmd!(sh, "zstd -q -f {ko} -o {zst}")
        .quiet()
        .run()
        .context("cannot run zstd")?;
    // -n: no name or time stamp, so the bytes do not change between runs.
    cmd!(sh, "gzip -n -k -f {ko}")
        .quiet()
        .run()
        .context("cannot run gzip")?;
    Ok(vec![xz, zst, with_suffix(ko, ".gz")])
}

fn xz(sh: &Shell, ko: &Path) -> Result<PathBuf> {
    cmd!(sh, "xz --check=crc32 --lzma2=dict=1MiB -k -f {ko}")
        .quiet()
        .run()
        .context("cannot run xz")?;
    Ok(with_suffix(ko, ".xz"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Signs `ko` in place with the kernel's `sign-file` and a key made for the occasion and
/// thrown away afterwards.
fn sign(sh: &Shell, kernel: &KernelTree, ko: &Path) -> Result<()> {
    let keys = sh
        .create_temp_dir()
        .context("cannot create a directory for the signing key")?;
    let (key, cert) = make_signing_key(sh, keys.path())?;
    sign_with(sh, kernel, &key, &cert, ko)
}

/// Makes a throwaway RSA-4096 key and certificate (CN [`SIGNING_CN`]) in `dir`, as the
/// kernel's `certs/Makefile` does: `(signing_key.pem, signing_key.x509)`.
fn make_signing_key(sh: &Shell, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let genkey = dir.join("x509.genkey");
    let key = dir.join("signing_key.pem");
    let cert = dir.join("signing_key.x509");
    sh.write_file(
        &genkey,
        format!(
            "[ req ]\ndefault_bits = 4096\ndistinguished_name = req_distinguished_name\nprompt = no\n\
             string_mask = utf8only\nx509_extensions = myexts\n\n\
             [ req_distinguished_name ]\nCN = {SIGNING_CN}\n\n\
             [ myexts ]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        ),
    )?;
    let output = cmd!(
        sh,
        "openssl req -new -nodes -utf8 -sha256 -days 36500 -batch -x509 -config {genkey} -outform DER -out {cert} -keyout {key}"
    )
    .quiet()
    .ignore_status()
    .output()
    .context("cannot run openssl")?;
    ensure!(
        output.status.success(),
        "openssl could not make a signing key ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((key, cert))
}

/// Signs `ko` in place with the kernel's `scripts/sign-file sha256`.
fn sign_with(sh: &Shell, kernel: &KernelTree, key: &Path, cert: &Path, ko: &Path) -> Result<()> {
    let sign_file = kernel.sign_file();
    cmd!(sh, "{sign_file} sha256 {key} {cert} {ko}")
        .quiet()
        .run()
        .with_context(|| format!("cannot sign {}", ko.display()))?;
    Ok(())
}

/// Asks the installed kmod (its `modinfo`, as [`crate::tools::Kmod`] finds it) whether the
/// fixtures say what the tests expect of them.
fn check_fixtures(sh: &Shell, dir: &Path) -> Result<()> {
    let modinfo = match crate::tools::Kmod::find() {
        Ok(kmod) => kmod.modinfo,
        Err(err) => {
            eprintln!("note: fixtures in {} not checked: {err:#}", dir.display());
            return Ok(());
        }
    };
    let feature = dir.join("hello_feature.ko");
    let depends = cmd!(sh, "{modinfo} -F depends {feature}").quiet().read()?;
    ensure!(
        depends == "hello_api",
        "modinfo says {} depends on `{depends}`, not hello_api",
        feature.display()
    );
    let signed = dir.join("signed/hello_api.ko");
    if signed.exists() {
        let signer = cmd!(sh, "{modinfo} -F signer {signed}").quiet().read()?;
        ensure!(
            signer == SIGNING_CN,
            "modinfo says {} is signed by `{signer}`",
            signed.display()
        );
        let algo = cmd!(sh, "{modinfo} -F sig_hashalgo {signed}")
            .quiet()
            .read()?;
        ensure!(
            algo == "sha256",
            "modinfo says {} has hash algorithm `{algo}`",
            signed.display()
        );
    }
    Ok(())
}

fn fixtures_readme(fixtures: &Path, listing: &[(&KernelTree, Vec<PathBuf>)]) -> String {
    let mut text = String::from(
        "# Test modules\n\n\
         Generated by `cargo xtask kmods --update-fixtures` (xtask/src/kmods.rs); do not edit by hand.\n\
         They are `kmods/hello_api` and `kmods/hello_feature` built out of tree against Debian's\n\
         kernel headers:\n\n\
         ```sh\n\
         make -C /usr/src/linux-headers-RELEASE M=DIR CONFIG_DEBUG_INFO_BTF_MODULES= \\\n    \
         KCFLAGS='-ffile-prefix-map=...' [KBUILD_EXTRA_SYMBOLS=hello_api/Module.symvers] modules\n\
         strip --strip-debug -o FIXTURE MODULE.ko    # as INSTALL_MOD_STRIP=1\n\
         ```\n\n\
         The compressed variants are made as kbuild's `scripts/Makefile.modinst` does:\n\
         `xz --check=crc32 --lzma2=dict=1MiB`, `zstd` (default level), `gzip -n`.\n\
         `signed/hello_api.ko` is signed with the kernel's `scripts/sign-file sha256` and a\n\
         throwaway RSA-4096 key and X.509 certificate (`openssl req -new -nodes -utf8 -sha256\n\
         -days 36500 -batch -x509 -outform DER`, CN \"modkit test signing key\") made for the\n\
         occasion and discarded; `signed/hello_api.ko.xz` is that file compressed. The signature\n\
         changes on every run; the other files are reproducible.\n\n\
         `hello_feature` calls `api_test()` exported by `hello_api`, so `modinfo -F depends` of\n\
         hello_feature.ko prints `hello_api`; it also has `softdep=post: hello_api`.\n",
    );
    for (kernel, files) in listing {
        let _ = write!(
            text,
            "\n## {}\n\nKernel {}, Debian {}; packages:\n\n",
            kernel.series, kernel.release, kernel.version
        );
        for package in &kernel.packages {
            let _ = writeln!(text, "- `{package}`");
        }
        text.push_str("\nFiles:\n\n");
        for file in files {
            let rel = file.strip_prefix(fixtures).unwrap_or(file);
            let _ = writeln!(text, "- `{}`", rel.display());
        }
    }
    text
}
