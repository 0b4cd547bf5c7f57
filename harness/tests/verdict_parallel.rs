//! A parallel run of many clean `#[leak_checked]` tests and three leaking
//! ones fails exactly the leaking ones, every time, each with its own blocks:
//! tests running side by side never see each other's allocations.
//!
//! The parent test re-runs this binary 5 times (`LEAKCHECK_STRESS_RUNS` times if
//! set: `scripts/stress.sh parallel` runs it hundreds of times) with
//! `--test-threads=8` and [`common::CHILD_ENV`] set, which makes the
//! `leaky_*` tests leak; in a normal run they return early and the 40 clean
//! tests run checked as usual. Every leaked block must come out definitely
//! lost, in every run: a stale copy of its address anywhere (another test's
//! freed block, the runtime's, leakcheck's symboliser's) must not make it
//! still reachable or possibly lost.

mod common;

use common::{is_child, read_json, run_binary, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::{alloc, churn, leak, pthread_key_state, thread_clean, thread_leak};
use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::thread;

/// The child role that makes the `leaky_*` tests leak.
const ROLE: &str = "parallel";

/// Allocates and frees in C and Rust, in threads of its own and of C's, and
/// prints: everything an ordinary test does, and nothing left behind.
fn clean_work(n: usize) {
    println!("clean work {n}");
    let map: HashMap<usize, String> = (0..n + 10).map(|i| (i, format!("{i}:{n}"))).collect();
    assert_eq!(map.len(), n + 10);
    churn(black_box(n), black_box(16 + n));
    alloc(black_box(8 * n)).free();
    pthread_key_state(black_box(n + 1));
    let handle = thread::spawn(move || {
        eprintln!("thread of test {n}");
        black_box(vec![n as u8; n * 3]).len()
    });
    assert_eq!(handle.join().unwrap(), n * 3);
    thread::scope(|s| {
        s.spawn(|| thread_clean(black_box(2), black_box(n + 24)));
        s.spawn(|| drop(black_box(Box::new([n; 4]))));
    });
}

/// `#[leak_checked]` tests named `clean_<n>`, each doing [`clean_work`]`(n)`.
macro_rules! clean_tests {
    ($($name:ident)*) => {
        $(
            #[leak_checked]
            fn $name() {
                let n = stringify!($name).trim_start_matches("clean_").parse().unwrap();
                clean_work(n);
            }
        )*
    };
}

clean_tests! {
    clean_01 clean_02 clean_03 clean_04 clean_05 clean_06 clean_07 clean_08 clean_09 clean_10
    clean_11 clean_12 clean_13 clean_14 clean_15 clean_16 clean_17 clean_18 clean_19 clean_20
    clean_21 clean_22 clean_23 clean_24 clean_25 clean_26 clean_27 clean_28 clean_29 clean_30
    clean_31 clean_32 clean_33 clean_34 clean_35 clean_36 clean_37 clean_38 clean_39 clean_40
}

/// 3 C blocks of 111 bytes.
#[leak_checked]
fn leaky_c_malloc() {
    clean_work(11);
    if is_child(ROLE) {
        leak(black_box(3), black_box(111));
    }
}

/// 1 Rust block of 222 bytes.
#[leak_checked]
fn leaky_rust_box() {
    clean_work(22);
    if is_child(ROLE) {
        let leaked: &'static mut [u8; 222] = Box::leak(Box::new(black_box([2; 222])));
        black_box(leaked);
    }
}

/// 2 C blocks of 55 bytes, in a thread C creates.
#[leak_checked]
fn leaky_c_thread() {
    clean_work(33);
    if is_child(ROLE) {
        thread_leak(black_box(2), black_box(55));
    }
}

/// Each leaking test, and the blocks and bytes it leaves, all definitely
/// lost (each block is unreferenced).
const LEAKY: [(&str, usize, usize); 3] = [
    ("leaky_c_malloc", 3, 333),
    ("leaky_rust_box", 1, 222),
    ("leaky_c_thread", 2, 110),
];

/// libtest's verdict lines, `test <name> ... <verdict>`, as (name, verdict).
fn verdicts(stdout: &str) -> Vec<(&str, &str)> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.split_once(" ... "))
        .collect()
}

#[test]
fn parallel_run_fails_exactly_the_leaking_tests() {
    if is_child(ROLE) {
        return;
    }
    let leaky: BTreeSet<&str> = LEAKY.iter().map(|(name, _, _)| *name).collect();
    let runs: usize = std::env::var("LEAKCHECK_STRESS_RUNS").map_or(5, |n| n.parse().unwrap());
    for run in 1..=runs {
        let reports = ScratchDir::new(&format!("parallel-{run}"));
        let child = run_binary(
            &[
                "--test-threads=8",
                "--skip",
                "parallel_run_fails_exactly_the_leaking_tests",
            ],
            ROLE,
            &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
        );
        let output = child.output();
        assert!(!child.status.success(), "run {run}: {output}");

        let verdicts = verdicts(&child.stdout);
        let failed: BTreeSet<&str> = verdicts
            .iter()
            .filter(|(_, v)| *v == "FAILED")
            .map(|(n, _)| *n)
            .collect();
        let passed = verdicts.iter().filter(|(_, v)| *v == "ok").count();
        assert_eq!(failed, leaky, "run {run}: {output}");
        assert_eq!(passed, 40, "run {run}: {output}");
        assert_eq!(verdicts.len(), 43, "run {run}: {output}");
        assert!(
            child
                .stdout
                .contains("test result: FAILED. 40 passed; 3 failed"),
            "run {run}: {output}"
        );
        for (name, _, _) in LEAKY {
            let summary = format!("leakcheck: `{name}` leaked ");
            assert!(
                child.stdout.contains(&summary),
                "run {run}: no `{summary}` in\n{output}"
            );
        }

        // One JSON report per test, leaked exactly for the leaking ones,
        // with every block they left found and definitely lost.
        let mut statuses = HashMap::new();
        for entry in std::fs::read_dir(reports.path()).unwrap() {
            let json = read_json(&entry.unwrap().path());
            let test = json["test"].as_str().unwrap().to_owned();
            if let Some(&(_, blocks, bytes)) = LEAKY.iter().find(|(name, _, _)| *name == test) {
                let summary = &json["summary"];
                assert_eq!(
                    summary["kinds"],
                    serde_json::json!({
                        "definitely_lost": {"blocks": blocks, "bytes": bytes}
                    }),
                    "run {run}: {test}: every block definitely lost:\n{json}"
                );
                assert_eq!(
                    (&summary["leaked_blocks"], &summary["leaked_bytes"]),
                    (&serde_json::json!(blocks), &serde_json::json!(bytes)),
                    "run {run}: {json}"
                );
                let leaks = json["leaks"].as_array().unwrap();
                assert!(
                    leaks.iter().all(|l| l["kind"] == "definitely_lost"),
                    "run {run}: {json}"
                );
            }
            statuses.insert(test, json["status"].as_str().unwrap().to_owned());
        }
        assert_eq!(statuses.len(), 43, "run {run}: {statuses:?}");
        for (test, status) in &statuses {
            let expected = if leaky.contains(test.as_str()) {
                "leaked"
            } else {
                "clean"
            };
            assert_eq!(status, expected, "run {run}: {test}");
        }
    }
}
