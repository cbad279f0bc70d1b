//! Hand-built modules of every ELF class and byte order (Debian ships 32-bit and big-endian
//! kernels too: i386, armhf, s390x, ...) read exactly like the x86-64 ones.
#![forbid(unsafe_code)]

mod common;

use common::{report, synthetic_module};
use modkit_elf::{
    DependencySymbol, ElfClass, Endian, ExportedSymbol, KmodSymbol, Module, SoftDep, SymbolVersion,
};

const VARIANTS: [(bool, bool, &str); 4] = [
    (false, false, "elf32-le"),
    (false, true, "elf32-be"),
    (true, false, "elf64-le"),
    (true, true, "elf64-be"),
];

#[test]
fn every_class_and_byte_order() {
    for (class64, big, name) in VARIANTS {
        let file = synthetic_module(class64, big).build();
        let module = Module::parse(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let class = if class64 {
            ElfClass::Elf64
        } else {
            ElfClass::Elf32
        };
        let endian = if big { Endian::Big } else { Endian::Little };
        assert_eq!((module.class(), module.endian()), (class, endian), "{name}");
        assert_eq!(module.machine(), if class64 { 22 } else { 8 });

        let info = module.modinfo();
        assert!(module.has_modinfo());
        assert_eq!(info.name(), Some("synth"));
        assert_eq!(info.depends(), vec!["dep_a", "dep_b"]);
        assert_eq!(
            info.softdeps(),
            vec![SoftDep {
                pre: vec!["first", "second"],
                post: vec!["third"]
            }]
        );
        assert_eq!(info.get("noequals"), Some(&b""[..]));
        let params = info.params();
        assert_eq!(params.len(), 2);
        assert_eq!(
            (
                params[0].name.as_ref(),
                params[0].description.as_deref(),
                params[0].type_.as_deref()
            ),
            ("level", Some("how loud"), Some("int"))
        );
        assert_eq!(
            (
                params[1].name.as_ref(),
                params[1].description.as_deref(),
                params[1].type_.as_deref()
            ),
            ("mode", None, Some("charp"))
        );

        assert_eq!(
            module.exports().unwrap(),
            vec![
                ExportedSymbol {
                    name: "synth_fn",
                    gpl_only: false,
                    crc: Some(0xCAFE_BABE)
                },
                ExportedSymbol {
                    name: "synth_gpl_fn",
                    gpl_only: true,
                    crc: Some(0xDEAD_BEEF)
                },
            ],
            "{name}"
        );
        assert_eq!(
            module.depmod_exports().unwrap(),
            vec![
                KmodSymbol {
                    name: "synth_fn",
                    crc: 0xCAFE_BABE
                },
                KmodSymbol {
                    name: "synth_gpl_fn",
                    crc: 0xDEAD_BEEF
                },
            ]
        );
        assert_eq!(
            module.imports().unwrap(),
            vec!["printk", "maybe_there"],
            "{name}"
        );
        assert_eq!(
            module.depmod_imports().unwrap(),
            vec![
                DependencySymbol {
                    name: "printk",
                    crc: 0x5566_7788,
                    weak: false
                },
                DependencySymbol {
                    name: "maybe_there",
                    crc: 0,
                    weak: true
                },
                DependencySymbol {
                    name: "module_layout",
                    crc: 0x1122_3344,
                    weak: false
                },
            ]
        );
        assert_eq!(
            module.versions().unwrap(),
            vec![
                SymbolVersion {
                    crc: 0x1122_3344,
                    name: "module_layout"
                },
                SymbolVersion {
                    crc: 0x5566_7788,
                    name: "printk"
                },
            ]
        );
        assert_eq!(
            module.section(".bss").unwrap(),
            Some(&[][..]),
            "NOBITS has no bytes"
        );
        assert_eq!(modkit_elf::signature(&file).unwrap(), None);
    }
}

#[test]
fn reports_differ_only_in_the_elf_line() {
    let strip = |r: String| {
        r.lines()
            .filter(|l| !l.starts_with("elf: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let reference = strip(report(&synthetic_module(true, false).build(), false));
    for (class64, big, name) in VARIANTS {
        let text = report(&synthetic_module(class64, big).build(), false);
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("synthetic-{name}"), text.clone());
        });
        assert_eq!(strip(text), reference, "{name}");
    }
}

#[test]
fn exports_without_crcs_and_unlinked_sections() {
    // A module built without modversions: no __crc_ symbols, so kmod falls back to
    // __ksymtab_strings; per-symbol sections as in an unlinked object still give gpl_only.
    let mut b = common::ElfBuilder::new(true, false);
    let plain = b.section("___ksymtab+alpha", common::SHT_PROGBITS, vec![0; 12]);
    let gpl = b.section("___ksymtab_gpl+beta", common::SHT_PROGBITS, vec![0; 12]);
    let other = b.section(".text", common::SHT_PROGBITS, vec![0; 4]);
    b.section(
        "__ksymtab_strings",
        common::SHT_PROGBITS,
        b"\0alpha\0beta\0\0".to_vec(),
    );
    b.symbol("__ksymtab_alpha", plain, 0, common::STB_LOCAL, 0);
    b.symbol("__ksymtab_beta", gpl, 0, common::STB_LOCAL, 0);
    b.symbol("__ksymtab_gamma", other, 0, common::STB_LOCAL, 0); // not in a ksymtab section
    b.symbol("__ksymtab_delta", 0, 0, common::STB_GLOBAL, 0); // undefined: an import
    let file = b.build();
    let module = Module::parse(&file).unwrap();
    assert_eq!(
        module.exports().unwrap(),
        vec![
            ExportedSymbol {
                name: "alpha",
                gpl_only: false,
                crc: None
            },
            ExportedSymbol {
                name: "beta",
                gpl_only: true,
                crc: None
            },
        ]
    );
    assert_eq!(
        module.depmod_exports().unwrap(),
        vec![
            KmodSymbol {
                name: "alpha",
                crc: 0
            },
            KmodSymbol {
                name: "beta",
                crc: 0
            }
        ]
    );
    assert_eq!(module.imports().unwrap(), vec!["__ksymtab_delta"]);
    assert_eq!(module.modinfo().count(), 0);
    assert!(!module.has_modinfo());
}

#[test]
fn sparc_register_symbols_are_not_imports() {
    let mut b = common::ElfBuilder::new(true, true);
    b.machine = 43; // EM_SPARCV9
    b.section(".text", common::SHT_PROGBITS, vec![0; 4]);
    b.symbol("g7", 0, 0, common::STB_GLOBAL, 13); // STT_REGISTER
    b.symbol("real_import", 0, 0, common::STB_GLOBAL, 0);
    let file = b.build();
    let module = Module::parse(&file).unwrap();
    assert_eq!(module.imports().unwrap(), vec!["real_import"]);
    b.machine = 62; // elsewhere type 13 is just a symbol type
    let file = b.build();
    assert_eq!(
        Module::parse(&file).unwrap().imports().unwrap(),
        vec!["g7", "real_import"]
    );
}
