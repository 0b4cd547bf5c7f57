//! `LEAKCHECK=off` runs `#[leak_checked]` tests unchecked: a leaking test
//! passes, prints no report and writes no JSON file. The same child fails
//! with checking on (`LEAKCHECK=on`), so the switch is what made it pass.
//! The value is read in any case (`OFF`, `False`); one it does not know
//! fails the attribute's test with a message naming it, and never breaks a
//! direct `leakcheck::check`, which does not read `LEAKCHECK`.

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
    run("OFF").assert_passed("leaking child ran");
    run("False").assert_passed("leaking child ran");
    let written = std::fs::read_dir(reports.path()).unwrap().count();
    assert_eq!(written, 0, "a report was written");

    let checked = run("on");
    checked.assert_failed("leaking_child");
    let summary = "leakcheck: `leaking_child` leaked 1 block (32 bytes)";
    assert!(checked.stderr.contains(summary), "{}", checked.output());
}

/// Runs `check` on a leak when run as the child.
#[test]
fn check_child() {
    if is_child("check_child") {
        let report = leakcheck::check(|| {
            black_box(Box::leak(Box::new([7u8; 24])));
        });
        assert_eq!(
            (report.leaked_blocks(), report.leaked_bytes()),
            (1, 24),
            "{report}"
        );
        println!("check ran");
    }
}

#[test]
fn an_unknown_value_fails_the_attribute_and_leaves_check_alone() {
    let bogus = [("LEAKCHECK", "bogus")];
    let attribute = run_child("leaking_child", &bogus);
    attribute.assert_failed("leaking_child");
    assert!(
        attribute
            .stderr
            .contains("leakcheck: LEAKCHECK=\"bogus\" is not valid"),
        "{}",
        attribute.output()
    );
    assert!(
        !attribute.stdout.contains("leaking child ran"),
        "{}",
        attribute.output()
    );

    run_child("check_child", &bogus).assert_passed("check ran");
}
