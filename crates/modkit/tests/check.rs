//! `modkit::check` on the sample modules against synthetic targets (each refusal), and on
//! Debian's 6.1 tree against its headers' Module.symvers (every module would load).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use modkit::Context;
use modkit::check::{Checker, KernelConfig, Kind, Report, Symvers, Target};
use modkit::config::modprobe::ModprobeConfig;
use modkit_testkit::Scratch;

fn fixture(path: &str) -> PathBuf {
    modkit_testkit::workspace_root()
        .join("kmods/fixtures")
        .join(path)
}

/// A Module.symvers (vmlinux lines) giving every symbol in the `__versions` of the sample
/// modules (6.1) its CRC, changed by `edit` (symbol, CRC, export type) -> line, or dropped when
/// it returns `None`.
fn sample_symvers(edit: impl Fn(&str, u64, &str) -> Option<String>) -> Symvers {
    let mut text = String::new();
    let mut seen = std::collections::HashSet::new();
    for module in ["6.1/hello_api.ko", "6.1/hello_feature.ko"] {
        let bytes = std::fs::read(fixture(module)).unwrap();
        let parsed = modkit::elf::Module::parse(&bytes).unwrap();
        for version in parsed.versions().unwrap() {
            if seen.insert(version.name.to_owned())
                && let Some(line) = edit(version.name, version.crc, "EXPORT_SYMBOL")
            {
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    Symvers::parse(&text, Path::new("test.symvers")).unwrap()
}

fn line(name: &str, crc: u64, kind: &str) -> Option<String> {
    Some(format!("{crc:#010x}\t{name}\tvmlinux\t{kind}\t"))
}

fn modversions() -> KernelConfig {
    KernelConfig::parse("CONFIG_MODVERSIONS=y\n")
}

/// Check `module` against `target` with `tree` (a module directory without indexes).
fn check(target: &Target, tree: &Path, module: &Path) -> Report {
    let mut ctx = Context::new(tree, ModprobeConfig::default());
    let mut checker = Checker::new(target, &mut ctx);
    (*checker.check(module)).clone()
}

fn kinds(report: &Report) -> Vec<(Kind, Option<i32>)> {
    report.findings.iter().map(|f| (f.kind, f.errno)).collect()
}

#[test]
fn a_module_built_for_the_target_would_load_with_its_taint() {
    let api = fixture("6.1/hello_api.ko");
    let tree = Scratch::new("check-load");
    let target = Target::new(sample_symvers(line), modversions());
    let report = check(&target, tree.path(), &api);
    assert!(report.would_load(), "{report:#?}");
    assert_eq!(kinds(&report), [(Kind::Taint('O'), None)]);
    assert_eq!(
        report.findings[0].message,
        "loading out-of-tree module taints kernel."
    );
}

#[test]
fn vermagic_that_differs_is_refused_with_enoexec() {
    let api = fixture("6.1/hello_api.ko");
    let tree = Scratch::new("check-vermagic");
    let mut target = Target::new(sample_symvers(line), modversions());
    // With CRCs the release is not compared: the flags are.
    target.vermagic = Some("6.1.0-99-amd64 SMP preempt mod_unload modversions ".into());
    assert!(check(&target, tree.path(), &api).would_load());
    target.vermagic = Some("6.1.0-56-amd64 SMP mod_unload modversions ".into());
    let report = check(&target, tree.path(), &api);
    assert_eq!(report.errno(), Some(libc::ENOEXEC));
    let refusal = report.refusals().next().unwrap();
    assert_eq!(refusal.kind, Kind::Vermagic);
    assert_eq!(
        refusal.message,
        "version magic '6.1.0-56-amd64 SMP preempt mod_unload modversions ' should be \
         '6.1.0-56-amd64 SMP mod_unload modversions '"
    );
    // Without modversions the whole string counts.
    let mut target = Target::new(sample_symvers(line), KernelConfig::default());
    target.vermagic = Some("6.1.0-99-amd64 SMP preempt mod_unload modversions ".into());
    assert_eq!(
        check(&target, tree.path(), &api).errno(),
        Some(libc::ENOEXEC)
    );
}

/// The size of a module's `.gnu.linkonce.this_module` (its `struct module`).
fn this_module_size(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let module = modkit::elf::Module::parse(&bytes).unwrap();
    module
        .section(".gnu.linkonce.this_module")
        .unwrap()
        .unwrap()
        .len()
}

#[test]
fn a_struct_module_of_another_size_is_refused_with_enoexec() {
    let api = fixture("6.1/hello_api.ko");
    let tree = Scratch::new("check-this-module");
    let mut target = Target::new(sample_symvers(line), modversions());
    target.this_module_size = Some(this_module_size(&api));
    assert!(check(&target, tree.path(), &api).would_load());
    // Debian's 6.12 has a larger struct module than its 6.1 (and checks it).
    let other = this_module_size(&fixture("6.12/hello_api.ko"));
    assert_ne!(other, this_module_size(&api));
    target.this_module_size = Some(other);
    let report = check(&target, tree.path(), &api);
    assert_eq!(report.errno(), Some(libc::ENOEXEC));
    let refusal = report.refusals().next().unwrap();
    assert_eq!(refusal.kind, Kind::ThisModuleSize);
    assert_eq!(
        refusal.kernel_line(&report.name),
        "module hello_api: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time"
    );
}

#[test]
fn reading_ahead_on_threads_gives_the_same_reports() {
    let tree = Scratch::new("check-prefetch");
    let target = Target::new(sample_symvers(line), modversions());
    let paths: Vec<PathBuf> = [
        "6.1/hello_api.ko",
        "6.1/hello_feature.ko",
        "6.12/hello_api.ko.xz",
        "6.12/signed/hello_api.ko",
    ]
    .iter()
    .map(|p| fixture(p))
    .chain([tree.join("no-such-module.ko")])
    .collect();
    let reports = |prefetch: bool| {
        let mut ctx = Context::new(tree.path(), ModprobeConfig::default());
        let mut checker = Checker::new(&target, &mut ctx);
        if prefetch {
            checker.prefetch(&paths);
        }
        paths
            .iter()
            .map(|p| (*checker.check(p)).clone())
            .collect::<Vec<Report>>()
    };
    let (plain, ahead) = (reports(false), reports(true));
    assert_eq!(plain.len(), 5);
    assert_eq!(plain, ahead);
    assert_eq!(plain[4].refusals().next().unwrap().kind, Kind::Unreadable);
}

#[test]
fn a_crc_that_differs_is_refused_with_einval_and_module_layout_with_enoexec() {
    let api = fixture("6.1/hello_api.ko");
    let tree = Scratch::new("check-crc");
    let symvers = sample_symvers(|name, crc, kind| {
        line(name, if name == "_printk" { crc ^ 1 } else { crc }, kind)
    });
    let report = check(&Target::new(symvers, modversions()), tree.path(), &api);
    assert_eq!(report.errno(), Some(libc::EINVAL));
    let refusal = report.refusals().next().unwrap();
    assert_eq!(
        (refusal.kind, refusal.message.as_str()),
        (Kind::Crc, "disagrees about version of symbol _printk")
    );

    let symvers = sample_symvers(|name, crc, kind| {
        line(
            name,
            if name == "module_layout" {
                crc ^ 1
            } else {
                crc
            },
            kind,
        )
    });
    let report = check(&Target::new(symvers, modversions()), tree.path(), &api);
    assert_eq!(report.errno(), Some(libc::ENOEXEC));
    assert_eq!(report.refusals().next().unwrap().kind, Kind::ModuleLayout);
}

#[test]
fn a_symbol_nobody_exports_is_unknown_with_enoent() {
    let api = fixture("6.1/hello_api.ko");
    let tree = Scratch::new("check-unknown");
    let symvers = sample_symvers(|name, crc, kind| {
        (name != "param_ops_charp")
            .then(|| line(name, crc, kind))
            .flatten()
    });
    let report = check(&Target::new(symvers, modversions()), tree.path(), &api);
    assert_eq!(report.errno(), Some(libc::ENOENT));
    let messages: Vec<&str> = report.refusals().map(|f| f.message.as_str()).collect();
    assert_eq!(messages, ["Unknown symbol param_ops_charp (err -2)"]);
}

#[test]
fn a_gpl_only_export_is_unknown_to_a_module_that_is_not_gpl() {
    let api = fixture("6.1/hello_api.ko");
    let scratch = Scratch::new("check-gpl");
    let mut bytes = std::fs::read(&api).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"license=GPL\0")
        .unwrap();
    bytes[at + 8..at + 11].copy_from_slice(b"MIT");
    let mit = scratch.write("mit/hello_api.ko", &bytes);
    let tree = scratch.mkdir("tree");
    let symvers = sample_symvers(|name, crc, _| {
        line(
            name,
            crc,
            if name == "_printk" {
                "EXPORT_SYMBOL_GPL"
            } else {
                "EXPORT_SYMBOL"
            },
        )
    });
    let target = Target::new(symvers, modversions());
    let report = check(&target, &tree, &mit);
    assert_eq!(report.errno(), Some(libc::ENOENT));
    let refusal = report.refusals().next().unwrap();
    assert_eq!(refusal.kind, Kind::GplOnly);
    assert_eq!(refusal.message, "Unknown symbol _printk (err -2)");
    assert!(
        refusal.note.as_deref().unwrap().contains("license 'MIT'"),
        "{refusal:?}"
    );
    assert!(
        report
            .warnings()
            .any(|f| f.kind == Kind::Taint('P')
                && f.message == "module license 'MIT' taints kernel.")
    );
    // The GPL original takes the same export.
    assert!(check(&target, &tree, &api).would_load());
}

#[test]
fn wrong_machine_is_refused_and_a_builtin_name_warned() {
    let api = fixture("6.1/hello_api.ko");
    let tree = Scratch::new("check-machine");
    let mut target = Target::new(sample_symvers(line), modversions());
    target.builtin = vec!["hello_api".into()];
    let report = check(&target, tree.path(), &api);
    assert!(report.would_load());
    assert!(report.warnings().any(|f| f.kind == Kind::Builtin));
    target.machine = Some(183); // EM_AARCH64
    let report = check(&target, tree.path(), &api);
    assert_eq!(report.errno(), Some(libc::ENOEXEC));
    assert_eq!(
        report.refusals().next().unwrap().message,
        "Invalid architecture in ELF header: 62"
    );
}

#[test]
fn hello_feature_without_hello_api_in_the_tree_names_its_exporter() {
    let scratch = Scratch::new("check-feature");
    let api = scratch.write(
        "out/hello_api.ko",
        std::fs::read(fixture("6.1/hello_api.ko")).unwrap(),
    );
    let feature = scratch.write(
        "out/hello_feature.ko",
        std::fs::read(fixture("6.1/hello_feature.ko")).unwrap(),
    );
    let tree = scratch.mkdir("tree");
    // hello_feature's __versions records api_test too: the kernel must not have it.
    let kernel = |name: &str, crc, kind: &str| {
        (name != "api_test")
            .then(|| line(name, crc, kind))
            .flatten()
    };
    let target = Target::new(sample_symvers(kernel), modversions());
    let report = check(&target, &tree, &feature);
    assert_eq!(report.errno(), Some(libc::ENOENT));
    let refusal = report.refusals().next().unwrap();
    assert_eq!(
        (refusal.kind, refusal.message.as_str()),
        (Kind::UnknownSymbol, "Unknown symbol api_test (err -2)")
    );
    let note = refusal.note.as_deref().unwrap();
    assert!(
        note.contains(&format!("exported by hello_api ({})", api.display())),
        "{note}"
    );

    // With hello_api in the tree it is a dependency, loaded first, and its CRC is checked.
    let installed = scratch.write(
        "tree/extra/hello_api.ko",
        std::fs::read(fixture("6.1/hello_api.ko")).unwrap(),
    );
    let report = check(&target, &tree, &feature);
    assert!(report.would_load(), "{report:#?}");
    assert_eq!(report.dependencies, ["hello_api"]);

    // A dependency that would be refused refuses the module with its errno.
    let target = Target::new(
        sample_symvers(|name, crc, kind| {
            (name != "_printk" && name != "api_test")
                .then(|| line(name, crc, kind))
                .flatten()
        }),
        modversions(),
    );
    let report = check(&target, &tree, &feature);
    let first = report.refusals().next().unwrap();
    assert_eq!(first.kind, Kind::Dependency, "{report:#?}");
    assert!(first.message.contains(&installed.display().to_string()));
}

#[test]
fn symvers_errors_name_the_file_and_line() {
    let err = Symvers::parse(
        "0x1\tok\tvmlinux\tEXPORT_SYMBOL\t\nzz\tbad\tvmlinux\tEXPORT_SYMBOL\t\n",
        Path::new("/h/Module.symvers"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/h/Module.symvers:2: the CRC is not a 32-bit 0x-prefixed hexadecimal number"
    );
    assert!(std::error::Error::source(&err).is_none());
    let symvers = Symvers::parse(
        "0x00000001\ta\tvmlinux\tEXPORT_SYMBOL_GPL\tNS\n0x2\tb\tdrivers/x\tEXPORT_SYMBOL\t\n",
        Path::new("s"),
    )
    .unwrap();
    assert_eq!(symvers.len(), 1, "only vmlinux's exports are kept");
    let a = symvers.get("a").unwrap();
    assert_eq!(
        (a.crc, a.gpl_only, a.namespace.as_deref()),
        (1, true, Some("NS"))
    );
}

/// The signature fixtures of modkit-elf: hello_api.ko signed with throwaway keys.
fn signed(name: &str) -> PathBuf {
    modkit_testkit::workspace_root()
        .join("crates/modkit-elf/testdata/sig")
        .join(name)
}

/// A target of the sample modules with `CONFIG_MODULE_SIG`, trusting `trusted.x509`.
fn signing_target(enforce: bool) -> Target {
    let mut target = Target::new(
        sample_symvers(line),
        KernelConfig::parse("CONFIG_MODVERSIONS=y\nCONFIG_MODULE_SIG=y\n"),
    );
    target.trusted = Some(Target::read_certificates(&signed("trusted.x509")).unwrap());
    target.sig_enforce = enforce;
    target
}

fn signature_findings(report: &Report) -> Vec<(Kind, Option<i32>, &str, Option<&str>)> {
    report
        .findings
        .iter()
        .filter(|f| matches!(f.kind, Kind::Signature | Kind::Taint('E')))
        .map(|f| (f.kind, f.errno, f.message.as_str(), f.note.as_deref()))
        .collect()
}

const TAINT_E: &str =
    "module verification failed: signature and/or required key missing - tainting kernel";

#[test]
fn a_module_signed_with_a_trusted_key_loads_under_enforcement() {
    let tree = Scratch::new("check-sig-good");
    for (name, enforce) in [
        ("hello_api.sha256.ko", true),
        ("hello_api.sha512-attrs.ko", true),
        ("hello_api.sha256.ko", false),
    ] {
        let report = check(&signing_target(enforce), tree.path(), &signed(name));
        assert_eq!(
            kinds(&report),
            [(Kind::Taint('O'), None)],
            "{name}: {report:#?}"
        );
    }
}

#[test]
fn unsigned_or_unknown_key_is_rejected_under_enforcement_and_taints_otherwise() {
    let tree = Scratch::new("check-sig-enforce");
    let unsigned = fixture("6.1/hello_api.ko");
    let stranger = signed("hello_api.stranger.ko");
    let unavailable = "no trusted certificate has the signer's issuer \
                       'CN=another signing key,O=elsewhere' and serial 02";
    let enforcing = signing_target(true);
    let report = check(&enforcing, tree.path(), &unsigned);
    assert_eq!(report.errno(), Some(libc::EKEYREJECTED));
    assert_eq!(
        signature_findings(&report),
        [(
            Kind::Signature,
            Some(libc::EKEYREJECTED),
            "Loading of unsigned module is rejected",
            None
        )]
    );
    let report = check(&enforcing, tree.path(), &stranger);
    assert_eq!(
        signature_findings(&report),
        [(
            Kind::Signature,
            Some(libc::EKEYREJECTED),
            "Loading of module with unavailable key is rejected",
            Some(unavailable)
        )]
    );

    let lenient = signing_target(false);
    let report = check(&lenient, tree.path(), &unsigned);
    assert!(report.would_load(), "{report:#?}");
    assert_eq!(
        signature_findings(&report),
        [(Kind::Taint('E'), None, TAINT_E, None)]
    );
    let report = check(&lenient, tree.path(), &stranger);
    assert!(report.would_load(), "{report:#?}");
    assert_eq!(
        signature_findings(&report),
        [(Kind::Taint('E'), None, TAINT_E, Some(unavailable))]
    );

    // Enforcement without certificates still knows an unsigned module.
    let mut blind = signing_target(true);
    blind.trusted = None;
    assert_eq!(
        check(&blind, tree.path(), &unsigned).errno(),
        Some(libc::EKEYREJECTED)
    );
    // CONFIG_MODULE_SIG_FORCE enforces.
    let forced = Target::new(
        sample_symvers(line),
        KernelConfig::parse("CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n"),
    );
    assert!(forced.sig_enforce);
}

#[test]
fn a_signature_that_fails_is_refused_even_without_enforcement() {
    let tree = Scratch::new("check-sig-bad");
    let lenient = signing_target(false);
    for name in ["hello_api.tampered.ko", "hello_api.impostor.ko"] {
        let report = check(&lenient, tree.path(), &signed(name));
        let found = signature_findings(&report);
        assert_eq!(found.len(), 1, "{name}: {report:#?}");
        assert_eq!(
            (found[0].0, found[0].1),
            (Kind::Signature, Some(libc::EKEYREJECTED))
        );
        assert!(
            found[0].2.starts_with("the sha256 RSA signature does not verify with the certificate 'CN=modkit test signing key,O=modkit'"),
            "{name}: {}",
            found[0].2
        );
    }
    let report = check(&lenient, tree.path(), &signed("hello_api.bad-trailer.ko"));
    assert_eq!(
        signature_findings(&report),
        [(
            Kind::Signature,
            Some(libc::EBADMSG),
            "malformed signature: sig_len 2130706432 is longer than the 7672 bytes before the trailer",
            Some("the kernel refuses a malformed signature even when signatures are not enforced")
        )]
    );
}

#[test]
fn certificate_files_and_images_that_are_not_are_errors_naming_the_file() {
    let scratch = Scratch::new("check-certs");
    let bad = scratch.write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    let err = Target::read_certificates(&bad).unwrap_err();
    assert!(
        std::error::Error::source(&err).is_none(),
        "the cause is in the message"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: certificate at offset 0x0: a PEM certificate without its -----END CERTIFICATE----- line",
            bad.display()
        )
    );
    let empty = scratch.write("empty", "");
    let err = Target::read_certificates(&empty).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: no X.509 certificate in it", empty.display())
    );
    let err = Target::image_certificates(&empty).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: kernel image: neither an ELF vmlinux nor a bzImage (no \"HdrS\" at 0x202)",
            empty.display()
        )
    );
    // An ELF file without certificates.
    let err = Target::image_certificates(&fixture("6.1/hello_api.ko")).unwrap_err();
    assert!(
        err.to_string().ends_with(": no X.509 certificate in it"),
        "{err}"
    );
    let missing = scratch.join("missing.x509");
    let err = Target::read_certificates(&missing).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("could not read {}: ", missing.display())),
        "{err}"
    );
}

