//! Allocations through Rust's global allocator, for reports whose origin is
//! Rust. `black_box` keeps a release build from eliding the allocations.

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
