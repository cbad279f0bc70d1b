//! The `pci.ids` database (pciutils' `/usr/share/misc/pci.ids`): names for vendor, device,
//! subsystem and class ids.
//!
//! Format: `#` comments and blank lines; `VVVV  Vendor name`; `\tDDDD  Device name`;
//! `\t\tSSSS SSSS  Subsystem name`; then a class section whose lines are `C CC  Class name`,
//! `\tSS  Subclass name`, `\t\tPP  Programming interface name`. Ids are hexadecimal; names
//! follow two spaces.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where distributions install `pci.ids`, in the order they are tried.
pub const PCI_IDS_PATHS: &[&str] = &["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

#[derive(Clone, Debug, Default)]
struct Vendor {
    name: String,
    devices: HashMap<u16, Device>,
}

#[derive(Clone, Debug, Default)]
struct Device {
    name: String,
    subsystems: HashMap<(u16, u16), String>,
}

#[derive(Clone, Debug, Default)]
struct Class {
    name: String,
    subclasses: HashMap<u8, Subclass>,
}

#[derive(Clone, Debug, Default)]
struct Subclass {
    name: String,
    prog_ifs: HashMap<u8, String>,
}

/// A parsed `pci.ids`.
#[derive(Clone, Debug, Default)]
pub struct PciIds {
    vendors: HashMap<u16, Vendor>,
    classes: HashMap<u8, Class>,
}

/// Split `ID  name` into the id text and the name.
fn id_and_name(rest: &str) -> Option<(&str, &str)> {
    let (id, name) = rest.split_once(' ')?;
    Some((id, name.trim_start()))
}

impl PciIds {
    /// Parse the text of a `pci.ids` file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PciIds> {
        let mut ids = PciIds::default();
        // The vendor and device, or class and subclass, the indented lines belong to.
        let mut vendor: Option<u16> = None;
        let mut device: Option<u16> = None;
        let mut class: Option<u8> = None;
        let mut subclass: Option<u8> = None;
        for (i, line) in text.lines().enumerate() {
            let bad = |reason: &str| Error::Malformed {
                path: path.to_owned(),
                line: i + 1,
                reason: format!("{reason}: {line:?}"),
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let hex16 = |s: &str| {
                (s.len() == 4)
                    .then(|| u16::from_str_radix(s, 16).ok())
                    .flatten()
                    .ok_or_else(|| bad("expected a 4-digit hexadecimal id"))
            };
            let hex8 = |s: &str| {
                (s.len() == 2)
                    .then(|| u8::from_str_radix(s, 16).ok())
                    .flatten()
                    .ok_or_else(|| bad("expected a 2-digit hexadecimal id"))
            };
            let tabs = line.bytes().take_while(|&b| b == b'\t').count();
            let rest = &line[tabs..];
            let (id, name) = id_and_name(rest).ok_or_else(|| bad("expected an id and a name"))?;
            match (tabs, class.is_some() || rest.starts_with("C ")) {
                (0, false) => {
                    let v = hex16(id)?;
                    ids.vendors.entry(v).or_default().name = name.to_owned();
                    (vendor, device) = (Some(v), None);
                }
                (1, false) => {
                    let v = vendor.ok_or_else(|| bad("device line before any vendor"))?;
                    let d = hex16(id)?;
                    let entry = ids.vendors.entry(v).or_default().devices.entry(d);
                    entry.or_default().name = name.to_owned();
                    device = Some(d);
                }
                (2, false) => {
                    let (v, d) = vendor
                        .zip(device)
                        .ok_or_else(|| bad("subsystem line before any device"))?;
                    let (sv, rest) =
                        id_and_name(rest).ok_or_else(|| bad("expected two ids and a name"))?;
                    let (sd, name) =
                        id_and_name(rest).ok_or_else(|| bad("expected two ids and a name"))?;
                    let dev = ids.vendors.entry(v).or_default().devices.entry(d);
                    let subsystems = &mut dev.or_default().subsystems;
                    subsystems.insert((hex16(sv)?, hex16(sd)?), name.to_owned());
                }
                (0, true) => {
                    let rest = rest
                        .strip_prefix("C ")
                        .ok_or_else(|| bad("expected a class line `C CC  name`"))?;
                    let (id, name) =
                        id_and_name(rest).ok_or_else(|| bad("expected an id and a name"))?;
                    let c = hex8(id)?;
                    ids.classes.entry(c).or_default().name = name.to_owned();
                    (class, subclass) = (Some(c), None);
                }
                (1, true) => {
                    let c = class.ok_or_else(|| bad("subclass line before any class"))?;
                    let s = hex8(id)?;
                    let entry = ids.classes.entry(c).or_default().subclasses.entry(s);
                    entry.or_default().name = name.to_owned();
                    subclass = Some(s);
                }
                (2, true) => {
                    let (c, s) = class
                        .zip(subclass)
                        .ok_or_else(|| bad("programming interface line before any subclass"))?;
                    let sub = ids.classes.entry(c).or_default().subclasses.entry(s);
                    sub.or_default().prog_ifs.insert(hex8(id)?, name.to_owned());
                }
                _ => return Err(bad("too deeply indented")),
            }
        }
        Ok(ids)
    }

    /// Read and parse the file at `path` (bytes that are not UTF-8 are replaced).
    pub fn load(path: &Path) -> Result<PciIds> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        PciIds::parse(&String::from_utf8_lossy(&bytes), path)
    }

    /// The first of [`PCI_IDS_PATHS`] that exists, parsed; `None` when there is none.
    pub fn load_system() -> Option<Result<(PathBuf, PciIds)>> {
        let path = PCI_IDS_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())?;
        Some(PciIds::load(&path).map(|ids| (path, ids)))
    }

    /// The vendor's name.
    pub fn vendor(&self, vendor: u16) -> Option<&str> {
        self.vendors.get(&vendor).map(|v| v.name.as_str())
    }

    /// The device's name.
    pub fn device(&self, vendor: u16, device: u16) -> Option<&str> {
        let dev = self.vendors.get(&vendor)?.devices.get(&device)?;
        Some(&dev.name)
    }

    /// The subsystem's name.
    pub fn subsystem(
        &self,
        vendor: u16,
        device: u16,
        sub_vendor: u16,
        sub_device: u16,
    ) -> Option<&str> {
        let dev = self.vendors.get(&vendor)?.devices.get(&device)?;
        dev.subsystems
            .get(&(sub_vendor, sub_device))
            .map(String::as_str)
    }

    /// The most specific name for a 24-bit class code: the programming interface's, else
    /// the subclass's, else the base class's.
    pub fn class(&self, class: u32) -> Option<&str> {
        let [_, base, sub, prog_if] = class.to_be_bytes();
        let c = self.classes.get(&base)?;
        let Some(s) = c.subclasses.get(&sub) else {
            return Some(&c.name);
        };
        Some(s.prog_ifs.get(&prog_if).unwrap_or(&s.name))
    }

    /// Number of vendors.
    pub fn vendor_count(&self) -> usize {
        self.vendors.len()
    }
}
