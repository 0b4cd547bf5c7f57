//! `LEAKCHECK_STACK_DEPTH`: a value that is not a number from 1 to 256 fails
//! a `#[leak_checked]` test with a message naming the variable, its value and
//! what is accepted; a valid depth limits the frames a report keeps.

mod common;

use common::{is_child, json_report_path, read_json, run_child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::{leak, LEAK_FN};
use std::hint::black_box;

/// Leaks 1 block of 32 bytes from C, three calls below the test, when run as
/// the child.
#[leak_checked]
fn leaking_child() {
    if is_child("leaking_child") {
        deeper(3);
        // Not a tail call, so the closure keeps a frame in release builds.
        black_box(());
    }
}

#[inline(never)]
fn deeper(n: u32) {
    if n == 0 {
        leak(black_box(1), black_box(32));
    } else {
        deeper(black_box(n - 1));
    }
    black_box(());
}

#[test]
fn invalid_stack_depth_fails_naming_the_variable() {
    for bad in ["abc", "0", "257", "-1"] {
        let child = run_child("leaking_child", &[("LEAKCHECK_STACK_DEPTH", bad)]);
        let output = child.output();
        child.assert_failed("leaking_child");
        let expected = format!("leakcheck: LEAKCHECK_STACK_DEPTH=\"{bad}\" is not valid");
        assert!(child.stderr.contains(&expected), "{bad}: {output}");
        assert!(child.stderr.contains("1 to 256"), "{bad}: {output}");
    }
}

#[test]
fn valid_stack_depth_limits_the_frames() {
    let reports = ScratchDir::new(module_path!());
    let depth = |value: &str| {
        let child = run_child(
            "leaking_child",
            &[
                ("LEAKCHECK_STACK_DEPTH", value),
                ("LEAKCHECK_REPORT_DIR", reports.as_str()),
            ],
        );
        let output = child.output();
        child.assert_failed("leaking_child");
        assert!(
            child.stderr.contains("leaked 1 block (32 bytes)"),
            "{output}"
        );
        let json = read_json(&json_report_path(&child.stderr).expect("a JSON report line"));
        let stack = json["leaks"][0]["stack"]
            .as_array()
            .expect("a stack")
            .clone();
        assert_eq!(stack[0]["function"], LEAK_FN, "{value}: {json}");
        stack
    };
    // One return address: fixture_leak's, C built at -O0, so one frame.
    assert_eq!(depth("1").len(), 1);
    // Deep enough for fixture_leak, its wrapper, four `deeper` frames and
    // the test's closure.
    let deep = depth("64");
    assert!(deep.len() >= 6, "{deep:#?}");
    let bottom = deep.last().unwrap()["function"].as_str().unwrap();
    assert!(
        bottom.starts_with(concat!(module_path!(), "::leaking_child::")),
        "{deep:#?}"
    );
}
