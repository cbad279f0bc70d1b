//! What a target kernel offers modules: its exports and CRCs (`Module.symvers`), the module
//! options of its configuration (`config-VERSION`), and the facts its own modules give away
//! (vermagic, ELF machine and class).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::CheckError;

/// One export of the kernel image, from a `Module.symvers` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelSymbol {
    /// The modversions CRC (0 when the kernel has no `CONFIG_MODVERSIONS`).
    pub crc: u32,
    /// Exported with `EXPORT_SYMBOL_GPL`.
    pub gpl_only: bool,
    /// The symbol namespace, when exported into one.
    pub namespace: Option<String>,
}

/// The exports of the kernel image (`vmlinux`) listed in a `Module.symvers`.
///
/// Each line is `CRC<TAB>SYMBOL<TAB>MODULE<TAB>EXPORT_TYPE<TAB>NAMESPACE` (scripts/mod/modpost.c,
/// `write_dump`); only the lines of module `vmlinux` are kept: the modules' exports come from
/// the module files of the tree being checked.
#[derive(Debug, Clone, Default)]
pub struct Symvers {
    symbols: HashMap<String, KernelSymbol>,
}

impl Symvers {
    /// Parse the text of a `Module.symvers`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Symvers, CheckError> {
        let mut symbols = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let bad = |what: &'static str| CheckError::Symvers {
                path: path.to_owned(),
                line: index + 1,
                what,
            };
            let mut fields = line.split('\t');
            let (Some(crc), Some(name), Some(module), Some(kind)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad(
                    "expected CRC, symbol, module and export type, tab-separated",
                ));
            };
            let crc = crc
                .strip_prefix("0x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .ok_or_else(|| bad("the CRC is not a 32-bit 0x-prefixed hexadecimal number"))?;
            let gpl_only = match kind {
                "EXPORT_SYMBOL" => false,
                "EXPORT_SYMBOL_GPL" => true,
                _ => {
                    return Err(bad(
                        "the export type is neither EXPORT_SYMBOL nor EXPORT_SYMBOL_GPL",
                    ));
                }
            };
            if name.is_empty() {
                return Err(bad("the symbol name is empty"));
            }
            if module != "vmlinux" {
                continue;
            }
            let namespace = fields.next().filter(|ns| !ns.is_empty()).map(str::to_owned);
            symbols.insert(
                name.to_owned(),
                KernelSymbol {
                    crc,
                    gpl_only,
                    namespace,
                },
            );
        }
        Ok(symbols.into())
    }

    /// Read and parse the `Module.symvers` at `path`.
    pub fn read(path: &Path) -> Result<Symvers, CheckError> {
        let text = std::fs::read_to_string(path).map_err(|cause| CheckError::Io {
            path: path.to_owned(),
            cause,
        })?;
        Symvers::parse(&text, path)
    }

    /// The kernel's export of `name`.
    pub fn get(&self, name: &str) -> Option<&KernelSymbol> {
        self.symbols.get(name)
    }

    /// How many exports the kernel image has.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether no export was listed.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Whether any CRC is set: the kernel was built with `CONFIG_MODVERSIONS`.
    pub fn has_crcs(&self) -> bool {
        self.symbols.values().any(|symbol| symbol.crc != 0)
    }
}

impl From<HashMap<String, KernelSymbol>> for Symvers {
    fn from(symbols: HashMap<String, KernelSymbol>) -> Symvers {
        Symvers { symbols }
    }
}

/// The options of the target's configuration that decide what a module load checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KernelConfig {
    /// `CONFIG_MODVERSIONS`: CRCs are compared.
    pub modversions: bool,
    /// `CONFIG_MODULE_FORCE_LOAD`: a module without vermagic or without `__versions` loads,
    /// tainting the kernel (F), where otherwise it is refused.
    pub force_load: bool,
    /// `CONFIG_MODULE_SIG`: an unsigned module taints the kernel (E).
    pub module_sig: bool,
    /// `CONFIG_MODULE_SIG_FORCE`: signatures are enforced, as `module.sig_enforce=1` does.
    pub module_sig_force: bool,
}

