//! Shared drivers for the fuzz targets: each exercises every accessor of one parser, so the
//! targets stay one-liners and the regression tests can call the same code.
#![deny(unsafe_code)] // Exceptions: the libc oracles `libc_fnmatch` and `libc_regex_search`.

use modkit_elf::{Module, signature};

/// Parse `bytes` as an uncompressed module and call every accessor; errors are fine, panics
/// are not.
pub fn exercise_module(bytes: &[u8]) {
    let _ =
        signature(bytes).map(|s| s.map(|s| (s.sig_key_hex(), s.signature_hex(), s.signer().len())));
    let Ok(module) = Module::parse(bytes) else {
        return;
    };
    let _ = (
        module.class(),
        module.endian(),
        module.machine(),
        module.elf_type(),
    );
    let _ = module.has_modinfo();
    for name in module.section_names() {
        let _ = module.section(&String::from_utf8_lossy(name));
    }
    let info = module.modinfo();
    for record in info.iter() {
        let _ = (
            record.key_lossy(),
            record.value_lossy(),
            record.key_str(),
            record.value_str(),
        );
    }
    let _ = (info.name(), info.depends(), info.softdeps(), info.params());
    let _ = (
        info.vermagic(),
        info.license(),
        info.description(),
        info.author(),
    );
    let _ = info.aliases().count() + info.weakdeps().count() + info.firmware().count();
    let _ = info.import_ns().count() + info.authors().count();
    let _ = module.exports();
    let _ = module.depmod_exports();
    let _ = module.imports();
    let _ = module.depmod_imports();
    let _ = module.versions();
}

/// glibc's answer to `fnmatch(pattern, string, 0)` (the C locale: this process never calls
/// `setlocale`).
#[allow(unsafe_code, reason = "calls glibc's fnmatch(3), the oracle")]
pub fn libc_fnmatch(pattern: &[u8], string: &[u8]) -> bool {
    let p = std::ffi::CString::new(pattern).expect("no NUL in pattern");
    let s = std::ffi::CString::new(string).expect("no NUL in string");
    // SAFETY: both are valid NUL-terminated C strings that outlive the call.
    unsafe { libc::fnmatch(p.as_ptr(), s.as_ptr(), 0) == 0 }
}

/// Panic when `ours` differs from glibc for this pattern and string.
pub fn check_fnmatch(pattern: &[u8], string: &[u8], ours: bool) {
    let theirs = libc_fnmatch(pattern, string);
    assert_eq!(
        ours,
        theirs,
        "fnmatch({:?}, {:?}): ours {ours}, glibc {theirs}",
        String::from_utf8_lossy(pattern),
        String::from_utf8_lossy(string)
    );
}

/// glibc's `regcomp(pattern, REG_EXTENDED | REG_NOSUB)` then `regexec` on `text`, as kmod's
/// depmod runs kernel version patterns; `None` when the pattern does not compile.
#[allow(
    unsafe_code,
    reason = "calls glibc's regcomp(3) and regexec(3), the oracle"
)]
pub fn libc_regex_search(pattern: &[u8], text: &[u8]) -> Option<bool> {
    let p = std::ffi::CString::new(pattern).ok()?;
    let t = std::ffi::CString::new(text).ok()?;
    // SAFETY: regex_t is plain data that regcomp initialises; it is freed only after a
    // successful regcomp, and both strings are valid C strings for the calls.
    unsafe {
        let mut re: libc::regex_t = std::mem::zeroed();
        if libc::regcomp(&mut re, p.as_ptr(), libc::REG_EXTENDED | libc::REG_NOSUB) != 0 {
            return None;
        }
        let matched = libc::regexec(&re, t.as_ptr(), 0, std::ptr::null_mut(), 0) == 0;
        libc::regfree(&mut re);
        Some(matched)
    }
}
