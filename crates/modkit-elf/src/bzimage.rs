//! The ELF `vmlinux` inside an x86 bzImage: its certificates for signature checks, and for
//! xtask's VM a PVH boot without real-mode set-up or self-decompression.
//!
//! Layout (Documentation/arch/x86/boot.rst): the setup header starts at 0x1f1; `setup_sects` at
//! 0x1f1 (0 means 4), magic "HdrS" at 0x202, `version` at 0x206, `kernel_version` (offset of a
//! string, minus 0x200) at 0x20e, and since protocol 2.08 `payload_offset`/`payload_length` at
//! 0x248/0x24c, relative to the protected-mode code at `(setup_sects + 1) * 512`. The payload is
//! the compressed vmlinux followed by its size as a little-endian u32 (arch/x86/boot/compressed
//! /Makefile, `size_append`).

use std::borrow::Cow;

use crate::{Compression, Endian, Error, decompress, detect_compression};

/// The largest vmlinux this reads: 1 GiB (Debian's are about 60 MiB).
const VMLINUX_LIMIT: u64 = 1 << 30;

fn image_error(what: impl Into<String>) -> Error {
    Error::Image { what: what.into() }
}

/// Whether `image` starts like a bzImage (the setup header's "HdrS").
pub fn is_bzimage(image: &[u8]) -> bool {
    image.get(0x202..0x206) == Some(b"HdrS")
}

fn header(image: &[u8]) -> Result<(), Error> {
    if is_bzimage(image) {
        Ok(())
    } else {
        Err(image_error("not a bzImage (no \"HdrS\" at 0x202)"))
    }
}

