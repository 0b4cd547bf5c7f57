//! `LEAKCHECK=off` runs `#[leak_checked]` tests unchecked: a leaking test
//! passes, prints no report and writes no JSON file. The same child fails
//! with checking on (`LEAKCHECK=on`), so the switch is what made it pass.

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
        println!("leaking child ran");
    }
}

#[test]
fn leakcheck_off_lets_a_leaking_test_pass() {
    let reports = ScratchDir::new(module_path!());
    let run = |switch: &str| {
        let env = [
            ("LEAKCHECK", switch),
            ("LEAKCHECK_REPORT_DIR", reports.as_str()),
        ];
        run_child("leaking_child", &env)
    };

    run("off").assert_passed("leaking child ran");
    let written = std::fs::read_dir(reports.path()).unwrap().count();
    assert_eq!(written, 0, "a report was written");

    let checked = run("on");
    checked.assert_failed("leaking_child");
    let summary = "leakcheck: `leaking_child` leaked 1 block (32 bytes)";
    assert!(checked.stderr.contains(summary), "{}", checked.output());
}