/// Debian 6.1's tree, indexed in a scratch copy (hard links), against its headers'
/// Module.symvers, its config and the certificates of its own image with signatures enforced:
/// every module would load, each signature verified. Also the 6.12 sample module
/// against it: refused as the kernel refuses it (module_layout's CRC, ENOEXEC).
#[test]
fn every_module_of_debian_6_1_would_load_on_6_1() {
    let test = "check::every_module_of_debian_6_1_would_load_on_6_1";
    let Some(cached) = modkit_testkit::require(test, modkit_testkit::kernel_modules_dir("6.1"))
    else {
        return;
    };
    let release = cached.file_name().unwrap().to_str().unwrap().to_owned();
    let cache_root = cached.ancestors().nth(3).unwrap().to_path_buf();
    let symvers_path = cache_root
        .join("usr/src")
        .join(format!("linux-headers-{release}"))
        .join("Module.symvers");
    let found = if symvers_path.is_file() {
        Ok(symvers_path.clone())
    } else {
        Err(modkit_testkit::Missing::new(
            format!("no {}", symvers_path.display()),
            "cargo xtask kmods (extracts Debian's headers into the cache)",
        ))
    };
    let Some(symvers_path) = modkit_testkit::require(test, found) else {
        return;
    };
    let scratch = Scratch::new("check-debian");
    let dir = scratch.join(format!("lib/modules/{release}"));
    std::fs::create_dir_all(&dir).unwrap();
    link_tree(&cached.join("kernel"), &dir.join("kernel"));
    for file in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        std::fs::copy(cached.join(file), dir.join(file)).unwrap();
    }
    let mut depmod = modkit::depgraph::Depmod::new(&dir, modkit::depgraph::Flavor::kmod30());
    let generated = depmod.generate().unwrap();
    depmod.write(&generated).unwrap();

    let symvers = Symvers::read(&symvers_path).unwrap();
    assert!(symvers.len() > 10_000, "{} kernel exports", symvers.len());
    let config = std::fs::read_to_string(cache_root.join(format!("boot/config-{release}")))
        .map(|text| KernelConfig::parse(&text))
        .unwrap();
    assert!(config.modversions);
    let mut target = Target::new(symvers, config);
    target.learn_from_tree(&dir).unwrap();
    assert!(target.vermagic.as_deref().unwrap().starts_with(&release));
    // Signatures enforced, against the certificates built into the kernel's own image:
    // every module must verify (Debian signs them with the key each build embeds).
    target.trusted = Some(image_certificates(&cache_root, &release));
    target.sig_enforce = true;

    let modules: Vec<PathBuf> = std::fs::read_to_string(dir.join("modules.dep"))
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(path, _)| dir.join(path))
        .collect();
    assert!(modules.len() > 4000, "{} modules", modules.len());
    let mut ctx = Context::new(&dir, ModprobeConfig::default());
    let mut checker = Checker::new(&target, &mut ctx);
    checker.search_own_dir(false);
    let started = Instant::now();
    let refused: Vec<String> = modules
        .iter()
        .map(|path| checker.check(path))
        .filter(|report| !report.would_load())
        .map(|report| format!("{report:?}"))
        .collect();
    report_all("checked", &release, modules.len(), started, &refused);

    // Not vacuous: a module of the tree changed by one byte is refused, an unsigned one too.
    let mut changed = std::fs::read(&modules[0]).unwrap();
    changed[1000] ^= 1;
    let changed_path = scratch.write("changed.ko", changed);
    let report = checker.check(&changed_path);
    let first = report.refusals().next().unwrap();
    assert_eq!(
        (first.kind, first.errno),
        (Kind::Signature, Some(libc::EKEYREJECTED)),
        "{report:#?}"
    );
    assert!(first.message.contains("does not verify"), "{report:#?}");
    let report = checker.check(&fixture("6.1/hello_api.ko"));
    assert_eq!(
        report.refusals().next().map(|f| f.message.as_str()),
        Some("Loading of unsigned module is rejected")
    );

    // The 6.12 sample: unsigned (checked first, refused under enforcement), then module_layout.
    let other = checker.check(&fixture("6.12/hello_api.ko"));
    assert_eq!(other.errno(), Some(libc::EKEYREJECTED), "{other:#?}");
    let second = other.refusals().nth(1).unwrap();
    assert_eq!(
        (second.kind, second.errno, second.message.as_str()),
        (
            Kind::ModuleLayout,
            Some(libc::ENOEXEC),
            "disagrees about version of symbol module_layout"
        )
    );
}

