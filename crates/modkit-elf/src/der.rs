//! A small, bounds-checked reader for the DER (and BER indefinite-length) encoding of PKCS#7.

use crate::{Endian, Error};

/// Nesting depth past which input is rejected (real PKCS#7 signatures nest about 8 deep).
const MAX_DEPTH: u32 = 64;

// Identifier octets (X.690 §8.1.2): universal tags and the context tags PKCS#7 uses.
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
pub(crate) const TAG_CONTEXT_0: u8 = 0xA0;
pub(crate) const TAG_CONTEXT_1: u8 = 0xA1;

/// One element: where its content starts, and the content bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// Offset of the content within the whole blob.
    pub offset: usize,
    pub content: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the children of this (constructed) element.
    pub fn children(&self) -> Reader<'a> {
        Reader {
            data: self.content,
            pos: 0,
            base: self.offset,
        }
    }
}

/// Reads consecutive elements out of a byte range.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data[0]` within the whole blob, for error messages.
    base: usize,
}

fn err(offset: usize, expected: &'static str) -> Error {
    Error::Der {
        offset: offset as u64,
        expected,
    }
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader {
            data,
            pos: 0,
            base: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The absolute offset of the next element.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The identifier octet of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Read the next element, whatever it is.
    pub fn read_any(&mut self) -> Result<Tlv<'a>, Error> {
        let (tlv, next) = parse_element(self.data, self.pos, self.base, 0)?;
        self.pos = next;
        Ok(tlv)
    }

    /// Read the next element, which must have identifier `tag`.
    pub fn read(&mut self, tag: u8, expected: &'static str) -> Result<Tlv<'a>, Error> {
        if self.peek_tag() != Some(tag) {
            return Err(err(self.offset(), expected));
        }
        self.read_any()
    }

    /// Read the next element if it has identifier `tag`.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, Error> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Parse the element at `pos` of `data`; returns it and the position after it.
fn parse_element<'a>(
    data: &'a [u8],
    pos: usize,
    base: usize,
    depth: u32,
) -> Result<(Tlv<'a>, usize), Error> {
    if depth > MAX_DEPTH {
        return Err(err(base + pos, "nesting no deeper than 64 levels"));
    }
    let at = |p: usize| base + p;
    let tag = *data
        .get(pos)
        .ok_or_else(|| err(at(pos), "an identifier octet"))?;
    let mut p = pos + 1;
    if tag & 0x1f == 0x1f {
        // High tag number form (X.690 §8.1.2.4): base-128 octets, last without bit 8.
        loop {
            let b = *data
                .get(p)
                .ok_or_else(|| err(at(p), "a tag number octet"))?;
            p += 1;
            if b & 0x80 == 0 {
                break;
            }
            if p - pos > 6 {
                return Err(err(at(pos), "a tag number of at most 5 octets"));
            }
        }
    }
    let first = *data.get(p).ok_or_else(|| err(at(p), "a length octet"))?;
    p += 1;
    let constructed = tag & 0x20 != 0;
    if first == 0x80 {
        // Indefinite length (BER): content runs to the end-of-contents octets 00 00.
        if !constructed {
            return Err(err(at(pos), "a definite length for a primitive element"));
        }
        let start = p;
        loop {
            match data.get(p..p + 2) {
                Some([0, 0]) => break,
                Some(_) => p = parse_element(data, p, base, depth + 1)?.1,
                None => return Err(err(at(p), "end-of-contents octets 00 00")),
            }
        }
        let content = data
            .get(start..p)
            .ok_or_else(|| err(at(start), "content"))?;
        let tlv = Tlv {
            offset: at(start),
            content,
        };
        return Ok((tlv, p + 2));
    }
    let len = if first & 0x80 == 0 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count > 8 || count == 0x7f {
            return Err(err(at(p - 1), "a length of at most 8 octets"));
        }
        let octets = data
            .get(p..p + count)
            .ok_or_else(|| err(at(p), "the length octets"))?;
        let value = Endian::Big
            .uint(octets)
            .ok_or_else(|| err(at(p), "the length octets"))?;
        p += count;
        usize::try_from(value).map_err(|_| err(at(pos), "a length that fits in memory"))?
    };
    let end = p
        .checked_add(len)
        .ok_or_else(|| err(at(pos), "a length within the data"))?;
    let content = data
        .get(p..end)
        .ok_or_else(|| err(at(pos), "content within the enclosing element"))?;
    Ok((
        Tlv {
            offset: at(p),
            content,
        },
        end,
    ))
}

