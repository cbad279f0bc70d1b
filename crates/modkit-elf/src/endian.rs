//! Byte order as a value, and the one way this crate reads integers out of borrowed bytes.
//!
//! A module's byte order is known only once its ELF header is read (Debian ships little- and
//! big-endian kernels), and the formats around it fix theirs (gzip and xz little-endian, the
//! signature trailer and DER big-endian): all of them read through [`Endian`]. Every read is a
//! checked `get(range)`: bytes that are not there give `None`, never zeros.

use std::fmt;

/// Byte order of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// `ELFDATA2LSB`.
    Little,
    /// `ELFDATA2MSB`.
    Big,
}

impl fmt::Display for Endian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endian::Little => "little-endian",
            Endian::Big => "big-endian",
        })
    }
}

/// The `N` bytes at `at`, if all of them are there.
fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

impl Endian {
    /// The `u16` at `at`.
    pub(crate) fn u16(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw = array(bytes, at)?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(raw),
            Endian::Big => u16::from_be_bytes(raw),
        })
    }

    /// The `u32` at `at`.
    pub(crate) fn u32(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw = array(bytes, at)?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(raw),
            Endian::Big => u32::from_be_bytes(raw),
        })
    }

    /// The `u64` at `at`.
    pub(crate) fn u64(self, bytes: &[u8], at: usize) -> Option<u64> {
        let raw = array(bytes, at)?;
        Some(match self {
            Endian::Little => u64::from_le_bytes(raw),
            Endian::Big => u64::from_be_bytes(raw),
        })
    }

    /// `bytes`, 1 to 8 of them, as one unsigned integer (a CRC whose width is the ELF class's,
    /// a DER length); `None` for any other length.
    pub(crate) fn uint(self, bytes: &[u8]) -> Option<u64> {
        let len = bytes.len();
        if !(1..=8).contains(&len) {
            return None;
        }
        let mut raw = [0u8; 8];
        match self {
            Endian::Little => {
                raw.get_mut(..len)?.copy_from_slice(bytes);
                Some(u64::from_le_bytes(raw))
            }
            Endian::Big => {
                raw.get_mut(8 - len..)?.copy_from_slice(bytes);
                Some(u64::from_be_bytes(raw))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Endian::{Big, Little};

    #[test]
    fn reads_in_either_order() {
        let bytes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(Little.u16(&bytes, 1), Some(0x0302));
        assert_eq!(Big.u16(&bytes, 1), Some(0x0203));
        assert_eq!(Little.u32(&bytes, 0), Some(0x0403_0201));
        assert_eq!(Big.u32(&bytes, 0), Some(0x0102_0304));
        assert_eq!(Little.u64(&bytes, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(Big.u64(&bytes, 1), Some(0x0203_0405_0607_0809));
        assert_eq!(Big.uint(&bytes[..3]), Some(0x01_0203));
        assert_eq!(Little.uint(&bytes[..3]), Some(0x03_0201));
        assert_eq!(Big.uint(&bytes[..8]), Big.u64(&bytes, 0));
        assert_eq!(
            Little.uint(&bytes[..4]),
            Little.u32(&bytes, 0).map(u64::from)
        );
    }

    #[test]
    fn short_input_is_none_not_zero() {
        let bytes = [0xff; 7];
        assert_eq!(Little.u16(&bytes, 6), None);
        assert_eq!(Big.u32(&bytes, 4), None);
        assert_eq!(Little.u64(&bytes, 0), None);
        assert_eq!(Big.u32(&bytes, usize::MAX), None);
        assert_eq!(Big.uint(&[]), None);
        assert_eq!(Big.uint(&[0; 9]), None);
    }
}
