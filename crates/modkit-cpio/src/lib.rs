//! A reproducible writer for the "newc" cpio format the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst), and the compressions the
//! kernel's initramfs unpacker reads (gzip, xz, zstd).
//!
//! Reproducible means: the same entries give the same bytes, whatever order they were added
//! in. Entries are written sorted by path (so a directory comes before what it holds), the
//! parent directories of every path exist (created as `0755` when not added), every entry has
//! the one mtime the caller gives (`SOURCE_DATE_EPOCH` or 0 for the CLI), uid and gid 0, and
//! inode numbers count up from 1 in path order.
//!
//! ```
//! use modkit_cpio::{Archive, Compression};
//!
//! let mut archive = Archive::new(0);
//! archive.file("lib/modules/6.1/modules.order", 0o644, b"".to_vec());
//! archive.symlink("sbin/init", "/init");
//! let bytes = archive.finish();
//! let image = modkit_cpio::compress(&bytes, Compression::Gzip).unwrap();
//! assert_eq!(&image[..2], b"\x1f\x8b");
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write;

/// File type bits of `mode` (include/uapi/linux/stat.h).
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// The newc magic and the name of the last entry (buffer-format.rst).
const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Permission bits (`0o7777` at most); the type comes from `kind`.
    perm: u32,
    kind: Kind,
}

/// An archive being built in memory. Paths are relative to the image's root (a leading `/` is
/// dropped); adding a path twice keeps the last one.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    mtime: u32,
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    /// An empty archive whose entries all get the modification time `mtime` (seconds since the
    /// epoch).
    pub fn new(mtime: u32) -> Archive {
        Archive {
            mtime,
            entries: BTreeMap::new(),
        }
    }

    /// A directory, mode `0755`.
    pub fn dir(&mut self, path: &str) {
        self.insert(path, 0o755, Kind::Dir);
    }

    /// A regular file with permission bits `mode`.
    pub fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) {
        self.insert(path, mode & 0o7777, Kind::File(data.into()));
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.insert(path, 0o777, Kind::Symlink(target.to_owned()));
    }

    /// A character device node.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.insert(path, mode & 0o7777, Kind::CharDevice { major, minor });
    }

    /// Whether the archive has nothing yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The paths added so far (with implied directories only once [`Archive::finish`] runs),
    /// sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn insert(&mut self, path: &str, perm: u32, kind: Kind) {
        let name = normalize(path);
        if name.is_empty() {
            return;
        }
        self.entries.insert(name, Entry { perm, kind });
    }

    /// The archive's bytes: every entry in path order, each missing parent directory before
    /// what it holds, then the trailer.
    ///
    /// # Panics
    /// When a file is 4 GiB or more, which newc cannot describe.
    pub fn finish(mut self) -> Vec<u8> {
        let parents: Vec<String> = self
            .entries
            .keys()
            .flat_map(|path| {
                path.match_indices('/')
                    .map(|(i, _)| path[..i].to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        for parent in parents {
            self.entries.entry(parent).or_insert(Entry {
                perm: 0o755,
                kind: Kind::Dir,
            });
        }
        let mut out = Vec::new();
        for (ino, (name, entry)) in (1u32..).zip(&self.entries) {
            let (mode, nlink, rdev, data): (u32, u32, (u32, u32), &[u8]) = match &entry.kind {
                Kind::Dir => (S_IFDIR | entry.perm, 2, (0, 0), b""),
                Kind::File(data) => (S_IFREG | entry.perm, 1, (0, 0), data),
                Kind::Symlink(target) => (S_IFLNK | entry.perm, 1, (0, 0), target.as_bytes()),
                Kind::CharDevice { major, minor } => {
                    (S_IFCHR | entry.perm, 1, (*major, *minor), b"")
                }
            };
            write_entry(&mut out, name, ino, mode, nlink, self.mtime, rdev, data);
        }
        write_entry(&mut out, TRAILER, 0, 0, 1, 0, (0, 0), b"");
        out
    }
}

/// A path as stored: no leading `/`, no empty or `.` components.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[allow(clippy::too_many_arguments)] // reason: one argument per header field; a struct would only rename them
fn write_entry(
    out: &mut Vec<u8>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    rdev: (u32, u32),
    data: &[u8],
) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        mtime,
        u32::try_from(data.len()).expect("a newc member is below 4 GiB"),
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        u32::try_from(name.len() + 1).expect("a path is below 4 GiB"),
        0, // check: only for the "070702" variant
    ];
    out.extend_from_slice(MAGIC);
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad(out);
    out.extend_from_slice(data);
    pad(out);
}

