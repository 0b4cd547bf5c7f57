//! A block reallocated through growth in place, moves, shrinks and the mmap
//! threshold is one block: when the chain ends leaked, one block of the final
//! size is reported, allocated by the last `realloc`. Freed, it is clean.

mod common;

use common::{assert_clean, assert_ends_at, assert_fixture_frame, assert_one_site, here};
use leakcheck::Origin;
use leakcheck_test_support::{realloc_chain, REALLOC_CHAIN_FN};
use std::hint::black_box;

/// Enough steps to pass every size in the fixture's cycle, the 200 kB one
/// (past glibc's mmap threshold) included.
const STEPS: usize = 7;

#[test]
fn realloc_chain_ending_leaked_is_one_block_of_the_final_size() {
    let mut test_fn = "";
    let report = leakcheck::check(|| {
        test_fn = here!();
        realloc_chain(black_box(STEPS), black_box(72)).leak();
        black_box(());
    });

    let leak = assert_one_site(&report, (1, 72), Origin::C, "realloc");
    assert_fixture_frame(&leak.stack[0], REALLOC_CHAIN_FN, "realloc_chain");
    assert_ends_at(leak, test_fn);
    // The first malloc and every realloc were seen; all but one block freed.
    let stats = report.stats();
    assert!(stats.allocations > STEPS + 1, "{stats:?}");
    assert_eq!(stats.allocations - stats.frees, 1, "{stats:?}");
}

#[test]
fn a_single_shrinking_realloc_keeps_one_block() {
    let report = leakcheck::check(|| {
        realloc_chain(black_box(0), black_box(8)).leak();
        black_box(());
    });
    let leak = assert_one_site(&report, (1, 8), Origin::C, "realloc");
    assert_fixture_frame(&leak.stack[0], REALLOC_CHAIN_FN, "realloc_chain");
}

#[test]
fn realloc_chain_freed_is_clean() {
    let report = leakcheck::check(|| realloc_chain(black_box(STEPS), black_box(72)).free());
    assert_clean(&report, STEPS + 2);
}
