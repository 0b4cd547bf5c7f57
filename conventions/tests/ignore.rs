//! `#[leak_checked]` with `#[ignore]` below it: the test is ignored as
//! usual, and checked when run with `--ignored`.

mod support;

use leakcheck::leak_checked;
use leakcheck_test_support::{leak, LEAK_FN};
use std::hint::black_box;
use support::{is_child, run_leaking};

#[leak_checked]
#[ignore = "leaks on purpose; run by ignored_tests_are_checked_when_run"]
fn ignored_and_leaking() {
    if is_child("ignored_and_leaking") {
        leak(black_box(1), black_box(24));
        black_box(());
    }
}

#[test]
fn ignored_tests_are_checked_when_run() {
    let test = "ignored_and_leaking";
    let caught = run_leaking(test, test, &["--ignored"]);
    caught.assert_leaked(test, (1, 24), LEAK_FN, "ignore::ignored_and_leaking");
}

#[test]
fn ignored_tests_stay_ignored() {
    let child = support::common::run_binary(
        &["--exact", "ignored_and_leaking"],
        "ignored_and_leaking",
        &[],
    );
    let output = child.output();
    assert!(child.status.success(), "{output}");
    assert!(child.stdout.contains("1 ignored"), "{output}");
}
