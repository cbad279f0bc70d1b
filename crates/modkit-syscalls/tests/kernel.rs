//! The loading and unloading logic, run against `RecordingKernel` over the fake trees in
//! `testdata/` and the sample modules in `kmods/fixtures/`: which syscalls, with which
//! arguments and flags, and what each failure reports.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

use modkit_syscalls::{
    Call, Compression, Errno, InitState, Kernel, LoadError, LoadFailure, LoadMethod, LoadOptions,
    ProcDir, RecordingKernel, SysModule, Syscall, UnloadError, UnloadFailure, UnloadOptions,
};

const O_NONBLOCK: u32 = libc::O_NONBLOCK as u32;
const O_TRUNC: u32 = libc::O_TRUNC as u32;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../kmods/fixtures")
        .join(name)
        .canonicalize()
        .unwrap()
}

/// A fake kernel that decompresses xz itself (the fake sysfs says so), like Debian's 6.12.
fn kernel_6_12() -> RecordingKernel {
    RecordingKernel::new(
        SysModule::new(testdata().join("sys/module")),
        ProcDir::new(testdata().join("proc")),
    )
}

/// A fake kernel without a module decompressor (no `/sys/module/compression`), like 6.1.
fn kernel_6_1() -> RecordingKernel {
    RecordingKernel::new(
        SysModule::new(testdata().join("absent")),
        ProcDir::new(testdata().join("proc")),
    )
}

fn finit(file: &Path, params: &str, flags: u32) -> Call {
    let size = fs::metadata(file).unwrap().len();
    Call::FinitModule {
        file: file.to_owned(),
        size,
        params: params.to_owned(),
        flags,
    }
}

fn init(image: &Path, params: &str) -> Call {
    Call::InitModule {
        image: fs::read(image).unwrap(),
        params: params.to_owned(),
    }
}

#[test]
fn plain_module_goes_to_finit_module_as_is() {
    let kernel = kernel_6_1();
    let path = fixture("6.1/hello_api.ko");
    let method = kernel
        .load(&path, "greeting=hi", LoadOptions::default())
        .unwrap();
    assert_eq!(method, LoadMethod::Finit);
    assert_eq!(kernel.calls(), [finit(&path, "greeting=hi", 0)]);
}

#[test]
fn compressed_module_goes_to_the_kernel_decompressor_when_it_has_that_one() {
    let kernel = kernel_6_12();
    let path = fixture("6.12/hello_api.ko.xz");
    let method = kernel.load(&path, "", LoadOptions::default()).unwrap();
    assert_eq!(method, LoadMethod::KernelDecompressed(Compression::Xz));
    assert_eq!(kernel.calls(), [finit(&path, "", 4)]);
}

#[test]
fn kernel_decompressor_refusing_falls_back_to_user_space() {
    let kernel = kernel_6_12();
    kernel.script(Syscall::FinitModule, Err(Errno(libc::EOPNOTSUPP)));
    let path = fixture("6.12/hello_api.ko.xz");
    let method = kernel
        .load(&path, "greeting=x", LoadOptions::default())
        .unwrap();
    assert_eq!(method, LoadMethod::UserDecompressed(Compression::Xz));
    assert_eq!(
        kernel.calls(),
        [
            finit(&path, "greeting=x", 4),
            init(&fixture("6.12/hello_api.ko"), "greeting=x")
        ]
    );
}

#[test]
fn other_compressions_are_decompressed_here() {
    for (file, compression) in [
        ("6.12/hello_api.ko.zst", Compression::Zstd),
        ("6.12/hello_api.ko.gz", Compression::Gzip),
    ] {
        let kernel = kernel_6_12();
        let method = kernel
            .load(&fixture(file), "", LoadOptions::default())
            .unwrap();
        assert_eq!(method, LoadMethod::UserDecompressed(compression), "{file}");
        assert_eq!(
            kernel.calls(),
            [init(&fixture("6.12/hello_api.ko"), "")],
            "{file}"
        );
    }
}

#[test]
fn kernel_without_decompressor_gets_the_image_from_user_space() {
    let kernel = kernel_6_1();
    let method = kernel
        .load(
            &fixture("6.12/hello_feature.ko.xz"),
            "",
            LoadOptions::default(),
        )
        .unwrap();
    assert_eq!(method, LoadMethod::UserDecompressed(Compression::Xz));
    assert_eq!(
        kernel.calls(),
        [init(&fixture("6.12/hello_feature.ko"), "")]
    );
}

