//! A `malloc(64)` + `free` pair from Rust, as C code in the test would make it.
//!
//! - `glibc`: `__libc_malloc` / `__libc_free`, what the hooks forward to: the
//!   baseline.
//! - `glibc_2_locks`: the baseline plus an uncontended spin-lock
//!   acquire/release (`lock cmpxchg` + store) around each call: the floor for
//!   any tracker that takes one shared lock (or makes one atomic
//!   read-modify-write) per call, as the hooks' sharded block table does.
//! - `hooks`: `libc::malloc` / `libc::free`, which resolve to leakcheck's
//!   interposed symbols, outside any check (block table only).
//! - `scope`: the same inside `leakcheck::check`, so each allocation also
//!   captures and interns its stack (a short one: the loop is right under
//!   the checked closure).
//! - `scope_depth_16`: as `scope`, 16 frames deeper.

use criterion::{criterion_group, Criterion};
use leakcheck_benches::{assert_tracked, glibc, timed_in_check};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};

const SIZE: usize = 64;

fn glibc_pair() {
    // SAFETY: a plain allocation, freed below.
    let ptr = black_box(unsafe { glibc::malloc(SIZE) });
    // SAFETY: `ptr` came from glibc's malloc above and is freed once.
    unsafe { glibc::free(ptr) };
}

/// What one uncontended lock of a block-table shard costs.
fn locked<R>(lock: &AtomicBool, f: impl FnOnce() -> R) -> R {
    while lock
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
    let result = f();
    lock.store(false, Ordering::Release);
    result
}

fn glibc_pair_2_locks() {
    static LOCK: AtomicBool = AtomicBool::new(false);
    let lock = black_box(&LOCK);
    // SAFETY: a plain allocation, freed below.
    let ptr = black_box(locked(lock, || unsafe { glibc::malloc(SIZE) }));
    // SAFETY: `ptr` came from glibc's malloc above and is freed once.
    locked(lock, || unsafe { glibc::free(ptr) });
}

fn hooked_pair() {
    // SAFETY: a plain allocation, freed below.
    let ptr = black_box(unsafe { libc::malloc(SIZE) });
    // SAFETY: `ptr` came from malloc above and is freed once.
    unsafe { libc::free(ptr) };
}

fn malloc_free(c: &mut Criterion) {
    assert_tracked("libc::malloc", 1, hooked_pair);
    assert_tracked("__libc_malloc", 0, glibc_pair);

    let mut group = c.benchmark_group("malloc_free");
    group.bench_function("glibc", |b| b.iter(glibc_pair));
    group.bench_function("glibc_2_locks", |b| b.iter(glibc_pair_2_locks));
    group.bench_function("hooks", |b| b.iter(hooked_pair));
    group.bench_function("scope", |b| {
        b.iter_custom(|iters| timed_in_check(iters, 0, hooked_pair))
    });
    group.bench_function("scope_depth_16", |b| {
        b.iter_custom(|iters| timed_in_check(iters, 16, hooked_pair))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = malloc_free
}