/// The kernel release at the start of the header's version string, e.g. `6.1.0-56-amd64` from
/// `6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ...`.
pub fn release(image: &[u8]) -> Result<String, Error> {
    header(image)?;
    let truncated = || image_error("truncated setup header");
    let offset = usize::from(Endian::Little.u16(image, 0x20e).ok_or_else(truncated)?) + 0x200;
    let rest = image
        .get(offset..)
        .ok_or_else(|| image_error(format!("kernel_version {offset:#x} is past the end")))?;
    let text = rest
        .split(|&b| b == 0 || b == b' ')
        .next()
        .unwrap_or_default();
    if text.is_empty() {
        return Err(image_error(format!(
            "empty kernel version string at {offset:#x}"
        )));
    }
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// The compressed payload and how it is compressed.
pub fn payload(image: &[u8]) -> Result<(Compression, &[u8]), Error> {
    header(image)?;
    let truncated = || image_error("truncated setup header");
    let version = Endian::Little.u16(image, 0x206).ok_or_else(truncated)?;
    if version < 0x208 {
        return Err(image_error(format!(
            "boot protocol {version:#x} has no payload fields (needs 2.08)"
        )));
    }
    let setup_sects = match image.get(0x1f1).copied().ok_or_else(truncated)? {
        0 => 4,
        n => usize::from(n),
    };
    let offset = Endian::Little.u32(image, 0x248).ok_or_else(truncated)? as usize;
    let length = Endian::Little.u32(image, 0x24c).ok_or_else(truncated)? as usize;
    let start = (setup_sects + 1) * 512 + offset;
    let payload = start
        .checked_add(length)
        .and_then(|end| image.get(start..end))
        .ok_or_else(|| {
            image_error(format!(
                "payload {start:#x}+{length:#x} is past the end of the image ({:#x} bytes)",
                image.len()
            ))
        })?;
    match detect_compression(payload) {
        Compression::None => {
            let magic: Vec<String> = payload.iter().take(6).map(|b| format!("{b:02x}")).collect();
            Err(image_error(format!(
                "unknown payload compression (magic {})",
                magic.join(" ")
            )))
        }
        compression => Ok((compression, payload)),
    }
}

/// Decompress the payload of `image` and check that it is an ELF file of the recorded size.
pub fn extract_vmlinux(image: &[u8]) -> Result<Vec<u8>, Error> {
    let (_, payload) = payload(image)?;
    // The last 4 bytes are the decompressed size, not part of the stream.
    let split = payload
        .len()
        .checked_sub(4)
        .ok_or_else(|| image_error("payload shorter than 4 bytes"))?;
    let (stream, _) = payload.split_at(split);
    let size = Endian::Little
        .u32(payload, split)
        .ok_or_else(|| image_error("payload shorter than 4 bytes"))? as usize;
    let vmlinux = decompress(stream, VMLINUX_LIMIT)?.into_owned();
    if vmlinux.len() != size {
        return Err(image_error(format!(
            "decompressed {} bytes, the image says {size}",
            vmlinux.len()
        )));
    }
    if !vmlinux.starts_with(b"\x7fELF") {
        return Err(image_error("the decompressed payload is not an ELF file"));
    }
    Ok(vmlinux)
}

/// The ELF vmlinux of a kernel image: a bzImage's payload, decompressed, or the bytes
/// themselves when they are an ELF file already.
pub fn vmlinux(image: &[u8]) -> Result<Cow<'_, [u8]>, Error> {
    if image.starts_with(b"\x7fELF") {
        return Ok(Cow::Borrowed(image));
    }
    if !is_bzimage(image) {
        return Err(image_error(
            "neither an ELF vmlinux nor a bzImage (no \"HdrS\" at 0x202)",
        ));
    }
    extract_vmlinux(image).map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A minimal bzImage: one setup sector plus the boot sector, then `payload`.
    fn fake_image(payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 1024];
        image[0x1f1] = 1;
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        image[0x20e..0x210].copy_from_slice(&(0x300u16 - 0x200).to_le_bytes());
        image[0x300..0x320].copy_from_slice(b"6.1.0-99-amd64 (someone@host) #1");
        image[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(&[0xaa; 16]);
        image.extend_from_slice(payload);
        image
    }

    fn with_size(mut compressed: Vec<u8>, size: usize) -> Vec<u8> {
        compressed.extend_from_slice(&(size as u32).to_le_bytes());
        compressed
    }

    const ELF: &[u8] = b"\x7fELF\x02\x01\x01 pretend this is a kernel, a kernel, a kernel";

    #[test]
    fn xz_payload() {
        let mut compressed = Vec::new();
        liblzma::read::XzEncoder::new(ELF, 6)
            .read_to_end(&mut compressed)
            .unwrap();
        let image = fake_image(&with_size(compressed, ELF.len()));
        assert_eq!(payload(&image).unwrap().0, Compression::Xz);
        assert_eq!(extract_vmlinux(&image).unwrap(), ELF);
        assert_eq!(&*vmlinux(&image).unwrap(), ELF);
        assert_eq!(release(&image).unwrap(), "6.1.0-99-amd64");
    }

    #[test]
    fn gzip_payload() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(ELF).unwrap();
        let image = fake_image(&with_size(encoder.finish().unwrap(), ELF.len()));
        assert_eq!(extract_vmlinux(&image).unwrap(), ELF);
    }

    #[test]
    fn zstd_payload() {
        let compressed =
            ruzstd::encoding::compress_to_vec(ELF, ruzstd::encoding::CompressionLevel::Fastest);
        let image = fake_image(&with_size(compressed, ELF.len()));
        assert_eq!(payload(&image).unwrap().0, Compression::Zstd);
        assert_eq!(extract_vmlinux(&image).unwrap(), ELF);
    }

    #[test]
    fn an_elf_file_is_its_own_vmlinux() {
        assert!(matches!(vmlinux(ELF).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn rejects_what_is_not_a_kernel() {
        let err = extract_vmlinux(b"just some bytes").unwrap_err();
        assert!(err.to_string().contains("not a bzImage"), "{err}");
        let err = vmlinux(b"just some bytes").unwrap_err();
        assert!(err.to_string().contains("neither an ELF"), "{err}");
        let err = extract_vmlinux(&fake_image(b"LZ4?garbage")).unwrap_err();
        assert!(
            err.to_string().contains("unknown payload compression"),
            "{err}"
        );
        let mut compressed = Vec::new();
        liblzma::read::XzEncoder::new(&b"not an ELF file"[..], 6)
            .read_to_end(&mut compressed)
            .unwrap();
        let err = extract_vmlinux(&fake_image(&with_size(compressed.clone(), 15))).unwrap_err();
        assert!(err.to_string().contains("not an ELF"), "{err}");
        let err = extract_vmlinux(&fake_image(&with_size(compressed, 99))).unwrap_err();
        assert!(err.to_string().contains("the image says 99"), "{err}");
        // Every prefix of a valid image fails cleanly.
        let mut compressed = Vec::new();
        liblzma::read::XzEncoder::new(ELF, 6)
            .read_to_end(&mut compressed)
            .unwrap();
        let image = fake_image(&with_size(compressed, ELF.len()));
        for len in 0..image.len() {
            assert!(extract_vmlinux(&image[..len]).is_err(), "prefix {len}");
        }
    }
}
