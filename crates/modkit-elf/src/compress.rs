//! Transparent decompression of `.ko.xz`, `.ko.zst` and `.ko.gz` modules, detected by magic.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use crate::{Endian, Error};

/// Default cap on the size of a decompressed module: 256 MiB (the largest Debian module is ~30 MiB).
pub const DEFAULT_DECOMPRESS_LIMIT: u64 = 256 << 20;

/// Memory liblzma may use for its dictionary; the xz presets kernels use need at most 64 MiB.
const XZ_MEMLIMIT: u64 = 512 << 20;

// Magic numbers: zstd RFC 8878 §3.1.1, xz file format spec §2.1.1.1, gzip RFC 1952 §2.3.1.
const ZSTD_MAGIC: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];
const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
const GZIP_MAGIC: &[u8] = &[0x1F, 0x8B];

/// How a module file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain ELF (or anything that is not one of the formats below).
    None,
    /// xz (`.ko.xz`).
    Xz,
    /// Zstandard (`.ko.zst`).
    Zstd,
    /// gzip (`.ko.gz`).
    Gzip,
}

impl Compression {
    /// The name kmod and the kernel use for it: `xz`, `zstd`, `gzip`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Tell the compression of `bytes` from its magic number.
pub fn detect_compression(bytes: &[u8]) -> Compression {
    if bytes.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else if bytes.starts_with(XZ_MAGIC) {
        Compression::Xz
    } else if bytes.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Decompress `bytes` if its magic says it is compressed; borrow it unchanged otherwise.
///
/// Output larger than `limit` bytes is an [`Error::TooLarge`]; corrupt or truncated input is an
/// [`Error::Decompress`]. Decoding is a single pass into a buffer pre-sized from the size the
/// container records (xz index, zstd frame header, gzip trailer), so a well-formed module is
/// decoded without reallocation.
pub fn decompress(bytes: &[u8], limit: u64) -> Result<Cow<'_, [u8]>, Error> {
    match detect_compression(bytes) {
        Compression::None => Ok(Cow::Borrowed(bytes)),
        Compression::Xz => decompress_xz(bytes, limit).map(Cow::Owned),
        Compression::Zstd => decompress_zstd(bytes, limit).map(Cow::Owned),
        Compression::Gzip => decompress_gzip(bytes, limit).map(Cow::Owned),
    }
}

/// An initial capacity: the recorded size when plausible, never more than `limit + 1`.
fn initial_capacity(recorded: Option<u64>, compressed_len: usize, limit: u64) -> usize {
    // Without a recorded size, modules compress about 3-4x; start there and grow.
    let guess = recorded.unwrap_or((compressed_len as u64).saturating_mul(4));
    let cap = guess.min(limit.saturating_add(1)).min(usize::MAX as u64);
    usize::try_from(cap).unwrap_or(0)
}

fn too_large(format: Compression, limit: u64) -> Error {
    Error::TooLarge { format, limit }
}

fn corrupt(format: Compression, message: impl fmt::Display) -> Error {
    Error::Decompress {
        format,
        message: message.to_string(),
    }
}

/// Read everything from `reader` into `out`, failing once more than `limit` bytes are out.
fn read_capped(
    reader: impl Read,
    out: &mut Vec<u8>,
    limit: u64,
    format: Compression,
) -> Result<(), Error> {
    let room = limit.saturating_add(1).saturating_sub(out.len() as u64);
    reader
        .take(room)
        .read_to_end(out)
        .map_err(|e| corrupt(format, e))?;
    if out.len() as u64 > limit {
        return Err(too_large(format, limit));
    }
    Ok(())
}

fn decompress_gzip(bytes: &[u8], limit: u64) -> Result<Vec<u8>, Error> {
    // ISIZE, the last four bytes, is the uncompressed size modulo 2^32 (RFC 1952 §2.3.1).
    let recorded = bytes
        .len()
        .checked_sub(4)
        .and_then(|start| Endian::Little.u32(bytes, start))
        .map(u64::from);
    let mut out = Vec::with_capacity(initial_capacity(recorded, bytes.len(), limit));
    let decoder = flate2::bufread::MultiGzDecoder::new(bytes);
    read_capped(decoder, &mut out, limit, Compression::Gzip)?;
    Ok(out)
}

fn decompress_zstd(bytes: &[u8], limit: u64) -> Result<Vec<u8>, Error> {
    use ruzstd::decoding::StreamingDecoder;

    let format = Compression::Zstd;
    let mut input = bytes;
    let mut out = Vec::new();
    // A file may hold several concatenated frames; libzstd (and so kmod) decodes them all.
    while !input.is_empty() {
        let mut decoder = StreamingDecoder::new(&mut input).map_err(|e| corrupt(format, e))?;
        let recorded = match decoder.decoder.content_size() {
            0 => None,
            n => Some(n),
        };
        let want = initial_capacity(recorded, bytes.len(), limit)
            .min(usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX))
            .saturating_sub(out.len());
        out.try_reserve_exact(want)
            .map_err(|_| too_large(format, limit))?;
        read_capped(&mut decoder, &mut out, limit, format)?;
        let frame = &decoder.decoder;
        if let (Some(stored), Some(computed)) = (
            frame.get_checksum_from_data(),
            frame.get_calculated_checksum(),
        ) && stored != computed
        {
            return Err(corrupt(format, "frame checksum mismatch"));
        }
    }
    Ok(out)
}

