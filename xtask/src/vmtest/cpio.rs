//! A writer for the "newc" cpio format the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).

/// File type bits of `mode` (include/uapi/linux/stat.h).
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An archive being built in memory; entries are written in the order they are added, so add a
/// directory before what it contains.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            bytes: Vec::new(),
            next_ino: 1,
        }
    }

    pub fn dir(&mut self, path: &str) {
        self.entry(path, S_IFDIR | 0o755, 2, (0, 0), b"");
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, S_IFREG | (mode & 0o7777), 1, (0, 0), data);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | (mode & 0o7777), 1, (major, minor), b"");
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.next_ino = 0;
        self.entry("TRAILER!!!", 0, 1, (0, 0), b"");
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        let name = path.trim_start_matches('/');
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, for reproducible archives
            u32::try_from(data.len()).expect("initramfs members are far below 4 GiB"),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("short names"),
            0, // check: only for the "070702" variant
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Header+name and data each end on a 4-byte boundary.
    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed member: (name, mode, rdev major, rdev minor, data).
    type Member = (String, u32, u32, u32, Vec<u8>);

    /// A strict reader for the tests: checks magic, alignment and the trailer.
    fn read(bytes: &[u8]) -> Vec<Member> {
        let mut members = Vec::new();
        let mut pos = 0;
        loop {
            assert_eq!(pos % 4, 0, "entry at {pos} is not aligned");
            let header = &bytes[pos..pos + 110];
            assert_eq!(&header[..6], b"070701");
            let field = |i: usize| {
                let hex = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap()
            };
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            let name_start = pos + 110;
            let name = &bytes[name_start..name_start + namesize];
            assert_eq!(name.last(), Some(&0), "name is NUL-terminated");
            let name = String::from_utf8(name[..namesize - 1].to_vec()).unwrap();
            let data_start = (name_start + namesize).next_multiple_of(4);
            let data = bytes[data_start..data_start + size].to_vec();
            pos = (data_start + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert_eq!(pos, bytes.len(), "nothing after the trailer");
                return members;
            }
            members.push((name, mode, field(9), field(10), data));
        }
    }

    #[test]
    fn round_trip() {
        let mut archive = Archive::new();
        archive.dir("/bin");
        archive.file("/bin/modkit", 0o755, b"\x7fELF and more");
        archive.symlink("/sbin/insmod", "/bin/modkit");
        archive.char_device("/dev/console", 0o600, 5, 1);
        archive.file("/empty", 0o644, b"");
        let members = read(&archive.finish());
        let expected: Vec<Member> = vec![
            ("bin".into(), 0o040755, 0, 0, vec![]),
            (
                "bin/modkit".into(),
                0o100755,
                0,
                0,
                b"\x7fELF and more".to_vec(),
            ),
            (
                "sbin/insmod".into(),
                0o120777,
                0,
                0,
                b"/bin/modkit".to_vec(),
            ),
            ("dev/console".into(), 0o020600, 5, 1, vec![]),
            ("empty".into(), 0o100644, 0, 0, vec![]),
        ];
        assert_eq!(members, expected);
    }

    #[test]
    fn exact_bytes_of_one_file() {
        let mut archive = Archive::new();
        archive.file("a", 0o644, b"xyz");
        let bytes = archive.finish();
        let mut expected = String::from("070701");
        for field in [1, 0o100644, 0, 0, 1, 0, 3, 0, 0, 0, 0, 2, 0] {
            expected.push_str(&format!("{field:08X}"));
        }
        // 110-byte header + "a\0" = 112, aligned; data "xyz" + 1 byte of padding.
        expected.push_str("a\0xyz\0");
        assert_eq!(&bytes[..expected.len()], expected.as_bytes());
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn empty_archive_is_just_the_trailer() {
        assert_eq!(read(&Archive::new().finish()), vec![]);
    }
}
