//! Profiling mode at rate 1 (every block sampled) where a stack must not be
//! taken: a signal handler's allocations are counted with no stack (the
//! handler is never unwound; one that interrupts the hooks goes to glibc
//! unrecorded, as always) and nothing deadlocks; forked children, whose
//! every block takes its stack while other threads allocate, all finish.

mod common;

use leakcheck::HeapProfile;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// Allocates a size (24 bytes) the interrupted loop never uses, as in
/// `track_signal_reentrancy.rs`.
extern "C" fn allocating_handler(_signal: libc::c_int) {
    // SAFETY: a plain allocation and its free, from a signal handler.
    unsafe { libc::free(black_box(libc::malloc(24))) };
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

#[inline(never)]
fn churn_under_signals() {
    // Warm glibc's per-thread cache for the handler's size (see
    // `track_signal_reentrancy.rs`).
    // SAFETY: a plain allocation and its free.
    unsafe { libc::free(black_box(libc::malloc(24))) };
    // SAFETY: pthread_self has no preconditions.
    let target = unsafe { libc::pthread_self() };
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // `target` outlives this scope's threads.
        s.spawn(|| common::signal_until(target, libc::SIGUSR1, Duration::from_micros(50), &stop));
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline || HANDLED.load(Ordering::Relaxed) < 100 {
            // SAFETY: a plain allocation and its free.
            unsafe { libc::free(black_box(libc::malloc(64))) };
        }
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
fn a_signal_handlers_blocks_are_counted_without_a_stack() {
    leakcheck::set_profile_rate(1).unwrap();
    common::install_signal_handler(libc::SIGUSR1, allocating_handler);
    let before = HeapProfile::take();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        leakcheck::set_profile_rate(1).unwrap();
        churn_under_signals();
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("sampling under signals deadlocked");
    let delta = HeapProfile::take().delta(&before);
    let handled = HANDLED.load(Ordering::Relaxed) as i64;
    assert!(handled >= 100);
    let unstacked: i64 = delta
        .sites()
        .iter()
        .filter(|s| s.stack.is_empty() && s.allocator == "malloc")
        .map(|s| s.alloc_objects)
        .sum();
    // A handler that interrupts the hooks themselves allocates straight
    // from glibc, unrecorded (the re-entrancy guard); the others are
    // recorded, sampled, and stackless.
    assert!(
        unstacked > 0 && unstacked <= handled,
        "{unstacked} of {handled}:\n{delta}"
    );
    let unwound = delta.sites().iter().any(|s| {
        s.stack.iter().any(|f| {
            f.function
                .as_deref()
                .is_some_and(|n| n.contains("allocating_handler"))
        })
    });
    assert!(!unwound, "a handler's stack was taken:\n{delta}");
    // The loop it interrupted was sampled, with its stack.
    let looped = delta.sites().iter().any(|s| {
        s.stack.first().and_then(|f| f.function.as_deref())
            == Some("profile_signals_fork::churn_under_signals::{{closure}}")
            || s.stack.first().and_then(|f| f.function.as_deref())
                == Some("profile_signals_fork::churn_under_signals")
    });
    assert!(looped, "{delta}");
}

#[test]
fn forked_children_sample_every_block_and_finish() {
    leakcheck::set_profile_rate(1).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                leakcheck::set_profile_rate(1).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    drop(black_box(vec![0u8; 100]));
                }
            });
        }
        for _ in 0..50 {
            // SAFETY: the child only allocates, frees and calls _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let blocks: [*mut libc::c_void; 64] =
                    // SAFETY: in the child; tracked, sampled allocations.
                    std::array::from_fn(|_| unsafe { libc::malloc(black_box(64)) });
                for p in blocks {
                    // SAFETY: each came from malloc above.
                    unsafe { libc::free(p) };
                }
                // SAFETY: _exit never returns and runs no atexit handlers.
                unsafe { libc::_exit(0) };
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut status = 0;
            // SAFETY: polling for our own child.
            while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } != pid {
                if Instant::now() > deadline {
                    // SAFETY: killing and reaping our own hung child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    // SAFETY: as above.
                    unsafe { libc::waitpid(pid, &mut status, 0) };
                    stop.store(true, Ordering::Relaxed);
                    panic!("a forked child hung while sampling");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "{status}"
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
}
