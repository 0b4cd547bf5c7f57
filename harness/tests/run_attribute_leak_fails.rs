//! A `#[leak_checked]` test that leaks fails (the test binary re-runs itself
//! as a child to watch it fail): exit status, libtest's `FAILED` line, the
//! report printed once on stderr starting with the summary line naming the
//! test with blocks, bytes and sites, the C frame with `fixtures.c:<line>`,
//! no libtest or harness frames, and a `JSON report:` path in
//! `LEAKCHECK_REPORT_DIR` whose file parses and agrees. Nothing follows the
//! report: no "panicked at" line and, whatever `RUST_BACKTRACE` says, no
//! backtrace into the harness.

mod common;

use common::{is_child, json_report_path, read_json, run_child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::{leak, line_of, LEAK_FN};
use std::hint::black_box;

/// Leaks 2 blocks of 40 bytes from C when run as the child.
#[leak_checked]
fn leaking_child() {
    if is_child("leaking_child") {
        leak(black_box(2), black_box(40));
        // Not a tail call, so the closure keeps a frame in release builds.
        black_box(());
    }
}

#[test]
fn leaking_leak_checked_test_fails_with_the_report() {
    let reports = ScratchDir::new(module_path!());
    let child = run_child(
        "leaking_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    let output = child.output();

    child.assert_failed("leaking_child");
    // The report alone: its summary line first, printed once.
    let summary = "leakcheck: `leaking_child` leaked 2 blocks (80 bytes) from 1 allocation site";
    assert_eq!(child.stderr.lines().next(), Some(summary), "{output}");
    assert_eq!(child.stderr.matches(summary).count(), 1, "{output}");
    assert_report_ends_the_output(&child.stderr, &output);
    assert!(
        child
            .stderr
            .contains("80 bytes in 2 blocks are definitely lost, C malloc"),
        "{output}"
    );

    let frames: Vec<&str> = child
        .stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("at "))
        .collect();
    assert!(frames[0].starts_with(&format!("{LEAK_FN} (")), "{output}");
    if cfg!(debug_assertions) {
        assert!(
            frames[0].ends_with(&format!("fixtures.c:{})", line_of("leak"))),
            "{output}"
        );
    }
    assert!(
        frames
            .last()
            .unwrap()
            .starts_with(concat!(module_path!(), "::leaking_child::")),
        "{output}"
    );
    for prefix in ["test::", "std::", "core::", "leakcheck::"] {
        assert!(
            !frames.iter().any(|f| f.starts_with(prefix)),
            "a {prefix} frame:\n{output}"
        );
    }

    let path =
        json_report_path(&child.stderr).unwrap_or_else(|| panic!("no JSON report line:\n{output}"));
    assert!(
        path.starts_with(reports.path()),
        "{} is not in LEAKCHECK_REPORT_DIR",
        path.display()
    );
    let json = read_json(&path);
    assert_eq!(json["schema"], "leakcheck/v1");
    assert_eq!(json["test"], "leaking_child");
    assert_eq!(json["status"], "leaked");
    assert_eq!(json["summary"]["leaked_blocks"], 2);
    assert_eq!(json["summary"]["leaked_bytes"], 80);
    assert_eq!(json["leaks"][0]["origin"], "c");
    assert_eq!(json["leaks"][0]["stack"][0]["function"], LEAK_FN);
}

/// Asserts that the report is the end of what the test printed: its JSON
/// line is the last line, with no panic line or backtrace around it.
fn assert_report_ends_the_output(stderr: &str, output: &str) {
    let last = stderr.lines().rev().find(|line| !line.trim().is_empty());
    assert!(
        last.is_some_and(|line| line.starts_with("JSON report: ")),
        "the report is not the last thing printed:\n{output}"
    );
    for noise in [
        "panicked at",
        "stack backtrace",
        "RUST_BACKTRACE",
        "run_test",
    ] {
        assert!(!stderr.contains(noise), "`{noise}` printed:\n{output}");
    }
}

#[test]
fn no_backtrace_follows_the_report_whatever_rust_backtrace_says() {
    for backtrace in ["0", "1", "full"] {
        let reports = ScratchDir::new(&format!("{}-{backtrace}", module_path!()));
        let child = run_child(
            "leaking_child",
            &[
                ("LEAKCHECK_REPORT_DIR", reports.as_str()),
                ("RUST_BACKTRACE", backtrace),
            ],
        );
        let output = format!("RUST_BACKTRACE={backtrace}\n{}", child.output());
        child.assert_failed("leaking_child");
        let summary =
            "leakcheck: `leaking_child` leaked 2 blocks (80 bytes) from 1 allocation site";
        assert_eq!(child.stderr.lines().next(), Some(summary), "{output}");
        assert_report_ends_the_output(&child.stderr, &output);
    }
}
