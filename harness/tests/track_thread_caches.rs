//! The threads' caches of the allocation path (`track::cache`): blocks
//! allocated while no check runs live in their thread's cache, not the
//! block table, until a check starts. What must hold:
//!
//! - a check's verdict sees every one of them (they are its roots): a block
//!   of the check that only such a block points to is still reachable, not
//!   lost — from the checking thread's cache, a live thread's, and the cache
//!   of a thread that has exited;
//! - a block freed on another thread than the one that allocated it, while
//!   checks start and stop, is found and freed exactly once: no misuse is
//!   reported, no block is lost, and every check's verdict is exactly its
//!   own leak.
//!
//! The first test runs in this process and is the only one here that runs
//! checks in it (a check elsewhere in the process would keep the caches
//! shut); the stress runs in a child, with a time limit.

mod common;

use common::{is_child, kinds, run_binary_within};
use leakcheck::Kind::{DefinitelyLost, StillReachable};
use libc::c_void;
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

const HOLDER: usize = 64;
const HELD: usize = 32;
const LEAKED: usize = 48;

/// The holders: blocks allocated outside any check, found through here.
static HOLDERS: [AtomicPtr<*mut c_void>; 3] = [const { AtomicPtr::new(ptr::null_mut()) }; 3];

/// Allocates holder `i` and returns whether it went to this thread's cache.
fn new_holder_in(i: usize) -> bool {
    // SAFETY: a plain C allocation, big enough for one pointer, freed at
    // the end of the test.
    let holder = unsafe { libc::malloc(HOLDER) }.cast::<*mut c_void>();
    let cached = leakcheck::__private::is_cached(holder as usize);
    assert!(!holder.is_null());
    HOLDERS[i].store(holder, Ordering::Release);
    cached
}

#[test]
fn blocks_cached_outside_checks_are_roots_of_the_verdict() {
    if is_child("stress") {
        return;
    }
    // Each holder is looked for in the caches at once, on its own thread
    // (a later allocation there may move it to the table, which is fine:
    // the verdict must see it wherever it is).
    let mut cached = [false; 3];
    // On this thread.
    cached[0] = new_holder_in(0);
    // On a thread that has exited by the check.
    cached[1] = thread::spawn(|| new_holder_in(1)).join().unwrap();
    // On a thread alive during the check.
    let (made, wait_made) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let alive = thread::spawn(move || {
        made.send(new_holder_in(2)).unwrap();
        let _ = wait_release.recv();
    });
    cached[2] = wait_made.recv().unwrap();
    assert_eq!(
        cached, [true; 3],
        "the holders were not cached: this test would not test the caches"
    );

    let report = leakcheck::check(|| {
        for holder in &HOLDERS {
            // SAFETY: a plain allocation, stored in a live holder block.
            unsafe { *holder.load(Ordering::Acquire) = libc::malloc(HELD) };
        }
        // SAFETY: a plain allocation, leaked on purpose (freed below).
        black_box(unsafe { libc::malloc(LEAKED) });
    });
    assert_eq!(
        kinds(&report),
        [(DefinitelyLost, 1, LEAKED), (StillReachable, 3, 3 * HELD)],
        "{report}"
    );
    assert!(report.errors().is_empty(), "{report}");

    release.send(()).unwrap();
    alive.join().unwrap();
    for holder in &HOLDERS {
        let holder = holder.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: each holder and what it holds came from malloc above and
        // are freed once.
        unsafe {
            libc::free(*holder);
            libc::free(holder.cast());
        }
    }
    // Every block freed above was found, wherever it was recorded.
    let clean = leakcheck::check(|| {});
    assert!(clean.is_clean(), "{clean}");
}

/// Producers allocate outside checks and hand their blocks to consumers,
/// which free them, while the main thread runs checks one after another.
const PRODUCERS: usize = 4;
const CONSUMERS: usize = 2;
const CHECKS: usize = 150;
const PASSED: usize = 200;
/// A check's own leak: a size no producer uses.
const CHECK_LEAK: usize = 24;
/// Addresses travel and wait disguised (xor this): glibc may carve a check's
/// block out of a producer's freed one, and a stale copy of the old address
/// left in a channel's buffer or a vector's spare room would then point into
/// it, making it reachable. The test is about the caches, not that.
const DISGUISE: usize = 0x5a5a_0000_0000_a5a5;

