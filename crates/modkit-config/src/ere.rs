//! A small POSIX extended regular expression matcher, enough for depmod.d's kernel version
//! patterns.
//!
//! depmod (kmod's tools/depmod.c, `cfg_kernel_matches`) treats the pattern `*` as "any
//! kernel" and otherwise compiles it with `regcomp(REG_EXTENDED | REG_NOSUB)` and runs
//! `regexec` on the version: an unanchored search, so `6.1` also matches `6.12.0`. A
//! pattern that does not compile matches nothing. This module gives the same answers without
//! a regex dependency: literals, `.`, bracket expressions (ranges, negation, `[:class:]`),
//! `^`, `$`, groups, `|`, `*`, `+`, `?` and `{m,n}`. Matching is backtracking with a step
//! budget, so no pattern can hang the caller.

use std::cell::Cell;

/// Does `pattern` (a POSIX ERE) match anywhere in `text`? `None` when the pattern is invalid.
pub(crate) fn search(pattern: &str, text: &str) -> Option<bool> {
    let node = Parser {
        p: pattern.as_bytes(),
        i: 0,
        depth: 0,
        groups: 0,
    }
    .parse()?;
    let t = text.as_bytes();
    let m = Matcher {
        t,
        budget: Cell::new(200_000),
    };
    for start in 0..=t.len() {
        if m.run(&node, start, &mut |_| true) {
            return Some(true);
        }
    }
    Some(false)
}

#[derive(Debug)]
enum Node {
    Byte(u8),
    Any,
    Class(Box<[bool; 256]>),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
}

struct Parser<'a> {
    p: &'a [u8],
    i: usize,
    depth: u32,
    /// Open groups: a `)` outside any is an ordinary character (glibc's `REG_EXTENDED` syntax
    /// has `RE_UNMATCHED_RIGHT_PAREN_ORD`).
    groups: u32,
}

impl Parser<'_> {
    fn parse(mut self) -> Option<Node> {
        let n = self.alt()?;
        (self.i == self.p.len()).then_some(n)
    }

    fn peek(&self) -> Option<u8> {
        self.p.get(self.i).copied()
    }

    fn alt(&mut self) -> Option<Node> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let mut branches = vec![self.concat()?];
        while self.peek() == Some(b'|') {
            self.i += 1;
            branches.push(self.concat()?);
        }
        self.depth -= 1;
        Some(if branches.len() == 1 {
            branches.pop()?
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self) -> Option<Node> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == b'|' || (c == b')' && self.groups > 0) {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        // glibc rejects an empty branch only in some positions; an empty branch matching the
        // empty string is the lenient reading.
        Some(Node::Concat(items))
    }

    fn atom(&mut self) -> Option<Node> {
        let c = self.peek()?;
        self.i += 1;
        Some(match c {
            b'.' => Node::Any,
            b'^' => Node::Start,
            b'$' => Node::End,
            b'(' => {
                self.groups += 1;
                let inner = self.alt()?;
                if self.peek() != Some(b')') {
                    return None;
                }
                self.groups -= 1;
                self.i += 1;
                inner
            }
            b'[' => self.bracket()?,
            b'\\' => {
                let e = self.peek()?;
                self.i += 1;
                Node::Byte(e)
            }
            b'*' | b'+' | b'?' | b'{' => return None,
            other => Node::Byte(other),
        })
    }

    fn quantified(&mut self, mut atom: Node) -> Option<Node> {
        // glibc refuses to repeat a bare anchor (`^*`, `$+`: REG_BADRPT).
        if matches!(atom, Node::Start | Node::End)
            && matches!(self.peek(), Some(b'*' | b'+' | b'?' | b'{'))
        {
            return None;
        }
        loop {
            let (min, max) = match self.peek() {
                Some(b'*') => (0, None),
                Some(b'+') => (1, None),
                Some(b'?') => (0, Some(1)),
                Some(b'{') => {
                    self.i += 1;
                    // `{,n}` is `{0,n}` to glibc (a GNU extension).
                    let min = if self.peek() == Some(b',') {
                        0
                    } else {
                        self.number()?
                    };
                    let max = if self.peek() == Some(b',') {
                        self.i += 1;
                        if self.peek() == Some(b'}') {
                            None
                        } else {
                            Some(self.number()?)
                        }
                    } else {
                        Some(min)
                    };
                    if self.peek() != Some(b'}') || max.is_some_and(|m| m < min) {
                        return None;
                    }
                    (min, max)
                }
                _ => return Some(atom),
            };
            self.i += 1;
            atom = Node::Repeat(Box::new(atom), min, max);
        }
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let n: u32 = std::str::from_utf8(&self.p[start..self.i])
            .ok()?
            .parse()
            .ok()?;
        // RE_DUP_MAX
        (n <= 0x7fff).then_some(n)
    }

    fn bracket(&mut self) -> Option<Node> {
        let mut set = Box::new([false; 256]);
        let negate = self.peek() == Some(b'^');
        if negate {
            self.i += 1;
        }
        let mut first = true;
        let mut after_range = false;
        loop {
            let c = self.peek()?;
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            // glibc takes a `-` right after a range only as the last member (`[a-c-]`);
            // `[a-c-e]` is REG_ERANGE.
            if c == b'-' && after_range && self.p.get(self.i + 1) != Some(&b']') {
                return None;
            }
            after_range = false;
            if c == b'[' && self.p.get(self.i + 1) == Some(&b':') {
                let rest = &self.p[self.i + 2..];
                let end = rest.windows(2).position(|w| w == b":]")?;
                let name = &rest[..end];
                let f: fn(&u8) -> bool = match name {
                    b"digit" => u8::is_ascii_digit,
                    b"alpha" => u8::is_ascii_alphabetic,
                    b"alnum" => u8::is_ascii_alphanumeric,
                    b"upper" => u8::is_ascii_uppercase,
                    b"lower" => u8::is_ascii_lowercase,
                    b"space" => |b: &u8| b" \t\n\r\x0b\x0c".contains(b),
                    b"blank" => |b: &u8| *b == b' ' || *b == b'\t',
                    b"punct" => u8::is_ascii_punctuation,
                    b"xdigit" => u8::is_ascii_hexdigit,
                    b"print" => |b: &u8| (0x20..0x7f).contains(b),
                    b"graph" => u8::is_ascii_graphic,
                    b"cntrl" => u8::is_ascii_control,
                    _ => return None,
                };
                for b in 0..=255u8 {
                    if f(&b) {
                        set[usize::from(b)] = true;
                    }
                }
                self.i += 2 + end + 2;
                continue;
            }
            self.i += 1;
            if self.peek() == Some(b'-') && self.p.get(self.i + 1).is_some_and(|&n| n != b']') {
                let hi = self.p[self.i + 1];
                // glibc reads `[:` (and `[=`) after the `-` as a class, which cannot end a range.
                if hi < c || (hi == b'[' && matches!(self.p.get(self.i + 2), Some(b':' | b'='))) {
                    return None;
                }
                self.i += 2;
                for b in c..=hi {
                    set[usize::from(b)] = true;
                }
                after_range = true;
            } else {
                set[usize::from(c)] = true;
            }
        }
        if negate {
            for v in set.iter_mut() {
                *v = !*v;
            }
        }
        Some(Node::Class(set))
    }
}

