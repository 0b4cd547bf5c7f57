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
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
pub(crate) mod capture_core;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
pub(crate) mod cfi;
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
mod stack_hash;
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
mod stack_index;
pub(crate) mod symbols;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
pub(crate) mod unwind;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
// With the prebuilt object, this copy gives only the shared types.
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
pub(crate) mod walk_core;

#[cfg(feature = "profile")]
pub(crate) use capture::capture_sampled;
pub(crate) use capture::{
    capture, frames, lock_for_fork, set_depth, unlock_after_fork, DEFAULT_DEPTH, MAX_DEPTH,
};

/// The address of a local in the caller's frame. Stack capture skips every
/// frame whose stack pointer is at or below it — the hook holding it and
/// everything the tracker calls — so reports start at the code that called
/// the allocator. Must be inlined into the hook itself. Always 8-aligned
/// (bit 0 is [`HookFrame::marker`]'s).
#[inline(always)]
pub(crate) fn frame_marker() -> usize {
    let marker = 0u64;
    std::hint::black_box(&marker) as *const u64 as usize
}

/// A hook's own frame, as a local of the hook: its address is the frame
/// marker (as [`frame_marker`]'s), and it holds the registers the hook had
/// where [`hook_frame_here!`] ran, so that the cached unwinder starts there
/// instead of unwinding the tracker's own frames (four or so optimised,
/// twice that unoptimised) on every capture.
#[repr(C, align(8))]
pub(crate) struct HookFrame {
    /// `ip`, `sp` and `rbp` in the hook; `ip` 0: none (other targets).
    registers: [usize; 3],
}

impl HookFrame {
    #[doc(hidden)]
    #[inline(always)]
    pub(crate) fn from_registers(registers: [usize; 3]) -> HookFrame {
        HookFrame { registers }
    }

    /// The frame marker for [`capture()`]: this local's address, with bit
    /// 0 set when it holds registers. It must stay in the hook's frame,
    /// unmoved, for as long as the marker is used.
    #[inline(always)]
    pub(crate) fn marker(&self) -> usize {
        let at = std::hint::black_box(self as *const HookFrame as usize);
        at | usize::from(self.registers[0] != 0)
    }
}

/// A [`HookFrame`] of the hook this expands in: a macro, not a function,
/// so the registers are read in the hook itself whatever the optimiser
/// inlines. Bind it to a local of the hook and pass its
/// [`marker`](HookFrame::marker) down.
macro_rules! hook_frame_here {
    () => {{
        #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
        let registers = $crate::stacks::walk_core::registers_here!();
        #[cfg(not(all(leakcheck_interpose, target_arch = "x86_64")))]
        let registers = [0usize; 3];
        $crate::stacks::HookFrame::from_registers(registers)
    }};
}
pub(crate) use hook_frame_here;
