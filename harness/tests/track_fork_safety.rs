//! `fork` while other threads allocate must never leave the child with the
//! tracker's locks held: each child allocates, frees and exits, and every
//! one must finish. Without the `pthread_atfork` handlers this deadlocked in
//! up to a third of forks under load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn churn_until(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: plain C allocation, freed at once.
        let p = unsafe { libc::malloc(48) };
        std::hint::black_box(p);
        // SAFETY: `p` came from malloc above.
        unsafe { libc::free(p) };
        drop(std::hint::black_box(vec![0u8; 100]));
    }
}

/// Forks `count` children that each allocate; returns how many hung.
fn fork_children(count: usize) -> usize {
    let mut hung = 0;
    for _ in 0..count {
        // SAFETY: the child only calls async-signal-safe functions plus
        // malloc/free (which is exactly what is under test) and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // Enough blocks to touch every shard of the block table.
            let mut blocks = [std::ptr::null_mut(); 256];
            for slot in &mut blocks {
                // SAFETY: in the child; a tracked allocation, freed below.
                *slot = unsafe { libc::malloc(64) };
            }
            let failed = blocks.iter().any(|p| p.is_null());
            for p in blocks {
                // SAFETY: each came from malloc above.
                unsafe { libc::free(p) };
            }
            // SAFETY: _exit never returns and runs no atexit handlers.
            unsafe { libc::_exit(if failed { 2 } else { 0 }) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if done == pid {
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "child failed: {status}"
                );
                break;
            }
            if Instant::now() > deadline {
                hung += 1;
                // SAFETY: killing and reaping our own hung child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    hung
}

#[test]
fn forking_while_other_threads_allocate_never_deadlocks_the_child() {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || churn_until(&stop))
        })
        .collect();
    // Half of the children fork from inside a check, whose threads record
    // stacks, half from outside.
    let report = leakcheck::check(|| {
        assert_eq!(fork_children(100), 0, "children hung in fork");
        // The parent goes on allocating in the check after all those forks.
        // SAFETY: a plain C allocation and its free.
        unsafe { libc::free(std::hint::black_box(libc::malloc(16))) };
    });
    let hung_outside = fork_children(100);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(hung_outside, 0, "children hung in fork");
    assert!(report.is_clean(), "{report}");
    // The in-check part really was checked, and its locks still work.
    assert!(report.stats().allocations >= 1, "{:?}", report.stats());
}
