//! A pool one check starts (rayon's global pool, created lazily inside X:
//! its threads inherit X's scope) and another check uses while X still
//! runs. Y's work on X's threads must never be charged to X: a leak whose
//! stack runs through Y's body code is Y's work, and X's report leaves it
//! out with a `blocks_of_another_check` warning naming Y's body. X's own
//! leak on the same pool is still X's.

use leakcheck::Report;
use leakcheck_test_support::leak;
use rayon::prelude::*;
use std::hint::black_box;
use std::sync::mpsc;
use std::sync::{Barrier, Mutex};

fn x_check(pool_started: &Barrier, y_done: &Mutex<mpsc::Receiver<()>>) -> Report {
    leakcheck::check(|| {
        // Starts rayon's global pool inside this check, and leaks from it.
        (0..64usize).into_par_iter().for_each(|i| {
            if i == 0 {
                leak(black_box(1), black_box(77));
            }
        });
        pool_started.wait();
        y_done.lock().unwrap().recv().unwrap();
    })
}

fn y_check(pool_started: &Barrier) -> Report {
    pool_started.wait();
    leakcheck::check(|| {
        (0..4usize)
            .into_par_iter()
            .for_each(|i| leak(black_box(1), black_box(100 + i)));
    })
}

#[test]
fn a_leak_on_a_pool_another_check_started_is_never_charged_to_it() {
    let pool_started = Barrier::new(2);
    let (y_done, y_finished) = mpsc::channel();
    let y_finished = Mutex::new(y_finished);
    let (x, y) = std::thread::scope(|s| {
        let x = s.spawn(|| x_check(&pool_started, &y_finished));
        let y = s.spawn(|| {
            let report = y_check(&pool_started);
            y_done.send(()).unwrap();
            report
        });
        (x.join().unwrap(), y.join().unwrap())
    });

    // X: its own leak only, and a warning for Y's four blocks.
    assert_eq!((x.leaked_blocks(), x.leaked_bytes()), (1, 77), "{x}");
    let warning = x
        .warnings()
        .iter()
        .find(|w| w.kind == "blocks_of_another_check")
        .unwrap_or_else(|| panic!("no warning:\n{x}"));
    assert!(
        warning.message.starts_with("4 blocks (406 bytes)"),
        "{}",
        warning.message
    );
    assert!(
        warning.message.contains("y_check::{{closure}}"),
        "{}",
        warning.message
    );
    // Y's blocks were made on X's threads: charged to no test.
    assert_eq!(y.leaked_blocks(), 0, "{y}");
}