/// The dotted-decimal text of an OBJECT IDENTIFIER's content octets (X.690 §8.19).
pub(crate) fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    let mut in_arc = false;
    for &b in content {
        if !in_arc && b == 0x80 {
            return None; // non-minimal encoding
        }
        value = value.checked_mul(128)? | u128::from(b & 0x7f);
        in_arc = b & 0x80 != 0;
        if !in_arc {
            arcs.push(value);
            value = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    let first = *arcs.first()?;
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut text = format!("{a}.{b}");
    for arc in arcs.iter().skip(1) {
        text.push('.');
        text.push_str(&arc.to_string());
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_lengths() {
        // SEQUENCE { INTEGER 5, OCTET STRING (long form length 0x81 0x02) "ab" }
        let der = [0x30, 0x08, 0x02, 0x01, 0x05, 0x04, 0x81, 0x02, b'a', b'b'];
        let mut r = Reader::new(&der);
        let seq = r.read(TAG_SEQUENCE, "seq").unwrap();
        assert!(r.is_empty());
        let mut c = seq.children();
        assert_eq!(c.read(TAG_INTEGER, "int").unwrap().content, &[5]);
        let s = c.read(TAG_OCTET_STRING, "octets").unwrap();
        assert_eq!((s.content, s.offset), (&b"ab"[..], 8));
        assert!(c.is_empty());
        assert!(c.read_any().is_err());
    }

    #[test]
    fn indefinite_lengths() {
        // SEQUENCE (indefinite) { [0] (indefinite) { INTEGER 7 } EOC } EOC, then INTEGER 1.
        let ber = [
            0x30, 0x80, 0xA0, 0x80, 0x02, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01,
        ];
        let mut r = Reader::new(&ber);
        let seq = r.read(TAG_SEQUENCE, "seq").unwrap();
        let inner = seq.children().read(TAG_CONTEXT_0, "[0]").unwrap();
        assert_eq!(
            inner.children().read(TAG_INTEGER, "int").unwrap().content,
            &[7]
        );
        assert_eq!(r.read(TAG_INTEGER, "int").unwrap().content, &[1]);
        // Missing end-of-contents.
        assert!(Reader::new(&ber[..9]).read_any().is_err());
        // Indefinite length on a primitive element.
        assert!(Reader::new(&[0x04, 0x80, 0x00, 0x00]).read_any().is_err());
    }

    #[test]
    fn hostile_lengths() {
        let cases: &[&[u8]] = &[
            &[],
            &[0x30],
            &[0x30, 0x05, 0x00],
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0xff],
            &[0x1f, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00],
        ];
        for der in cases {
            assert!(Reader::new(der).read_any().is_err(), "{der:02x?}");
        }
        // Deep nesting of indefinite-length elements stops at the limit.
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend([0x30, 0x80]);
        }
        deep.extend(std::iter::repeat_n(0u8, 200));
        let err = Reader::new(&deep).read_any().unwrap_err();
        assert!(err.to_string().contains("nesting"), "{err}");
        // High tag numbers are skipped over correctly.
        let mut r = Reader::new(&[0x9f, 0x81, 0x01, 0x01, 0xAA]);
        assert_eq!(r.read_any().unwrap().content, &[0xAA]);
    }

    #[test]
    fn oids() {
        let sha256 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
        assert_eq!(
            oid_to_string(&sha256).as_deref(),
            Some("2.16.840.1.101.3.4.2.1")
        );
        assert_eq!(
            oid_to_string(&[0x55, 0x04, 0x03]).as_deref(),
            Some("2.5.4.3")
        );
        assert_eq!(oid_to_string(&[0x2B, 0x06]).as_deref(), Some("1.3.6"));
        assert_eq!(oid_to_string(&[]), None);
        assert_eq!(oid_to_string(&[0x86]), None, "unterminated arc");
        assert_eq!(oid_to_string(&[0x80, 0x01]), None, "non-minimal arc");
        assert_eq!(oid_to_string(&[0xff; 30]), None, "arc overflow");
    }
}
