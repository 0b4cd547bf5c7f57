//! A body that panics fails as it would unchecked: `leakcheck::check`
//! resumes the body's panic on the caller with its own payload (a formatted
//! `String` or a `&'static str`), and `#[leak_checked]` keeps
//! `#[should_panic(expected = …)]` working. A check after one that panicked
//! reports only its own blocks.

use leakcheck::{leak_checked, Status};
use leakcheck_test_support::leak;
use std::hint::black_box;
use std::panic;

/// Runs `body` under `leakcheck::check` and returns the message it panicked
/// with; fails if it did not panic.
fn panic_message(body: impl FnOnce() + Send + panic::UnwindSafe) -> String {
    let payload = match panic::catch_unwind(|| leakcheck::check(body)) {
        Ok(report) => panic!("the check returned instead of panicking:\n{report}"),
        Err(payload) => payload,
    };
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        panic!("the payload is not the body's message")
    }
}

#[test]
fn formatted_panic_payload_reaches_the_caller() {
    let message = panic_message(|| {
        let _scratch = black_box(vec![0u8; 32]);
        panic!("body failed: {} of {}", black_box(3), black_box(4));
    });
    assert_eq!(message, "body failed: 3 of 4");
}

#[test]
fn static_panic_payload_reaches_the_caller() {
    let payload =
        panic::catch_unwind(|| leakcheck::check(|| panic!("a static message"))).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"a static message"));
}

#[test]
fn a_failed_assertion_in_the_body_reaches_the_caller() {
    let message = panic_message(|| assert_eq!(black_box(1 + 1), 3, "arithmetic is off"));
    assert!(message.contains("arithmetic is off"), "{message}");
    assert!(message.contains("left: 2"), "{message}");
}

#[test]
fn a_leaking_body_that_panics_still_panics() {
    let message = panic_message(|| {
        leak(black_box(2), black_box(16));
        panic!("after leaking");
    });
    assert_eq!(message, "after leaking");
}

#[test]
fn a_check_after_a_panicking_one_reports_only_its_own_blocks() {
    let _ = panic_message(|| {
        leak(black_box(4), black_box(100));
        panic!("leaked then panicked");
    });
    let report = leakcheck::check(|| {
        leak(black_box(1), black_box(24));
        black_box(());
    });
    assert_eq!(report.status(), Status::Leaked, "{report}");
    assert_eq!(
        (report.leaked_blocks(), report.leaked_bytes()),
        (1, 24),
        "{report}"
    );
}

#[leak_checked]
#[should_panic(expected = "checked body panicked: 7")]
fn leak_checked_body_panic_matches_should_panic() {
    let _scratch = black_box(vec![1u8; 16]);
    panic!("checked body panicked: {}", black_box(7));
}