struct Matcher<'a> {
    t: &'a [u8],
    budget: Cell<u32>,
}

impl Matcher<'_> {
    /// Matches `node` at `pos`, then asks `k` whether the rest matches from the end position.
    fn run(&self, node: &Node, pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        let left = self.budget.get();
        if left == 0 {
            return false;
        }
        self.budget.set(left - 1);
        match node {
            Node::Byte(b) => self.t.get(pos) == Some(b) && k(pos + 1),
            Node::Any => pos < self.t.len() && k(pos + 1),
            Node::Class(set) => self.t.get(pos).is_some_and(|&c| set[usize::from(c)]) && k(pos + 1),
            Node::Start => pos == 0 && k(pos),
            Node::End => pos == self.t.len() && k(pos),
            Node::Concat(items) => self.seq(items, pos, k),
            Node::Alt(branches) => branches.iter().any(|b| self.run(b, pos, k)),
            Node::Repeat(inner, min, max) => self.repeat(inner, *min, *max, 0, pos, k),
        }
    }

    fn seq(&self, items: &[Node], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match items.split_first() {
            None => k(pos),
            Some((first, rest)) => self.run(first, pos, &mut |p| self.seq(rest, p, k)),
        }
    }

    /// Greedy repetition: try one more iteration first, then stop if `min` is reached.
    fn repeat(
        &self,
        inner: &Node,
        min: u32,
        max: Option<u32>,
        count: u32,
        pos: usize,
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if max.is_none_or(|m| count < m) {
            let more = self.run(inner, pos, &mut |p| {
                // An iteration that consumed nothing makes no progress: only count it while
                // `min` is not reached, so the loop ends.
                if p == pos && count >= min {
                    return false;
                }
                self.repeat(inner, min, max, count + 1, p, k)
            });
            if more {
                return true;
            }
        }
        count >= min && k(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::search;

    #[test]
    fn kernel_version_patterns() {
        let v = "6.1.0-28-amd64";
        assert_eq!(search("6.1.0-28-amd64", v), Some(true));
        assert_eq!(search("6.1", v), Some(true), "unanchored, like regexec");
        assert_eq!(search("^6\\.1\\.", v), Some(true));
        assert_eq!(search("^6\\.12", v), Some(false));
        assert_eq!(search("amd64$", v), Some(true));
        assert_eq!(search("^5\\..*|^6\\..*", v), Some(true));
        assert_eq!(search("^(5|7)\\.", v), Some(false));
        assert_eq!(
            search("[0-9]+\\.[0-9]+\\.[0-9]+-[[:digit:]]{2}-", v),
            Some(true)
        );
        assert_eq!(search("[^0-9a-z]{2}", v), Some(false));
        assert_eq!(search("-[a-z]{3}[0-9]{2}$", v), Some(true));
        assert_eq!(search("-[a-z]{4}", v), Some(false));
        assert_eq!(
            search("x?y*(z)*", v),
            Some(true),
            "matches the empty string"
        );
        assert_eq!(
            search("(a*)*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac"),
            Some(false)
        );
    }

    #[test]
    fn invalid_patterns_are_none() {
        for p in [
            "*",
            "(",
            // Not "a)": glibc reads an unmatched `)` as an ordinary character.
            "[a",
            "a{2",
            "a{3,1}",
            "[z-a]",
            "\\",
            "[[:nope:]]",
            // A class as the end of a range (fuzz finding, differential against regcomp).
            "[,-[:b0+[;:]]",
            "[!-[:]",
            "[!-[=x=]]",
            "+a",
        ] {
            assert_eq!(search(p, "x"), None, "{p}");
        }
    }
}
