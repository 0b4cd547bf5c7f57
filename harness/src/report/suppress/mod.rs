//! Suppressions: which apply to a check, and the ones written in code.
//!
//! Everything here is plain data processing: it runs after the scope has
//! ended, inside an untracked section, and may allocate.
//!
//! Parsing the formats people already have (valgrind's `.supp` blocks and
//! LeakSanitizer's `leak:` lines), matching an entry against a leak's stack
//! and writing a ready-to-paste suppression are the `leakcheck-suppress`
//! crate's (`suppress/` in the workspace), which the `#[leak_checked]`
//! attribute also uses to reject a malformed `suppress = "…"` at compile
//! time. Here: [`sources`] finds the suppressions in force for a check
//! (files, `suppress!`, the attribute) and [`inline`] is `suppress!` itself.

pub(crate) mod inline;
mod sources;

pub(crate) use inline::Suppression;
#[cfg(leakcheck_interpose)]
pub(crate) use leakcheck_suppress::generate_error;
pub(crate) use leakcheck_suppress::{generate, parse, Entry, MatchFrame, Origin};
pub(crate) use sources::for_check;