#[test]
fn force_sets_both_ignore_flags() {
    let kernel = kernel_6_12();
    let plain = fixture("6.12/hello_api.ko");
    let xz = fixture("6.12/hello_api.ko.xz");
    kernel.load(&plain, "", LoadOptions::force()).unwrap();
    kernel.load(&xz, "", LoadOptions::force()).unwrap();
    let only_vermagic = LoadOptions {
        ignore_vermagic: true,
        ..LoadOptions::default()
    };
    kernel.load(&plain, "", only_vermagic).unwrap();
    assert_eq!(
        kernel.calls(),
        [
            finit(&plain, "", 3),
            finit(&xz, "", 7),
            finit(&plain, "", 2)
        ]
    );
}

#[test]
fn force_with_user_space_decompression_loads_an_in_memory_file() {
    let kernel = kernel_6_1();
    let method = kernel
        .load(
            &fixture("6.12/hello_api.ko.zst"),
            "a=1",
            LoadOptions::force(),
        )
        .unwrap();
    assert_eq!(method, LoadMethod::UserDecompressed(Compression::Zstd));
    let calls = kernel.calls();
    let [
        Call::FinitModule {
            file,
            size,
            params,
            flags,
        },
    ] = calls.as_slice()
    else {
        panic!("expected one finit_module, got {calls:?}");
    };
    assert!(
        file.to_string_lossy().starts_with("/memfd:modkit-module"),
        "{file:?}"
    );
    assert_eq!(
        *size,
        fs::metadata(fixture("6.12/hello_api.ko")).unwrap().len()
    );
    assert_eq!((params.as_str(), *flags), ("a=1", 3));
}

#[test]
fn kernel_without_finit_module_gets_init_module() {
    let kernel = kernel_6_1();
    kernel.script(Syscall::FinitModule, Err(Errno(libc::ENOSYS)));
    let path = fixture("6.1/hello_api.ko");
    assert_eq!(
        kernel.load(&path, "", LoadOptions::default()).unwrap(),
        LoadMethod::InitModule
    );
    assert_eq!(kernel.calls(), [finit(&path, "", 0), init(&path, "")]);
}

#[test]
fn kernel_refusals_are_typed_with_kmod_wording() {
    let cases = [
        (
            libc::ENOENT,
            LoadFailure::UnknownSymbol,
            "Unknown symbol in module",
        ),
        (libc::EEXIST, LoadFailure::AlreadyLoaded, "File exists"),
        (
            libc::ENOEXEC,
            LoadFailure::InvalidFormat,
            "Invalid module format",
        ),
        (
            libc::EKEYREJECTED,
            LoadFailure::KeyRejected,
            "Key was rejected by service",
        ),
        (
            libc::EPERM,
            LoadFailure::NotPermitted,
            "Operation not permitted",
        ),
    ];
    let path = fixture("6.1/hello_feature.ko");
    for (errno, expected, text) in cases {
        let kernel = kernel_6_1();
        kernel.script(Syscall::FinitModule, Err(Errno(errno)));
        let err = kernel.load(&path, "", LoadOptions::default()).unwrap_err();
        let LoadError::Kernel {
            path: failed,
            failure,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((failed, *failure), (&path, expected));
        assert_eq!(err.to_string(), text);
        assert_eq!(kernel.calls().len(), 1, "no fallback after errno {errno}");
    }
}

#[test]
fn a_refusal_of_a_compressed_module_other_than_eopnotsupp_is_final() {
    let kernel = kernel_6_12();
    kernel.script(Syscall::FinitModule, Err(Errno(libc::ENOEXEC)));
    let path = fixture("6.12/hello_api.ko.xz");
    let err = kernel.load(&path, "", LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Kernel {
                failure: LoadFailure::InvalidFormat,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(kernel.calls(), [finit(&path, "", 4)]);
}

#[test]
fn unreadable_inputs_fail_before_any_syscall() {
    let kernel = kernel_6_1();
    let missing = testdata().join("no-such.ko");
    let err = kernel
        .load(&missing, "", LoadOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::Open { path, .. } if *path == missing),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "could not open {}: No such file or directory",
            missing.display()
        )
    );

    let truncated = testdata().join("truncated.ko.xz");
    let err = kernel
        .load(&truncated, "", LoadOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::Decompress { path, .. } if *path == truncated),
        "{err:?}"
    );

    let err = kernel
        .load(&fixture("6.1/hello_api.ko"), "a=\0", LoadOptions::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::Params { .. }), "{err:?}");
    assert_eq!(kernel.calls(), []);
}

#[test]
fn unload_asks_the_kernel_without_waiting() {
    let kernel = kernel_6_12();
    kernel
        .unload("hello_feature", UnloadOptions::default())
        .unwrap();
    assert_eq!(
        kernel.calls(),
        [Call::DeleteModule {
            name: "hello_feature".to_owned(),
            flags: O_NONBLOCK
        }]
    );
}

