//! `fnmatch(pattern, string, 0)` with glibc's semantics in the C locale, allocation-free.
//!
//! kmod matches modules.alias.bin patterns with glibc's `fnmatch(3)` and flags 0, so `*` and
//! `?` match any byte (including `/` and a leading `.`), `\` escapes the next byte, and
//! `[...]` takes `!` or `^` for negation, ranges by byte value, and `[:class:]` names. The
//! corner cases follow glibc 2.36, not POSIX prose (checked against libc by a differential
//! test): an unterminated `[` is an ordinary byte, a malformed `[=x=]` makes its `[` an
//! ordinary set member, an unknown `[:class:]` or a dangling range (`[a-`) fails the match,
//! and a pattern ending in `\` fails.
//!
//! Matching is a single left-to-right pass with one backtrack point for the last `*`, so it
//! runs in O(pattern x string) time whatever the pattern.

/// Longest character class name glibc looks at (`CHAR_CLASS_MAX_LENGTH`): 2048 in glibc 2.36
/// as measured against libc (gnulib's copy of fnmatch says 256).
const CLASS_MAX: usize = 2048;

/// Does `string` match the shell wildcard `pattern`? Both end at their first NUL, if any, as
/// C strings do.
pub fn fnmatch(pattern: &[u8], string: &[u8]) -> bool {
    let pattern = until_nul(pattern);
    let string = until_nul(string);
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: pattern position after it, and the string position
    // up to which the `*` has consumed.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                p += 1;
                star = Some((p, n));
                continue;
            }
            if let Some(&ch) = string.get(n)
                && let Some(next) = match_one(pattern, p, ch)
            {
                p = next;
                n += 1;
                continue;
            }
        } else if n == string.len() {
            return true;
        }
        match star {
            Some((sp, sn)) if sn < string.len() => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

fn until_nul(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(end) => &s[..end],
        None => s,
    }
}

/// Byte `i` of the pattern, 0 past its end (C string semantics).
fn at(pattern: &[u8], i: usize) -> u8 {
    pattern.get(i).copied().unwrap_or(0)
}

/// Match the one-byte token at `pattern[p]` (not `*`) against `ch`; the position after it.
fn match_one(pattern: &[u8], p: usize, ch: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' => {
            let c = at(pattern, p + 1);
            (c != 0 && c == ch).then_some(p + 2)
        }
        b'[' => bracket(pattern, p + 1, ch),
        c => (c == ch).then_some(p + 1),
    }
}

/// What a bracket item did.
enum Item {
    /// It matched the string byte: skip to the closing `]`.
    Matched,
    /// It did not; `c` is the next pattern byte (already consumed).
    Next(u8),
}

/// A bracket expression whose `[` is just before `p_init`, against byte `fc`. Follows the
/// structure of glibc's `fnmatch_loop.c` for the C locale.
fn bracket(pat: &[u8], p_init: usize, fc: u8) -> Option<usize> {
    let mut p = p_init;
    let not = matches!(at(pat, p), b'!' | b'^');
    if not {
        p += 1;
    }
    let mut c = at(pat, p);
    p += 1;
    loop {
        let item = if c == b'\\' {
            if at(pat, p) == 0 {
                return None;
            }
            c = at(pat, p);
            p += 1;
            normal_item(pat, &mut p, c, fc)?
        } else if c == b'[' && at(pat, p) == b':' {
            class_item(pat, &mut p, fc)?
        } else if c == 0 {
            // Unterminated: the `[` is an ordinary byte and the set is pattern again.
            return (fc == b'[').then_some(p_init);
        } else if c == b'[' && at(pat, p) == b'.' {
            collating_item(pat, &mut p, fc)?
        } else if c == b'[' && at(pat, p) == b'=' {
            equivalence_item(pat, &mut p, fc)?
        } else {
            normal_item(pat, &mut p, c, fc)?
        };
        match item {
            Item::Matched => return skip_rest(pat, p, not, p_init, fc),
            Item::Next(next) => {
                c = next;
                if c == b']' {
                    return not.then_some(p);
                }
            }
        }
    }
}