fn decompress_xz(bytes: &[u8], limit: u64) -> Result<Vec<u8>, Error> {
    use liblzma::stream::{Action, CONCATENATED, IGNORE_CHECK, Status, Stream};

    let format = Compression::Xz;
    let recorded = xz_recorded_size(bytes);
    // A single block checked by CRC32 (how kernels compress modules) is checked here, after
    // decoding, rather than by liblzma: its CRC32 is table-driven and took some 5 % of a
    // .ko.xz tree's decoding, crc32fast's uses the CPU's carry-less multiply.
    let own_check = xz_single_block_crc32(bytes);
    let mut out: Vec<u8> = Vec::new();
    out.try_reserve_exact(initial_capacity(recorded, bytes.len(), limit))
        .map_err(|_| too_large(format, limit))?;
    let cap_limit = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    // liblzma allocates with C's malloc, so a failure comes back as an error, not through
    // Rust's allocator: it is no corruption.
    let xz_error = |e: liblzma::stream::Error| match e {
        liblzma::stream::Error::Mem => Error::OutOfMemory { format },
        e => corrupt(format, e),
    };
    let flags = if own_check.is_some() {
        CONCATENATED | IGNORE_CHECK
    } else {
        CONCATENATED
    };
    let mut stream = Stream::new_stream_decoder(XZ_MEMLIMIT, flags).map_err(xz_error)?;
    // What liblzma would have said at the end of the block, had it checked the CRC32 itself:
    // a mismatch is corrupt data, and it comes before anything wrong after the block.
    let check = |out: &[u8]| match own_check {
        Some(block) if out.len() as u64 == block.size && crc32fast::hash(out) != block.crc32 => {
            Err(xz_error(liblzma::stream::Error::Data))
        }
        _ => Ok(()),
    };
    let mut input = bytes;
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap_limit {
                return Err(too_large(format, limit));
            }
            let grow = out.len().max(64 << 10).min(cap_limit - out.len());
            out.try_reserve_exact(grow)
                .map_err(|_| too_large(format, limit))?;
        }
        let (in_before, out_before) = (stream.total_in(), out.len());
        // All input is at hand, so Finish from the start: liblzma then reports truncation.
        let status = match stream.process_vec(input, &mut out, Action::Finish) {
            Ok(status) => status,
            Err(e) => {
                check(&out)?;
                return Err(xz_error(e));
            }
        };
        let consumed = usize::try_from(stream.total_in() - in_before).unwrap_or(usize::MAX);
        input = input.get(consumed..).unwrap_or_default();
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::GetCheck | Status::MemNeeded => {
                // No progress with room left in the output: the input ended early.
                if consumed == 0 && out.len() == out_before && out.len() < out.capacity() {
                    check(&out)?;
                    return Err(corrupt(format, "unexpected end of input"));
                }
            }
        }
    }
    if let Some(block) = own_check {
        // liblzma checked the block's size against the index: the whole output is the block.
        if out.len() as u64 != block.size || crc32fast::hash(&out) != block.crc32 {
            return Err(xz_error(liblzma::stream::Error::Data));
        }
    }
    if out.len() as u64 > limit {
        return Err(too_large(format, limit));
    }
    Ok(out)
}