/// Header+name and data each end on a 4-byte boundary.
fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// How to compress an archive: the formats the kernel's initramfs unpacker reads (Debian's
/// kernels: CONFIG_RD_GZIP, CONFIG_RD_XZ, CONFIG_RD_ZSTD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// The plain cpio archive.
    None,
    /// gzip (deflate, level 9, header mtime 0).
    Gzip,
    /// xz, LZMA2 preset 6 with a CRC32 check (the kernel's xz decoder does not take CRC64).
    Xz,
    /// zstd: one standard frame with a checksum, level [`ZSTD_LEVEL`] (libzstd, through the
    /// `zstd` crate).
    #[default]
    Zstd,
}

impl Compression {
    /// The names the CLI takes: `none`, `gzip`, `xz`, `zstd`.
    pub const NAMES: [&'static str; 4] = ["zstd", "xz", "gzip", "none"];

    /// The compression called `name`, one of [`Compression::NAMES`].
    pub fn from_name(name: &str) -> Option<Compression> {
        Some(match name {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "xz" => Compression::Xz,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// Its name, as [`Compression::from_name`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// The zstd level: on Debian 6.1's 310 `--generic` modules (52 MB of cpio), level 3 gives
/// 13.0 MB in 0.3 s, 9 gives 11.3 MB in 1.2 s, 19 gives 9.9 MB in 55 s (zstd 1.5, one core).
/// ruzstd's encoder, whose only level is "fastest", gave 1.6 times zstd -1's size.
pub const ZSTD_LEVEL: i32 = 9;

/// The workers zstd compresses with: the CPUs, at most 4.
fn zstd_workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u32)
}

/// The input zstd's workers take at a time. libzstd's default job at level 9 is four times
/// its window (16 MiB), more than a whole image for a few devices (Debian 6.1's device set
/// is some 6 MiB of cpio), so the image was one job and one worker did all of it, however
/// many there were. With 2 MiB jobs a 2-core machine compresses that image on both cores for
/// 0.6 % more bytes (each job starts from the window's last eighth of its predecessor, zstd's
/// default overlap). A constant, not derived from the machine: the bytes depend only on it.
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// libzstd's encoder with the level, the checksum, the workers and the job size above.
fn zstd_encoder(
    out: Vec<u8>,
    workers: u32,
) -> std::io::Result<zstd::stream::Encoder<'static, Vec<u8>>> {
    let mut encoder = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    // zstd's multi-threaded mode: its output does not depend on the number of workers (one
    // or more), so an image is the same bytes on any machine (tested below).
    encoder.multithread(workers)?;
    encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
    Ok(encoder)
}

/// Why compressing failed (a compressor could not allocate, or refused its parameters).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The compressor failed.
    #[error("{format} compression failed")]
    Compress {
        /// `gzip`, `xz` or `zstd`.
        format: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// `bytes` compressed as `how` says; deterministic: the same bytes give the same output.
pub fn compress(bytes: &[u8], how: Compression) -> Result<Vec<u8>, Error> {
    let failed = |source| Error::Compress {
        format: how.name(),
        source,
    };
    match how {
        Compression::None => Ok(bytes.to_vec()),
        Compression::Gzip => {
            // GzEncoder writes mtime 0 and no file name: nothing varies between runs.
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(bytes).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        Compression::Xz => {
            let stream =
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
                    .map_err(|err| failed(err.into()))?;
            let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            encoder.write_all(bytes).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        Compression::Zstd => {
            let mut encoder = zstd_encoder(Vec::new(), zstd_workers()).map_err(failed)?;
            encoder.write_all(bytes).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
    }
}

/// One entry of an archive being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Its path as stored (no leading `/` in what [`Archive`] writes).
    pub name: &'a [u8],
    /// Type and permission bits.
    pub mode: u32,
    /// Its data: a file's contents, a symlink's target.
    pub data: &'a [u8],
    /// A device node's number (`rdevmajor`, `rdevminor`); `(0, 0)` for other members.
    pub rdev: (u32, u32),
}

impl Member<'_> {
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.mode & 0o170000 == S_IFREG
    }
}

/// Why an archive could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("newc cpio: {what} at offset {offset}")]
#[non_exhaustive]
pub struct ReadError {
    /// Where.
    pub offset: usize,
    /// What was expected.
    pub what: &'static str,
}

/// The members of the newc archive at the start of `bytes`, up to its trailer, and the offset
/// just past the trailer's padding (where a concatenated archive, as the kernel accepts, would
/// start). Any malformed or truncated input is an error naming the offset, never a panic.
pub fn read(bytes: &[u8]) -> Result<(Vec<Member<'_>>, usize), ReadError> {
    let mut members = Vec::new();
    let mut pos = 0;
    loop {
        let err = |offset, what| ReadError { offset, what };
        let header = bytes
            .get(pos..pos + 110)
            .ok_or(err(pos, "a 110-byte header"))?;
        if &header[..6] != MAGIC {
            return Err(err(pos, "the magic 070701"));
        }
        let field = |i: usize| -> Result<u32, ReadError> {
            let hex = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i])
                .map_err(|_| err(pos + 6 + 8 * i, "8 hex digits"))?;
            u32::from_str_radix(hex, 16).map_err(|_| err(pos + 6 + 8 * i, "8 hex digits"))
        };
        let (mode, size, namesize) = (field(1)?, field(6)? as usize, field(11)? as usize);
        let name_start = pos + 110;
        let name = bytes
            .get(name_start..name_start.saturating_add(namesize))
            .ok_or(err(name_start, "the name"))?;
        let Some((&0, name)) = name.split_last() else {
            return Err(err(name_start, "a NUL-terminated name"));
        };
        let data_start = (name_start + namesize).next_multiple_of(4);
        let data = bytes
            .get(data_start..data_start.saturating_add(size))
            .ok_or(err(data_start, "the data"))?;
        let end = (data_start + size).next_multiple_of(4);
        if name == TRAILER.as_bytes() {
            return Ok((members, end.min(bytes.len())));
        }
        let rdev = (field(9)?, field(10)?);
        members.push(Member {
            name,
            mode,
            data,
            rdev,
        });
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed member: (name, ino, mode, mtime, rdev major, rdev minor, data).
    type Member = (String, u32, u32, u32, u32, u32, Vec<u8>);

    /// A strict reader for the tests: checks magic, alignment and the trailer.
    fn read(bytes: &[u8]) -> Vec<Member> {
        let mut members = Vec::new();
        let mut pos = 0;
        loop {
            assert_eq!(pos % 4, 0, "entry at {pos} is not aligned");
            let header = &bytes[pos..pos + 110];
            assert_eq!(&header[..6], MAGIC);
            let field = |i: usize| {
                let hex = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap()
            };
            assert_eq!((field(2), field(3)), (0, 0), "uid and gid are 0");
            let (size, namesize) = (field(6) as usize, field(11) as usize);
            let name_start = pos + 110;
            let name = &bytes[name_start..name_start + namesize];
            assert_eq!(name.last(), Some(&0), "name is NUL-terminated");
            let name = String::from_utf8(name[..namesize - 1].to_vec()).unwrap();
            let data_start = (name_start + namesize).next_multiple_of(4);
            assert!(
                bytes[name_start + namesize..data_start]
                    .iter()
                    .all(|&b| b == 0)
            );
            let data = bytes[data_start..data_start + size].to_vec();
            let end = data_start + size;
            pos = end.next_multiple_of(4);
            assert!(bytes[end..pos].iter().all(|&b| b == 0), "padding is zeros");
            if name == TRAILER {
                assert_eq!(pos, bytes.len(), "nothing after the trailer");
                return members;
            }
            members.push((
                name,
                field(0),
                field(1),
                field(5),
                field(9),
                field(10),
                data,
            ));
        }
    }

    /// Multi-threaded zstd gives the same bytes with one worker or four, so images do not
    /// depend on the building machine's CPUs; and zstd decodes them.
    #[test]
    fn zstd_output_does_not_depend_on_the_workers() {
        // Several MiB of varied bytes: several zstd jobs ([`ZSTD_JOB_SIZE`]).
        let mut data = Vec::new();
        let mut x: u32 = 1;
        while data.len() < 12 << 20 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            data.extend_from_slice(format!("line {} {}\n", x % 1000, x >> 20).as_bytes());
        }
        let with = |workers: u32| {
            let mut encoder = zstd_encoder(Vec::new(), workers).unwrap();
            std::io::Write::write_all(&mut encoder, &data).unwrap();
            encoder.finish().unwrap()
        };
        let one = with(1);
        assert_eq!(one, with(4));
        assert_eq!(one, compress(&data, Compression::Zstd).unwrap());
        assert_eq!(zstd::decode_all(one.as_slice()).unwrap(), data);
    }

    #[test]
    fn sorted_with_implied_directories_and_inodes_in_order() {
        let mut archive = Archive::new(1_700_000_000);
        archive.char_device("/dev/console", 0o600, 5, 1);
        archive.symlink("/sbin/insmod", "/bin/modkit");
        archive.file("/bin/modkit", 0o755, b"\x7fELF and more".to_vec());
        archive.file("/empty", 0o644, b"".to_vec());
        archive.dir("/bin");
        let t = 1_700_000_000;
        let expected: Vec<Member> = vec![
            ("bin".into(), 1, 0o040755, t, 0, 0, vec![]),
            (
                "bin/modkit".into(),
                2,
                0o100755,
                t,
                0,
                0,
                b"\x7fELF and more".to_vec(),
            ),
            ("dev".into(), 3, 0o040755, t, 0, 0, vec![]),
            ("dev/console".into(), 4, 0o020600, t, 5, 1, vec![]),
            ("empty".into(), 5, 0o100644, t, 0, 0, vec![]),
            ("sbin".into(), 6, 0o040755, t, 0, 0, vec![]),
            (
                "sbin/insmod".into(),
                7,
                0o120777,
                t,
                0,
                0,
                b"/bin/modkit".to_vec(),
            ),
        ];
        assert_eq!(read(&archive.finish()), expected);
    }

    #[test]
    fn exact_bytes_of_one_file() {
        let mut archive = Archive::new(0);
        archive.file("a", 0o644, b"xyz".to_vec());
        let mut expected = String::from("070701");
        for field in [1, 0o100644, 0, 0, 1, 0, 3, 0, 0, 0, 0, 2, 0] {
            expected.push_str(&format!("{field:08X}"));
        }
        // 110-byte header + "a\0" = 112, aligned; data "xyz" + 1 byte of padding.
        expected.push_str("a\0xyz\0");
        expected.push_str("070701");
        for field in [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0] {
            expected.push_str(&format!("{field:08X}"));
        }
        // 110 + "TRAILER!!!\0" = 121, padded to 124.
        expected.push_str("TRAILER!!!\0\0\0\0");
        assert_eq!(
            String::from_utf8(archive.finish()).unwrap(),
            expected,
            "byte for byte"
        );
    }

    #[test]
    fn padding_for_every_name_and_data_length() {
        for name_len in 1..=8 {
            for data_len in 0..=8 {
                let mut archive = Archive::new(0);
                let name = "n".repeat(name_len);
                archive.file(&name, 0o644, vec![b'd'; data_len]);
                let bytes = archive.finish();
                let members = read(&bytes);
                assert_eq!(members.len(), 1);
                assert_eq!(members[0].0, name);
                assert_eq!(members[0].6.len(), data_len);
                let expected = (110 + name_len + 1).next_multiple_of(4)
                    + data_len.next_multiple_of(4)
                    + (110 + TRAILER.len() + 1).next_multiple_of(4);
                assert_eq!(bytes.len(), expected, "name {name_len}, data {data_len}");
            }
        }
    }

    #[test]
    fn same_entries_in_any_order_give_the_same_bytes() {
        let add = |order: &[usize]| {
            let mut archive = Archive::new(42);
            for &i in order {
                match i {
                    0 => archive.file("lib/modules/v/a.ko", 0o644, b"a".to_vec()),
                    1 => archive.file("lib/modules/v/b.ko", 0o644, b"b".to_vec()),
                    2 => archive.symlink("bin/x", "/lib"),
                    _ => archive.dir("etc"),
                }
            }
            archive.finish()
        };
        let first = add(&[0, 1, 2, 3]);
        assert_eq!(first, add(&[3, 2, 1, 0]));
        assert_eq!(first, add(&[1, 3, 0, 2]));
        assert_ne!(first, Archive::new(43).finish(), "mtime is in the bytes");
    }

    #[test]
    fn paths_are_normalised_and_the_last_addition_wins() {
        let mut archive = Archive::new(0);
        archive.file("//a/./b", 0o644, b"old".to_vec());
        archive.file("a/b", 0o600, b"new".to_vec());
        archive.dir("/");
        let members = read(&archive.finish());
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, ["a", "a/b"]);
        assert_eq!(members[1].2, 0o100600);
        assert_eq!(members[1].6, b"new");
    }