/// A plain byte `c` (already consumed), possibly the start of a range `c-end`.
fn normal_item(pat: &[u8], p: &mut usize, c: u8, fc: u8) -> Option<Item> {
    let is_range = at(pat, *p) == b'-' && !matches!(at(pat, *p + 1), 0 | b']');
    if !is_range && c == fc {
        return Some(Item::Matched);
    }
    range_tail(pat, p, c, fc)
}

/// After an item whose value is `cold`: read the next byte and, if it makes a range, the
/// range end.
fn range_tail(pat: &[u8], p: &mut usize, cold: u8, fc: u8) -> Option<Item> {
    let mut c = at(pat, *p);
    *p += 1;
    if c == b'-' && at(pat, *p) != b']' {
        let mut cend = at(pat, *p);
        *p += 1;
        if cend == b'\\' {
            cend = at(pat, *p);
            *p += 1;
        } else if cend == b'[' && at(pat, *p) == b'.' {
            cend = collating_symbol(pat, p)?;
        }
        if cend == 0 {
            return None;
        }
        if cold <= fc && fc <= cend {
            return Some(Item::Matched);
        }
        c = at(pat, *p);
        *p += 1;
    }
    Some(Item::Next(c))
}

/// `[:name:]`, with `p` at the `:`. A name with a byte outside `a`..=`y` (glibc excludes `z`)
/// is not a class: the `[` is then an ordinary item.
fn class_item(pat: &[u8], p: &mut usize, fc: u8) -> Option<Item> {
    let startp = *p;
    let mut q = *p;
    let mut len = 0;
    loop {
        if len == CLASS_MAX {
            return None;
        }
        q += 1;
        let c = at(pat, q);
        if c == b':' && at(pat, q + 1) == b']' {
            break;
        }
        if !(b'a'..=b'y').contains(&c) {
            *p = startp;
            return normal_item(pat, p, b'[', fc);
        }
        len += 1;
    }
    let name = &pat[startp + 1..startp + 1 + len];
    *p = q + 2;
    if class_contains(name, fc)? {
        return Some(Item::Matched);
    }
    let c = at(pat, *p);
    *p += 1;
    Some(Item::Next(c))
}

