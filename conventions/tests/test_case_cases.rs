//! `#[leak_checked]` with test-case: above `#[test_case(…)]` (the order
//! that works for plain functions: test-case puts `#[test]` first on each
//! case, which an attribute below cannot see, so there each case would be
//! registered twice) it checks the function each case calls; async cases
//! take it below, directly above `#[tokio::test]`, where test-case adds no
//! `#[test]`.

mod support;

use leakcheck::leak_checked;
use leakcheck_test_support::{leak, LEAK_FN};
use std::hint::black_box;
use support::{is_child, run_leaking};
use test_case::test_case;

#[leak_checked]
#[test_case(1 ; "one")]
#[test_case(2 ; "two")]
fn above_test_case_is_clean(n: usize) {
    assert_eq!(vec![7u8; n].len(), n);
}

#[leak_checked]
#[test_case(2 => 4)]
fn above_test_case_with_expected_value(n: usize) -> usize {
    n * 2
}

#[test_case(1)]
#[test_case(2)]
#[leak_checked]
#[tokio::test]
async fn below_test_case_async_is_clean(n: usize) {
    tokio::task::yield_now().await;
    assert_eq!(vec![7u8; n].len(), n);
}

#[leak_checked]
#[test_case(2 ; "two")]
fn above_test_case_leaks(n: usize) {
    if is_child("above_test_case_leaks") {
        leak(black_box(n), black_box(32));
        black_box(());
    }
}

#[test]
fn a_leaking_case_fails_under_its_own_name() {
    let test = "above_test_case_leaks::test_case_1_two";
    let caught = run_leaking(test, "above_test_case_leaks", &[]);
    caught.assert_leaked(
        test,
        (2, 64),
        LEAK_FN,
        "test_case_cases::above_test_case_leaks",
    );
}

#[test]
fn every_case_is_registered_once() {
    let child = support::common::run_binary(&["--list"], "none", &[]);
    let tests: Vec<&str> = child
        .stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .collect();
    let mut unique = tests.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(tests.len(), unique.len(), "{tests:#?}");
    assert!(
        tests.contains(&"above_test_case_is_clean::test_case_1_one"),
        "{tests:#?}"
    );
}
