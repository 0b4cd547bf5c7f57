//! Checks whose verdicts are built while signals keep landing on every
//! thread (`SIGALRM` sent to each thread every 50 µs, as a profiler's
//! per-thread timer would) and the handler allocates (a 4 KiB `malloc`,
//! which always takes glibc's arena lock, and a `Box`). A handler that
//! interrupts leakcheck's own glibc calls on the checking thread — starting
//! the body's thread, classification, symbolisation — waits forever for the
//! arena lock that thread holds; leakcheck blocks asynchronous signals on
//! its own threads while they work (the checking thread for the whole
//! check, the body thread once the body has returned) and gives the body
//! the caller's mask. The test binary runs as a child eight times, each
//! with a time limit, and must give the exact verdicts each time (without
//! the blocking, the first run hangs).
//!
//! The signals start once every body has made its leaks and stop once every
//! verdict is in, so that no allocation of the program's own (the bodies',
//! libtest's) is what a handler interrupts: that hazard is C's, with or
//! without leakcheck.

mod common;

use common::{is_child, run_binary_within};
use leakcheck_test_support::leak;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, Once};
use std::time::{Duration, Instant};

const ROLE: &str = "signal_storm";
const CHECKS: usize = 6;
static HANDLED: AtomicUsize = AtomicUsize::new(0);
static STORM: Once = Once::new();
static FIRING: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);
static ALL_LEAKED: Barrier = Barrier::new(CHECKS);
static ALL_VERDICTS_IN: Barrier = Barrier::new(CHECKS);
static STORM_OVER: Barrier = Barrier::new(CHECKS);
static STORM_THREAD: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);

extern "C" fn allocating_handler(_signal: libc::c_int) {
    // SAFETY: a plain allocation and its free; not async-signal-safe in C,
    // which is the point: the program works without leakcheck.
    unsafe { libc::free(libc::malloc(4096)) };
    drop(black_box(Box::new(7u64)));
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// Installs the handler and starts, outside any check, the thread that
/// sends `SIGALRM` to every other thread of the process but the main one
/// every 50 µs while [`FIRING`] is set (as a profiler's or a runtime's
/// per-thread timer would: a process-directed timer signal mostly lands on
/// the idle main thread).
fn start_storm_thread() {
    STORM.call_once(|| {
        common::install_signal_handler(libc::SIGALRM, allocating_handler);
        let storm = std::thread::spawn(|| {
            // SAFETY: getpid and gettid have no preconditions.
            let (pid, me) = unsafe { (libc::getpid(), libc::gettid()) };
            while !STOP.load(Ordering::Acquire) {
                if !FIRING.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
                    let tid: libc::pid_t = task.file_name().to_str().unwrap().parse().unwrap();
                    if tid != me && tid != pid {
                        // SAFETY: sends SIGALRM, which has a handler, to a
                        // thread of this process.
                        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGALRM) };
                    }
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        *STORM_THREAD.lock().unwrap() = Some(storm);
    });
}

/// Runs `leaks` in a check, then, once every check's body has leaked, lets
/// the handler run 200 times before the body returns; the verdicts are
/// built while the signals keep coming, and the storm ends once every
/// verdict is in.
fn storm(leaks: impl FnOnce() + Send) -> leakcheck::Report {
    start_storm_thread();
    let report = leakcheck::check(|| {
        leaks();
        if ALL_LEAKED.wait().is_leader() {
            FIRING.store(true, Ordering::Release);
        }
        let start = Instant::now();
        let before = HANDLED.load(Ordering::Relaxed);
        while HANDLED.load(Ordering::Relaxed) < before + 200
            && start.elapsed() < Duration::from_secs(5)
        {
            std::hint::spin_loop();
        }
    });
    if ALL_VERDICTS_IN.wait().is_leader() {
        STOP.store(true, Ordering::Release);
        let storm = STORM_THREAD.lock().unwrap().take();
        storm.unwrap().join().unwrap();
    }
    STORM_OVER.wait();
    report
}

macro_rules! storm_tests {
    ($($name:ident: $leaks:expr => ($blocks:expr, $bytes:expr);)*) => {$(
        #[test]
        fn $name() {
            if !is_child(ROLE) {
                return;
            }
            let report = storm(|| $leaks);
            assert_eq!(
                (report.leaked_blocks(), report.leaked_bytes()),
                ($blocks, $bytes),
                "{report:?}"
            );
        }
    )*};
}

storm_tests! {
    storm_c_1: leak(black_box(3), black_box(40)) => (3, 120);
    storm_c_2: leak(black_box(1), black_box(4000)) => (1, 4000);
    storm_c_3: leak(black_box(50), black_box(16)) => (50, 800);
    storm_rust_1: { black_box(Box::leak(Box::new([1u8; 48]))); } => (1, 48);
    storm_rust_2: { black_box(Vec::leak(vec![2u64; 100])); } => (1, 800);
    storm_rust_3: { black_box(Box::leak(Box::new(3u32))); } => (1, 4);
}

#[test]
fn verdicts_finish_exactly_while_a_handler_allocates() {
    for run in 0..8 {
        let threads = format!("--test-threads={CHECKS}");
        let child = run_binary_within(120, &["storm_", &threads], ROLE, &[]);
        let output = child.output();
        assert!(!child.timed_out(), "run {run} hung:\n{output}");
        assert!(
            child.stdout.contains("test result: ok. 6 passed; 0 failed"),
            "run {run}:\n{output}"
        );
    }
}
