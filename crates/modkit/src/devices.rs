//! Which modules a device needs: the device half of Guix's `(gnu build linux-modules)`
//! (`device-module-aliases`, `matching-modules`, `missing-modules`, `known-module-aliases`),
//! answered through the indexes of a [`Context`] (kmod's lookup order) or from a text
//! `modules.alias`.
//!
//! A device is named by its node (`/dev/vda`), its sysfs directory (`/sys/devices/...`) or its
//! number (`block:254:0`, `char:4:64`); its modaliases come from sysfs ([`Sysfs`]), nearest
//! first; each modalias is looked up as modprobe looks it up; the modules found, with their
//! dependencies from modules.dep, make the load order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use modkit_glob::{AliasError, AliasMatcher};
use modkit_sysfs::{DeviceKind, DeviceNumber, Sysfs};

use crate::name::modname_normalize;
use crate::{Context, Error, ModId};

/// A device, as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A device node, absolute or relative to the `/dev` directory of the [`Sysfs`].
    Node(PathBuf),
    /// A device directory in sysfs, under its root or relative to it (`devices/...`).
    Dir(PathBuf),
    /// A device number.
    Number(DeviceNumber),
}

impl Device {
    /// `block:MAJOR:MINOR` or `char:MAJOR:MINOR` is a number; a path that is a directory
    /// under the sysfs root, or starts with `devices/`, is a sysfs directory; anything else is
    /// a device node.
    pub fn parse(spec: &str, sysfs: &Sysfs) -> Device {
        let number = |kind, rest: &str| {
            let (major, minor) = rest.split_once(':')?;
            Some(Device::Number(DeviceNumber {
                kind,
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
            }))
        };
        let parsed = if let Some(rest) = spec.strip_prefix("block:") {
            number(DeviceKind::Block, rest)
        } else if let Some(rest) = spec.strip_prefix("char:") {
            number(DeviceKind::Char, rest)
        } else {
            None
        };
        if let Some(device) = parsed {
            return device;
        }
        let path = Path::new(spec);
        if path.starts_with("devices") || (path.starts_with(sysfs.root()) && path.is_dir()) {
            Device::Dir(path.to_owned())
        } else {
            Device::Node(path.to_owned())
        }
    }
}

/// The modaliases of a device, nearest first (Guix's `device-module-aliases`).
pub fn device_module_aliases(sysfs: &Sysfs, device: &Device) -> Result<Vec<String>, Error> {
    Ok(match device {
        Device::Node(node) => sysfs.device_modaliases(node)?,
        Device::Dir(dir) => sysfs.modaliases_of_dir(dir)?,
        Device::Number(number) => sysfs.modaliases_by_number(*number)?,
    })
}

/// What a set of modaliases needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needed {
    /// Each modalias with the modules it resolves to, in lookup order.
    pub matches: Vec<(String, Vec<ModId>)>,
    /// The modules to load, dependencies first, each name once (module files only).
    pub load_order: Vec<ModId>,
    /// The modules found that are built into the kernel (or have no file: an alias naming a
    /// module the directory does not have), each name once.
    pub builtin: Vec<ModId>,
}

/// Resolve `modaliases` as modprobe would (configured aliases, modules.alias.bin, built-in
/// modules), then order the modules with their dependencies from modules.dep.
pub fn modules_for_aliases(ctx: &mut Context, modaliases: &[String]) -> Result<Needed, Error> {
    let mut needed = Needed::default();
    let mut wanted = Vec::new();
    let mut builtin_names = HashSet::new();
    for alias in modaliases {
        let ids = ctx.lookup(alias)?;
        for &id in &ids {
            if ctx.is_builtin(id) || ctx.path(id)?.is_none() {
                if builtin_names.insert(ctx.name(id).to_owned()) {
                    needed.builtin.push(id);
                }
            } else {
                wanted.push(id);
            }
        }
        needed.matches.push((alias.clone(), ids));
    }
    needed.load_order = load_order(ctx, &wanted)?;
    Ok(needed)
}

/// Like [`modules_for_aliases`], with the modules of a text `modules.alias` instead of the
/// indexes' lookup (Guix's `matching-modules`, from [`known_module_aliases`]); dependencies
/// still come from modules.dep.bin where it knows the module. Nothing is taken as built in.
pub fn modules_for_aliases_in(
    ctx: &mut Context,
    known: &AliasMatcher,
    modaliases: &[String],
) -> Result<Needed, Error> {
    let mut needed = Needed::default();
    let mut wanted = Vec::new();
    for alias in modaliases {
        let ids: Vec<ModId> = matching_modules(known, alias)
            .into_iter()
            .map(|name| ctx.module_from_name(name))
            .collect();
        wanted.extend(&ids);
        needed.matches.push((alias.clone(), ids));
    }
    needed.load_order = load_order(ctx, &wanted)?;
    Ok(needed)
}

/// `modules` with their dependencies (modules.dep), dependencies first, each name once (the
/// first entry met for a name is kept).
pub fn load_order(ctx: &mut Context, modules: &[ModId]) -> Result<Vec<ModId>, Error> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for &id in modules {
        visit(ctx, id, &mut seen, &mut order)?;
    }
    Ok(order)
}

fn visit(
    ctx: &mut Context,
    id: ModId,
    seen: &mut HashSet<String>,
    order: &mut Vec<ModId>,
) -> Result<(), Error> {
    if !seen.insert(ctx.name(id).to_owned()) {
        return Ok(());
    }
    // modules.dep lists the whole closure, so no recursion is needed for correctness; it
    // is done anyway so that hand-written or partial indexes still give a valid order.
    for dep in ctx.dependencies(id)? {
        visit(ctx, dep, seen, order)?;
    }
    order.push(id);
    Ok(())
}

/// The names of `needed` that are not in `provided` (names compared as kmod normalises them:
/// `-` as `_`, up to the first `.`), in order, each once (Guix's `missing-modules`, over any list of needed modules).
pub fn missing_modules<'a>(
    needed: impl IntoIterator<Item = &'a str>,
    provided: &[String],
) -> Vec<&'a str> {
    let provided: HashSet<String> = provided.iter().map(|p| modname_normalize(p)).collect();
    let mut seen = HashSet::new();
    needed
        .into_iter()
        .filter(|name| {
            let name = modname_normalize(name);
            !provided.contains(&name) && seen.insert(name)
        })
        .collect()
}

/// The aliases of a text `modules.alias` (Guix's `known-module-aliases`), ready to match.
pub fn known_module_aliases(path: &Path) -> Result<AliasMatcher, AliasError> {
    Ok(AliasMatcher::new(modkit_glob::read_alias_file(path)?))
}

/// The modules whose alias pattern matches `modalias`, in file order, each once (Guix's
/// `matching-modules`).
pub fn matching_modules<'a>(known: &'a AliasMatcher, modalias: &str) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    known
        .modules(modalias)
        .into_iter()
        .filter(|m| seen.insert(*m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_and_nodes() {
        let sysfs = Sysfs::new("/sys");
        assert_eq!(
            Device::parse("char:4:64", &sysfs),
            Device::Number(DeviceNumber {
                kind: DeviceKind::Char,
                major: 4,
                minor: 64
            })
        );
        assert_eq!(
            Device::parse("block:x:1", &sysfs),
            Device::Node(PathBuf::from("block:x:1"))
        );
        assert_eq!(
            Device::parse("/dev/vda", &sysfs),
            Device::Node(PathBuf::from("/dev/vda"))
        );
        assert_eq!(
            Device::parse("vda", &sysfs),
            Device::Node(PathBuf::from("vda"))
        );
    }
}
