//! Tests that panic are checked too. A body that panics unexpectedly fails
//! with its own panic message first, then the leak report if it leaked; a
//! `#[should_panic]` body that panics as expected but leaked fails with the
//! report; one that panics as expected and frees everything passes, under
//! `RUST_BACKTRACE` too (what std allocates for the panic and its backtrace,
//! and what unwinding frees, is not a leak); `check_panicking = false` opts
//! one test out. The child tests run in a child process each.

mod common;

use common::{is_child, json_report_path, read_json, run_child, Child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::leak;
use std::hint::black_box;

#[leak_checked]
fn panics_after_leaking() {
    if is_child("panics_after_leaking") {
        leak(black_box(2), black_box(24));
        panic!("boom after leaking {}", black_box(2));
    }
}

#[leak_checked]
#[should_panic(expected = "boom")]
fn should_panic_and_leaks() {
    if is_child("should_panic_and_leaks") {
        leak(black_box(3), black_box(16));
    }
    panic!("boom");
}

#[leak_checked]
#[should_panic(expected = "expected boom")]
fn should_panic_clean() {
    // Freed by unwinding: not leaks.
    let _held = black_box(vec![7u8; 4096]);
    let _text = black_box(std::ffi::CString::new("held across the panic").unwrap());
    panic!("expected boom {}", black_box(1));
}

#[leak_checked]
#[should_panic]
fn should_panic_static_message() {
    let _held = black_box(Box::new([1u64; 8]));
    panic!("a static message");
}

#[leak_checked]
#[should_panic(expected = "boom")]
fn should_panic_wrong_message() {
    if is_child("should_panic_wrong_message") {
        panic!("bang");
    }
    panic!("boom");
}

#[leak_checked]
#[should_panic(expected = "boom")]
fn should_panic_but_returns() {
    if !is_child("should_panic_but_returns") {
        panic!("boom");
    }
}

#[leak_checked(check_panicking = false)]
#[should_panic(expected = "boom")]
fn opted_out_should_panic_leaks_unchecked() {
    leak(black_box(1), black_box(8));
    panic!("boom");
}

#[leak_checked]
#[should_panic]
fn should_panic_with_a_non_string_payload() {
    std::panic::panic_any(black_box(42u32));
}

/// Runs `test` in a child with its report in a scratch dir, and returns
/// the child and the JSON report it wrote, if any.
fn run(test: &str, env: &[(&str, &str)]) -> (Child, Option<serde_json::Value>) {
    let reports = ScratchDir::new(&format!("{}-{test}", module_path!()));
    let mut all = vec![("LEAKCHECK_REPORT_DIR", reports.as_str())];
    all.extend_from_slice(env);
    let child = run_child(test, &all);
    // A clean test prints nothing, so its report is found in the directory.
    let written = std::fs::read_dir(reports.path())
        .expect("the report dir")
        .map(|entry| entry.expect("a report dir entry").path())
        .find(|path| path.extension().is_some_and(|e| e == "json"));
    if let Some(printed) = json_report_path(&child.stderr) {
        assert_eq!(Some(&printed), written.as_ref(), "{}", child.output());
    }
    (child, written.map(|path| read_json(&path)))
}

/// Asserts that `json` is a leak of `blocks` blocks, `bytes` bytes, from
/// the C fixture.
fn assert_leaked(json: Option<serde_json::Value>, (blocks, bytes): (u64, u64), output: &str) {
    let json = json.unwrap_or_else(|| panic!("no JSON report:\n{output}"));
    assert_eq!(json["status"], "leaked", "{output}");
    assert_eq!(json["summary"]["leaked_blocks"], blocks, "{output}");
    assert_eq!(json["summary"]["leaked_bytes"], bytes, "{output}");
    assert_eq!(json["leaks"][0]["origin"], "c", "{output}");
    assert_eq!(
        json["leaks"][0]["stack"][0]["function"], "fixture_leak",
        "{output}"
    );
}

#[test]
fn an_unexpected_panic_comes_first_then_the_report() {
    let (child, json) = run("panics_after_leaking", &[]);
    let output = child.output();
    child.assert_failed("panics_after_leaking");
    let lines: Vec<&str> = child.stderr.lines().collect();
    let panicked = lines
        .iter()
        .position(|l| l.starts_with("thread 'panics_after_leaking'") && l.contains("panicked at"))
        .unwrap_or_else(|| panic!("no panic message:\n{output}"));
    assert_eq!(lines[panicked + 1], "boom after leaking 2", "{output}");
    let summary =
        "leakcheck: `panics_after_leaking` leaked 2 blocks (48 bytes) from 1 allocation site";
    let report = lines
        .iter()
        .position(|l| *l == summary)
        .unwrap_or_else(|| panic!("no report:\n{output}"));
    assert!(panicked < report, "{output}");
    assert_eq!(child.stderr.matches(summary).count(), 1, "{output}");
    assert!(
        child
            .stderr
            .contains("at run_attribute_panicking_leaks::panics_after_leaking::{{closure}}"),
        "{output}"
    );
    assert_leaked(json, (2, 48), &output);
}

#[test]
fn a_should_panic_test_that_leaked_fails_with_the_report() {
    let (child, json) = run("should_panic_and_leaks", &[]);
    let output = child.output();
    child.assert_failed("should_panic_and_leaks");
    let summary =
        "leakcheck: `should_panic_and_leaks` leaked 3 blocks (48 bytes) from 1 allocation site";
    assert!(child.stderr.contains(summary), "{output}");
    assert_leaked(json, (3, 48), &output);
}

#[test]
fn a_should_panic_test_that_frees_everything_passes_whatever_rust_backtrace_says() {
    for test in ["should_panic_clean", "should_panic_static_message"] {
        for backtrace in ["0", "1", "full"] {
            let (child, json) = run(test, &[("RUST_BACKTRACE", backtrace)]);
            let output = format!("RUST_BACKTRACE={backtrace}\n{}", child.output());
            assert!(child.status.success(), "{output}");
            assert!(
                child.stdout.contains("test result: ok. 1 passed"),
                "{output}"
            );
            let json = json.unwrap_or_else(|| panic!("no JSON report:\n{output}"));
            assert_eq!(json["status"], "clean", "{output}");
            assert_eq!(json["summary"]["leaked_blocks"], 0, "{output}");
        }
    }
}

#[test]
fn a_wrong_panic_message_fails_as_libtest_says() {
    let (child, _) = run("should_panic_wrong_message", &[]);
    let output = child.output();
    child.assert_failed("should_panic_wrong_message");
    let expected = "panic did not contain expected string\n      panic message: \"bang\"\n \
                    expected substring: \"boom\"";
    assert!(child.stderr.contains(expected), "{output}");
}

#[test]
fn a_should_panic_test_that_returns_fails() {
    let (child, _) = run("should_panic_but_returns", &[]);
    let output = child.output();
    child.assert_failed("should_panic_but_returns");
    assert!(
        child.stderr.contains("test did not panic as expected"),
        "{output}"
    );
}

#[test]
fn check_panicking_false_leaves_a_panicking_test_unchecked() {
    let (child, json) = run("opted_out_should_panic_leaks_unchecked", &[]);
    let output = child.output();
    assert!(child.status.success(), "{output}");
    assert!(json.is_none(), "{output}");
    assert!(!child.stderr.contains("leakcheck"), "{output}");
}

#[test]
fn a_non_string_payload_passes_and_says_it_was_not_checked() {
    let (child, json) = run("should_panic_with_a_non_string_payload", &[]);
    let output = child.output();
    assert!(child.status.success(), "{output}");
    assert!(json.is_none(), "{output}");
    assert!(
        child
            .stderr
            .contains("panicked with a payload that is not a string (`panic_any`)"),
        "{output}"
    );
}
