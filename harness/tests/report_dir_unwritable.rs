//! A `LEAKCHECK_REPORT_DIR` that cannot be written (a path under a regular
//! file) is a warning on stderr naming the path, never a lost verdict: the
//! leaking `#[leak_checked]` test still fails with its report.

mod common;

use common::{is_child, run_child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::leak;
use std::hint::black_box;

/// Leaks 1 block of 32 bytes from C when run as the child.
#[leak_checked]
fn leaking_child() {
    if is_child("leaking_child") {
        leak(black_box(1), black_box(32));
    }
}

/// Runs the leaking child with `LEAKCHECK_REPORT_DIR` set to `dir`, checks
/// that it still failed, and returns it with leakcheck's warning line, which
/// must name `dir`.
fn run_with_report_dir(dir: &std::path::Path) -> (common::Child, String) {
    let child = run_child(
        "leaking_child",
        &[("LEAKCHECK_REPORT_DIR", dir.to_str().unwrap())],
    );
    let output = child.output();
    child.assert_failed("leaking_child");
    let warning = child
        .stderr
        .lines()
        .find(|line| line.starts_with("leakcheck: cannot write the JSON report to"))
        .unwrap_or_else(|| panic!("no warning:\n{output}"))
        .to_owned();
    assert!(warning.contains(&dir.display().to_string()), "{warning}");
    (child, warning)
}

#[test]
fn unwritable_report_dir_warns_and_keeps_the_verdict() {
    let scratch = ScratchDir::new(module_path!());
    let file = scratch.path().join("a-regular-file");
    std::fs::write(&file, "not a directory").unwrap();
    let dir = file.join("reports");
    let (child, warning) = run_with_report_dir(&dir);
    let output = child.output();
    let warning = warning.as_str();
    assert!(warning.contains("LEAKCHECK_REPORT_DIR"), "{warning}");
    assert!(
        warning.contains("the verdict below is unaffected"),
        "{warning}"
    );
    assert!(
        child.stderr.contains(
            "leakcheck: `leaking_child` leaked 1 block (32 bytes) from 1 allocation site"
        ),
        "{output}"
    );
    assert!(!child.stderr.contains("JSON report:"), "{output}");
    assert!(file.is_file(), "the file in the way was replaced");
}

#[test]
fn a_report_dir_that_is_a_file_is_named_as_not_a_directory() {
    let scratch = ScratchDir::new(concat!(module_path!(), "-is-a-file"));
    let file = scratch.path().join("reports-is-a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let (_child, warning) = run_with_report_dir(&file);
    let warning = warning.as_str();
    assert!(
        warning.contains("it exists and is not a directory"),
        "{warning}"
    );
    assert!(!warning.contains("os error"), "{warning}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}
