//! The host side of the `check` scenarios (vmtest/src/scenarios/check.rs): the target's files
//! under `vmtest::check::ROOT` (hello_api and one of the kernel's own signed modules as its
//! tree, its configuration, its headers' `Module.symvers`, the certificates built into its
//! image), the case modules (`kmods/check_*`) and hello_api as built for the other kernel.

use std::path::Path;

use ::vmtest::check::{CASE_MODULES, CASES_DIR, CERTS, OTHER_KERNEL, ROOT, SIGNED_MODULE};
use anyhow::{Context, Result, ensure};
use xshell::Shell;

use crate::kernels::{self, KernelTree, Series};
use crate::kmods::{self, BuiltModules};

/// The files, as (path in the archive, bytes).
pub fn files(
    sh: &Shell,
    kernel: &KernelTree,
    modules: &BuiltModules,
) -> Result<Vec<(String, Vec<u8>)>> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let root = ROOT.trim_start_matches('/');
    let release = &kernel.release;
    let mut files = Vec::new();

    let tree = format!("{root}/lib/modules/{release}");
    files.push((
        format!("{tree}/extra/hello_api.ko"),
        read(&modules.hello_api)?,
    ));
    let own = ["ko", "ko.xz"]
        .iter()
        .map(|ext| {
            (
                ext,
                kernel.modules_dir.join(format!("{SIGNED_MODULE}.{ext}")),
            )
        })
        .find(|(_, path)| path.is_file())
        .with_context(|| {
            format!(
                "{} has no {SIGNED_MODULE}.ko or .ko.xz",
                kernel.modules_dir.display()
            )
        })?;
    files.push((format!("{tree}/{SIGNED_MODULE}.{}", own.0), read(&own.1)?));
    // What an installed tree has besides its modules, so depmod and check see one.
    files.push((
        format!("{tree}/modules.order"),
        format!("{SIGNED_MODULE}.ko\nextra/hello_api.ko\n").into_bytes(),
    ));
    for name in ["modules.builtin", "modules.builtin.modinfo"] {
        files.push((
            format!("{tree}/{name}"),
            read(&kernel.modules_dir.join(name))?,
        ));
    }
    let config = kernel.root.join(format!("boot/config-{release}"));
    files.push((format!("{root}/boot/config-{release}"), read(&config)?));
    files.push((
        format!("{root}/usr/src/linux-headers-{release}/Module.symvers"),
        read(&kernel.headers.join("Module.symvers"))?,
    ));

    // The kernel's built-in keyring, as `modkit check --vmlinux` finds it in the image.
    let image = read(&kernel.vmlinuz)?;
    let vmlinux = modkit_elf::bzimage::vmlinux(&image)
        .with_context(|| format!("{} is not a usable kernel image", kernel.vmlinuz.display()))?;
    let certs = modkit_elf::certificates_in_image(&vmlinux);
    ensure!(
        !certs.is_empty(),
        "{} has no built-in certificate",
        kernel.vmlinuz.display()
    );
    let der: Vec<u8> = certs.iter().flat_map(|c| c.der().to_vec()).collect();
    files.push((CERTS.trim_start_matches('/').to_owned(), der));

    let cases = CASES_DIR.trim_start_matches('/');
    for (name, path) in modules.check.files() {
        ensure!(
            CASE_MODULES.contains(&name),
            "{name} is not in vmtest::check::CASE_MODULES"
        );
        files.push((format!("{cases}/{name}.ko"), read(path)?));
    }
    ensure!(
        CASE_MODULES.len() == modules.check.files().len(),
        "vmtest::check::CASE_MODULES and the built case modules differ"
    );

    let other = match kernel.series {
        Series::V6_1 => Series::V6_12,
        Series::V6_12 => Series::V6_1,
    };
    let other = kernels::ensure(sh, other)?;
    let other_modules = kmods::build(sh, &other)?;
    files.push((
        OTHER_KERNEL.trim_start_matches('/').to_owned(),
        read(&other_modules.hello_api)?,
    ));
    Ok(files)
}
