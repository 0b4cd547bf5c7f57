//! Stacks: captured on the allocation path as raw return addresses, interned,
//! and symbolised only when a report shows them.
//!
//! [`capture()`] is what the allocation path calls; it walks with the cached
//! DWARF unwinder in [`unwind`] (whose hot loop is `walk_core`, built
//! optimised even in unoptimised builds) where it can and with libgcc's
//! otherwise.
//! [`symbols`] turns addresses into functions, files and lines for reports.
//! Imports go down only: to `sys`.

mod capture;
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
mod stack_hash;
pub(crate) mod symbols;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
pub(crate) mod unwind;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
// With the prebuilt object, this copy gives only the shared types.
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
mod walk_core;

#[cfg(feature = "profile")]
pub(crate) use capture::capture_sampled;
pub(crate) use capture::{
    capture, frames, lock_for_fork, set_depth, unlock_after_fork, DEFAULT_DEPTH, MAX_DEPTH,
};

/// The address of a local in the caller's frame. Stack capture skips every
/// frame whose stack pointer is at or below it — the hook holding it and
/// everything the tracker calls — so reports start at the code that called
/// the allocator. Must be inlined into the hook itself.
#[inline(always)]
pub(crate) fn frame_marker() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}
