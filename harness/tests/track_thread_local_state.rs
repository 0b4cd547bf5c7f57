//! What a test leaves in its own thread-locals is freed when its threads
//! exit, so it is not a leak: a Rust `thread_local!` value with `Drop` (in
//! the test's thread and in a thread it spawns) and C state kept in a
//! `pthread_key_create` key with a destructor. A real leak next to them is
//! still reported, alone.

mod common;

use common::{assert_clean, assert_fixture_frame, assert_one_site};
use leakcheck::Origin;
use leakcheck_test_support::{leak, pthread_key_state, thread_key_state, LEAK_FN};
use std::cell::RefCell;
use std::hint::black_box;
use std::thread;

/// Thread-local state that owns heap memory and frees it in `Drop`.
struct State {
    buffer: Vec<u8>,
    names: Vec<String>,
}

impl Drop for State {
    fn drop(&mut self) {
        black_box((&self.buffer, &self.names));
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
    /// Lazily initialised on first use, with a destructor std registers then.
    static LAZY: Vec<u64> = black_box(vec![1; 32]);
}

/// Fills this thread's Rust and C thread-locals.
fn fill_thread_locals(bytes: usize) {
    STATE.with(|state| {
        *state.borrow_mut() = Some(State {
            buffer: black_box(vec![0xab; bytes]),
            names: (0..4).map(|i| format!("name {i}")).collect(),
        });
    });
    LAZY.with(|lazy| assert_eq!(lazy.len(), 32));
    pthread_key_state(black_box(bytes));
}

#[test]
fn thread_local_state_freed_at_thread_exit_is_clean() {
    let report = leakcheck::check(|| {
        fill_thread_locals(100);
        thread::spawn(|| fill_thread_locals(200)).join().unwrap();
        thread::scope(|s| {
            s.spawn(|| fill_thread_locals(300));
        });
        // A C thread whose key destructor frees its state.
        thread_key_state(black_box(48));
    });

    // Per Rust thread: the buffer, four names and their Vec, the lazy Vec,
    // the C block; and the C thread's block. All were seen, and freed by the
    // destructors.
    const SEEN: usize = 3 * 8 + 1;
    assert_clean(&report, SEEN);
    assert!(report.stats().frees >= SEEN, "{:?}", report.stats());
}

#[test]
fn a_leak_beside_thread_local_state_is_reported_alone() {
    let report = leakcheck::check(|| {
        fill_thread_locals(100);
        thread::spawn(|| fill_thread_locals(200)).join().unwrap();
        leak(black_box(1), black_box(88));
        black_box(());
    });

    let leak = assert_one_site(&report, (1, 88), Origin::C, "malloc");
    assert_fixture_frame(&leak.stack[0], LEAK_FN, "leak");
}
