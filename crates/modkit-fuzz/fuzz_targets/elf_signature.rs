//! Fuzz target: the signature trailer and its PKCS#7 DER. The input is the raw signature; the
//! target appends a trailer (PKCS#7 id type, signer and key id taken from the first bytes), so
//! the fuzzer mutates the DER itself rather than having to keep the trailer consistent. The
//! input is also tried as a whole file with its own trailer.
#![no_main]
#![forbid(unsafe_code)]

use modkit_elf::{ID_TYPE_PKCS7, SIGNATURE_MAGIC, signature};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = signature(data);
    let (id_type, rest) = match data.split_first() {
        // Mostly PKCS#7; sometimes the other id types, with signer and key id in front.
        Some((&b, rest)) if b < 8 => (b % 3, rest),
        _ => (ID_TYPE_PKCS7, data),
    };
    let (signer_len, key_id_len) = if id_type == ID_TYPE_PKCS7 {
        (0, 0)
    } else {
        let s = rest
            .first()
            .map_or(0, |&b| b as usize % (rest.len().min(255) + 1));
        let k = rest
            .get(1)
            .map_or(0, |&b| b as usize % ((rest.len() - s).min(255) + 1));
        (s, k)
    };
    let sig_len = rest.len() - signer_len - key_id_len;
    let mut file = b"\x7fELF not really a module".to_vec();
    file.extend_from_slice(rest);
    file.extend_from_slice(&[1, 4, id_type, signer_len as u8, key_id_len as u8, 0, 0, 0]);
    file.extend_from_slice(&(sig_len as u32).to_be_bytes());
    file.extend_from_slice(SIGNATURE_MAGIC);
    if let Ok(Some(sig)) = signature(&file) {
        let _ = (
            sig.sig_key_hex(),
            sig.signature_hex(),
            sig.signer(),
            sig.hash_algo_name(),
        );
        let _ = (sig.algo_name(), sig.id_type_name());
        assert!(sig.module_len <= file.len());
    }
});
