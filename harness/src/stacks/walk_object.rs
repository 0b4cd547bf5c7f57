//! The crate root `build.rs` compiles `walk_core.rs` through, as a
//! freestanding object at `opt-level = 3`, when leakcheck itself is built
//! at `opt-level = 0` (see `walk_core.rs`). Not a module of leakcheck.

#![no_std]

#[path = "walk_core.rs"]
mod walk_core;

#[path = "stack_hash.rs"]
mod stack_hash;

/// [`walk_core::walk`] under a name and ABI the unoptimised build links to.
///
/// # Safety
///
/// As [`walk_core::walk`], with `request` valid for reads and writes.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_walk_core_v1(request: *mut walk_core::Request) {
    // SAFETY: the caller passes a valid, unaliased request and upholds
    // `walk`'s contract.
    unsafe { walk_core::walk(&mut *request) }
}

/// [`stack_hash::stack_hash`] of the `len` words at `ips`.
///
/// # Safety
///
/// `ips` points to `len` readable words.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_stack_hash_v1(ips: *const usize, len: usize) -> u64 {
    // SAFETY: the caller passes a live slice's pointer and length.
    stack_hash::stack_hash(unsafe { core::slice::from_raw_parts(ips, len) })
}
