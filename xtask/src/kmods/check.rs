//! The sample modules of `modkit check`'s VM scenario (`kmods/check_*`): a control the kernel
//! accepts and one module per reason it refuses one. Built after `hello_api` and
//! `hello_feature`, into the same cache directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, ensure};
use xshell::Shell;

use super::{make, make_signing_key, replace_file, sign_with};
use crate::kernels::KernelTree;

/// The sources in `kmods/`, in build order (`check_crc` takes `check_api_v2`'s exports).
pub const MODULES: [&str; 6] = [
    "check_control",
    "check_signed",
    "check_missing",
    "check_api_v2",
    "check_crc",
    "check_proprietary",
];

/// The built modules (with debug info), as the VM scenario offers them to the kernel.
#[derive(Debug, Clone)]
pub struct CheckModules {
    /// Loads (GPL, imports only what the kernel exports).
    pub control: PathBuf,
    /// Signed with a throwaway key the kernel does not have.
    pub signed: PathBuf,
    /// Needs `check_missing_nowhere`, which nobody exports.
    pub missing: PathBuf,
    /// Needs `api_test` with a CRC that is not hello_api's.
    pub crc: PathBuf,
    /// License "Proprietary", needs the kernel's GPL-only `ktime_get_mono_fast_ns`.
    pub proprietary: PathBuf,
    /// The certificate of the key `signed` is signed with (DER).
    pub signing_cert: PathBuf,
}

impl CheckModules {
    /// Where [`build_in`] puts them.
    pub fn in_dir(out: &Path) -> CheckModules {
        CheckModules {
            control: out.join("check_control.ko"),
            signed: out.join("check_signed.ko"),
            missing: out.join("check_missing.ko"),
            crc: out.join("check_crc.ko"),
            proprietary: out.join("check_proprietary.ko"),
            signing_cert: out.join("check_signing_key.x509"),
        }
    }

    /// The files, each with its module name.
    pub fn files(&self) -> [(&'static str, &Path); 5] {
        [
            ("check_control", &self.control),
            ("check_signed", &self.signed),
            ("check_missing", &self.missing),
            ("check_crc", &self.crc),
            ("check_proprietary", &self.proprietary),
        ]
    }

    pub fn all_exist(&self) -> bool {
        self.files().iter().all(|(_, path)| path.is_file()) && self.signing_cert.is_file()
    }
}

/// The license record of `check_proprietary` as compiled (modpost refuses a GPL-only symbol
/// to a non-GPL module at build time, and reads the record up to its first NUL: "GPL") and
/// as the built module carries it, the same length.
const LICENSE_AS_BUILT: &[u8] = b"license=GPL\0rietary\0";
const LICENSE_SHIPPED: &[u8] = b"license=Proprietary\0";

/// Builds [`MODULES`] in `work` and copies the results to `out`.
pub(super) fn build_in(sh: &Shell, kernel: &KernelTree, work: &Path, out: &Path) -> Result<()> {
    for module in MODULES {
        let extra_symbols = match module {
            "check_crc" => vec![work.join("check_api_v2/Module.symvers")],
            _ => Vec::new(),
        };
        // modpost refuses a module with a symbol nobody exports; the kernel is what should.
        let args: &[&str] = match module {
            "check_missing" => &["KBUILD_MODPOST_WARN=1"],
            _ => &[],
        };
        make(sh, kernel, work, module, &extra_symbols, args)?;
    }
    let built = CheckModules::in_dir(out);
    for (module, dest) in built.files() {
        let ko = work.join(module).join(format!("{module}.ko"));
        let mut bytes =
            std::fs::read(&ko).with_context(|| format!("make did not produce {}", ko.display()))?;
        match module {
            "check_proprietary" => relicense(&mut bytes)
                .with_context(|| format!("cannot relicense {}", ko.display()))?,
            "check_signed" => {
                let (key, cert) = make_signing_key(sh, work)?;
                sign_with(sh, kernel, &key, &cert, &ko)?;
                bytes = std::fs::read(&ko)?;
                replace_file(&built.signing_cert, &std::fs::read(&cert)?)?;
            }
            _ => {}
        }
        replace_file(dest, &bytes)?;
    }
    Ok(())
}

/// Rewrites [`LICENSE_AS_BUILT`] to [`LICENSE_SHIPPED`] in place.
fn relicense(bytes: &mut [u8]) -> Result<()> {
    let at: Vec<usize> = bytes
        .windows(LICENSE_AS_BUILT.len())
        .enumerate()
        .filter(|(_, w)| *w == LICENSE_AS_BUILT)
        .map(|(i, _)| i)
        .collect();
    ensure!(
        at.len() == 1,
        "expected the record {:?} once, found it {} times",
        String::from_utf8_lossy(LICENSE_AS_BUILT),
        at.len()
    );
    bytes[at[0]..at[0] + LICENSE_SHIPPED.len()].copy_from_slice(LICENSE_SHIPPED);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relicensing() {
        assert_eq!(LICENSE_AS_BUILT.len(), LICENSE_SHIPPED.len());
        let mut module = b"\0author=x\0license=GPL\0rietary\0name=y\0".to_vec();
        relicense(&mut module).unwrap();
        assert_eq!(module, b"\0author=x\0license=Proprietary\0name=y\0");
        // Once only, and never where the record is not.
        assert!(relicense(&mut module).is_err());
        let mut twice = [LICENSE_AS_BUILT, LICENSE_AS_BUILT].concat();
        assert!(relicense(&mut twice).is_err());
    }
}
