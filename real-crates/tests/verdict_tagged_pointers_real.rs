//! Tagged pointers in real crates: crossbeam-epoch marks a deleted list
//! entry by setting bit 0 of the pointer to it, so the `Local` of every
//! thread that pinned and exited is held only by a tagged pointer until the
//! list is next swept. Such a block is still reachable (its start, tagged),
//! not possibly lost: building and dropping a rayon pool, or pinning from
//! threads that exit, must not fail a test.

#[path = "../../harness/tests/common/mod.rs"]
mod common;

use common::{is_child, read_json, run_child, ScratchDir};
use leakcheck::leak_checked;
use rayon::prelude::*;
use std::hint::black_box;

/// Runs the `#[leak_checked]` test `role` in a child process (a fresh
/// process: crossbeam's collector is made inside the test), asserts that it
/// passed, and returns its JSON report.
fn run_checked(role: &str) -> serde_json::Value {
    let reports = ScratchDir::new(role);
    let child = run_child(role, &[("LEAKCHECK_REPORT_DIR", reports.as_str())]);
    child.assert_passed(&format!("{role} ran"));
    let files: Vec<_> = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}\n{}", child.output());
    read_json(&files[0])
}

/// Asserts that the report is clean with nothing lost, and that among its
/// still reachable blocks are crossbeam-epoch `Local`s (allocated in
/// `Local::register`): the exited threads' entries, held through tagged
/// pointers.
fn assert_locals_still_reachable(json: &serde_json::Value) {
    assert_eq!(json["status"], "clean", "{json}");
    assert_eq!(json["summary"]["leaked_blocks"], 0, "{json}");
    let kinds = json["summary"]["kinds"].as_object().expect("kinds");
    assert!(
        kinds.keys().all(|k| k == "still_reachable"),
        "only still reachable blocks: {json}"
    );
    let is_register =
        |f: &serde_json::Value| f["function"] == "crossbeam_epoch::internal::Local::register";
    let leaks = json["leaks"].as_array().expect("leaks");
    let blocks: u64 = leaks
        .iter()
        .filter(|leak| {
            leak["stack"]
                .as_array()
                .is_some_and(|s| s.iter().any(is_register))
        })
        .inspect(|leak| assert_eq!(leak["kind"], "still_reachable", "{json}"))
        .map(|leak| leak["blocks"].as_u64().unwrap())
        .sum();
    assert!(blocks >= 1, "a thread's Local is still reachable: {json}");
}

/// Four threads pin crossbeam-epoch's default collector together and exit.
#[leak_checked]
fn crossbeam_pin_child() {
    if is_child("crossbeam_pin_child") {
        let together = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let guard = crossbeam_epoch::pin();
                    together.wait();
                    black_box(&guard);
                });
            }
        });
        println!("crossbeam_pin_child ran");
    }
}

#[test]
fn threads_that_pinned_crossbeam_epoch_and_exited_do_not_fail_the_test() {
    assert_locals_still_reachable(&run_checked("crossbeam_pin_child"));
}

/// Builds a rayon pool of four threads, sums on it, and drops it.
#[leak_checked]
fn rayon_pool_child() {
    if is_child("rayon_pool_child") {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("a thread pool");
        let sum: u64 = pool.install(|| (0..10_000u64).into_par_iter().sum());
        assert_eq!(sum, 49_995_000);
        drop(pool);
        println!("rayon_pool_child ran");
    }
}

#[test]
fn a_rayon_pool_built_and_dropped_does_not_fail_the_test() {
    assert_locals_still_reachable(&run_checked("rayon_pool_child"));
}
