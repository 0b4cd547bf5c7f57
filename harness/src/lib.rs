//! leakcheck: a Valgrind-style leak checker inside your Rust test binary.
//!
//! Put `#[leak_checked]` on a test and every heap block it allocates — Rust
//! allocations through the global allocator *and* C allocations through the
//! `malloc` family, in any thread the test or its C code creates — is
//! recorded with its stack. When the test returns, what it did not free is
//! classified as Valgrind's memcheck does (definitely, indirectly or
//! possibly lost, or still reachable from a global), and what is lost fails
//! it, grouped by allocation site, with a ready-to-paste suppression and a
//! JSON report for CI. Suppressions come in valgrind's and LeakSanitizer's
//! formats, from a file, [`suppress!`] or the attribute.
//!
//! ```
//! use leakcheck::leak_checked;
//!
//! #[leak_checked]
//! fn frees_what_it_allocates() {
//!     let s = std::ffi::CString::new("hi").unwrap();
//!     drop(s);
//! }
//! # fn main() {}
//! ```
//!
//! The same check is available as a function, [`check`], which returns a
//! [`Report`] instead of failing.
//!
//! leakcheck installs a tracking `#[global_allocator]` (the default
//! `global-allocator` feature). A binary with its own allocator fails to
//! build with "the `#[global_allocator]` in this crate conflicts with global
//! allocator in: leakcheck": turn the feature off
//! (`default-features = false`) and wrap the allocator in [`Tracked`]. Left
//! unwrapped, every report says that Rust allocations were not seen.
//!
//! Known leaks you cannot fix (a C library's one-time initialisation, say)
//! are suppressed for one test with the attribute's `suppress = "…"`, or for
//! every test in the binary with [`suppress!`]:
//!
//! ```
//! leakcheck::suppress!("leak:sqlite3_initialize");
//! # fn main() {}
//! ```
#![cfg_attr(doctest, doc = include_str!("../../README.md"))]
#![warn(missing_docs)]

// Lets `#[leak_checked]`'s `::leakcheck::…` paths resolve inside this crate.
#[allow(
    unused_extern_crates,
    reason = "used by the attribute's expansion in unit tests"
)]
extern crate self as leakcheck;

// The data path, one stage a folder, lowest first. A stage names only the
// stages listed above it: allocation → record → scope → verdict → report.

// Allocator-free primitives: spin locks, mapped pages, the re-entrancy flag.
mod sys;

// Stack capture on the allocation path, the cached unwinder, symbols.
mod stacks;

// The hooks and the global allocator, recording, the block table, scopes.
mod track;

// Classification of what a check left live, and fault-tolerant reads.
mod verdict;

// Grouping, suppressions, and the text and JSON forms of a report.
mod report;

// Live heap profiles of a running program (feature `profile`).
#[cfg(feature = "profile")]
mod profile;

// Running a check, on top of the stages.

// `check`, `#[leak_checked]`'s entry points and the JSON files.
mod run;

// The environment variables.
mod config;

// Errors that say what to fix.
mod error;

