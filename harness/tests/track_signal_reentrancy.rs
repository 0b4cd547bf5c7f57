//! A signal handler that allocates, interrupting the hooks at any point —
//! including while they hold a table lock or unwind a stack — must neither
//! deadlock nor corrupt the verdict: the re-entrancy guard sends the
//! handler's calls straight to glibc.
//!
//! (`malloc` in a signal handler is not async-signal-safe in C; programs do
//! it anyway, and the tracker must not be what turns it into a hang.)

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// Allocates sizes (24 and 8 bytes: glibc's 32-byte bin) that the
/// interrupted code never uses (64 and 40 bytes), so the handler cannot
/// collide with glibc's own unfinished bookkeeping for a bin — that hazard is
/// C's, not the tracker's.
extern "C" fn allocating_handler(_signal: libc::c_int) {
    // SAFETY: a plain allocation and its free (see the module docs).
    let p = unsafe { libc::malloc(24) };
    // SAFETY: `p` came from malloc above.
    unsafe { libc::free(p) };
    drop(std::hint::black_box(Box::new(7u64)));
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn install_handler() {
    common::install_signal_handler(libc::SIGUSR1, allocating_handler);
}

/// Runs `churn` on this thread while another thread signals it every few
/// microseconds.
fn under_signals(churn: impl FnOnce()) {
    // The handler's sizes come from glibc's per-thread cache once it has
    // freed one; on a thread that never freed one, the first signal's
    // malloc takes the arena lock, which the interrupted code may hold
    // (`calloc` always does): glibc's own hazard, with or without
    // leakcheck (about 1 run in 60 at the session this was measured). Warm
    // the cache first, as a program whose handler allocates would have.
    // SAFETY: a plain allocation and its free, of the handler's size.
    unsafe { libc::free(std::hint::black_box(libc::malloc(24))) };
    // SAFETY: pthread_self has no preconditions.
    let target = unsafe { libc::pthread_self() };
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // `target` is alive until `stop` is set (the scope joins this
        // thread before `churn`'s thread goes on).
        s.spawn(|| common::signal_until(target, libc::SIGUSR1, Duration::from_micros(20), &stop));
        churn();
        stop.store(true, Ordering::Relaxed);
    });
}

/// Allocates until `signals` more signals have been handled (at least
/// `time`, at most ten seconds: a loaded machine delivers them slowly).
fn churn_for(time: Duration, signals: usize) {
    let started = Instant::now();
    let target = HANDLED.load(Ordering::Relaxed) + signals;
    while started.elapsed() < time
        || (HANDLED.load(Ordering::Relaxed) < target && started.elapsed() < Duration::from_secs(10))
    {
        for _ in 0..100 {
            // SAFETY: a plain allocation and its free.
            let p = unsafe { libc::malloc(64) };
            // SAFETY: `p` came from malloc above.
            unsafe { libc::free(std::hint::black_box(p)) };
            // Not `vec![0; 40]`: that is `calloc`, which always holds
            // glibc's arena lock, and a handler's malloc landing there
            // deadlocks in glibc itself, leakcheck or not.
            let mut v = Vec::<u8>::with_capacity(40);
            v.push(1);
            drop(std::hint::black_box(v));
        }
    }
}

#[test]
fn allocating_signal_handlers_neither_deadlock_nor_disturb_the_verdict() {
    install_handler();
    let (done, finished) = mpsc::channel();
    // The work runs on its own thread so that a deadlock fails the test
    // instead of hanging it.
    std::thread::spawn(move || {
        let report = leakcheck::check(|| {
            // In scope every allocation unwinds a stack, so signals land in
            // the unwinder, the stack store and the table alike.
            under_signals(|| churn_for(Duration::from_millis(300), 600));
            // SAFETY: one block leaked on purpose.
            std::hint::black_box(unsafe { libc::malloc(33) });
        });
        under_signals(|| churn_for(Duration::from_millis(200), 400));
        done.send(report).unwrap();
    });
    let report = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("allocation under a signal storm deadlocked");
    assert_eq!(report.leaked_blocks(), 1, "{report}");
    assert_eq!(report.leaked_bytes(), 33, "{report}");
    assert!(
        HANDLED.load(Ordering::Relaxed) >= 1000,
        "only {} signals handled",
        HANDLED.load(Ordering::Relaxed)
    );
}

static COUNTED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn counting_handler(_signal: libc::c_int) {
    COUNTED.fetch_add(1, Ordering::Relaxed);
}

/// leakcheck wraps handlers installed through `sigaction` (to know when a
/// signal handler runs); callers still see, and get back, their own.
#[test]
fn sigaction_reports_the_callers_own_handler() {
    // SAFETY: installs and queries a handler for SIGUSR2, a plain extern "C"
    // fn, then restores the default.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = counting_handler as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, std::ptr::null(), &mut old),
            0
        );
        assert_eq!(old.sa_sigaction, counting_handler as *const () as usize);
        assert_eq!(old.sa_flags & libc::SA_SIGINFO, 0);
        assert_eq!(libc::raise(libc::SIGUSR2), 0);
        assert_eq!(COUNTED.load(Ordering::Relaxed), 1);
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        assert_eq!(libc::sigaction(libc::SIGUSR2, &default, &mut old), 0);
        assert_eq!(old.sa_sigaction, counting_handler as *const () as usize);
    }
}