#[test]
fn unload_refuses_as_kmod_does_before_any_syscall() {
    let kernel = kernel_6_12();
    let cases = [
        ("hello_api", "Module hello_api is in use by: hello_feature"),
        // No holders/ directory: the holders come from /proc/modules.
        ("proc_only", "Module proc_only is in use by: busy_mod"),
        ("busy_mod", "Module busy_mod is in use"),
        ("vt", "Module vt is builtin."),
        ("nope", "Module nope is not currently loaded"),
        ("no_unload", "Module unloading is not supported"),
        // A name is never a path: this one would reach hello_api's directory.
        (
            "x/../hello_api",
            "Module x/../hello_api is not currently loaded",
        ),
    ];
    for (name, message) in cases {
        let err = kernel.unload(name, UnloadOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let err = kernel
        .unload("hello_api", UnloadOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, UnloadError::InUseBy { name, holders } if name == "hello_api" && holders == &["hello_feature"]),
        "{err:?}"
    );
    assert_eq!(kernel.calls(), []);
}

#[test]
fn forced_unload_skips_the_checks_and_truncates() {
    let kernel = kernel_6_12();
    kernel
        .unload("hello_api", UnloadOptions { force: true })
        .unwrap();
    assert_eq!(
        kernel.calls(),
        [Call::DeleteModule {
            name: "hello_api".to_owned(),
            flags: O_NONBLOCK | O_TRUNC
        }]
    );
}

#[test]
fn unload_refused_by_the_kernel_is_typed() {
    let kernel = kernel_6_12();
    kernel.script(Syscall::DeleteModule, Err(Errno(libc::EAGAIN)));
    kernel.script(Syscall::DeleteModule, Err(Errno(libc::EPERM)));
    let err = kernel
        .unload("hello_feature", UnloadOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            UnloadError::Kernel {
                failure: UnloadFailure::InUse,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "could not remove module hello_feature: Resource temporarily unavailable"
    );
    let err = kernel
        .unload("hello_feature", UnloadOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not remove module hello_feature: Operation not permitted"
    );
    // The script ran out: the next call succeeds.
    kernel
        .unload("hello_feature", UnloadOptions::default())
        .unwrap();
    assert_eq!(kernel.calls().len(), 3);
}

#[test]
fn sysfs_reads_state_counts_holders_and_parameters() {
    let sys = SysModule::new(testdata().join("sys/module"));
    assert_eq!(sys.compression().unwrap(), Some(Compression::Xz));
    assert_eq!(
        SysModule::new(testdata().join("absent"))
            .compression()
            .unwrap(),
        None
    );
    assert_eq!(sys.initstate("hello_api").unwrap(), InitState::Live);
    assert_eq!(sys.initstate("bad_refcnt").unwrap(), InitState::Coming);
    assert_eq!(sys.initstate("vt").unwrap(), InitState::Builtin);
    assert_eq!(sys.initstate("nope").unwrap(), InitState::NotLoaded);
    assert_eq!(sys.refcnt("hello_api").unwrap(), Some(1));
    assert_eq!(sys.refcnt("vt").unwrap(), None);
    let err = sys.refcnt("bad_refcnt").unwrap_err();
    assert!(
        err.to_string()
            .ends_with("bad_refcnt/refcnt:1: not a number: \"lots\""),
        "{err}"
    );
    assert_eq!(
        sys.holders("hello_api").unwrap(),
        Some(vec!["hello_feature".to_owned()])
    );
    assert_eq!(sys.holders("hello_feature").unwrap(), None);
    assert_eq!(
        sys.parameters("hello_api").unwrap(),
        [("greeting".to_owned(), Some("Hello, World!".to_owned()))]
    );
    assert_eq!(sys.parameters("nope").unwrap(), []);
}

#[test]
fn kernel_reads_the_loaded_modules_in_order() {
    let kernel = kernel_6_12();
    let names: Vec<_> = kernel
        .loaded_modules()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        ["hello_feature", "hello_api", "busy_mod", "proc_only"]
    );
    assert_eq!(kernel.refcount("hello_api"), Some(1));
    assert_eq!(kernel.refcount("proc_only"), Some(1), "from /proc/modules");
    assert_eq!(kernel.refcount("nope"), None);
    assert_eq!(kernel.kernel_compression(), Some(Compression::Xz));
    assert_eq!(kernel_6_1().kernel_compression(), None);
    let err = RecordingKernel::new(
        SysModule::default(),
        ProcDir::new(testdata().join("absent")),
    )
    .loaded_modules()
    .unwrap_err();
    assert!(err.to_string().contains("absent/modules"), "{err}");
}