impl KernelConfig {
    /// The options from the text of a kernel `.config` (`/boot/config-VERSION`).
    pub fn parse(text: &str) -> KernelConfig {
        let set = |option: &str| {
            text.lines()
                .any(|line| line.strip_prefix(option) == Some("=y"))
        };
        KernelConfig {
            modversions: set("CONFIG_MODVERSIONS"),
            force_load: set("CONFIG_MODULE_FORCE_LOAD"),
            module_sig: set("CONFIG_MODULE_SIG"),
            module_sig_force: set("CONFIG_MODULE_SIG_FORCE"),
        }
    }

    /// Without the configuration file: modversions when the kernel's exports have CRCs, and
    /// neither forced loads nor signatures assumed.
    pub fn guess(symvers: &Symvers) -> KernelConfig {
        KernelConfig {
            modversions: symvers.has_crcs(),
            force_load: false,
            module_sig: false,
            module_sig_force: false,
        }
    }
}

/// Everything a module is checked against.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Target {
    /// The kernel's `VERMAGIC_STRING`; `None` when unknown (not checked).
    pub vermagic: Option<String>,
    /// The kernel's ELF machine (`e_machine`); `None` when unknown.
    pub machine: Option<u16>,
    /// The kernel's ELF class; `None` when unknown.
    pub class: Option<modkit_elf::ElfClass>,
    /// The kernel image's exports.
    pub symvers: Symvers,
    /// Its module options.
    pub config: KernelConfig,
    /// The names of its built-in modules (modules.builtin).
    pub builtin: Vec<String>,
    /// The in-tree module the vermagic, machine and class were taken from.
    pub reference: Option<PathBuf>,
    /// `sizeof(struct module)`, the size of the reference's `.gnu.linkonce.this_module`, when
    /// the kernel compares each module's with it (Linux 6.4 and later, `elf_validity_check`);
    /// `None`: not checked.
    pub this_module_size: Option<usize>,
    /// The kernel's trusted certificates (its built-in keyring): each module's signature is
    /// verified against them, as the kernel does when built with `CONFIG_MODULE_SIG` (given,
    /// they stand for that option, whatever [`KernelConfig`] says). `None`:
    /// signatures are not verified, and a module counts as signed when it has the trailer.
    pub trusted: Option<Vec<modkit_elf::Certificate>>,
    /// Signatures are enforced (`module.sig_enforce=1`, `CONFIG_MODULE_SIG_FORCE`, lockdown):
    /// a module unsigned, signed by a key the kernel lacks or with crypto it does not support
    /// is refused with `EKEYREJECTED`, where otherwise it taints the kernel (E).
    pub sig_enforce: bool,
}

impl Target {
    /// A target with these exports and options and nothing else known.
    pub fn new(symvers: Symvers, config: KernelConfig) -> Target {
        Target {
            sig_enforce: config.module_sig_force,
            vermagic: None,
            machine: None,
            class: None,
            symvers,
            config,
            builtin: Vec::new(),
            reference: None,
            this_module_size: None,
            trusted: None,
        }
    }

    /// The kernel's trusted certificates from a file: PEM, or DER (one or several
    /// concatenated, as `certs/signing_key.x509` and the kernel's built-in list).
    pub fn read_certificates(path: &Path) -> Result<Vec<modkit_elf::Certificate>, CheckError> {
        let bytes = std::fs::read(path).map_err(|cause| CheckError::Io {
            path: path.to_owned(),
            cause,
        })?;
        let certs =
            modkit_elf::parse_certificates(&bytes).map_err(|cause| CheckError::Certificates {
                path: path.to_owned(),
                cause,
            })?;
        if certs.is_empty() {
            return Err(CheckError::NoCertificates {
                path: path.to_owned(),
            });
        }
        Ok(certs)
    }

