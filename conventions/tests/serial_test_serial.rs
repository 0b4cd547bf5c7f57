//! `#[leak_checked]` with serial_test's `#[serial]`, which goes below the
//! test attribute in its docs (`#[test] #[serial]`), so below
//! `#[leak_checked]`: the lock is taken inside the check. The other order
//! works too (the lock taken outside).

mod support;

use leakcheck::leak_checked;
use leakcheck_test_support::{leak, LEAK_FN};
use serial_test::serial;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{is_child, run_leaking};

/// Set while a serial test runs: two at once would see it set.
static RUNNING: AtomicBool = AtomicBool::new(false);

fn alone() {
    assert!(
        !RUNNING.swap(true, Ordering::SeqCst),
        "two serial tests at once"
    );
    let work: Vec<String> = (0..32).map(|i| i.to_string()).collect();
    std::thread::sleep(std::time::Duration::from_millis(5));
    black_box(work);
    RUNNING.store(false, Ordering::SeqCst);
}

#[leak_checked]
#[serial]
fn serial_below_one() {
    alone();
}

#[leak_checked]
#[serial]
fn serial_below_two() {
    alone();
}

#[serial]
#[leak_checked]
fn serial_above() {
    alone();
}

#[leak_checked]
#[serial]
fn serial_leaks() {
    if is_child("serial_leaks") {
        leak(black_box(2), black_box(8));
        black_box(());
    }
}

#[test]
fn a_serial_test_that_leaks_is_caught() {
    let caught = run_leaking("serial_leaks", "serial_leaks", &[]);
    caught.assert_leaked(
        "serial_leaks",
        (2, 16),
        LEAK_FN,
        "serial_test_serial::serial_leaks",
    );
}
