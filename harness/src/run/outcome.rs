//! A checked test's outcome from what its body did and what the check
//! found: its panic (kept, or taken out of the check's scope), the failure
//! message, and `#[should_panic]`'s rules with a leak counted in.

use std::any::Any;
use std::panic;

/// A panic's payload.
type Payload = Box<dyn Any + Send>;

/// A copy of a string payload, made by the caller's (untracked) thread, or
/// the payload itself if it is not a string. Dropping the original frees the
/// blocks std made for it on the body's thread (its box, a formatted
/// message) before the verdict counts what is live.
pub(super) fn detach(payload: Payload) -> Result<Payload, Payload> {
    if let Some(message) = payload.downcast_ref::<String>() {
        return Ok(Box::new(message.clone()));
    }
    match payload.downcast_ref::<&'static str>() {
        Some(message) => Ok(Box::new(*message)),
        None => Err(payload),
    }
}

/// What a test whose body panicked with a payload [`detach`] cannot copy
/// says: its leaks were not checked.
pub(super) fn not_checked(test: &str) -> String {
    format!(
        "leakcheck: `{test}` panicked with a payload that is not a string (`panic_any`); its \
         leaks are not checked, since the payload's own blocks are still live"
    )
}

/// The payload's message, if it is a string.
fn message(payload: &Payload) -> Option<&str> {
    match payload.downcast_ref::<String>() {
        Some(message) => Some(message),
        None => payload.downcast_ref::<&'static str>().copied(),
    }
}

/// Prints a failure message on stderr (libtest's capture, when on).
pub(super) fn print(message: &str) {
    eprintln!("{message}");
}

/// Fails the test with `message`: printed once, then a panic that runs no
/// panic hook, so no backtrace follows the message whatever `RUST_BACKTRACE`
/// says. The payload is the message, for `#[should_panic(expected = …)]`.
pub(super) fn fail(message: String) -> ! {
    print(&message);
    panic::resume_unwind(Box::new(message))
}

/// `#[should_panic]`'s verdict with the check's: `None` when the test
/// passes, else the failure message. `failure` is the leak report's text
/// when the check failed.
///
/// The expected failure is the body's panic or, if the body returned, the
/// leak report. A body that panicked as expected and also leaked fails with
/// the report.
pub(super) fn should_panic(
    result: std::thread::Result<()>,
    failure: Option<String>,
    expected: Option<&str>,
) -> Option<String> {
    let with_report = |text: String| match &failure {
        Some(report) => format!("{text}\n\n{report}"),
        None => text,
    };
    match result {
        Err(payload) => match (message(&payload), expected) {
            (Some(message), Some(expected)) if !message.contains(expected) => {
                Some(with_report(format!(
                    "panic did not contain expected string\n      panic message: {message:?}\n \
                     expected substring: {expected:?}"
                )))
            }
            (None, Some(expected)) => Some(with_report(format!(
                "expected panic with string value,\n found non-string value: `{:?}`\n     \
                 expected substring: {expected:?}",
                (*payload).type_id()
            ))),
            _ => failure,
        },
        Ok(()) => match (failure, expected) {
            (Some(report), Some(expected)) if !report.contains(expected) => Some(format!(
                "panic did not contain expected string\n      panic message: {report:?}\n \
                 expected substring: {expected:?}"
            )),
            // The leak report is the failure the test expects.
            (Some(report), _) => {
                print(&report);
                None
            }
            (None, _) => Some("test did not panic as expected".to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panicked(message: &'static str) -> std::thread::Result<()> {
        Err(Box::new(message))
    }

    const REPORT: &str = "leakcheck: `t` leaked 1 block (8 bytes) from 1 allocation site";

    #[test]
    fn expected_panic_without_leak_passes() {
        assert_eq!(should_panic(panicked("boom"), None, Some("oo")), None);
        assert_eq!(should_panic(panicked("boom"), None, None), None);
        let formatted: Payload = Box::new(String::from("boom 3"));
        assert_eq!(should_panic(Err(formatted), None, Some("m 3")), None);
    }

    #[test]
    fn expected_panic_with_leak_fails_with_the_report() {
        let failure = Some(REPORT.to_owned());
        let message = should_panic(panicked("boom"), failure.clone(), Some("boom"));
        assert_eq!(message.as_deref(), Some(REPORT));
        assert_eq!(
            should_panic(panicked("boom"), failure, None).as_deref(),
            Some(REPORT)
        );
    }

    #[test]
    fn unexpected_message_fails_as_libtest_says_then_the_report() {
        let message = should_panic(panicked("bang"), Some(REPORT.to_owned()), Some("boom"));
        assert_eq!(
            message.as_deref(),
            Some(
                "panic did not contain expected string\n      panic message: \"bang\"\n \
                 expected substring: \"boom\"\n\nleakcheck: `t` leaked 1 block (8 bytes) from 1 \
                 allocation site"
            )
        );
        let number: Payload = Box::new(7u8);
        let message = should_panic(Err(number), None, Some("boom")).unwrap();
        assert!(
            message.starts_with(
                "expected panic with string value,\n found non-string value: `TypeId("
            ),
            "{message}"
        );
        assert!(
            message.ends_with("`\n     expected substring: \"boom\""),
            "{message}"
        );
    }

    #[test]
    fn a_body_that_returns_passes_only_on_the_expected_leak() {
        let failure = Some(REPORT.to_owned());
        assert_eq!(
            should_panic(Ok(()), failure.clone(), Some("leaked 1 block")),
            None
        );
        assert_eq!(should_panic(Ok(()), failure.clone(), None), None);
        let message = should_panic(Ok(()), failure, Some("boom")).unwrap();
        assert!(
            message.starts_with("panic did not contain expected string"),
            "{message}"
        );
        assert_eq!(
            should_panic(Ok(()), None, Some("boom")).as_deref(),
            Some("test did not panic as expected")
        );
    }

    #[test]
    fn string_payloads_are_copied_others_kept() {
        let copy = detach(Box::new(String::from("formatted"))).unwrap();
        assert_eq!(message(&copy), Some("formatted"));
        let copy = detach(Box::new("static")).unwrap();
        assert_eq!(message(&copy), Some("static"));
        let kept = detach(Box::new(5u32)).unwrap_err();
        assert_eq!(kept.downcast_ref::<u32>(), Some(&5));
    }
}
