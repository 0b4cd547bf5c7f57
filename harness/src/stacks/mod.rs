//! Stacks: captured on the allocation path as raw return addresses, interned,
//! and symbolised only when a report shows them.
//!
//! [`capture()`] is what the allocation path calls; it walks with the cached
//! DWARF unwinder in [`unwind`] where it can and with libgcc's otherwise.
//! [`symbols`] turns addresses into functions, files and lines for reports.
//! Imports go down only: to `sys`.

mod capture;
pub(crate) mod symbols;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
pub(crate) mod unwind;

pub(crate) use capture::{
    capture, frame_marker, frames, lock_for_fork, set_depth, unlock_after_fork, DEFAULT_DEPTH,
    MAX_DEPTH,
};
