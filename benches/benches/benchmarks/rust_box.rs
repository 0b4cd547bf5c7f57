//! `Box::new([0u8; 64])` allocated and dropped: Rust's global allocator,
//! which leakcheck replaces with its tracking one (over glibc, not over the
//! C hooks).
//!
//! rustc turns `Box::new([0u8; 64])` into `alloc_zeroed`, which `std`'s
//! `System` (and leakcheck's allocator) serve with `calloc(64, 1)`. So:
//!
//! - `glibc_calloc`: `__libc_calloc(64, 1)` + `__libc_free`, what this `Box`
//!   costs without leakcheck: the baseline.
//! - `glibc_malloc`: `__libc_malloc(64)`, zeroing the 64 bytes, and
//!   `__libc_free`, for comparison with the `malloc_free` group.
//! - `hooks`: the `Box` outside any check (block table only).
//! - `scope`: the `Box` inside `leakcheck::check`, with stack capture.

use criterion::{criterion_group, Criterion};
use leakcheck_benches::{assert_tracked, glibc, timed_in_check};
use std::hint::black_box;

const SIZE: usize = 64;

fn glibc_calloc() {
    // SAFETY: a plain allocation, freed below.
    let ptr = black_box(unsafe { glibc::calloc(SIZE, 1) });
    // SAFETY: `ptr` came from glibc's calloc above and is freed once.
    unsafe { glibc::free(ptr) };
}

fn glibc_malloc() {
    // SAFETY: a plain allocation, freed below.
    let ptr = unsafe { glibc::malloc(SIZE) }.cast::<u8>();
    assert!(!ptr.is_null());
    // SAFETY: `ptr` is a fresh block of SIZE bytes.
    unsafe { ptr.write_bytes(0, SIZE) };
    let ptr = black_box(ptr);
    // SAFETY: `ptr` came from glibc's malloc above and is freed once.
    unsafe { glibc::free(ptr.cast()) };
}

fn rust_box() {
    drop(black_box(Box::new([0u8; SIZE])));
}

fn boxes(c: &mut Criterion) {
    assert_tracked("Box::new", 1, rust_box);
    assert_tracked("__libc_calloc", 0, glibc_calloc);

    let mut group = c.benchmark_group("rust_box");
    group.bench_function("glibc_calloc", |b| b.iter(glibc_calloc));
    group.bench_function("glibc_malloc", |b| b.iter(glibc_malloc));
    group.bench_function("hooks", |b| b.iter(rust_box));
    group.bench_function("scope", |b| {
        b.iter_custom(|iters| timed_in_check(iters, 0, rust_box))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = boxes
}
