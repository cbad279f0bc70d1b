//! The ELF `vmlinux` inside an x86 bzImage, for QEMU's PVH boot (no real-mode set-up, no
//! self-decompression under TCG: a boot takes 2-3 s instead of 4-5 s).
//!
//! Layout (Documentation/arch/x86/boot.rst): the setup header starts at 0x1f1; `setup_sects` at
//! 0x1f1 (0 means 4), magic "HdrS" at 0x202, `version` at 0x206, `kernel_version` (offset of a
//! string, minus 0x200) at 0x20e, and since protocol 2.08 `payload_offset`/`payload_length` at
//! 0x248/0x24c, relative to the protected-mode code at `(setup_sects + 1) * 512`. The payload is
//! the compressed vmlinux followed by its size as a little-endian u32 (arch/x86/boot/compressed
//! /Makefile, `size_append`).

use std::io::Read;

use anyhow::{Context, Result, bail, ensure};

/// How a payload is compressed, by its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    fn detect(payload: &[u8]) -> Option<Compression> {
        match payload {
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(Compression::Xz),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
            [0x1f, 0x8b, ..] => Some(Compression::Gzip),
            _ => None,
        }
    }
}

fn u16_at(image: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        image.get(offset..offset + 2)?.try_into().ok()?,
    ))
}

fn u32_at(image: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        image.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

/// The kernel release at the start of the header's version string, e.g. `6.1.0-56-amd64` from
/// `6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ...`.
pub fn release(image: &[u8]) -> Result<String> {
    ensure!(
        image.get(0x202..0x206) == Some(b"HdrS"),
        "not a bzImage (no \"HdrS\" at 0x202)"
    );
    let offset = usize::from(u16_at(image, 0x20e).context("truncated setup header")?) + 0x200;
    let rest = image
        .get(offset..)
        .context("kernel_version points past the end")?;
    let text = rest
        .split(|&b| b == 0 || b == b' ')
        .next()
        .unwrap_or_default();
    ensure!(
        !text.is_empty(),
        "empty kernel version string at {offset:#x}"
    );
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// The compressed payload and how it is compressed.
pub fn payload(image: &[u8]) -> Result<(Compression, &[u8])> {
    ensure!(
        image.get(0x202..0x206) == Some(b"HdrS"),
        "not a bzImage (no \"HdrS\" at 0x202)"
    );
    let version = u16_at(image, 0x206).context("truncated setup header")?;
    ensure!(
        version >= 0x208,
        "boot protocol {version:#x} has no payload fields (needs 2.08)"
    );
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let offset = u32_at(image, 0x248).context("truncated setup header")? as usize;
    let length = u32_at(image, 0x24c).context("truncated setup header")? as usize;
    let start = (setup_sects + 1) * 512 + offset;
    let payload = image
        .get(start..start + length)
        .with_context(|| format!("payload {start:#x}+{length:#x} is past the end of the image"))?;
    let compression = Compression::detect(payload).with_context(|| {
        let magic: Vec<String> = payload.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("unknown payload compression (magic {})", magic.join(" "))
    })?;
    Ok((compression, payload))
}

/// Decompresses the payload of `image` and checks that it is an ELF executable.
pub fn extract_vmlinux(image: &[u8]) -> Result<Vec<u8>> {
    let (compression, payload) = payload(image)?;
    // The last 4 bytes are the decompressed size, not part of the stream.
    let (stream, size) = payload.split_at(payload.len().saturating_sub(4));
    let size =
        u32::from_le_bytes(size.try_into().context("payload shorter than 4 bytes")?) as usize;
    let mut vmlinux = Vec::with_capacity(size);
    match compression {
        Compression::Xz => liblzma::read::XzDecoder::new(stream)
            .read_to_end(&mut vmlinux)
            .map(drop),
        Compression::Zstd => ruzstd::decoding::StreamingDecoder::new(stream)
            .map_err(std::io::Error::other)?
            .read_to_end(&mut vmlinux)
            .map(drop),
        Compression::Gzip => flate2::read::GzDecoder::new(stream)
            .read_to_end(&mut vmlinux)
            .map(drop),
    }
    .with_context(|| format!("decompressing the {compression:?} payload"))?;
    ensure!(
        vmlinux.len() == size,
        "decompressed {} bytes, the image says {size}",
        vmlinux.len()
    );
    if !vmlinux.starts_with(b"\x7fELF") {
        bail!("the decompressed payload is not an ELF file");
    }
    Ok(vmlinux)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

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
    fn rejects_what_is_not_a_kernel() {
        let err = extract_vmlinux(b"just some bytes").unwrap_err();
        assert!(format!("{err:#}").contains("not a bzImage"), "{err:#}");
        let err = extract_vmlinux(&fake_image(b"LZ4?garbage")).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown payload compression"),
            "{err:#}"
        );
        let mut compressed = Vec::new();
        liblzma::read::XzEncoder::new(&b"not an ELF file"[..], 6)
            .read_to_end(&mut compressed)
            .unwrap();
        let err = extract_vmlinux(&fake_image(&with_size(compressed, 15))).unwrap_err();
        assert!(format!("{err:#}").contains("not an ELF"), "{err:#}");
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let mut compressed = Vec::new();
        liblzma::read::XzEncoder::new(ELF, 6)
            .read_to_end(&mut compressed)
            .unwrap();
        let image = fake_image(&with_size(compressed, ELF.len()));
        for len in 0..image.len() {
            assert!(
                extract_vmlinux(&image[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }
}
