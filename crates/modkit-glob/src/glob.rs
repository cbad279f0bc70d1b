//! One compiled alias pattern: its literal prefix and suffix are split off once, so most
//! non-matching keys are rejected by a byte comparison before fnmatch runs.

use std::fmt;

use crate::fnmatch::fnmatch;

/// Bytes that can start something other than a literal byte in a pattern.
pub(crate) fn is_special(b: u8) -> bool {
    matches!(b, b'*' | b'?' | b'[' | b'\\')
}

/// The part of a C string before its first NUL.
pub(crate) fn until_nul(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(end) => &s[..end],
        None => s,
    }
}

/// How a [`Glob`] decides a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// No special byte: the key must equal the pattern.
    Literal,
    /// A literal followed only by `*`s: the key must start with the literal.
    PrefixStar,
    /// Anything else: prefix and suffix checks, then fnmatch on the middle.
    General,
}

/// A compiled alias pattern that matches exactly as glibc's `fnmatch(pattern, key, 0)` does
/// in the C locale (see [`crate::fnmatch`]). Immutable; cheap to test many keys against.
///
/// Like a C string, the pattern ends at its first NUL, and so does each key.
///
/// ```
/// use modkit_glob::Glob;
///
/// let g = Glob::new("pci:v00008086d00001533sv*sd*bc*sc*i*");
/// assert!(g.is_match("pci:v00008086d00001533sv00008086sd00000000bc02sc00i00"));
/// assert!(!g.is_match("pci:v00008086d00001534sv00008086sd00000000bc02sc00i00"));
/// assert_eq!(g.literal_prefix(), "pci:v00008086d00001533sv");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    pattern: Box<str>,
    /// Length of the pattern up to its first NUL.
    len: usize,
    /// Length of the leading run of literal bytes.
    prefix: usize,
    /// Length of the trailing run of bytes that can only be literal (0 unless `General`).
    suffix: usize,
    kind: Kind,
}

