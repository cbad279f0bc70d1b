//! PCI devices as `/sys/bus/pci/devices` shows them, and what kind of device each is.

use std::path::PathBuf;

/// What a PCI device is, from the base class of its class code (the PCI Code and ID
/// Assignment Specification; Guix's `pci-devices` sorts storage, network and display the
/// same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PciKind {
    /// Base class 0x01: mass storage controller (SCSI, IDE, SATA, NVMe, virtio-blk...).
    Storage,
    /// 0x02: network controller.
    Network,
    /// 0x03: display controller.
    Display,
    /// 0x04: multimedia (audio, video).
    Multimedia,
    /// 0x06: bridge.
    Bridge,
    /// 0x0c: serial bus controller (USB, SMBus, FireWire...).
    SerialBus,
    /// Any other base class.
    Other(u8),
}

impl PciKind {
    /// The kind for a 24-bit class code (`0xBBSSPP`: base class, subclass, programming
    /// interface), as in the `class` attribute.
    pub fn from_class(class: u32) -> PciKind {
        match (class >> 16) as u8 {
            0x01 => PciKind::Storage,
            0x02 => PciKind::Network,
            0x03 => PciKind::Display,
            0x04 => PciKind::Multimedia,
            0x06 => PciKind::Bridge,
            0x0c => PciKind::SerialBus,
            other => PciKind::Other(other),
        }
    }
}

/// One PCI function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// Its address, `DOMAIN:BUS:SLOT.FUNCTION` (`0000:00:04.0`).
    pub address: String,
    /// Its canonical directory (under the sysfs root's `devices/`).
    pub path: PathBuf,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Subsystem vendor id, when the kernel shows one.
    pub subsystem_vendor: Option<u16>,
    /// Subsystem device id, when the kernel shows one.
    pub subsystem_device: Option<u16>,
    /// The 24-bit class code.
    pub class: u32,
    /// Its modalias (`pci:v...d...sv...sd...bc..sc..i..`).
    pub modalias: String,
    /// The driver bound to it, if any.
    pub driver: Option<String>,
}

impl PciDevice {
    /// What kind of device it is, from its class code.
    pub fn kind(&self) -> PciKind {
        PciKind::from_class(self.class)
    }
}
