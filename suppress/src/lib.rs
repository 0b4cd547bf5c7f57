//! Suppressions as valgrind and LeakSanitizer write them: parsing the text
//! of a suppressions file (valgrind's `.supp` blocks and LeakSanitizer's
//! `leak:` lines) into entries or an error with its line and column,
//! matching an entry against a leak's stack, and writing the block that
//! suppresses a leak.
//!
//! This is leakcheck's parser, in a crate of its own with no dependencies
//! so that both the runtime (`leakcheck`, for files and `suppress!`) and the
//! `#[leak_checked]` attribute (`leakcheck-macros`, which rejects a
//! malformed `suppress = "…"` at compile time) use the same one. Use
//! `leakcheck`, not this crate.
//!
//! ```
//! use leakcheck_suppress::{parse, Kind, MatchFrame, Origin};
//! let origin = Origin { path: "leakcheck.supp".into(), first_line: 1 };
//! let entries = parse("leak:sqlite3_initialize\n", &origin).unwrap();
//! let frame = MatchFrame { function: Some("sqlite3_initialize"), ..MatchFrame::default() };
//! assert!(entries[0].matches(Kind::DefinitelyLost, "malloc", &[frame]));
//!
//! let error = parse("{ x Memcheck:Leak fun:f }", &origin).unwrap_err();
//! assert_eq!((error.line, error.column), (1, 1));
//! assert!(error.message.starts_with("a valgrind suppression block cannot be written on one line"));
//! ```
//!
//! The formats, each in a file of its own with its parser and its tests:
//! `valgrind.rs` blocks and `lsan.rs` (LeakSanitizer) lines. Both parse
//! into an [`Entry`]; `matcher.rs` decides whether an entry suppresses a
//! leak ([`Entry::matches`]), `generate.rs` writes the block that
//! suppresses a leak ([`generate()`]). Name patterns are globs
//! (`glob.rs`).

mod generate;
mod glob;
mod kind;
mod lsan;
mod matcher;
#[cfg(test)]
mod test_util;
mod valgrind;

pub use generate::{generate, generate_error};
pub use kind::{Kind, KindSet};

use glob::Glob;
use std::fmt;

/// One frame of a leak's stack as matching sees it. The stack handed to
/// [`Entry::matches`] is the *full* stack, innermost first, with inlined
/// frames expanded, starting at the frame that called the allocator (the
/// allocator itself is passed separately, see [`Entry::matches`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct MatchFrame<'a> {
    /// Demangled name without the Rust hash (`mycrate::f`, `fixture_leak`).
    pub function: Option<&'a str>,
    /// The name as the object file spells it (`_ZN7mycrate1f17h…E`; the same
    /// as `function` for C).
    pub mangled: Option<&'a str>,
    /// Source file path, absolute where debug info has it.
    pub file: Option<&'a str>,
    /// Line in `file`.
    pub line: Option<u32>,
    /// Path of the executable or shared object.
    pub module: Option<&'a str>,
}

/// Where suppressions text came from, for messages and the "suppressions
/// used" summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// A file path, or the source file of a `suppress!`/attribute.
    pub path: String,
    /// Line in `path` where the text starts (1 for a file; the macro's line
    /// for in-code text, so that line `n` of the text is reported as
    /// `first_line + n - 1`).
    pub first_line: u32,
}

/// A malformed suppression: where, and what was expected. Displayed as
/// `path:line: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// [`Origin::path`].
    pub path: String,
    /// The line, counted from [`Origin::first_line`].
    pub line: u32,
    /// The column (in characters, from 1) where the line's text starts:
    /// after its indentation.
    pub column: u32,
    /// What is wrong, and what was expected there.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// One suppression.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Where it was written: [`Origin::path`].
    pub path: String,
    /// The line it starts on.
    pub line: u32,
    /// The valgrind block's name, or `leak:<pattern>`.
    name: String,
    rule: Rule,
}

/// What an entry matches.
#[derive(Clone, Debug)]
enum Rule {
    /// A `Memcheck:Leak` block.
    Leak {
        kinds: KindSet,
        frames: Vec<FramePat>,
    },
    /// A LeakSanitizer `leak:` line: a glob with the anchoring already
    /// applied (an unanchored end is a leading/trailing `*`).
    Lsan(Glob),
    /// A Memcheck block for a heap misuse: `Free`, `Addr` (any of
    /// `Addr1` … `Addr32`), `SizeMismatch` or `AlignMismatch`.
    Error {
        kind: &'static str,
        frames: Vec<FramePat>,
    },
    /// A valid suppression that is not about leaks (another tool, another
    /// Memcheck kind, another sanitizer's type).
    Never,
}