/// The one block of a one-stream xz file whose check is CRC32: its stored CRC32 and the size
/// it decompresses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct XzBlock {
    crc32: u32,
    size: u64,
}

/// The block and check of `bytes` when it is exactly one xz stream (no padding, nothing
/// after it) of one block with a CRC32 check; `None` for anything else, which liblzma then
/// checks itself.
///
/// Layout from the xz file format spec: stream header and footer (§2.1.1, §2.1.2: the check
/// type is the low four bits of the second flags byte, CRC32 is 0x01), the index (§4: one
/// record of unpadded and uncompressed size) and the block (§3: its check is its last four
/// bytes, after the block padding, little-endian). This is read before decoding; liblzma, decoding
/// with `IGNORE_CHECK`, still checks that the block's sizes are the index's and that the index
/// and footer are the header's, so a stream it decodes is laid out as read here.
fn xz_single_block_crc32(bytes: &[u8]) -> Option<XzBlock> {
    const HEADER: usize = 12;
    const CHECK_CRC32: u8 = 0x01;
    let header_flags = bytes.get(6..8)?;
    let footer_flags = bytes.get(bytes.len().checked_sub(4)?..bytes.len().checked_sub(2)?)?;
    if footer_flags != header_flags || header_flags != [0, CHECK_CRC32] {
        return None;
    }
    let mut index = XzIndex::read(bytes)?;
    if index.records != 1 {
        return None;
    }
    let (unpadded, size) = index.next_record()?;
    let unpadded = usize::try_from(unpadded).ok()?;
    let padded = unpadded.checked_add(3)? & !3;
    if HEADER.checked_add(padded)? != index.start || unpadded < 4 {
        return None;
    }
    let crc32 = Endian::Little.u32(bytes, HEADER + padded - 4)?;
    Some(XzBlock { crc32, size })
}

/// The uncompressed size an xz file records in its index, for a single stream. Returns `None`
/// for anything unexpected; this is only a capacity hint.
fn xz_recorded_size(bytes: &[u8]) -> Option<u64> {
    let mut index = XzIndex::read(bytes)?;
    let mut total: u64 = 0;
    for _ in 0..index.records {
        let (_unpadded, size) = index.next_record()?;
        total = total.checked_add(size)?;
    }
    Some(total)
}

/// The index of an xz file's last stream, found from its footer: where it starts and its
/// records, read one at a time. Layout from the xz file format spec §2.1.2 (stream footer:
/// backward size, then the magic "YZ") and §4 (index: indicator 0, the number of records,
/// then (unpadded size, uncompressed size) per block).
#[derive(Debug)]
struct XzIndex<'a> {
    /// Offset of the index in the file.
    start: usize,
    /// Number of records.
    records: u64,
    index: &'a [u8],
    pos: usize,
}

