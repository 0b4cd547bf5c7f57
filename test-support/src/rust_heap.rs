//! Allocations through Rust's global allocator, for reports whose origin is
//! Rust. `black_box` keeps a release build from eliding the allocations (and
//! the stale stack copies).

use std::hint::black_box;
use std::mem;

/// Allocates `n` zeroed `Vec<u8>` buffers of `size` (> 0) bytes and forgets
/// them: `n` definitely lost Rust blocks, allocated at
/// [`RUST_LEAK_FN`](crate::RUST_LEAK_FN).
pub fn rust_leak(n: usize, size: usize) {
    assert!(size > 0, "a zero-sized Vec allocates nothing");
    for _ in 0..n {
        let block = black_box(vec![0u8; size]); // @rust_leak
        mem::forget(block);
    }
}

/// Allocates and drops a `size`-byte `Vec<u8>` `n` times; leaves nothing.
pub fn rust_churn(n: usize, size: usize) {
    for _ in 0..n {
        drop(black_box(vec![0u8; size]));
    }
}

/// Allocates a zeroed `size`-byte (> 0) boxed slice, writes its address into
/// a local array that `black_box` forces onto this frame, and forgets the box:
/// the only copies of the pointer are left in dead stack once this returns.
/// One definitely lost Rust block allocated at
/// [`RUST_STALE_STACK_FN`](crate::RUST_STALE_STACK_FN), for a checker that
/// scans only live stack.
#[inline(never)]
pub fn rust_stale_stack(size: usize) {
    assert!(size > 0, "a zero-sized box allocates nothing");
    let block = black_box(vec![0u8; size].into_boxed_slice()); // @rust_stale_stack
    let mut copies = [block.as_ptr(); 4];
    black_box(&mut copies);
    mem::forget(block);
}
