//! Fixture tests for `summary_*.rs`, not a proof of their own: run with
//! `--ignored` by those files (each test binary is one "binary" of the
//! suite they summarise). They leak on purpose, so they are ignored in a
//! plain `cargo test`.

use leakcheck::leak_checked;
use leakcheck_test_support::{cache_get, churn, leak};
use std::hint::black_box;

/// 3 × 48 bytes from `fixture_leak`, through the same library function as
/// `fixture_b::b_leaks_c`: one site in two binaries.
#[leak_checked]
#[ignore = "fixture of tests/summary_*.rs: leaks on purpose"]
fn a_leaks_c() {
    leak(black_box(3), black_box(48));
    black_box(());
}

#[leak_checked]
#[ignore = "fixture of tests/summary_*.rs"]
fn a_clean() {
    churn(black_box(10), black_box(32));
}

/// A C global cache: still reachable, so clean (shown with `--all`).
#[leak_checked]
#[ignore = "fixture of tests/summary_*.rs"]
fn a_reachable() {
    black_box(cache_get());
}

/// Leaks 16 bytes, unless `LEAKCHECK_CLI_FIXTURE_FIXED` is set: run twice,
/// the later report must win.
#[leak_checked]
#[ignore = "fixture of tests/summary_*.rs: leaks on purpose"]
fn rerun() {
    if std::env::var_os("LEAKCHECK_CLI_FIXTURE_FIXED").is_none() {
        leak(black_box(1), black_box(16));
    }
    black_box(());
}