/// The certificates built into `ROOT/boot/vmlinuz-RELEASE`, timed; Debian's build key must be
/// among them.
fn image_certificates(root: &Path, release: &str) -> Vec<modkit::elf::Certificate> {
    let image = root.join(format!("boot/vmlinuz-{release}"));
    let started = Instant::now();
    let certs = Target::image_certificates(&image).unwrap();
    println!(
        "{} certificates in {} in {:.2} s: {:?}",
        certs.len(),
        image.display(),
        started.elapsed().as_secs_f64(),
        certs.iter().map(|c| c.subject()).collect::<Vec<_>>()
    );
    assert!(
        certs
            .iter()
            .any(|c| c.subject() == "CN=Build time autogenerated kernel key"),
        "no build key among {} certificates",
        certs.len()
    );
    certs
}

/// Says how many modules of `release` were checked and how long it took; fails with the
/// first few failures.
fn report_all(verb: &str, release: &str, total: usize, started: Instant, failures: &[String]) {
    println!(
        "{verb} {total} modules of Debian {release} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

/// `from` hard-linked under `to` (the cache is never written to).
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            link_tree(&entry.path(), &target);
        } else {
            std::fs::hard_link(entry.path(), &target)
                .or_else(|_| std::fs::copy(entry.path(), &target).map(|_| ()))
                .unwrap();
        }
    }
}

