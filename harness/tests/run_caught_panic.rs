//! A panic that the body catches itself — with `catch_unwind`, or by joining
//! a thread that panicked — leaves nothing behind: the panic machinery's
//! allocations (message, payload box, std's panic bookkeeping) are not
//! charged to the test, and the verdict is clean.

mod common;

use common::assert_clean;
use std::hint::black_box;
use std::panic;
use std::thread;

/// The message of a caught panic payload. Borrowed: a copy made inside the
/// check and kept after it would be a block the check did not free.
fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    match (
        payload.downcast_ref::<String>(),
        payload.downcast_ref::<&str>(),
    ) {
        (Some(s), _) => s,
        (None, Some(s)) => s,
        (None, None) => "<not a string>",
    }
}

#[test]
fn panic_caught_inside_the_body_is_clean() {
    let mut caught = false;
    let report = leakcheck::check(|| {
        let payload = panic::catch_unwind(|| {
            let _scratch = black_box(vec![0u8; 64]);
            panic!("inner boom {}", black_box(1));
        })
        .unwrap_err();
        assert_eq!(message(&*payload), "inner boom 1");
        caught = true;
    });
    assert!(caught);
    assert_clean(&report, 1);
}

#[test]
fn panic_in_a_joined_thread_is_clean() {
    let mut caught = false;
    let report = leakcheck::check(|| {
        let handle = thread::spawn(|| -> u32 { panic!("thread boom {}", black_box(2)) });
        assert_eq!(message(&*handle.join().unwrap_err()), "thread boom 2");
        caught = true;
    });
    assert!(caught);
    assert_clean(&report, 1);
}

#[test]
fn many_caught_panics_are_clean() {
    let report = leakcheck::check(|| {
        for i in 0..50 {
            let result = panic::catch_unwind(|| {
                if black_box(i) >= 0 {
                    panic!("boom number {i}");
                }
            });
            assert!(result.is_err());
        }
    });
    assert_clean(&report, 1);
}
