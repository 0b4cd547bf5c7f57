//! leakcheck: per-test leak checking of Rust and C heap allocations.
#![cfg_attr(doctest, doc = include_str!("../../README.md"))]

pub use leakcheck_macros::leak_checked;

/// Runs `f` and reports what it leaked (stub).
pub fn check<F: FnOnce() + Send>(f: F) {
    f()
}

#[doc(hidden)]
pub mod __private {
    /// Options the attribute passes to [`run_test`].
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Options {
        /// Still-reachable blocks fail the test too.
        pub strict: bool,
    }

    impl Options {
        /// The defaults: only lost blocks fail.
        pub const fn new() -> Self {
            Options { strict: false }
        }
        /// `#[leak_checked(strict)]`.
        pub const fn strict(mut self) -> Self {
            self.strict = true;
            self
        }
    }

    /// Runs a `#[leak_checked]` test body: what the attribute expands to.
    pub fn run_test<R: Send>(fn_name: &'static str, options: Options, body: impl FnOnce() -> R + Send) -> R {
        let _ = (fn_name, options);
        body()
    }
}
