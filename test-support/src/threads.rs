//! Threads that C creates with `pthread_create`, and thread-local C state
//! that a pthread key destructor frees at thread exit.

use std::ffi::c_int;
use std::io;

extern "C" {
    fn fixture_thread_leak(n: usize, size: usize) -> c_int;
    fn fixture_thread_clean(n: usize, size: usize) -> c_int;
    fn fixture_pthread_key_state(size: usize) -> c_int;
    fn fixture_thread_key_state(size: usize) -> c_int;
}

/// Creates a pthread in C that mallocs `n` zeroed blocks of `size` bytes and
/// leaks them, then joins it: `n` definitely lost blocks allocated at
/// [`THREAD_LEAK_MAIN_FN`](crate::THREAD_LEAK_MAIN_FN) on a thread the caller
/// never saw.
pub fn thread_leak(n: usize, size: usize) {
    // SAFETY: the thread's arguments live on this frame until the join.
    ok(
        unsafe { fixture_thread_leak(n, size) },
        "fixture_thread_leak",
    );
}

/// Creates a pthread in C that mallocs and frees a `size`-byte block `n`
/// times, then joins it; leaves nothing.
pub fn thread_clean(n: usize, size: usize) {
    // SAFETY: the thread's arguments live on this frame until the join.
    ok(
        unsafe { fixture_thread_clean(n, size) },
        "fixture_thread_clean",
    );
}

/// Mallocs `size` bytes in C and stores them in a `pthread_key_create` key of
/// the calling thread, replacing (and freeing) its previous block. The key's
/// destructor frees the block when the thread exits: thread-local state, not a
/// leak — but still reachable until then.
pub fn pthread_key_state(size: usize) {
    // SAFETY: `fixture_pthread_key_state` creates its key once, under
    // pthread_once, and touches only the calling thread's value.
    ok(
        unsafe { fixture_pthread_key_state(size) },
        "fixture_pthread_key_state",
    );
}

/// Creates a pthread in C that calls [`pthread_key_state`] and exits, so the
/// key destructor has freed the block by the time this returns.
pub fn thread_key_state(size: usize) {
    // SAFETY: the thread's argument lives on this frame until the join.
    ok(
        unsafe { fixture_thread_key_state(size) },
        "fixture_thread_key_state",
    );
}

fn ok(rc: c_int, fixture: &str) {
    assert!(
        rc == 0,
        "{fixture} failed: {}",
        io::Error::from_raw_os_error(rc)
    );
}
