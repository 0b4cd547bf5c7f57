//! A C `malloc` leak is caught: its blocks, bytes, origin and allocator, and
//! a stack from the C line that called `malloc` down to the test's closure.
//! The same C code freeing what it allocates is clean.

mod common;

use common::{assert_clean, assert_ends_at, assert_fixture_frame, assert_one_site, here};
use leakcheck::Origin;
use leakcheck_test_support::{alloc, churn, leak, ALLOC_FN, LEAK_FN};
use std::hint::black_box;

#[test]
fn malloc_leak_is_caught_at_the_c_line() {
    let mut test_fn = "";
    let report = leakcheck::check(|| {
        test_fn = here!();
        leak(black_box(3), black_box(48));
        // Not a tail call, so the closure keeps a frame in release builds.
        black_box(());
    });

    let leak = assert_one_site(&report, (3, 3 * 48), Origin::C, "malloc");
    assert_fixture_frame(&leak.stack[0], LEAK_FN, "leak");
    assert_ends_at(leak, test_fn);
}

#[test]
fn one_leaked_block_among_freed_ones_is_the_only_one_reported() {
    let report = leakcheck::check(|| {
        churn(black_box(50), black_box(48));
        alloc(black_box(64)).free();
        alloc(black_box(40)).leak();
        black_box(());
    });

    let leak = assert_one_site(&report, (1, 40), Origin::C, "malloc");
    assert_fixture_frame(&leak.stack[0], ALLOC_FN, "alloc");
}

#[test]
fn malloc_and_free_is_clean() {
    let report = leakcheck::check(|| {
        churn(black_box(100), black_box(48));
        alloc(black_box(64)).free();
    });
    assert_clean(&report, 101);
    assert!(report.stats().frees >= 101, "{:?}", report.stats());
}