pub use error::Error;
/// Checks a test for heap leaks: Rust and C blocks it allocates (in any
/// thread it creates) and does not free fail it, with a report of where
/// they were allocated.
///
/// ```
/// use leakcheck::leak_checked;
///
/// #[leak_checked] // implies #[test]
/// fn frees_everything() {
///     let v: Vec<u8> = vec![1, 2, 3];
///     drop(v);
/// }
///
/// #[leak_checked(strict)] // still-reachable blocks fail too
/// #[should_panic(expected = "boom")] // must panic with "boom" and leak nothing
/// fn panics_as_usual() {
///     panic!("boom");
/// }
///
/// #[leak_checked]
/// fn may_return_errors() -> Result<(), Box<dyn std::error::Error>> {
///     let n: u8 = "7".parse()?;
///     assert_eq!(n, 7);
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// # Arguments
///
/// Comma-separated, all optional:
///
/// - `strict`: every kind of block left behind fails the test, still-reachable
///   ones included. The same as `fail_on = "all"`; give one or the other.
/// - `fail_on = "…"`: which kinds fail the test, in valgrind's words (its
///   `--errors-for-leak-kinds`): `definite`, `indirect`, `possible`,
///   `reachable` separated by commas, or `all`, or `none`. The default is
///   `"definite,indirect,possible"`. A word it does not know fails the build.
/// - `suppress = "…"`: a suppression for this test only, in the suppressions
///   file format: a LeakSanitizer `leak:pattern` line, or a valgrind `{ … }`
///   block in a raw string. May be repeated. For the whole test binary, write
///   a [`suppress!`] or a `leakcheck.supp` file next to the crate's
///   `Cargo.toml` instead.
/// - `show = "…"`: which kinds get a section of their own in the failure
///   message (valgrind's `--show-leak-kinds`), in the same words. The
///   default is `"definite,possible"`, with `reachable` when it fails the
///   test: indirectly lost blocks are counted in the header of the
///   definitely lost block they hang off. `LEAKCHECK_SHOW` overrides it.
/// - `max_sections = N`: at most N sections in the failure message, the
///   largest first (default 5); a last line counts the rest and names the
///   JSON report, which has every one. `LEAKCHECK_MAX_SECTIONS` overrides it.
/// - `check_panicking = false`: a body that panics is not checked; its
///   panic and `#[should_panic]` are left to libtest. By default a test that
///   panics is checked like any other.
///
/// ```
/// use leakcheck::leak_checked;
///
/// #[leak_checked(fail_on = "definite,possible")] // not indirect or reachable
/// fn only_definite_and_possible_fail() {}
///
/// #[leak_checked(fail_on = "none")] // reports, never fails
/// fn report_only() {
///     std::hint::black_box(Box::leak(Box::new(1u32)));
/// }
///
/// #[leak_checked(show = "all", max_sections = 20)] // every kind, 20 sections
/// fn verbose_report() {}
///
/// #[leak_checked(
///     strict,
///     suppress = "leak:sqlite3_initialize",
///     suppress = r#"
/// {
///    zlib-tables
///    Memcheck:Leak
///    fun:malloc
///    ...
///    fun:inflateInit2_
/// }
/// "#,
/// )]
/// fn with_suppressions() {}
/// # fn main() {}
/// ```
///
/// Write the attribute above `#[test]` (an attribute cannot see the ones
/// above it, so `#[test]` first registers the test twice). The body runs on a
/// thread of its own, named like the test; the verdict is made once that
/// thread and the threads it created have exited, so thread-locals are not
/// leaks. `LEAKCHECK=off` runs it unchecked. The failure message and the JSON
/// report are described in the crate docs and the README.
///
/// # Panics, async tests, other attributes
///
/// A leak fails the test with the report printed once on stderr, and no
/// backtrace after it. A body that panics unexpectedly fails with its own
/// message first, then the report if it leaked. `#[should_panic]` below the
/// attribute is judged by the check: a body that panicked as expected but
/// leaked fails.
///
/// Above `#[tokio::test(…)]` on an `async fn` (any flavor), the runtime is
/// built and shut down inside the check; `#[tokio::test]` above it works
/// too, and is the order for other runtimes. Above `#[rstest]` or
/// `#[test_case(…)]`, the function each case calls is checked. In a
/// library whose dev-dependency leakcheck is, keep the `#[test]` and add
/// the check in test builds only, with no warning in either build (the
/// README's copy of this example is compiled):
///
/// ```ignore
/// #[cfg_attr(test, leakcheck::leak_checked)]
/// #[test]
/// fn roundtrip() {
///     assert_eq!("1".parse::<u8>(), Ok(1));
/// }
/// ```
pub use leakcheck_macros::leak_checked;
#[cfg(feature = "profile")]
pub use profile::endpoint::{pprof_heap, PprofResponse, MAX_DELTA_SECONDS};
#[cfg(feature = "profile")]
pub use profile::{profile_rate, set_profile_rate, HeapProfile, HeapSite, ProfileError};
pub use report::misuse::Misuse;
pub use report::{
    Count, Frame, Leak, Origin, Report, ReportError, Stats, Status, SuppressionUse, SCHEMA,
};
pub use run::check;
pub use track::global::Tracked;
pub use verdict::Kind;

#[doc(hidden)]
pub mod __private {
    pub use crate::report::suppress::inline::{is_blank, Suppression};
    pub use crate::run::{check_with, run_test, run_test_report, run_test_should_panic, Options};

    /// Whether the live block at `addr` is in a thread's cache of the
    /// allocation path (allocated while no check ran, not yet in the block
    /// table): for leakcheck's own tests of those caches.
    pub fn is_cached(addr: usize) -> bool {
        crate::track::cache::peek(addr).is_some()
    }
    /// Restarts the calling thread's profile sampler from `seed`: for tests
    /// whose estimates must not depend on what ran before.
    #[cfg(feature = "profile")]
    pub fn reseed_profile_sampler(seed: u64) {
        crate::track::sample::reseed_thread(seed);
    }
    // `suppress!` expands to `inventory::submit!`, named through here so
    // that test crates need no `inventory` dependency of their own.
    pub use inventory;
}
