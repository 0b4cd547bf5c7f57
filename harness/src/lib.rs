//! leakcheck: a Valgrind-style leak checker inside your Rust test binary.
//!
//! Put `#[leak_checked]` on a test and every heap block it allocates — Rust
//! allocations through the global allocator *and* C allocations through the
//! `malloc` family, in any thread the test or its C code creates — is
//! recorded with its stack. When the test returns, what it did not free
//! fails it, grouped by allocation site, with a JSON report for CI.
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
#![cfg_attr(doctest, doc = include_str!("../../README.md"))]
#![warn(missing_docs)]

// Lets `#[leak_checked]`'s `::leakcheck::…` paths resolve inside this crate.
#[allow(
    unused_extern_crates,
    reason = "used by the attribute's expansion in unit tests"
)]
extern crate self as leakcheck;

mod config;
mod error;
mod global;
#[cfg(leakcheck_interpose)]
mod hooks;
#[cfg(not(leakcheck_interpose))]
#[path = "hooks_unsupported.rs"]
mod hooks;
mod record;
mod report;
mod run;
mod scope;
mod stacks;
mod symbols;
mod sync;
mod table;

pub use error::Error;
pub use global::Tracked;
pub use leakcheck_macros::leak_checked;
pub use report::{Count, Frame, Kind, Leak, Origin, Report, ReportError, Stats, Status, SCHEMA};
pub use run::check;

#[doc(hidden)]
pub mod __private {
    pub use crate::run::{run_test, run_test_report, Options};
}
