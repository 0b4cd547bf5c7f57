//! `#[leak_checked]` with rstest, in both orders rstest's docs allow:
//! above `#[rstest]` it checks the function each case calls (in place);
//! below it, rstest copies it onto each generated test, async ones with
//! `#[tokio::test]` included. Every case is one test, checked on its own,
//! and a leaking case fails under its own name.

mod support;

use leakcheck::leak_checked;
use leakcheck_test_support::{leak, LEAK_FN};
use rstest::{fixture, rstest};
use std::hint::black_box;
use support::{is_child, run_leaking};

#[fixture]
fn buffer() -> Vec<u8> {
    vec![0u8; 128]
}

#[leak_checked]
#[rstest]
#[case(1)]
#[case(2)]
fn above_rstest_is_clean(#[case] n: usize, buffer: Vec<u8>) -> Result<(), String> {
    let copies: Vec<Vec<u8>> = (0..n).map(|_| buffer.clone()).collect();
    assert_eq!(copies.len(), n);
    Ok(())
}

#[rstest]
#[case(1)]
#[case(2)]
#[leak_checked]
fn below_rstest_is_clean(#[case] n: usize) {
    assert_eq!(vec![1u8; n].len(), n);
}

#[rstest]
#[case(1)]
#[case(3)]
#[leak_checked]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_rstest_async_is_clean(#[case] n: usize) {
    let v = tokio::spawn(async move { vec![0u8; n] }).await.unwrap();
    assert_eq!(v.len(), n);
}

#[leak_checked]
#[rstest]
#[case(1)]
#[case(3)]
fn above_rstest_leaks(#[case] n: usize) {
    if is_child("above_rstest_leaks") {
        leak(black_box(n), black_box(16));
        black_box(());
    }
}

#[rstest]
#[case(1)]
#[case(3)]
#[leak_checked]
fn below_rstest_leaks(#[case] n: usize) {
    if is_child("below_rstest_leaks") {
        leak(black_box(n), black_box(16));
        black_box(());
    }
}

#[test]
fn each_leaking_case_fails_under_its_own_name() {
    for function in ["above_rstest_leaks", "below_rstest_leaks"] {
        for (case, blocks) in [("case_1", 1), ("case_2", 3)] {
            let test = format!("{function}::{case}");
            let caught = run_leaking(&test, function, &[]);
            let caller = format!("rstest_cases::{function}");
            caught.assert_leaked(&test, (blocks, blocks * 16), LEAK_FN, &caller);
        }
    }
}