impl<'a> XzIndex<'a> {
    fn read(bytes: &'a [u8]) -> Option<XzIndex<'a>> {
        let footer_start = bytes.len().checked_sub(12)?;
        let footer = bytes.get(footer_start..)?;
        if footer.get(10..12)? != b"YZ" {
            return None;
        }
        let index_size = (u64::from(Endian::Little.u32(footer, 4)?) + 1) * 4;
        let start = footer_start.checked_sub(usize::try_from(index_size).ok()?)?;
        let index = bytes.get(start..footer_start)?;
        if *index.first()? != 0 {
            return None;
        }
        let mut pos = 1;
        let records = read_xz_varint(index, &mut pos)?;
        Some(XzIndex {
            start,
            records,
            index,
            pos,
        })
    }

    /// The next record: (unpadded size, uncompressed size).
    fn next_record(&mut self) -> Option<(u64, u64)> {
        let unpadded = read_xz_varint(self.index, &mut self.pos)?;
        let size = read_xz_varint(self.index, &mut self.pos)?;
        Some((unpadded, size))
    }
}

/// xz's multibyte integer (spec §1.2): 7 bits per byte, at most 9 bytes.
fn read_xz_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let byte = *data.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(
            detect_compression(&[0x28, 0xB5, 0x2F, 0xFD, 0]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"\xFD7zXZ\0rest"), Compression::Xz);
        assert_eq!(
            detect_compression(b"\xFD7zXZ"),
            Compression::None,
            "magic is 6 bytes"
        );
        assert_eq!(detect_compression(&[0x1F, 0x8B]), Compression::Gzip);
        assert_eq!(detect_compression(b"\x7fELF"), Compression::None);
        assert_eq!(detect_compression(b""), Compression::None);
        assert_eq!(Compression::Zstd.to_string(), "zstd");
        assert_eq!(Compression::None.to_string(), "none");
    }

    #[test]
    fn xz_index_gives_the_size() {
        use std::io::Write;
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(&[7u8; 12345]).unwrap();
        let xz = enc.finish().unwrap();
        assert_eq!(xz_recorded_size(&xz), Some(12345));
        assert_eq!(xz_recorded_size(&xz[..xz.len() - 1]), None);
        assert_eq!(xz_recorded_size(b"YZ"), None);
    }

    #[test]
    fn a_single_crc32_block_is_found_and_checked_here() {
        use std::io::Write;
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let stream =
            liblzma::stream::Stream::new_easy_encoder(1, liblzma::stream::Check::Crc32).unwrap();
        let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        enc.write_all(&data).unwrap();
        let xz = enc.finish().unwrap();
        let block = xz_single_block_crc32(&xz).expect("one CRC32 block");
        assert_eq!(block.size, data.len() as u64);
        assert_eq!(block.crc32, crc32fast::hash(&data));
        assert_eq!(decompress_xz(&xz, 1 << 20).unwrap(), data);
        // The stored CRC32 changed: corrupt, as liblzma says it.
        let mut bad = xz.clone();
        let check_at = {
            let index_size = (u64::from(Endian::Little.u32(&xz, xz.len() - 8).unwrap()) + 1) * 4;
            let index_start = xz.len() - 12 - index_size as usize;
            let mut pos = 2;
            let unpadded = read_xz_varint(&xz[index_start..], &mut pos).unwrap() as usize;
            12 + ((unpadded + 3) & !3) - 4
        };
        bad[check_at] ^= 1;
        assert!(matches!(
            decompress_xz(&bad, 1 << 20),
            Err(Error::Decompress {
                format: Compression::Xz,
                ..
            })
        ));
        // Anything after the stream, or another check, is left to liblzma.
        let mut padded = xz.clone();
        padded.extend_from_slice(&[0; 4]);
        assert_eq!(xz_single_block_crc32(&padded), None);
        assert_eq!(decompress_xz(&padded, 1 << 20).unwrap(), data);
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(&data).unwrap();
        assert_eq!(xz_single_block_crc32(&enc.finish().unwrap()), None, "CRC64");
    }

    #[test]
    fn varints() {
        let mut pos = 0;
        assert_eq!(read_xz_varint(&[0x80, 0x01], &mut pos), Some(128));
        assert_eq!(pos, 2);
        let mut pos = 0;
        assert_eq!(read_xz_varint(&[0xff; 12], &mut pos), None);
    }

    #[test]
    fn capacity_is_capped() {
        assert_eq!(initial_capacity(Some(u64::MAX), 10, 100), 101);
        assert_eq!(initial_capacity(None, 10, 1000), 40);
    }
}
