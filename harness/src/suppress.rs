//! Suppressions: parsing the formats people already have (valgrind's `.supp`
//! blocks and LeakSanitizer's `leak:` lines), matching them against a leak's
//! stack, and writing a ready-to-paste suppression for a leak.
//!
//! Everything here is plain data processing: it runs after the scope has
//! ended, inside an untracked section, and may allocate.

use crate::report::{Kind, KindSet};
use std::fmt;

/// One frame of a leak's stack as matching sees it. The stack handed to
/// [`Entry::matches`] is the *full* stack, innermost first, with inlined
/// frames expanded, starting at the frame that called the allocator (the
/// allocator itself is passed separately, see [`Entry::matches`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MatchFrame<'a> {
    /// Demangled name without the Rust hash (`mycrate::f`, `fixture_leak`).
    pub(crate) function: Option<&'a str>,
    /// The name as the object file spells it (`_ZN7mycrate1f17h…E`; the same
    /// as `function` for C).
    pub(crate) mangled: Option<&'a str>,
    /// Source file path, absolute where debug info has it.
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
    /// Path of the executable or shared object.
    pub(crate) module: Option<&'a str>,
}

/// Where suppressions text came from, for messages and the "suppressions
/// used" summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// A file path, or the source file of a `suppress!`/attribute.
    pub(crate) path: String,
    /// Line in `path` where the text starts (1 for a file; the macro's line
    /// for in-code text, so that line `n` of the text is reported as
    /// `first_line + n - 1`).
    pub(crate) first_line: u32,
}

/// A malformed suppression: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) path: String,
    pub(crate) line: u32,
    pub(crate) message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// One suppression.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Where it was written: path and the line of its first line.
    pub(crate) path: String,
    pub(crate) line: u32,
    // Private representation: a valgrind block (name, kinds, frame
    // patterns) or a LeakSanitizer `leak:` pattern.
}

impl Entry {
    /// What the summary calls it: the valgrind block's name, or
    /// `leak:<pattern>`.
    pub(crate) fn name(&self) -> &str {
        todo!()
    }

    /// Whether this entry suppresses a block of `kind` allocated by the C
    /// function `allocator` (`malloc`, `calloc`, `realloc`, `posix_memalign`,
    /// …: what valgrind shows as the first frame) with `stack` below it.
    pub(crate) fn matches(&self, kind: Kind, allocator: &str, stack: &[MatchFrame<'_>]) -> bool {
        let _ = (kind, allocator, stack);
        todo!()
    }
}

/// Parses a whole suppressions file (or in-code text).
pub(crate) fn parse(text: &str, origin: &Origin) -> Result<Vec<Entry>, ParseError> {
    let _ = (text, origin, KindSet::ALL);
    todo!()
}

/// A valgrind suppression block for a leak, ready to paste into a file:
/// `{`, `<insert_a_suppression_name_here>`, `Memcheck:Leak`,
/// `match-leak-kinds: <word>`, `fun:<allocator>`, then `...` if
/// `skipped_plumbing`, then one `fun:` line per frame of `stack` (the
/// report's trimmed stack; `obj:` where the function is unknown), `}`.
/// It must match the leak it was generated for (by [`Entry::matches`]).
pub(crate) fn generate(
    kind: Kind,
    allocator: &str,
    skipped_plumbing: bool,
    stack: &[MatchFrame<'_>],
) -> String {
    let _ = (kind, allocator, skipped_plumbing, stack);
    todo!()
}