    /// The certificates compiled into a kernel image (an ELF vmlinux or a bzImage): every
    /// DER X.509 certificate in it (Debian's vmlinux has no symbol table to find
    /// `system_certificate_list` by; see [`modkit_elf::certificates_in_image`]).
    pub fn image_certificates(path: &Path) -> Result<Vec<modkit_elf::Certificate>, CheckError> {
        let bytes = std::fs::read(path).map_err(|cause| CheckError::Io {
            path: path.to_owned(),
            cause,
        })?;
        let vmlinux = modkit_elf::bzimage::vmlinux(&bytes).map_err(|cause| CheckError::Image {
            path: path.to_owned(),
            cause,
        })?;
        let certs = modkit_elf::certificates_in_image(&vmlinux);
        if certs.is_empty() {
            return Err(CheckError::NoCertificates {
                path: path.to_owned(),
            });
        }
        Ok(certs)
    }

    /// The kernel's vermagic, machine and class from the first in-tree module (`intree=Y`)
    /// of `module_dir`'s modules.dep (else modules.order), and its built-in modules from
    /// modules.builtin. Every in-tree module carries the kernel's `VERMAGIC_STRING`.
    pub fn learn_from_tree(&mut self, module_dir: &Path) -> Result<(), CheckError> {
        if let Ok(text) = std::fs::read_to_string(module_dir.join("modules.builtin")) {
            self.builtin = text
                .lines()
                .filter_map(|line| modkit_glob::name::path_to_modname(Path::new(line)))
                .collect();
        }
        for path in tree_modules(module_dir) {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(image) = modkit_elf::decompress(&bytes, modkit_elf::DEFAULT_DECOMPRESS_LIMIT)
            else {
                continue;
            };
            let Ok(module) = modkit_elf::Module::parse(&image) else {
                continue;
            };
            let info = module.modinfo();
            if info.intree().is_none() {
                continue;
            }
            let Some(vermagic) = info.vermagic() else {
                continue;
            };
            self.vermagic = Some(vermagic.to_owned());
            self.machine = Some(module.machine());
            self.class = Some(module.class());
            self.this_module_size = if checks_this_module_size(vermagic) {
                module.section(THIS_MODULE).ok().flatten().map(<[u8]>::len)
            } else {
                None
            };
            self.reference = Some(path);
            return Ok(());
        }
        Err(CheckError::NoReference {
            dir: module_dir.to_owned(),
        })
    }
}

/// The section that holds a module's `struct module`.
pub(crate) const THIS_MODULE: &str = ".gnu.linkonce.this_module";

/// Whether a kernel of this vermagic (its first word is the release) compares the size of
/// each module's [`THIS_MODULE`] with its own `struct module`: since Linux 6.4
/// (kernel/module/main.c, `elf_validity_cache_index_mod`; Debian's 6.1 does not, its 6.12 does).
fn checks_this_module_size(vermagic: &str) -> bool {
    let release = vermagic.split(' ').next().unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (6, 4),
        _ => false,
    }
}

/// The module files of a tree in modules.dep's order, else modules.order's (each tried with
/// the compression extensions, as Debian installs `.ko` entries as `.ko.xz`).
pub(crate) fn tree_modules(module_dir: &Path) -> Vec<PathBuf> {
    if let Ok(text) = std::fs::read_to_string(module_dir.join("modules.dep")) {
        return text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(path, _)| module_dir.join(path))
            .collect();
    }
    let Ok(text) = std::fs::read_to_string(module_dir.join("modules.order")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            ["", ".xz", ".zst", ".gz"]
                .iter()
                .map(|ext| module_dir.join(format!("{line}{ext}")))
                .find(|path| path.is_file())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::checks_this_module_size;

    #[test]
    fn which_kernels_check_the_size_of_struct_module() {
        for (vermagic, checks) in [
            ("6.1.0-57-amd64 SMP preempt mod_unload modversions ", false),
            (
                "6.12.117+deb12-amd64 SMP preempt mod_unload modversions ",
                true,
            ),
            ("6.4.0 SMP", true),
            ("6.3.13 SMP", false),
            ("5.10.0-30-amd64 SMP mod_unload modversions ", false),
            ("7.0.1", true),
            ("", false),
            ("garbage", false),
        ] {
            assert_eq!(checks_this_module_size(vermagic), checks, "{vermagic}");
        }
    }
}