/// Debian 6.12 signs its modules with an ECDSA P-384 build key: every `.ko.xz` of the tree
/// verifies against the certificate found in its own bzImage (the whole `--all` over 6.12 is
/// the 6.1 test's work again, with xz; this is its signature part).
#[test]
fn every_module_of_debian_6_12_verifies_against_its_image() {
    let test = "check::every_module_of_debian_6_12_verifies_against_its_image";
    let Some(cached) = modkit_testkit::require(test, modkit_testkit::kernel_modules_dir("6.12"))
    else {
        return;
    };
    let release = cached.file_name().unwrap().to_str().unwrap().to_owned();
    let certs = image_certificates(cached.ancestors().nth(3).unwrap(), &release);
    let mut files = Vec::new();
    let mut todo = vec![cached.join("kernel")];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            } else if entry.file_name().to_string_lossy().ends_with(".ko.xz") {
                files.push(entry.path());
            }
        }
    }
    assert!(files.len() > 4000, "{} modules", files.len());
    let started = Instant::now();
    // xz and P-384 cost about 20 ms a module: one share of the files per core.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let verify_all = |paths: &[PathBuf]| -> Vec<String> {
        let mut failed = Vec::new();
        for path in paths {
            let bytes = std::fs::read(path).unwrap();
            let module =
                modkit::elf::decompress(&bytes, modkit::elf::DEFAULT_DECOMPRESS_LIMIT).unwrap();
            if let Err(err) = modkit::elf::verify(&module, &certs) {
                failed.push(format!("{}: {err}", path.display()));
            }
        }
        failed
    };
    let failed: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(workers))
            .map(|chunk| scope.spawn(|| verify_all(chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    report_all("verified", &release, files.len(), started, &failed);
    // Not vacuous: one byte changed is refused.
    let bytes = std::fs::read(&files[0]).unwrap();
    let mut module = modkit::elf::decompress(&bytes, modkit::elf::DEFAULT_DECOMPRESS_LIMIT)
        .unwrap()
        .into_owned();
    module[1000] ^= 1;
    assert!(matches!(
        modkit::elf::verify(&module, &certs),
        Err(modkit::elf::SignatureError::BadSignature {
            algorithm: "ECDSA",
            ..
        })
    ));
}