    #[test]
    fn read_gives_back_what_was_written_and_every_prefix_fails_cleanly() {
        let mut archive = Archive::new(7);
        archive.file("lib/modules/v/a.ko", 0o644, b"module".to_vec());
        archive.symlink("bin/sh", "/init");
        let bytes = archive.finish();
        let (members, end) = super::read(&bytes).unwrap();
        assert_eq!(end, bytes.len());
        let names: Vec<&[u8]> = members.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                &b"bin"[..],
                b"bin/sh",
                b"lib",
                b"lib/modules",
                b"lib/modules/v",
                b"lib/modules/v/a.ko"
            ]
        );
        assert!(members[5].is_file() && !members[1].is_file());
        assert_eq!(members[5].data, b"module");
        assert_eq!(members[1].data, b"/init");
        // Concatenated: the second archive starts where the first ends.
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let (_, end) = super::read(&two).unwrap();
        assert_eq!(super::read(&two[end..]).unwrap().0, members);
        for cut in 0..bytes.len() - 4 {
            // The last 4 bytes are the trailer's padding: a cut there still reads.
            assert!(super::read(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
        }
        let mut bad = bytes.clone();
        bad[14] = b'G'; // in the mode field
        assert_eq!(
            super::read(&bad),
            Err(ReadError {
                offset: 14,
                what: "8 hex digits"
            })
        );
    }

    #[test]
    fn empty_archive_is_just_the_trailer() {
        assert_eq!(read(&Archive::new(0).finish()), vec![]);
    }

    #[test]
    fn every_compression_round_trips_and_is_deterministic() {
        let mut archive = Archive::new(0);
        for i in 0..200 {
            archive.file(&format!("f{i}"), 0o644, format!("data {i}\n").repeat(50));
        }
        let plain = archive.finish();
        for how in Compression::NAMES.map(|n| Compression::from_name(n).unwrap()) {
            let packed = compress(&plain, how).unwrap();
            assert_eq!(
                packed,
                compress(&plain, how).unwrap(),
                "{how:?} is deterministic"
            );
            let mut unpacked = Vec::new();
            match how {
                Compression::None => unpacked = packed.clone(),
                Compression::Gzip => {
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&packed[..]),
                        &mut unpacked,
                    )
                    .unwrap();
                }
                Compression::Xz => {
                    std::io::Read::read_to_end(
                        &mut liblzma::read::XzDecoder::new(&packed[..]),
                        &mut unpacked,
                    )
                    .unwrap();
                }
                Compression::Zstd => {
                    std::io::Read::read_to_end(
                        &mut ruzstd::decoding::StreamingDecoder::new(&packed[..]).unwrap(),
                        &mut unpacked,
                    )
                    .unwrap();
                }
            }
            assert_eq!(unpacked, plain, "{how:?}");
            if how == Compression::Xz {
                // Stream flags (xz-file-format.txt 2.1.1.2): check type 0x01 is CRC32.
                assert_eq!(packed[6..8], [0, 1], "xz with a CRC32 check");
            }
            if how != Compression::None {
                assert!(packed.len() < plain.len() / 4, "{how:?} compresses");
            }
            assert_eq!(Compression::from_name(how.name()), Some(how));
        }
    }
}
