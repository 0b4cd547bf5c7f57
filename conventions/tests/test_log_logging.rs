//! `#[leak_checked]` with test-log's `#[test_log::test]`, which replaces
//! `#[test]`: in both orders, and `#[test_log::test(tokio::test)]` above it
//! for an async test. The logger test-log installs once per process is
//! still reachable (a global), never a failure; a leak is still caught.

mod support;

use leakcheck::leak_checked;
use leakcheck_test_support::{leak, LEAK_FN};
use std::hint::black_box;
use support::{is_child, run_leaking};

#[leak_checked]
#[test_log::test]
fn above_test_log_is_clean() {
    log::info!("logged {}", black_box(1));
}

#[test_log::test]
#[leak_checked]
fn below_test_log_is_clean() {
    log::info!("logged {}", black_box(2));
}

#[test_log::test(tokio::test)]
#[leak_checked]
async fn below_test_log_tokio_is_clean() {
    tokio::task::yield_now().await;
    log::info!("logged {}", black_box(3));
}

#[test_log::test]
#[leak_checked]
fn below_test_log_leaks() {
    if is_child("below_test_log_leaks") {
        log::info!("about to leak");
        leak(black_box(1), black_box(48));
        black_box(());
    }
}

#[test]
fn a_leak_is_caught_with_logging_on() {
    let test = "below_test_log_leaks";
    let caught = run_leaking(test, test, &[]);
    caught.assert_leaked(
        test,
        (1, 48),
        LEAK_FN,
        "test_log_logging::below_test_log_leaks",
    );
}
