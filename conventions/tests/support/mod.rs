//! Running a leaking test of this binary in a child process and reading
//! its verdict, on top of leakcheck's own test helpers.
#![allow(dead_code)]

#[path = "../../../harness/tests/common/mod.rs"]
pub mod common;

pub use common::is_child;
use common::{json_report_path, read_json, run_binary_within, Child, ScratchDir};

/// What a child's one test left: the child, and its JSON report.
pub struct Caught {
    pub child: Child,
    pub json: serde_json::Value,
}

/// Runs the test `test` of this binary alone in a child (60 s at most), as
/// `role` (what [`is_child`] is asked), with `extra` arguments, and asserts
/// that it failed and printed its leak report once.
pub fn run_leaking(test: &str, role: &str, extra: &[&str]) -> Caught {
    let reports = ScratchDir::new(&format!("conventions-{role}"));
    let mut args = vec!["--exact", test, "--nocapture", "--test-threads=1"];
    args.extend_from_slice(extra);
    let child = run_binary_within(
        60,
        &args,
        role,
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    let output = child.output();
    assert!(!child.timed_out(), "timed out:\n{output}");
    child.assert_failed(test);
    assert_eq!(
        child.stderr.matches("leakcheck: `").count(),
        1,
        "the report once:\n{output}"
    );
    let path = json_report_path(&child.stderr).unwrap_or_else(|| panic!("no report:\n{output}"));
    let json = read_json(&path);
    Caught { child, json }
}

impl Caught {
    /// Asserts the verdict: `test` leaked `blocks` blocks of `bytes` bytes in
    /// all, definitely lost, the first site allocated by `allocator` (first
    /// frame) and called from a frame whose function starts with `caller`.
    pub fn assert_leaked(
        &self,
        test: &str,
        (blocks, bytes): (u64, u64),
        first_frame: &str,
        caller: &str,
    ) {
        let (json, output) = (&self.json, self.child.output());
        assert_eq!(json["test"], test, "{output}");
        assert_eq!(json["status"], "leaked", "{output}");
        assert_eq!(json["summary"]["leaked_blocks"], blocks, "{output}");
        assert_eq!(json["summary"]["leaked_bytes"], bytes, "{output}");
        let leak = &json["leaks"][0];
        assert_eq!(leak["kind"], "definitely_lost", "{output}");
        let functions: Vec<&str> = leak["stack"]
            .as_array()
            .unwrap_or_else(|| panic!("no stack:\n{output}"))
            .iter()
            .map(|frame| frame["function"].as_str().unwrap_or("???"))
            .collect();
        assert_eq!(
            functions.first(),
            Some(&first_frame),
            "{functions:#?}\n{output}"
        );
        assert!(
            functions.iter().any(|f| f.starts_with(caller)),
            "no frame of `{caller}`: {functions:#?}\n{output}"
        );
    }
}
