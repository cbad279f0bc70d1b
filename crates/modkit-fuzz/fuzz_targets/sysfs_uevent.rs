//! Fuzz target: a sysfs `uevent` file through `Uevent::parse`, and a `pci.ids` database
//! through `PciIds::parse` with lookups of the ids it names.
#![no_main]
#![forbid(unsafe_code)]

use std::path::Path;

use modkit_sysfs::{PciIds, Uevent};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(uevent) = Uevent::parse(&text, Path::new("/sys/devices/fuzz/uevent")) {
        let _ = (uevent.modalias(), uevent.get("DRIVER"), uevent.vars().len());
        for (k, v) in uevent.vars() {
            assert_eq!(uevent.get(k).is_some(), true, "{k}={v}");
        }
    }
    if let Ok(ids) = PciIds::parse(&text, Path::new("/usr/share/misc/pci.ids")) {
        let _ = ids.vendor_count();
        for v in [0x8086, 0x1af4, 0] {
            let _ = ids.vendor(v);
            let _ = ids.device(v, 0x1000);
        }
        let _ = ids.class(0x020000);
    }
});
