//! One capture's walk in one call: the hook's registers, the joined walk,
//! the base marker and the stack's hash. A file of its own, `core` only and
//! `#[repr(C)]` for what it shares: like `walk_core.rs`, it is compiled
//! into the optimised object of unoptimised builds (`walk_object.rs`).
//! There, the glue around the walk had cost about 1,000 instructions a
//! capture at `opt-level = 0` (building the request field by field,
//! `Option` plumbing, the hash's call, the marker), more than the walk
//! itself on rusqlite's suite. The thread-local traces, the stack store's
//! lock and libgcc's fallback stay with `capture.rs`.

use super::stack_hash::stack_hash;
use super::walk_core::{self, Context, Keep, Request, Traces, Walk};

/// Stored after the last frame of a stack whose walk reached the scope's
/// base frame (`capture::BASE_REACHED`). No return address is 0.
pub(crate) const BASE_REACHED: usize = 0;

/// One capture: what it starts from, and what it found.
#[repr(C)]
pub(crate) struct Capture {
    pub(crate) context: Context,
    /// As [`Request`]'s.
    pub(crate) base: usize,
    pub(crate) stack_low: usize,
    /// The hook's frame marker (`stacks::HookFrame::marker`): frames at or
    /// below it are skipped, and, with bit 0 set, the walk starts from the
    /// registers it holds.
    pub(crate) hook_frame: usize,
    /// Frames to keep at most; `ips` has room for one more (the marker).
    pub(crate) depth: usize,
    pub(crate) ips: *mut usize,
    /// This thread's traces (never null).
    pub(crate) traces: *mut Traces,
    /// Out: how the walk ended.
    pub(crate) walk: Walk,
    /// Out: frames kept, not counting the marker.
    pub(crate) len: usize,
    /// Out: the walk reached the base, and [`BASE_REACHED`] follows the
    /// frames kept.
    pub(crate) reached_base: bool,
    /// Out: the walk found the remembered walk of its trace again (see
    /// [`walk_core::remember`]): nothing was kept, the stack is `same`.
    pub(crate) found_same: bool,
    pub(crate) same: u32,
    /// Out: [`stack_hash`] of the frames and the marker, when the walk
    /// ended `Done` or `FailedInsideUnwinder` and found nothing the same.
    pub(crate) hash: u64,
}

/// The registers a `stacks::HookFrame` at `marker` holds, if it is one and
/// lies where a live hook's frame can: aligned, above `here` (a frame of
/// the walk's caller chain) and below `base`, its `sp` between them; all
/// 0 (the walk starts in the walker's own frame) otherwise. Also
/// `unwind::walk`'s.
#[inline(always)]
pub(crate) fn hook_registers(marker: usize, here: usize, base: usize) -> [usize; 3] {
    const NONE: [usize; 3] = [0; 3];
    if marker & 1 == 0 {
        return NONE;
    }
    let at = marker & !1;
    let Some(end) = at.checked_add(24) else {
        return NONE;
    };
    if at % 8 != 0 || at <= here || end > base {
        return NONE;
    }
    // SAFETY: an aligned `HookFrame` inside this thread's live stack
    // between this frame and the base: the hook that holds it called us.
    let registers = unsafe { (at as *const [usize; 3]).read() };
    if registers[1] > here && registers[1] <= at {
        registers
    } else {
        NONE
    }
}

/// Walks this thread's stack for one capture, joining its previous walks
/// (as `unwind::capture_joining` describes), and fills `capture`'s outputs.
///
/// # Safety
///
/// `ips` has room for `depth + 1` words; `traces` is this thread's, and
/// nothing else on this thread walks with it meanwhile (the caller holds
/// the re-entrancy guard); the context is the unwinder's, as for
/// [`walk_core::walk`].
#[inline(always)]
pub(crate) unsafe fn capture(capture: &mut Capture) {
    let here = walk_core::registers_here!()[1];
    let keep = Keep {
        hook_frame: capture.hook_frame,
        base: capture.base,
        depth: capture.depth,
        ips: capture.ips,
        sps: core::ptr::null_mut(),
        len: 0,
        reached_base: false,
    };
    let mut request = Request {
        context: Context {
            table: capture.context.table,
            generation: capture.context.generation,
            unwinder: capture.context.unwinder,
            slow: capture.context.slow,
        },
        base: capture.base,
        stack_low: capture.stack_low,
        start: hook_registers(capture.hook_frame, here, capture.base),
        traces: capture.traces,
        key: [capture.hook_frame, capture.depth],
        keep,
        walk: Walk::Failed,
        found_same: false,
        same: 0,
    };
    // SAFETY: the caller's contract.
    unsafe { walk_core::walk(&mut request) };
    capture.walk = request.walk;
    capture.found_same = request.found_same;
    capture.same = request.same;
    capture.len = request.keep.len;
    capture.reached_base = false;
    capture.hash = 0;
    if request.found_same || request.walk == Walk::Failed {
        return;
    }
    let mut len = request.keep.len;
    // It stops early only when `keep` asked it to, at the depth.
    if request.walk == Walk::Done && len < capture.depth {
        capture.reached_base = true;
        // SAFETY: `len < depth`, and `ips` has room for `depth + 1`.
        unsafe { capture.ips.add(len).write(BASE_REACHED) };
        len += 1;
    }
    // SAFETY: the walk wrote the first `len - reached_base` words, and the
    // marker the one after them.
    capture.hash = stack_hash(unsafe { core::slice::from_raw_parts(capture.ips, len) });
}
