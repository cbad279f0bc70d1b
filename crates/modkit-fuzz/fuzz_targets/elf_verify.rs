//! Fuzz target: signature verification (`modkit_elf::verify`). The input is the raw PKCS#7
//! message; the target appends the kernel's trailer and verifies against the test certificate
//! (modkit-elf's testdata/sig/trusted.x509), so the fuzzer mutates the DER itself. The input is
//! also verified as a whole file with its own trailer.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use modkit_elf::{Certificate, SIGNATURE_MAGIC, parse_certificates, verify};

fn trusted() -> &'static [Certificate] {
    static CERTS: OnceLock<Vec<Certificate>> = OnceLock::new();
    CERTS.get_or_init(|| {
        parse_certificates(include_bytes!("../../modkit-elf/testdata/sig/trusted.x509"))
            .expect("the test certificate parses")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = verify(data, trusted());
    let mut file = b"\x7fELF not really a module".to_vec();
    file.extend_from_slice(data);
    file.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
    file.extend_from_slice(&(data.len() as u32).to_be_bytes());
    file.extend_from_slice(SIGNATURE_MAGIC);
    if let Err(err) = verify(&file, trusted()) {
        let _ = err.to_string();
    }
});
