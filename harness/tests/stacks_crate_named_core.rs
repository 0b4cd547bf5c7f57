//! A test crate named `core` (this file's name) keeps its own frames: a C
//! leak straight from the test body shows the C frame and the test's
//! closure, a Rust leak only the test's line, and neither shows std's
//! allocation plumbing or leakcheck's frames — through `leakcheck::check`
//! and through a `#[leak_checked]` test's JSON report. Frames are told
//! apart by what the compiler recorded for them, not by their names.

mod common;
#[path = "common/named_crate.rs"]
mod named_crate;

use common::{is_child, json_report_path, read_json, run_child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::LEAK_FN;
use named_crate::fixture_leak;
use std::hint::black_box;

/// Leaks 3 C blocks of 16 bytes and a 40-byte box when run as the child.
#[leak_checked]
fn leaking_child() {
    if is_child("leaking_child") {
        // SAFETY: the fixture mallocs `n` blocks of `size` bytes and keeps
        // no pointer to them.
        unsafe { fixture_leak(black_box(3), black_box(16)) };
        black_box(Box::leak(Box::new(black_box([3u8; 40]))));
    }
}

#[test]
fn leak_checked_test_reports_its_own_frames() {
    let reports = ScratchDir::new("core_crate_name");
    let child = run_child(
        "leaking_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    let output = child.output();
    child.assert_failed("leaking_child");
    let path =
        json_report_path(&child.stderr).unwrap_or_else(|| panic!("no JSON report line:\n{output}"));
    let json = read_json(&path);
    assert_eq!(json["summary"]["leaked_blocks"], 4, "{json}");
    assert_eq!(json["summary"]["leaked_bytes"], 3 * 16 + 40, "{json}");
    let body = "core::leaking_child::{{closure}}";
    let tests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/stacks_crate_named_core.rs"
    );
    let mut seen = Vec::new();
    for leak in json["leaks"].as_array().expect("leaks") {
        let frames: Vec<(&str, &str)> = leak["stack"]
            .as_array()
            .expect("a stack")
            .iter()
            .map(|f| {
                (
                    f["function"].as_str().unwrap_or("???"),
                    f["file"].as_str().unwrap_or("<no file>"),
                )
            })
            .collect();
        let functions: Vec<&str> = frames.iter().map(|(f, _)| *f).collect();
        let expected: &[&str] = match leak["origin"].as_str() {
            Some("c") => &[LEAK_FN, body],
            _ => &[body],
        };
        assert_eq!(functions, expected, "{json}");
        assert_eq!(frames.last().map(|(_, file)| *file), Some(tests), "{json}");
        assert_eq!(leak["kind"], "definitely_lost", "{json}");
        seen.push((
            leak["origin"].as_str().unwrap_or("?").to_owned(),
            leak["blocks"].as_u64(),
            leak["bytes"].as_u64(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("c".to_owned(), Some(3), Some(48)),
            ("rust".to_owned(), Some(1), Some(40))
        ],
        "{json}"
    );
}