impl Glob {
    /// Compile `pattern`. Every string is a valid pattern: malformed brackets and a trailing
    /// backslash mean what they mean to glibc (see [`crate::fnmatch`]).
    pub fn new(pattern: &str) -> Glob {
        let bytes = until_nul(pattern.as_bytes());
        let len = bytes.len();
        let prefix = bytes.iter().position(|&b| is_special(b)).unwrap_or(len);
        let (kind, suffix) = if prefix == len {
            (Kind::Literal, 0)
        } else if bytes[prefix..].iter().all(|&b| b == b'*') {
            (Kind::PrefixStar, 0)
        } else {
            // The trailing bytes after the last byte that could open, close or escape
            // anything. A bracket cannot reach into them (they hold no `]`; an unterminated
            // bracket makes its `[` literal and the rest plain pattern again), so a matching
            // key ends with them.
            let suffix = bytes
                .iter()
                .rev()
                .position(|&b| is_special(b) || b == b']')
                .unwrap_or(len);
            (Kind::General, suffix)
        };
        Glob {
            pattern: pattern.into(),
            len,
            prefix,
            suffix,
            kind,
        }
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The literal bytes every matching key starts with (the pattern up to its first `*`,
    /// `?`, `[` or `\`).
    pub fn literal_prefix(&self) -> &str {
        // The prefix ends before an ASCII byte or at the end (or a NUL): a char boundary.
        &self.pattern[..self.prefix]
    }

    /// Whether the pattern has no wildcard, bracket or escape: it matches only itself.
    pub fn is_literal(&self) -> bool {
        self.kind == Kind::Literal
    }

    /// Does `key` match? Exactly `fnmatch(pattern, key, 0) == 0`.
    pub fn is_match(&self, key: impl AsRef<[u8]>) -> bool {
        self.matches_bytes(until_nul(key.as_ref()))
    }

    /// `is_match` for a key already cut at its first NUL.
    pub(crate) fn matches_bytes(&self, key: &[u8]) -> bool {
        let pat = &self.pattern.as_bytes()[..self.len];
        match self.kind {
            Kind::Literal => key == pat,
            Kind::PrefixStar => key.starts_with(&pat[..self.prefix]),
            Kind::General => {
                key.len() >= self.prefix + self.suffix
                    && key.starts_with(&pat[..self.prefix])
                    && key.ends_with(&pat[self.len - self.suffix..])
                    && fnmatch(&pat[self.prefix..], &key[self.prefix..])
            }
        }
    }

    /// `is_match` for a key cut at its first NUL that is known to start with the prefix.
    pub(crate) fn matches_after_prefix(&self, key: &[u8]) -> bool {
        let pat = &self.pattern.as_bytes()[..self.len];
        match self.kind {
            Kind::Literal => key.len() == self.len,
            Kind::PrefixStar => true,
            Kind::General => {
                key.len() >= self.prefix + self.suffix
                    && key.ends_with(&pat[self.len - self.suffix..])
                    && fnmatch(&pat[self.prefix..], &key[self.prefix..])
            }
        }
    }

    pub(crate) fn prefix_bytes(&self) -> &[u8] {
        &self.pattern.as_bytes()[..self.prefix]
    }

    /// The pattern after its literal prefix, when every byte there is a literal, `*` or `?`
    /// (no bracket, no escape): then each maximal run of other bytes matches itself, in one
    /// piece, somewhere in the key after the prefix.
    pub(crate) fn simple_rest(&self) -> Option<&[u8]> {
        let rest = &self.pattern.as_bytes()[self.prefix..self.len];
        (!rest.iter().any(|&b| matches!(b, b'[' | b']' | b'\\'))).then_some(rest)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Glob").field(&self.pattern).finish()
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn kinds_and_prefixes() {
        let g = Glob::new("ext4");
        assert!(g.is_literal());
        assert!(g.is_match("ext4") && !g.is_match("ext4x") && !g.is_match("ext"));

        let g = Glob::new("cpu:type:x86,ven*fam*mod*:feature:*");
        assert_eq!(g.literal_prefix(), "cpu:type:x86,ven");
        assert!(!g.is_literal());

        let g = Glob::new("fs-*");
        assert!(g.is_match("fs-") && g.is_match("fs-ext4") && !g.is_match("fs"));

        let g = Glob::new("of:N*T*Cvirtio,mmio");
        assert_eq!(g.literal_prefix(), "of:N");
        assert!(g.is_match("of:NvirtioT(null)Cvirtio,mmio"));
        assert!(!g.is_match("of:NvirtioT(null)Cvirtio,mmio2"));
        // The prefix and suffix must not overlap in the key.
        assert!(!Glob::new("ab*ba").is_match("aba"));
        assert!(Glob::new("ab*ba").is_match("abba"));
    }

    #[test]
    fn nul_ends_pattern_and_key() {
        let g = Glob::new("ab\0cd");
        assert!(g.is_literal());
        assert!(g.is_match("ab") && g.is_match("ab\0zz") && !g.is_match("abcd"));
        assert_eq!(g.pattern(), "ab\0cd");
        assert!(Glob::new("a*\0b").is_match("axyz\0b"));
    }

    #[test]
    fn suffix_with_brackets_and_escapes() {
        // `]` ends the literal suffix: `[ab]c` has suffix "c", not "ab]c".
        assert!(Glob::new("x[ab]c").is_match("xbc"));
        // An escaped byte before the suffix is still literal.
        assert!(Glob::new("x*\\bc").is_match("xzbc"));
        // An unterminated bracket makes `[` literal; the rest is pattern again.
        assert!(Glob::new("x[ab*c").is_match("x[abzzc"));
        assert!(!Glob::new("x[ab*c").is_match("xazzc"));
        // A trailing backslash never matches.
        assert!(!Glob::new("x*\\").is_match("xy\\"));
    }
}