#[test]
fn blocks_freed_on_other_threads_while_checks_come_and_go() {
    if !is_child("stress") {
        let child = run_binary_within(
            240,
            &[
                "--exact",
                "blocks_freed_on_other_threads_while_checks_come_and_go",
                "--nocapture",
                "--test-threads=1",
            ],
            "stress",
            &[],
        );
        assert!(!child.timed_out(), "hung:\n{}", child.output());
        child.assert_passed("stress: ok");
        return;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_cached = std::sync::Arc::new(AtomicUsize::new(0));
    let freed = std::sync::Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let (send, receive) = mpsc::sync_channel::<usize>(64);
        senders.push(send);
        let freed = freed.clone();
        consumers.push(thread::spawn(move || {
            for disguised in receive {
                // SAFETY: each address is a producer's malloc block, sent
                // once and freed once, here.
                unsafe { libc::free((disguised ^ DISGUISE) as *mut c_void) };
                freed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let senders = senders.clone();
            let stop = stop.clone();
            let seen_cached = seen_cached.clone();
            thread::spawn(move || {
                let mut sent = 0usize;
                let mut kept: Vec<usize> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: a plain allocation, handed to a consumer or
                    // freed here.
                    let block = unsafe { libc::malloc(PASSED) } as usize;
                    assert_ne!(block, 0);
                    if sent % 64 == 0 && leakcheck::__private::is_cached(block) {
                        seen_cached.fetch_add(1, Ordering::Relaxed);
                    }
                    if sent % 3 == 0 {
                        // Freed on this thread, after a while.
                        kept.push(block ^ DISGUISE);
                        if kept.len() > 300 {
                            for old in kept.drain(..150) {
                                // SAFETY: allocated above, freed once.
                                unsafe { libc::free((old ^ DISGUISE) as *mut c_void) };
                            }
                        }
                    } else {
                        let to = &senders[(sent + p) % CONSUMERS];
                        to.send(block ^ DISGUISE).unwrap();
                    }
                    sent += 1;
                }
                for old in kept {
                    // SAFETY: allocated above, freed once.
                    unsafe { libc::free((old ^ DISGUISE) as *mut c_void) };
                }
                sent
            })
        })
        .collect();
    drop(senders);
    let mut definite = 0usize;
    for round in 0..CHECKS {
        let mut leaked = 0usize;
        let report = leakcheck::check(|| {
            // SAFETY: leaked on purpose, freed after the verdict.
            leaked = black_box(unsafe { libc::malloc(CHECK_LEAK) }) as usize;
        });
        // Exactly its one block, of whatever kind: a stale copy of its
        // address (glibc hands the same one out round after round) can make
        // it reachable, a limitation of conservative scanning that the
        // README states, not of the caches.
        let found = kinds(&report);
        assert!(
            matches!(found[..], [(_, 1, CHECK_LEAK)]),
            "round {round}: {report}"
        );
        if found[0].0 == DefinitelyLost {
            definite += 1;
        }
        assert!(report.errors().is_empty(), "round {round}: {report}");
        // SAFETY: the block the check leaked, freed once.
        unsafe { libc::free(leaked as *mut c_void) };
        // A gap with no check running: the caches open.
        thread::sleep(std::time::Duration::from_micros(200));
    }
    stop.store(true, Ordering::Relaxed);
    let sent: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
    for consumer in consumers {
        consumer.join().unwrap();
    }
    let seen = seen_cached.load(Ordering::Relaxed);
    assert!(seen > 0, "no producer ever saw a cached block");
    assert!(
        definite * 10 >= CHECKS * 9,
        "only {definite} of {CHECKS} checks found their leak definitely lost"
    );
    println!(
        "stress: ok ({CHECKS} checks, {definite} leaks definitely lost, {sent} blocks, {} freed \
         on other threads, caches seen holding blocks {seen} times)",
        freed.load(Ordering::Relaxed)
    );
}