/// One location line of a valgrind block.
#[derive(Clone, Debug)]
enum FramePat {
    /// `...`: zero or more frames.
    Dots,
    Fun(Glob),
    /// `obj:`; `last` is the pattern's last `/` component, which is what the
    /// allocator frame's object is matched against when the pattern has a
    /// directory.
    Obj {
        path: Glob,
        last: Option<Glob>,
    },
    /// `src:FILE[:LINE]`; `whole_path` when the pattern has a `/`.
    Src {
        file: Glob,
        line: Option<u32>,
        whole_path: bool,
    },
}

/// The text's significant lines (not blank, not comments), trimmed, with
/// their line numbers in the file.
struct Lines<'t> {
    lines: Vec<(u32, &'t str)>,
    /// The column each significant line starts at, in `lines`' order.
    columns: Vec<u32>,
    /// The number of the text's last line, for errors at its end.
    last: u32,
    origin: &'t Origin,
}

impl Lines<'_> {
    fn get(&self, i: usize) -> Option<(u32, &str)> {
        self.lines.get(i).copied()
    }

    fn error(&self, line: u32, message: impl Into<String>) -> ParseError {
        let column = self
            .lines
            .iter()
            .position(|&(number, _)| number == line)
            .map_or(1, |i| self.columns[i]);
        ParseError {
            path: self.origin.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// Parses a whole suppressions file (or in-code text): every entry, or the
/// first error.
pub fn parse(text: &str, origin: &Origin) -> Result<Vec<Entry>, ParseError> {
    let number = |index: usize| {
        origin
            .first_line
            .saturating_add(u32::try_from(index).unwrap_or(u32::MAX))
    };
    let mut last = origin.first_line;
    let mut lines = Vec::new();
    let mut columns = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        last = number(index);
        let line = raw.trim();
        if !line.is_empty() && !line.starts_with('#') {
            lines.push((last, line));
            let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
            columns.push(u32::try_from(indent + 1).unwrap_or(u32::MAX));
        }
    }
    let lines = Lines {
        lines,
        columns,
        last,
        origin,
    };

    let mut entries = Vec::new();
    let mut i = 0;
    while let Some((number, line)) = lines.get(i) {
        if line == "{" {
            let (entry, next) = valgrind::parse_block(&lines, i)?;
            entries.push(entry);
            i = next;
            continue;
        }
        i += 1;
        entries.push(lsan::parse_line(&lines, number, line)?);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    #[test]
    fn several_blocks_comments_and_whitespace() {
        let text = "# leading comment\n\
                    \n\
                    {\r\n\
                    \t  first # not a comment: part of the name\n\
                    # comment inside\n\
                    \n   Memcheck:Leak   \n\
                    \x20 # another\n\
                    match-leak-kinds: definite\n\
                    fun:malloc\n\
                    \x20 # between frames\n\
                    fun:f\n\
                    }\n\
                    leak:lsan_thing\n\
                    {\n\
                    second\n\
                    Memcheck:Leak\n\
                    fun:calloc\n\
                    }   \n\
                    # trailing";
        let entries = parse_ok(text);
        let names: Vec<_> = entries.iter().map(Entry::name).collect();
        assert_eq!(
            names,
            [
                "first # not a comment: part of the name",
                "leak:lsan_thing",
                "second"
            ]
        );
        let lines: Vec<_> = entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 14, 15]);
        assert!(entries.iter().all(|e| e.path == "test.supp"));
        assert!(entries[0].matches(DEF, "malloc", &[c("f")]));
        assert!(entries[2].matches(Kind::PossiblyLost, "calloc", &[c("f")]));
        assert!(parse_ok("").is_empty());
        assert!(parse_ok("\n  # only comments\n\n").is_empty());
    }

    #[test]
    fn errors_with_line_numbers() {
        let kinds_message = KindSet::parse("definit").unwrap_err();
        assert!(kinds_message.contains("; expected"), "{kinds_message}");
        let cases: [(&str, u32, &str); 22] = [
            (
                "{\n}\n",
                2,
                "expected a suppression name after `{`, found `}`",
            ),
            (
                "{\n",
                1,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "\n{\n  Memcheck:Leak\n  fun:malloc\n}\n",
                3,
                "expected a suppression name after `{`, found the `Tool:Kind` line \
                 `Memcheck:Leak`",
            ),
            (
                "{\n name\n Memcheck\n fun:malloc\n}",
                3,
                "expected `Tool:Kind` (e.g. `Memcheck:Leak`), found `Memcheck`",
            ),
            (
                "{\n name\n}",
                3,
                "expected `Tool:Kind` (e.g. `Memcheck:Leak`), found `}`",
            ),
            (
                "{\n name\n Memcheck:Leek\n fun:malloc\n}",
                3,
                "unknown Memcheck suppression kind `Leek`; expected `Leak`",
            ),
            (
                "{\n n\n Memcheck:Leak\n match-leak-kinds: definit\n fun:malloc\n}",
                4,
                "unknown leak kind `definit` in match-leak-kinds; expected `definite`",
            ),
            (
                "{\n n\n Memcheck:Leak\n match-leak-kinds:\n fun:malloc\n}",
                4,
                "expected leak kinds after `match-leak-kinds:`",
            ),
            (
                "{\n n\n Memcheck:Leak\n match-leak-kind: definite\n fun:malloc\n}",
                4,
                "expected `match-leak-kinds: <kinds>` or a frame (`fun:`, `obj:`, `src:` or \
                 `...`), found `match-leak-kind: definite`",
            ),
            (
                "{\n n\n Memcheck:Param\n fun:write\n}",
                4,
                "expected the system call parameter after `Memcheck:Param` (e.g. \
                 `write(buf)`), found `fun:write`",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:malloc\n func:f\n}",
                5,
                "expected a frame (`fun:`, `obj:`, `src:` or `...`) or `}`, found `func:f`",
            ),
            (
                "{\n n\n Memcheck:Leak\n}",
                4,
                "suppression `n` has no frames",
            ),
            (
                "{\n n\n Memcheck:Leak\n ...\n ...\n}",
                6,
                "suppression `n` has only `...` frames",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:malloc\n",
                4,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:malloc\n\n{\n m\n Memcheck:Leak\n fun:f\n}",
                6,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "{\n n\n Helgrind:Race\n fun:malloc\n",
                4,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:\n}",
                4,
                "empty pattern after `fun:`",
            ),
            (
                "{\n n\n Memcheck:Leak\n src:a.c:x\n}",
                4,
                "expected a line number after `:` in `src:FILE:LINE`, found `x`",
            ),
            (
                "leak:ok\nmalloc\n",
                2,
                "expected `{` to start a valgrind suppression or `leak:<pattern>` for \
                 LeakSanitizer, found `malloc`",
            ),
            (
                "fun:malloc\n",
                1,
                "expected `{` to start a valgrind suppression or `leak:<pattern>` for \
                 LeakSanitizer, found `fun:malloc` (a valgrind block's line outside a \
                 block: is its `{` missing?)",
            ),
            ("}\n", 1, "expected `{` to start a valgrind suppression"),
            ("\n\nleak:   \n", 3, "empty `leak:` pattern"),
        ];
        for (text, line, message) in cases {
            let e = error(text, 1);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.starts_with(message), "{text:?}: {e}");
            assert_eq!(e.path, "test.supp");
            // The same text inside a file, starting at line 40.
            let e = error(text, 40);
            assert_eq!(e.line, line + 39, "{text:?}: {e}");
            if message.starts_with("unterminated") {
                assert!(e.message.contains("starting at line 40"), "{e}");
            }
        }
        // The first error is reported.
        let e = error("{\n}\nbogus\n", 1);
        assert_eq!(e.line, 2);
        assert_eq!(
            e.to_string(),
            "test.supp:2: expected a suppression name after `{`, found `}`"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "{",
            "}",
            "{{",
            ":",
            "leak:",
            "leak::",
            "{\n\u{e9}\n\u{e9}:\u{e9}\n\u{e9}\n}",
            "{\nn\nMemcheck:Leak\nsrc::\n}",
            "{\nn\nMemcheck:Leak\nsrc:a:99999999999\n}",
            "\u{feff}",
            "\r\r\r",
            "{\nn\n:Leak\n}",
            "{\nn\nMemcheck:\n}",
            "{\nn\nMemcheck:Leak\nfun:\u{e9}?*\n}",
        ] {
            let _ = parse(text, &origin(u32::MAX));
        }
        let entry = one("{\nn\nMemcheck:Leak\nfun:?\u{e9}*?\n}");
        assert!(!entry.matches(DEF, "\u{e9}", &[]));
        assert!(entry.matches(DEF, "a\u{e9}\u{e9}\u{e9}", &[]));
    }
}
