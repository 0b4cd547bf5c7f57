//! Fixture tests for `summary_*.rs` (the second test binary of the suite
//! they summarise); see `fixture_a.rs`.

use leakcheck::leak_checked;
use leakcheck_test_support::leak;
use std::hint::black_box;

/// 2 × 48 bytes from the same site as `fixture_a::a_leaks_c`.
#[leak_checked]
#[ignore = "fixture of tests/summary_*.rs: leaks on purpose"]
fn b_leaks_c() {
    leak(black_box(2), black_box(48));
    black_box(());
}

/// 100 bytes from Rust.
#[leak_checked]
#[ignore = "fixture of tests/summary_*.rs: leaks on purpose"]
fn b_leaks_rust() {
    black_box(Box::leak(Box::new([7u8; 100])));
}

#[leak_checked]
#[ignore = "fixture of tests/summary_*.rs"]
fn b_clean() {
    let v = black_box(vec![1u8; 64]);
    drop(v);
}
