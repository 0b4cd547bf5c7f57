//! A clean `#[leak_checked]` test passes, and writes a JSON report with
//! status `clean` to `LEAKCHECK_REPORT_DIR`, named after the test binary and
//! the test (run in a child process to look at the file).

mod common;

use common::{is_child, read_json, run_child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::{alloc, churn, thread_clean};
use std::hint::black_box;

/// Allocates and frees in C, in Rust and in threads.
#[leak_checked]
fn clean_child() {
    if is_child("clean_child") {
        println!("clean child running");
        churn(black_box(10), black_box(32));
        alloc(black_box(64)).free();
        thread_clean(black_box(3), black_box(16));
        let handle = std::thread::spawn(|| black_box(vec![1u8; 100]).len());
        assert_eq!(handle.join().unwrap(), 100);
    }
}

#[test]
fn clean_leak_checked_test_passes_and_writes_a_clean_report() {
    let reports = ScratchDir::new(module_path!());
    let child = run_child("clean_child", &[("LEAKCHECK_REPORT_DIR", reports.as_str())]);
    child.assert_passed("clean child running");

    let files: Vec<_> = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let exe = std::env::current_exe().unwrap();
    let binary = exe.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        files[0].file_name().unwrap(),
        format!("{binary}.clean_child.json").as_str()
    );
    let json = read_json(&files[0]);
    assert_eq!(json["schema"], "leakcheck/v1");
    assert_eq!(json["test"], "clean_child");
    assert_eq!(json["binary"], exe.display().to_string());
    assert_eq!(json["status"], "clean");
    assert_eq!(json["summary"]["leaked_blocks"], 0);
    assert_eq!(json["summary"]["leaked_bytes"], 0);
    assert_eq!(json["leaks"], serde_json::json!([]));
    assert_eq!(json["errors"], serde_json::json!([]));
    assert!(
        json["stats"]["allocations"]
            .as_u64()
            .is_some_and(|n| n >= 14),
        "{json}"
    );
}
