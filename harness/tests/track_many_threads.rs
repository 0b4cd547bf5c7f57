//! Tests that start more threads than the registry of threads the verdict
//! waits for has entries (1024): entries of exited threads are reused, so
//! thousands of threads one after another are waited for like a few; more
//! than 1024 alive at once are not all waited for, and a report that has
//! leaks then says so with a `threads_not_waited_for` warning.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Duration;

thread_local! {
    /// Allocated on first use, freed when the thread exits: a leak if the
    /// verdict does not wait for the thread.
    static STATE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn touch_thread_local() {
    STATE.with(|s| s.borrow_mut().extend_from_slice(&[1u8; 40]));
}

#[test]
fn thousands_of_sequential_threads_then_detached_ones_are_all_waited_for() {
    for run in 0..3 {
        let report = leakcheck::check(|| {
            for _ in 0..1100 {
                std::thread::spawn(touch_thread_local).join().unwrap();
            }
            for _ in 0..300 {
                std::thread::spawn(|| {
                    touch_thread_local();
                    std::thread::sleep(Duration::from_millis(30));
                });
            }
        });
        assert!(report.is_clean(), "run {run}:\n{report}");
        assert!(
            report.warnings().is_empty(),
            "run {run}: {:?}",
            report.warnings()
        );
        assert!(
            report.stats().allocations >= 1400,
            "run {run}: {:?}",
            report.stats()
        );
    }
}

#[test]
fn more_threads_alive_at_once_than_entries_is_a_warning() {
    const THREADS: usize = 1100;
    let report = leakcheck::check(|| {
        let all_started = Arc::new(Barrier::new(THREADS + 1));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let all_started = Arc::clone(&all_started);
                std::thread::spawn(move || {
                    all_started.wait();
                })
            })
            .collect();
        all_started.wait();
        for handle in handles {
            handle.join().unwrap();
        }
        black_box(Box::leak(Box::new([0u8; 24])));
    });
    let warning = report
        .warnings()
        .iter()
        .find(|w| w.kind == "threads_not_waited_for")
        .unwrap_or_else(|| panic!("no warning: {:?}\n{report}", report.warnings()));
    let unwaited: usize = warning.message.split(' ').next().unwrap().parse().unwrap();
    assert!(unwaited >= THREADS - 1024, "{}", warning.message);
    assert!(
        warning.message.contains("more than 1024"),
        "{}",
        warning.message
    );
    assert!(report.to_json().contains("threads_not_waited_for"));
    assert!(report.leaked_bytes() >= 24, "{report}");
}
