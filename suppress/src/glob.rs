//! Name patterns: literal runs, `*` (any run of characters) and, in
//! valgrind's patterns only, `?` (one character). The whole name must match.

/// A name pattern: literal runs, `*` and (valgrind only) `?`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Glob(Vec<Tok>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(String),
    /// Exactly one character.
    One,
    /// Any run of characters.
    Any,
}

impl Glob {
    /// `*` is always a wildcard; `?` only when `question` (valgrind).
    pub(crate) fn new(pattern: &str, question: bool) -> Glob {
        let mut toks = Vec::new();
        let mut lit = String::new();
        for c in pattern.chars() {
            let tok = match c {
                '*' => Tok::Any,
                '?' if question => Tok::One,
                _ => {
                    lit.push(c);
                    continue;
                }
            };
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(&mut lit)));
            }
            // Consecutive `*`s are one `*`.
            if !(tok == Tok::Any && toks.last() == Some(&Tok::Any)) {
                toks.push(tok);
            }
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        Glob(toks)
    }

    /// Whether the whole of `text` matches. Iterative with a single
    /// backtracking point (the last `*` seen): a literal run or `?` after a
    /// `*` is matched at its leftmost possible place, which is never worse
    /// than a later one, so at most `O(tokens × text)` steps.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let toks = &self.0;
        let (mut p, mut t) = (0, 0);
        // (token after the last `*`, where in `text` that `*` stops).
        let mut back: Option<(usize, usize)> = None;
        loop {
            if let Some(tok) = toks.get(p) {
                match tok {
                    Tok::Any => {
                        back = Some((p + 1, t));
                        p += 1;
                        continue;
                    }
                    Tok::One => {
                        if let Some(c) = text[t..].chars().next() {
                            p += 1;
                            t += c.len_utf8();
                            continue;
                        }
                    }
                    Tok::Lit(lit) => {
                        if text[t..].starts_with(lit.as_str()) {
                            p += 1;
                            t += lit.len();
                            continue;
                        }
                    }
                }
            } else if t == text.len() {
                return true;
            }
            // Mismatch: let the last `*` swallow one more character.
            let Some((bp, bt)) = back else { return false };
            let Some(c) = text[bt..].chars().next() else {
                return false;
            };
            back = Some((bp, bt + c.len_utf8()));
            p = bp;
            t = bt + c.len_utf8();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;
    use std::time::{Duration, Instant};

    #[test]
    fn name_wildcards() {
        let matches = |pattern: &str, name: &'static str| {
            one(&format!(
                "{{\n n\n Memcheck:Leak\n fun:malloc\n fun:{pattern}\n}}"
            ))
            .matches(DEF, "malloc", &[c(name)])
        };
        assert!(matches("make_*", "make_buffer"));
        assert!(matches("*buffer", "make_buffer"));
        assert!(matches("*", "x"));
        assert!(matches("m?ke_buffer", "make_buffer"));
        assert!(matches("*::*::f", "a::b::c::f"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(matches("??", "é!"));
        assert!(!matches("??", "é"));
        assert!(!matches("make_*", "remake_buffer"));
        assert!(!matches("make", "make_buffer"));
        assert!(!matches("a*b*c", "abcd"));
        assert!(!matches("m?ke", "mke"));
        // Allocator frame and `malloc*`.
        let entry = one("{\n n\n Memcheck:Leak\n fun:*alloc\n}");
        assert!(entry.matches(DEF, "calloc", &[]));
        assert!(entry.matches(DEF, "realloc", &[]));
        assert!(!entry.matches(DEF, "posix_memalign", &[]));
    }

    #[test]
    fn pathological_patterns_finish_fast() {
        let start = Instant::now();
        let name = "a".repeat(2000);
        let star_pattern = format!("{}b", "a*".repeat(200));
        let mut frames = String::new();
        for _ in 0..60 {
            frames.push_str(&format!("...\nfun:{star_pattern}\n...\nfun:*a*a*a*a*\n"));
        }
        let entry = one(&format!("{{\nn\nMemcheck:Leak\n{frames}}}"));
        let stack: Vec<_> = (0..200)
            .map(|_| MatchFrame {
                function: Some(name.as_str()),
                mangled: Some(name.as_str()),
                ..MatchFrame::default()
            })
            .collect();
        assert!(!entry.matches(DEF, "malloc", &stack));
        let lsan = one(&format!("leak:^{star_pattern}$"));
        assert!(!lsan.matches(DEF, "malloc", &stack));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }
}