/// Is `c` in the named class (C locale)? `None` for an unknown name, which fails the match.
fn class_contains(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'),
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// `[.x.]` with `p` at the `.`: the C locale knows only one-byte names.
fn collating_symbol(pat: &[u8], p: &mut usize) -> Option<u8> {
    let startp = *p;
    let mut q = *p;
    loop {
        q += 1;
        let c = at(pat, q);
        if c == b'.' && at(pat, q + 1) == b']' {
            break;
        }
        if c == 0 {
            return None;
        }
    }
    if q - startp != 2 {
        return None;
    }
    *p = q + 2;
    Some(at(pat, startp + 1))
}

/// A collating symbol as a set item (it may start a range).
fn collating_item(pat: &[u8], p: &mut usize, fc: u8) -> Option<Item> {
    let c = collating_symbol(pat, p)?;
    let is_range = at(pat, *p) == b'-' && at(pat, *p + 1) != 0;
    if !is_range && c == fc {
        return Some(Item::Matched);
    }
    range_tail(pat, p, c, fc)
}

/// `[=x=]` with `p` at the `=`: in the C locale, just the byte `x`. Anything else makes the
/// `[` an ordinary item.
fn equivalence_item(pat: &[u8], p: &mut usize, fc: u8) -> Option<Item> {
    let c = at(pat, *p + 1);
    if c == 0 || at(pat, *p + 2) != b'=' || at(pat, *p + 3) != b']' {
        return normal_item(pat, p, b'[', fc);
    }
    *p += 4;
    if c == fc {
        return Some(Item::Matched);
    }
    let next = at(pat, *p);
    *p += 1;
    Some(Item::Next(next))
}

/// After a matching item: skip to the closing `]`. If there is none, the `[` was an ordinary
/// byte after all (`p_init` is just after it, `fc` the string byte).
fn skip_rest(pat: &[u8], mut p: usize, not: bool, p_init: usize, fc: u8) -> Option<usize> {
    loop {
        let mut c = at(pat, p);
        p += 1;
        if c == 0 {
            return (fc == b'[').then_some(p_init);
        }
        if c == b'\\' {
            if at(pat, p) == 0 {
                return None;
            }
            p += 1;
        } else if c == b'[' && at(pat, p) == b':' {
            let startp = p;
            let mut len = 0;
            let mut is_class = true;
            loop {
                p += 1;
                c = at(pat, p);
                len += 1;
                if len == CLASS_MAX {
                    return None;
                }
                if c == b':' && at(pat, p + 1) == b']' {
                    break;
                }
                if !(b'a'..=b'y').contains(&c) {
                    p = startp;
                    is_class = false;
                    break;
                }
            }
            if !is_class {
                continue;
            }
            // Past `:]`; `c` stays `:`, so the loop goes on with the next byte.
            p += 2;
        } else if c == b'[' && at(pat, p) == b'=' {
            if at(pat, p + 1) == 0 || at(pat, p + 2) != b'=' || at(pat, p + 3) != b']' {
                return None;
            }
            p += 4;
            c = b'=';
        } else if c == b'[' && at(pat, p) == b'.' {
            loop {
                p += 1;
                c = at(pat, p);
                if c == 0 {
                    return None;
                }
                if c == b'.' && at(pat, p + 1) == b']' {
                    break;
                }
            }
            p += 2;
        }
        if c == b']' {
            return (!not).then_some(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[track_caller]
    fn yes(p: &str, s: &str) {
        assert!(
            fnmatch(p.as_bytes(), s.as_bytes()),
            "{p:?} should match {s:?}"
        );
    }

    #[track_caller]
    fn no(p: &str, s: &str) {
        assert!(
            !fnmatch(p.as_bytes(), s.as_bytes()),
            "{p:?} should not match {s:?}"
        );
    }

    #[test]
    fn basics() {
        yes("", "");
        no("", "a");
        yes("*", "");
        yes("*", "a/b.c");
        yes("a*b", "ab");
        yes("a*b", "axxb");
        no("a*b", "axxbc");
        yes("a?c", "abc");
        no("a?c", "ac");
        yes("*a*a*a*b", "aaaaaaaaaaaaaaaaab");
        no("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }

    #[test]
    fn escapes() {
        yes("\\*", "*");
        no("\\*", "a");
        no("a\\", "a\\");
        no("a\\", "a");
        yes("[\\]]", "]");
    }

    #[test]
    fn brackets() {
        yes("[abc]", "b");
        no("[abc]", "d");
        yes("[!abc]", "d");
        yes("[^abc]", "d");
        no("[!abc]", "a");
        yes("[a-c]x", "bx");
        no("[a-c]x", "dx");
        yes("[]]", "]");
        yes("[!]]", "a");
        yes("[a-]", "-");
        yes("[[:digit:]]", "7");
        no("[[:digit:]]", "x");
        yes("[[:alpha:][:digit:]]", "x");
    }

    #[test]
    fn malformed_brackets() {
        // Unterminated: the `[` is an ordinary byte.
        yes("[ab", "[ab");
        no("[ab", "a");
        yes("[[", "[[");
        yes("[a[", "[a[");
        yes("[]", "[]");
        no("[a-", "[a-");
        no("[[:foo:]]", "f");
    }

    #[test]
    fn modalias_patterns() {
        let pat = "pci:v00008086d00001533sv*sd*bc*sc*i*";
        yes(pat, "pci:v00008086d00001533sv00008086sd00000000bc02sc00i00");
        no(pat, "pci:v00008086d00001534sv00008086sd00000000bc02sc00i00");
        yes(
            "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*",
            "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",
        );
        yes("acpi*:PNP0A0[38]:*", "acpi:PNP0A08:");
    }
}
