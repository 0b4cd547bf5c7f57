//! A block grown by `realloc` from 16 bytes to 4 KiB, doubling (nine
//! allocations: the `malloc` and eight `realloc`s), then freed: a string or
//! buffer built up in C.
//!
//! - `glibc`: `__libc_malloc` / `__libc_realloc` / `__libc_free`: the
//!   baseline.
//! - `hooks`: the interposed `malloc` / `realloc` / `free`, outside any
//!   check.
//! - `scope`: the same inside `leakcheck::check`: each `realloc` that glibc
//!   cannot do in place is a move whose old block the quarantine holds, each
//!   block gets its stack.

use criterion::{criterion_group, Criterion};
use leakcheck_benches::{assert_tracked, glibc, timed_in_check_each};
use libc::c_void;
use std::hint::black_box;

/// The `malloc` and the eight `realloc`s.
const ALLOCATIONS: u64 = 9;

fn grow(
    malloc: unsafe fn(usize) -> *mut c_void,
    realloc: unsafe fn(*mut c_void, usize) -> *mut c_void,
    free: unsafe fn(*mut c_void),
) {
    // SAFETY: a plain allocation, grown and freed below.
    let mut ptr = unsafe { malloc(16) };
    let mut size = 16;
    while size < 4096 {
        size *= 2;
        // SAFETY: `ptr` is the live block from the same family.
        ptr = black_box(unsafe { realloc(ptr, size) });
        assert!(!ptr.is_null());
    }
    // SAFETY: the block's last address, freed once.
    unsafe { free(ptr) };
}

fn glibc_grow() {
    grow(glibc::malloc, glibc::realloc, glibc::free);
}

unsafe fn hooked_malloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { libc::malloc(size) }
}
unsafe fn hooked_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { libc::realloc(ptr, size) }
}
unsafe fn hooked_free(ptr: *mut c_void) {
    // SAFETY: forwarded unchanged.
    unsafe { libc::free(ptr) }
}

fn hooked_grow() {
    grow(hooked_malloc, hooked_realloc, hooked_free);
}

fn realloc_grow(c: &mut Criterion) {
    assert_tracked("libc::realloc", ALLOCATIONS as usize, hooked_grow);
    assert_tracked("__libc_realloc", 0, glibc_grow);

    let mut group = c.benchmark_group("realloc_grow");
    group.bench_function("glibc", |b| b.iter(glibc_grow));
    group.bench_function("hooks", |b| b.iter(hooked_grow));
    group.bench_function("scope", |b| {
        b.iter_custom(|iters| timed_in_check_each(iters, 0, ALLOCATIONS, hooked_grow))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = realloc_grow
}
