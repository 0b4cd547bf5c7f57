//! A leak in a thread that C code creates with `pthread_create` (the test
//! never sees the thread) is charged to the test: its stack starts and ends
//! in the C thread's start routine, with no glibc thread-start frames. A C
//! thread that frees what it allocates is clean.

mod common;

use common::{assert_clean, assert_ends_at, assert_fixture_frame, assert_one_site};
use leakcheck::Origin;
use leakcheck_test_support::{thread_clean, thread_leak, THREAD_LEAK_MAIN_FN};
use std::hint::black_box;

#[test]
fn leak_in_a_c_created_thread_is_caught() {
    let report = leakcheck::check(|| thread_leak(black_box(2), black_box(24)));

    let leak = assert_one_site(&report, (2, 48), Origin::C, "malloc");
    assert_fixture_frame(&leak.stack[0], THREAD_LEAK_MAIN_FN, "thread_leak_main");
    // The start routine is the thread's base: `start_thread`, `clone3` and
    // the like are cut.
    assert_ends_at(leak, THREAD_LEAK_MAIN_FN);
}

#[test]
fn c_thread_leaks_from_several_checks_stay_apart() {
    for n in 1..=3 {
        let report = leakcheck::check(|| thread_leak(black_box(n), black_box(8 * n)));
        assert_one_site(&report, (n, 8 * n * n), Origin::C, "malloc");
    }
}

#[test]
fn c_thread_that_frees_is_clean() {
    let report = leakcheck::check(|| thread_clean(black_box(10), black_box(32)));
    // The C thread's mallocs were seen, and charged to this check.
    assert_clean(&report, 10);
}
