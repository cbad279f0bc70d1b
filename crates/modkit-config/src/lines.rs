//! kmod's logical-line reader (`freadline_wrapped` in kmod's shared/util.c) and `strtok_r`.
//!
//! A backslash joins the next physical line; a backslash before any other character is
//! dropped and that character kept; a NUL ends the line as it does for kmod's C strings.

/// One logical line: its text and the number of its last physical line (kmod counts a
/// continued line as the line on which it ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub number: u32,
    pub text: String,
}

/// Splits `text` into kmod's logical lines.
pub(crate) fn logical_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut number: u32 = 0;
    let mut pending: u32 = 0;
    let mut buf = String::new();
    let mut any = false;
    let mut chars = text.chars();
    loop {
        let Some(ch) = chars.next() else {
            if any {
                number = number.saturating_add(pending + 1);
                out.push(Line {
                    number,
                    text: cut_at_nul(std::mem::take(&mut buf)),
                });
            }
            break;
        };
        match ch {
            '\n' => {
                number = number.saturating_add(pending + 1);
                pending = 0;
                out.push(Line {
                    number,
                    text: cut_at_nul(std::mem::take(&mut buf)),
                });
                any = false;
            }
            '\\' => match chars.next() {
                Some('\n') => {
                    pending += 1;
                    any = true;
                }
                Some(next) => {
                    buf.push(next);
                    any = true;
                }
                // kmod 30 stores EOF (-1) as the byte 0xff here; we cannot put that byte in
                // a `String`, so the backslash is dropped (kmod >= 31 does the same).
                None => any = true,
            },
            other => {
                buf.push(other);
                any = true;
            }
        }
    }
    out
}

fn cut_at_nul(mut s: String) -> String {
    if let Some(pos) = s.find('\0') {
        s.truncate(pos);
    }
    s
}

/// `strtok_r(.., "\t ", ..)` over a line: successive calls give the words; [`Tokens::rest`]
/// is `strtok_r(NULL, "\0", ..)`, everything after the byte that ended the last word.
#[derive(Debug)]
pub(crate) struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    pub fn new(line: &'a str) -> Self {
        Tokens { rest: line }
    }

    /// The next word separated by spaces and tabs, like `strtok_r(NULL, "\t ", ..)`.
    pub fn word(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start_matches([' ', '\t']);
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        match s.find([' ', '\t']) {
            Some(end) => {
                // strtok overwrites the one delimiter after the word and resumes after it.
                self.rest = &s[end + 1..];
                Some(&s[..end])
            }
            None => {
                self.rest = "";
                Some(s)
            }
        }
    }

    /// What `strtok_r(NULL, "\0", ..)` returns: the unread rest, `None` when empty.
    pub fn rest(&mut self) -> Option<&'a str> {
        let s = std::mem::take(&mut self.rest);
        if s.is_empty() { None } else { Some(s) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(u32, String)> {
        logical_lines(text)
            .into_iter()
            .map(|l| (l.number, l.text))
            .collect()
    }

    #[test]
    fn continuation_counts_physical_lines() {
        assert_eq!(
            lines("a\nb \\\n c\\\nd\ne"),
            vec![(1, "a".into()), (4, "b  cd".into()), (5, "e".into())]
        );
    }

    #[test]
    fn backslash_before_other_char_is_dropped() {
        assert_eq!(lines("a\\b\\\\c\n"), vec![(1, "ab\\c".into())]);
        assert_eq!(lines("x\\"), vec![(1, "x".into())]);
        assert_eq!(lines("\\"), vec![(1, "".into())]);
    }

    #[test]
    fn empty_lines_and_nul() {
        assert_eq!(lines(""), vec![]);
        assert_eq!(lines("\n\n"), vec![(1, "".into()), (2, "".into())]);
        assert_eq!(lines("ab\0cd\nx"), vec![(1, "ab".into()), (2, "x".into())]);
    }

    #[test]
    fn strtok_words_and_rest() {
        let mut t = Tokens::new("  options\t mod  a=1  b=2 ");
        assert_eq!(t.word(), Some("options"));
        assert_eq!(t.word(), Some("mod"));
        assert_eq!(t.rest(), Some(" a=1  b=2 "));
        assert_eq!(t.rest(), None);
        let mut t = Tokens::new("install x");
        assert_eq!(t.word(), Some("install"));
        assert_eq!(t.word(), Some("x"));
        assert_eq!(t.rest(), None);
        assert_eq!(t.word(), None);
    }
}
