//! A test binary whose tests misuse the heap keeps running: each misusing
//! `#[leak_checked]` test fails with status `error` and its kind, every
//! clean test next to it (in parallel, on libtest's threads) passes, and a
//! misuse outside any check is reported on stderr while its test goes on.
//! The same tests one process each, as `cargo nextest run` runs them.

mod common;

use common::{is_child, read_json, run_binary, run_binary_within, Child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support as fixtures;
use std::hint::black_box;
use std::path::{Path, PathBuf};

const ROLE: &str = "misuse_children";

fn child() -> bool {
    is_child(ROLE)
}

#[leak_checked]
fn child_double_free() {
    if child() {
        // SAFETY: caught inside the check.
        unsafe { fixtures::double_free() };
    }
}

#[leak_checked]
fn child_invalid_free() {
    if child() {
        // SAFETY: caught inside the check.
        unsafe { fixtures::invalid_free() };
    }
}

#[leak_checked]
fn child_free_of_a_box() {
    if child() {
        let raw = Box::into_raw(Box::new(black_box([1u8; 40])));
        // SAFETY: a mismatched free: reported, still freed by glibc.
        unsafe { fixtures::c_free(raw.cast()) };
    }
}

#[leak_checked]
fn child_wrong_layout() {
    if child() {
        let layout = std::alloc::Layout::from_size_align(24, 8).unwrap();
        // SAFETY: a wrong-size dealloc: reported, still freed.
        unsafe {
            let ptr = std::alloc::alloc(layout);
            std::alloc::dealloc(
                black_box(ptr),
                std::alloc::Layout::from_size_align(8, 8).unwrap(),
            );
        }
    }
}

#[leak_checked]
fn child_overrun() {
    if child() {
        // SAFETY: the guard bytes take it.
        unsafe { fixtures::overrun_strcpy(true) };
    }
}

#[leak_checked]
fn child_write_after_free() {
    if child() {
        // SAFETY: the quarantine holds the block.
        unsafe { fixtures::write_after_free() };
    }
}

#[leak_checked]
fn child_thread_double_free() {
    if child() {
        // SAFETY: caught inside the check, on the C thread.
        unsafe { fixtures::thread_double_free() };
    }
}

/// Misusing tests and the kind each must report.
const MISUSING: [(&str, &str); 7] = [
    ("child_double_free", "double_free"),
    ("child_invalid_free", "invalid_free"),
    ("child_free_of_a_box", "mismatched_free"),
    ("child_wrong_layout", "layout_mismatch"),
    ("child_overrun", "overrun"),
    ("child_write_after_free", "write_after_free"),
    ("child_thread_double_free", "double_free"),
];

macro_rules! clean_children {
    ($($name:ident),*) => {
        $(
            #[leak_checked]
            fn $name() {
                if child() {
                    fixtures::churn(200, 48);
                    let v: Vec<u64> = (0..500).collect();
                    assert_eq!(black_box(v).len(), 500);
                    fixtures::alloc(32).free();
                }
            }
        )*
        const CLEAN: &[&str] = &[$(stringify!($name)),*];
    };
}

clean_children!(
    child_clean_00,
    child_clean_01,
    child_clean_02,
    child_clean_03,
    child_clean_04,
    child_clean_05,
    child_clean_06,
    child_clean_07,
    child_clean_08,
    child_clean_09,
    child_clean_10,
    child_clean_11,
    child_clean_12,
    child_clean_13,
    child_clean_14,
    child_clean_15,
    child_clean_16,
    child_clean_17,
    child_clean_18,
    child_clean_19
);

/// No check: the misuse is reported on stderr, and the test goes on.
#[test]
fn child_unchecked_free_of_a_stack_address() {
    if child() {
        // SAFETY: an invalid free, never passed to glibc.
        unsafe { fixtures::free_stack_address() };
        println!("went on after the invalid free");
    }
}

/// No check: a mismatched free is reported, and still frees.
#[test]
fn child_unchecked_free_of_a_box() {
    if child() {
        let raw = Box::into_raw(Box::new(black_box([2u8; 24])));
        // SAFETY: glibc's block, freed by glibc.
        unsafe { fixtures::c_free(raw.cast()) };
    }
}

fn report_of(dir: &Path, test: &str) -> PathBuf {
    let suffix = format!(".{test}.json");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(&suffix))
        .unwrap_or_else(|| panic!("no report of {test} in {}", dir.display()))
}

fn assert_verdicts(child: &Child, dir: &Path, tests: &[&str]) {
    let output = child.output();
    for &(test, kind) in MISUSING.iter().filter(|(t, _)| tests.contains(t)) {
        let listed = child
            .stdout
            .lines()
            .any(|l| l.strip_prefix("    ") == Some(test));
        assert!(listed, "{test} did not fail:\n{output}");
        let json = read_json(&report_of(dir, test));
        assert_eq!(json["status"], "error", "{test}: {json}");
        assert_eq!(json["errors"][0]["kind"], kind, "{test}: {json}");
        assert!(json["errors"][0]["stack"].is_array(), "{test}: {json}");
        let summary = format!("leakcheck: `{test}` misused the heap (1 error)");
        assert!(output.contains(&summary), "{summary}\n{output}");
    }
    for &test in CLEAN.iter().filter(|t| tests.contains(t)) {
        assert!(
            child.stdout.contains(&format!("test {test} ... ok")),
            "{output}"
        );
        let json = read_json(&report_of(dir, test));
        assert_eq!(json["status"], "clean", "{test}: {json}");
    }
}

#[test]
fn a_binary_with_misuse_keeps_every_verdict_in_parallel() {
    let reports = ScratchDir::new("misuse-parallel");
    // Killed after two minutes: a deadlock is this test's failure, not a
    // stuck CI.
    let child = run_binary_within(
        120,
        &["child_", "--test-threads=8"],
        ROLE,
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    let output = child.output();
    assert!(!child.timed_out(), "hung, killed after 120 s:\n{output}");
    assert!(!child.status.success(), "{output}");
    let passed = CLEAN.len() + 2;
    let result = format!(
        "test result: FAILED. {passed} passed; {} failed",
        MISUSING.len()
    );
    assert!(child.stdout.contains(&result), "{result}\n{output}");
    let all: Vec<&str> = MISUSING
        .iter()
        .map(|(t, _)| *t)
        .chain(CLEAN.iter().copied())
        .collect();
    assert_verdicts(&child, reports.path(), &all);
    // Outside any check: reported on stderr, the test went on.
    assert!(child
        .stdout
        .contains("test child_unchecked_free_of_a_stack_address ... ok"));
    assert!(child
        .stdout
        .contains("test child_unchecked_free_of_a_box ... ok"));
    for kind in ["invalid_free", "mismatched_free"] {
        let line = format!("leakcheck: heap misuse outside any check ({kind})");
        assert!(child.stderr.contains(&line), "{line}\n{output}");
    }
    assert!(
        child.stderr.contains("at fixture_free_stack_address"),
        "the stack, symbolised:\n{output}"
    );
}

#[test]
fn each_misuse_in_a_process_of_its_own_as_nextest_runs_it() {
    let reports = ScratchDir::new("misuse-one-each");
    for test in MISUSING.iter().map(|(t, _)| *t).chain(["child_clean_00"]) {
        let child = run_binary(
            &["--exact", test],
            ROLE,
            &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
        );
        let clean = test.starts_with("child_clean");
        assert_eq!(child.status.success(), clean, "{}", child.output());
        assert_verdicts(&child, reports.path(), &[test]);
    }
}
