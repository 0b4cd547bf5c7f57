//! Shared pieces of leakcheck's benchmarks (the benchmarks themselves are in
//! `benches/`, in criterion's layout).
//!
//! Every benchmark compares against glibc's allocator reached *without* the
//! hooks — `__libc_malloc` and `__libc_free`, exactly what the hooks forward
//! to — measured in the same criterion group, so that the ratio stays
//! meaningful on a noisy shared machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// glibc's allocator, bypassing leakcheck's interposed `malloc` and `free`.
pub mod glibc {
    use libc::c_void;

    extern "C" {
        fn __libc_malloc(size: usize) -> *mut c_void;
        fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
        fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
        fn __libc_free(ptr: *mut c_void);
    }

    /// glibc's `realloc`, not seen by leakcheck.
    ///
    /// # Safety
    ///
    /// As `realloc(3)`; `ptr` must be null or come from [`malloc`] or
    /// [`calloc`] and not have been freed.
    #[inline]
    pub unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: the caller upholds realloc's contract.
        unsafe { __libc_realloc(ptr, size) }
    }

    /// glibc's `malloc`, not recorded by leakcheck.
    ///
    /// # Safety
    ///
    /// As `malloc(3)`.
    #[inline]
    pub unsafe fn malloc(size: usize) -> *mut c_void {
        // SAFETY: forwarded unchanged; the caller upholds malloc's contract.
        unsafe { __libc_malloc(size) }
    }

    /// glibc's `calloc`, not recorded by leakcheck.
    ///
    /// # Safety
    ///
    /// As `calloc(3)`.
    #[inline]
    pub unsafe fn calloc(n: usize, size: usize) -> *mut c_void {
        // SAFETY: forwarded unchanged; the caller upholds calloc's contract.
        unsafe { __libc_calloc(n, size) }
    }

    /// glibc's `free`, not seen by leakcheck.
    ///
    /// # Safety
    ///
    /// As `free(3)`; `ptr` must be null or come from [`malloc`], [`calloc`]
    /// or [`realloc`] and not have been freed.
    #[inline]
    pub unsafe fn free(ptr: *mut c_void) {
        // SAFETY: the caller upholds free's contract.
        unsafe { __libc_free(ptr) }
    }
}

/// Runs `routine` `iters` times inside [`leakcheck::check`] and returns the
/// time the loop took: not the check's thread start, nor its verdict.
///
/// This is the body of a criterion `iter_custom` for "inside a scope": every
/// allocation the routine makes is charged to the scope, with its stack. With
/// `depth` 0 the stack is as short as a check allows (the routine, the loop,
/// the closure and leakcheck's base frame); each unit of `depth` adds one
/// frame between the closure and the loop for stack capture to unwind, as a
/// real test's call chain would.
///
/// `routine` must allocate exactly one block and free it: the check's report
/// is asserted to have seen `iters` allocations and no leak, proof that the
/// hooks were on the measured path.
pub fn timed_in_check(iters: u64, depth: usize, routine: impl FnMut() + Send) -> Duration {
    timed_in_check_each(iters, depth, 1, routine)
}

/// [`timed_in_check`] for a `routine` that makes `allocations` allocations
/// (a `realloc` that returns a block counts as one) and frees what it made.
pub fn timed_in_check_each(
    iters: u64,
    depth: usize,
    allocations: u64,
    mut routine: impl FnMut() + Send,
) -> Duration {
    let mut elapsed = Duration::ZERO;
    let report = leakcheck::check(|| {
        if depth == 0 {
            elapsed = time_loop(iters, &mut routine);
        } else {
            at_depth(depth, &mut || elapsed = time_loop(iters, &mut routine));
        }
    });
    assert_eq!(
        report.stats().allocations as u64,
        iters * allocations,
        "allocations seen by leakcheck"
    );
    assert!(report.is_clean(), "{report}");
    elapsed
}

#[inline(never)]
fn time_loop(iters: u64, routine: &mut dyn FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        routine();
    }
    started.elapsed()
}

/// Calls `f` from `depth` (at least one) nested frames of its own.
#[inline(never)]
fn at_depth(depth: usize, f: &mut dyn FnMut()) {
    if depth <= 1 {
        f();
    } else {
        at_depth(depth - 1, f);
    }
    // Work after the call, so the recursion cannot become a loop.
    black_box(depth);
}

/// Panics unless `routine` run inside a check is seen by leakcheck as making
/// `expected` allocations: proof that the benchmark measures the hooks and
/// not a path around them (an unlinked crate, a replaced `malloc`).
pub fn assert_tracked(what: &str, expected: usize, routine: impl FnOnce() + Send) {
    let report = leakcheck::check(routine);
    assert!(report.errors().is_empty(), "{what}: {:?}", report.errors());
    assert_eq!(
        report.stats().allocations,
        expected,
        "{what}: allocations seen by leakcheck"
    );
    assert!(report.is_clean(), "{what}: {report}");
}
