//! The quarantine gives back what no running check needs any more: once a
//! check's verdict is done, the blocks it freed go back to glibc (all but
//! the newest `RESERVE_BYTES`), so a suite of small tests does not keep
//! 16 MiB of freed blocks resident. A check still running keeps every
//! block freed since it began, whatever other checks end meanwhile.
//!
//! One `#[test]`, so that no other check of this binary runs alongside and
//! holds the quarantine.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Blocks a check frees: 8000 × 528 bytes, about 4 MiB held (more than the
/// reserve, less than the quarantine's bound).
const FREES: usize = 8000;
const SIZE: usize = 512;

fn malloc(size: usize) -> usize {
    // SAFETY: a plain C allocation; every caller frees it or leaks it.
    let p = unsafe { libc::malloc(black_box(size)) } as usize;
    assert_ne!(p, 0);
    p
}

fn free(p: usize) {
    // SAFETY: `p` came from `malloc` above and is freed once.
    unsafe { libc::free(black_box(p as *mut libc::c_void)) };
}

/// Allocates and frees `FREES` blocks of `size`, one at a time, pushing
/// each address to `freed` (whose room is reserved beforehand).
fn churn(size: usize, freed: &mut Vec<usize>) {
    for _ in 0..FREES {
        let p = malloc(size);
        freed.push(p);
        free(p);
    }
}

#[test]
fn a_checks_frees_go_back_after_its_verdict_but_not_while_a_check_runs() {
    // 1. Alone: what a check freed is glibc's again once it has ended.
    let mut freed = Vec::with_capacity(FREES);
    let report = leakcheck::check(|| churn(SIZE, &mut freed));
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.stats().frees, FREES, "{:?}", report.stats());
    let distinct = {
        let mut sorted = freed.clone();
        sorted.sort_unstable();
        sorted.dedup();
        sorted
    };
    assert_eq!(distinct.len(), FREES, "held while the check ran: no reuse");
    // The next check's body thread gets the arena the last one left
    // (glibc hands an exited thread's arena to the next new thread).
    let mut again = Vec::with_capacity(FREES);
    let next = leakcheck::check(|| {
        again.extend((0..FREES).map(|_| malloc(SIZE)));
        again.iter().copied().for_each(free);
    });
    assert!(next.is_clean(), "{next}");
    // Memory reused: a new block inside one freed before (glibc need not
    // split its free chunks where the old blocks began).
    let inside_freed = |p: usize| {
        let at = distinct.partition_point(|&f| f <= p);
        at > 0 && p < distinct[at - 1] + SIZE
    };
    let reused = again.iter().filter(|&&p| inside_freed(p)).count();
    assert!(
        reused >= FREES / 2,
        "only {reused} of {FREES} new blocks reuse memory freed before the verdict"
    );

    // 2. A check that ends while another runs releases nothing that the
    // running one freed, nor what it freed itself since the other began.
    static STAGE: AtomicUsize = AtomicUsize::new(0);
    let wait_for = |stage: usize| {
        while STAGE.load(Ordering::Acquire) < stage {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let mut other_freed = Vec::with_capacity(FREES);
    let mut first = 0;
    let mut later = Vec::with_capacity(FREES);
    std::thread::scope(|s| {
        let running = s.spawn(|| {
            leakcheck::check(|| {
                first = malloc(SIZE);
                free(first);
                STAGE.store(1, Ordering::Release);
                wait_for(2);
                for _ in 0..FREES {
                    later.push(malloc(SIZE));
                }
                later.iter().copied().for_each(free);
            })
        });
        wait_for(1);
        let ended = leakcheck::check(|| churn(SIZE, &mut other_freed));
        assert!(ended.is_clean(), "{ended}");
        STAGE.store(2, Ordering::Release);
        let report = running.join().unwrap();
        assert!(report.is_clean(), "{report}");
    });
    other_freed.sort_unstable();
    let inside_other = |p: usize| {
        let at = other_freed.partition_point(|&f| f <= p);
        at > 0 && p < other_freed[at - 1] + SIZE
    };
    for &p in &later {
        assert!(
            p + SIZE <= first || p >= first + SIZE,
            "the running check's own freed block came back"
        );
        assert!(
            !inside_other(p),
            "a block freed while the check ran came back to it"
        );
    }
}
