//! Fuzz target: certificate parsing: a `--certs` file (DER list or PEM), one DER certificate,
//! and the search for certificates in a kernel image.
#![no_main]
#![forbid(unsafe_code)]

use modkit_elf::{Certificate, certificates_in_image, parse_certificates};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match parse_certificates(data) {
        Ok(certs) => {
            for cert in &certs {
                let _ = (cert.subject(), cert.issuer(), cert.serial_hex());
            }
        }
        Err(err) => assert!(err.offset as usize <= data.len()),
    }
    let _ = Certificate::from_der(data);
    for cert in certificates_in_image(data) {
        let _ = cert.subject();
    }
});
