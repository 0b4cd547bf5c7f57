//! Allocation stacks: captured as raw instruction pointers, interned, and
//! symbolised only when a report shows them.
//!
//! Capture is the one expensive thing on the allocation path, so it stops at
//! the scope's base frame instead of walking libtest and std. It tries the
//! cached unwinder (`unwind.rs`, ~10 ns a frame, and a load a frame where
//! the walk joins one of the thread's previous walks) and falls back to
//! libgcc's (~100 ns a frame) for stacks the cache cannot walk.

use super::stack_index::{Pages, GROW};
use crate::sys::relaxed::Relaxed as _;
use crate::sys::sync::{pages, SpinLock};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Hard cap on frames kept per stack (`LEAKCHECK_STACK_DEPTH` is clamped to
/// it).
pub(crate) const MAX_DEPTH: usize = 256;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
const _: () = assert!(MAX_DEPTH < super::unwind::MAX_FRAMES);
/// Frames kept per stack unless `LEAKCHECK_STACK_DEPTH` says otherwise.
pub(crate) const DEFAULT_DEPTH: usize = 32;

static DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT_DEPTH);

pub(crate) fn set_depth(depth: usize) {
    DEPTH.store(depth.clamp(1, MAX_DEPTH), Relaxed);
}

/// Walks the current thread's stack and interns the result.
///
/// `hook_frame` is the address of a local in the hook the allocation entered
/// through. `base` (0: none) is the address of a local in the frame where the
/// scope began; `stack_low` bounds the stack from below for the cached
/// unwinder. Each frame is reported with its own stack pointer (libgcc's CFA
/// at the callback), so frames with `sp <= hook_frame` are the hook and the
/// tracker's own (skipped), and frames with `sp > base` are the harness,
/// libtest or std's thread start (not walked).
///
/// When the walk reached the base, the last frame kept is the base frame
/// itself — harness code: `run::run_body` or the thread trampoline — and the
/// stack is stored with [`BASE_REACHED`] after it, so the report can tell it
/// by position rather than by name.
///
/// Returns 0 when nothing was captured.
#[inline(never)]
pub(crate) fn capture(
    guard: &crate::sys::reentry::Guard,
    hook_frame: usize,
    base: usize,
    stack_low: usize,
) -> u32 {
    // The guard is how the cached unwinder reaches this thread's walks;
    // elsewhere only the fact of holding it matters.
    #[cfg(not(all(leakcheck_interpose, target_arch = "x86_64")))]
    let _ = guard;
    // Not zeroed: 2 KiB of stores per capture, twice per block inside a
    // check (its allocation and its free), were most of its cost. A local of
    // its own: inside the struct, LLVM merged it with the zeroed fields
    // into one memset. One uninitialised array, not an array of
    // uninitialised words: unoptimised, that became a loop over the 257.
    let mut ips = Frames::uninit();
    let mut stack = Collected {
        depth: DEPTH.relaxed(),
        hook_frame,
        base,
        ips: &mut ips,
        len: 0,
        reached_base: false,
    };
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    let traces = guard.traces();
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    let fall_back = {
        let mut walked = super::capture_core::Capture {
            context: super::unwind::context(),
            base,
            stack_low,
            hook_frame,
            depth: stack.depth,
            ips: stack.ips.as_mut_ptr().cast::<usize>(),
            traces,
            walk: super::unwind::Walk::Failed,
            len: 0,
            reached_base: false,
            found_same: false,
            same: 0,
            hash: 0,
        };
        // SAFETY: the allocation path calls `capture` under the re-entrancy
        // guard only, so no other walk on this thread runs meanwhile; `ips`
        // has room for the depth and the marker; the context and the
        // traces are the unwinder's and this thread's.
        unsafe { super::unwind::capture_joining(&mut walked) };
        if walked.found_same {
            // The frames of the last capture that left this trace, found
            // again: its stack.
            if super::unwind::verifying() {
                return verify_same(walked.same, &mut stack, stack_low);
            }
            return walked.same;
        }
        stack.len = walked.len;
        if super::unwind::verifying() {
            verify(walked.walk, &mut stack, stack_low);
        } else if walked.walk != super::unwind::Walk::Failed {
            if walked.len == 0 {
                return 0;
            }
            // The frames, the marker and their hash are the object's.
            let kept = walked.len + usize::from(walked.reached_base);
            // SAFETY: the walk wrote the first `kept` words of `ips`. Made
            // with `slice_from_raw_parts`: unoptimised, `from_raw_parts`
            // runs a precondition check of some 90 instructions.
            let ips = unsafe { &*std::ptr::slice_from_raw_parts(walked.ips, kept) };
            let id = intern_hashed(ips, walked.hash);
            // SAFETY: right after this thread's walk, under the guard.
            unsafe { super::unwind::remember_in(traces, id) };
            return id;
        }
        match walked.walk {
            super::unwind::Walk::Done => {
                // It stops early only when `keep` asked it to, at the depth.
                stack.reached_base = stack.len < stack.depth;
                false
            }
            super::unwind::Walk::FailedInsideUnwinder => false,
            super::unwind::Walk::Failed => true,
        }
    };
    #[cfg(not(all(leakcheck_interpose, target_arch = "x86_64")))]
    let fall_back = {
        let _ = stack_low;
        true
    };
    if fall_back {
        stack.len = 0;
        stack.reached_base = false;
        // SAFETY: `trace_unsynchronized` requires that no other unwinding
        // through backtrace's own non-thread-safe paths runs concurrently.
        // On Linux it uses libgcc's `_Unwind_Backtrace`, which is
        // thread-safe, and the callback neither panics nor allocates.
        unsafe {
            backtrace::trace_unsynchronized(|f| stack.keep(f.ip() as usize, f.sp() as usize))
        };
    }
    if stack.len == 0 {
        return 0;
    }
    let id = finish(&mut stack);
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    if !fall_back {
        // SAFETY: right after this thread's walk, under the guard.
        unsafe { super::unwind::remember_in(traces, id) };
    }
    id
}

/// Interns the frames collected, with [`BASE_REACHED`] after them if the
/// walk reached the base.
fn finish(stack: &mut Collected<'_>) -> u32 {
    if stack.reached_base {
        // `len < depth <= MAX_DEPTH`: the array has room for the marker.
        stack.set(stack.len, BASE_REACHED);
        stack.len += 1;
    }
    intern(stack.kept())
}

/// [`verify`] for a walk that found the frames of an earlier capture again
/// and took its stack, `id`.
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
#[cold]
#[inline(never)]
fn verify_same(id: u32, stack: &mut Collected<'_>, stack_low: usize) -> u32 {
    // From the walker's own frame, as in `verify`.
    stack.hook_frame &= !1;
    // SAFETY: `ips` has room for the depth.
    let (walked, kept) = unsafe { super::unwind::walk(stack.base, stack_low, stack.fast()) };
    stack.len = kept.len;
    if walked != super::unwind::Walk::Done {
        mismatch();
        return id;
    }
    stack.reached_base = stack.len < stack.depth;
    let full = finish(stack);
    if full != id {
        mismatch();
    }
    full
}

#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
fn mismatch() {
    MISMATCHES.fetch_add(1, Relaxed);
    let message =
        b"leakcheck: LEAKCHECK_VERIFY_STACKS: a joined stack walk differs from a full one\n";
    // SAFETY: writes a static buffer to stderr.
    let _ = unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
}

/// Walks the current thread's stack for a profile sample (feature
/// `profile`) of a block made outside any check, and interns it.
///
/// There is no scope base: `[stack_low, stack_high)` is the thread's whole
/// stack (as its registration found it). Only the cached unwinder walks, and
/// where it cannot go on (the thread's first frame, a signal frame) the
/// frames so far are the stack: libgcc's unwinder is never called, so a
/// sample cannot wait on its lock (held by another thread at a `fork`, or
/// by the code a signal interrupted). Where there is no cached unwinder,
/// libgcc's walks, as for checks. Returns 0 when nothing was captured.
#[cfg(feature = "profile")]
#[inline(never)]
pub(crate) fn capture_sampled(hook_frame: usize, stack_low: usize, stack_high: usize) -> u32 {
    // Not zeroed, as in `capture`.
    let mut ips = Frames::uninit();
    let mut stack = Collected {
        depth: DEPTH.relaxed(),
        hook_frame,
        base: stack_high,
        ips: &mut ips,
        len: 0,
        reached_base: false,
    };
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    {
        // SAFETY: `ips` has room for the depth.
        let (_, kept) = unsafe { super::unwind::walk(stack_high, stack_low, stack.fast()) };
        stack.len = kept.len;
    }
    #[cfg(not(all(leakcheck_interpose, target_arch = "x86_64")))]
    {
        let _ = stack_low;
        // SAFETY: as in `capture`.
        unsafe {
            backtrace::trace_unsynchronized(|f| stack.keep(f.ip() as usize, f.sp() as usize))
        };
    }
    if stack.len == 0 {
        return 0;
    }
    intern(stack.kept())
}

/// The verification mode (`LEAKCHECK_VERIFY_STACKS=1`): walks again without
/// joining the previous walk and compares. On a difference, says so on
/// stderr, counts it, and keeps the full walk's frames.
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
#[cold]
#[inline(never)]
fn verify(walked: super::unwind::Walk, stack: &mut Collected<'_>, stack_low: usize) {
    let mut ips = Frames::uninit();
    let mut full = Collected {
        depth: stack.depth,
        // Without the hook's registers: the full walk starts in the walker
        // and unwinds the tracker's frames too, checking that start as well.
        hook_frame: stack.hook_frame & !1,
        base: stack.base,
        ips: &mut ips,
        len: 0,
        reached_base: false,
    };
    // SAFETY: `ips` has room for the depth.
    let (full_walk, kept) = unsafe { super::unwind::walk(stack.base, stack_low, full.fast()) };
    full.len = kept.len;
    if full_walk == walked && full.kept() == stack.kept() {
        return;
    }
    mismatch();
    let len = full.len;
    for (i, &ip) in full.kept().iter().enumerate() {
        stack.set(i, ip);
    }
    stack.len = len;
}

/// Joined walks that differed from full ones (verification mode).
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
static MISMATCHES: AtomicUsize = AtomicUsize::new(0);

/// How many joined walks differed from full walks so far (verification
/// mode only; always 0 otherwise).
#[cfg(all(test, leakcheck_interpose, target_arch = "x86_64"))]
pub(crate) fn mismatches() -> usize {
    MISMATCHES.load(Relaxed)
}

/// Stored after the last frame of a stack whose walk reached the scope's
/// base frame. No return address is 0 (unwinders stop there).
const BASE_REACHED: usize = 0;
#[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
const _: () = assert!(BASE_REACHED == super::capture_core::BASE_REACHED);

/// Room for the frames of one capture, uninitialised.
type Frames = std::mem::MaybeUninit<[usize; MAX_DEPTH + 1]>;

/// The frames one capture keeps.
struct Collected<'a> {
    depth: usize,
    hook_frame: usize,
    base: usize,
    /// One more than kept, for [`BASE_REACHED`]; the first `len` written.
    ips: &'a mut Frames,
    len: usize,
    /// The walk went past the base frame, so the last frame kept is it.
    reached_base: bool,
}

impl Collected<'_> {
    /// The cached unwinder's view of this collection, empty: it keeps
    /// frames as [`Collected::keep`] does, into the same array.
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    fn fast(&mut self) -> super::walk_core::Keep {
        super::walk_core::Keep {
            hook_frame: self.hook_frame,
            base: self.base,
            depth: self.depth,
            ips: self.ips.as_mut_ptr().cast::<usize>(),
            sps: std::ptr::null_mut(),
            len: 0,
            reached_base: false,
        }
    }

    /// Takes the frame at `ip` whose stack pointer is `sp`, unless it is
    /// the tracker's own; returns whether to go on.
    fn keep(&mut self, ip: usize, sp: usize) -> bool {
        if sp <= self.hook_frame {
            return true;
        }
        if self.base != 0 && sp > self.base {
            self.reached_base = self.len < self.depth;
            return false;
        }
        self.set(self.len, ip);
        self.len += 1;
        self.len < self.depth
    }

    /// Writes frame `i`, at most `MAX_DEPTH` (the array's last word, for
    /// [`BASE_REACHED`]); callers never pass more, and more is dropped (no
    /// panic on the allocation path).
    fn set(&mut self, i: usize, ip: usize) {
        if i > MAX_DEPTH {
            return;
        }
        // SAFETY: `i` indexes the array, of MAX_DEPTH + 1 words.
        unsafe { self.ips.as_mut_ptr().cast::<usize>().add(i).write(ip) };
    }

    /// The frames written so far.
    fn kept(&self) -> &[usize] {
        // SAFETY: `keep` and `capture` write `ips[i]` for every `i < len`
        // before raising `len`; MaybeUninit<usize> has usize's layout.
        unsafe { std::slice::from_raw_parts(self.ips.as_ptr().cast::<usize>(), self.len) }
    }
}

/// The frames of an interned stack, innermost first. Returns whether the
/// last one is the scope's base frame (see [`capture`]).
pub(crate) fn frames(id: u32, out: &mut Vec<usize>) -> bool {
    out.clear();
    if id == 0 {
        return false;
    }
    // Copy out under the lock, extend after it: growing `out` allocates, and
    // nothing may allocate while the store is locked.
    let mut buf = [0usize; MAX_DEPTH + 1];
    let len = {
        let _bypass = crate::sys::reentry::Bypass::enter();
        let store = STORE.lock();
        match store.entry(id) {
            Some((start, len)) => {
                let len = len.min(MAX_DEPTH + 1);
                // SAFETY: `entry` only returns ranges inside the written part
                // of the frame arena, which is never unmapped or rewritten.
                let slice =
                    unsafe { std::slice::from_raw_parts(store.pages.frames.add(start), len) };
                buf[..len].copy_from_slice(slice);
                len
            }
            None => 0,
        }
    };
    let at_base = len > 0 && buf[len - 1] == BASE_REACHED;
    out.extend_from_slice(&buf[..len - usize::from(at_base)]);
    at_base
}

/// Slots of the index at first (16 KiB of `u32` ids). It doubles whenever
/// it is half full, up to [`MAX_INDEX_SLOTS`]: a hash index is touched all
/// over, so one reserved at its largest size from the start had every one
/// of its pages committed after a few thousand stacks (16 MiB of the
/// process's 52 MiB on rusqlite's suite, for 20,000 stacks).
const MIN_INDEX_SLOTS: usize = 1 << 12;
const MAX_INDEX_SLOTS: usize = 1 << 22; // 16 MiB of u32 ids
const MAX_STACKS: usize = MAX_INDEX_SLOTS / 2;
const FRAME_WORDS: usize = 1 << 25; // 256 MiB of frames, reserved lazily

/// Interned stacks: an arena of frames, a table of (start, len) per id and an
/// open-addressing index from hash to id, at most half full
/// (`stack_index`, which finds and adds stacks). The arena and the table
/// are reserved pages filled from the start, so they cost memory only as
/// they fill; the index grows as stacks come. When full, new stacks come
/// back as 0 ("unknown") rather than failing the allocation.
struct Store {
    pages: Pages,
    ready: bool,
    failed: bool,
}

// SAFETY: the store's pages are owned by it and only touched under its lock.
unsafe impl Send for Store {}

static STORE: SpinLock<Store> = SpinLock::new(Store {
    pages: Pages {
        frames: std::ptr::null_mut(),
        frame_words: 0,
        frames_used: 0,
        entries: std::ptr::null_mut(),
        max_stacks: 0,
        count: 0,
        index: std::ptr::null_mut(),
        index_slots: 0,
    },
    ready: false,
    failed: false,
});

impl Store {
    fn init(&mut self) -> bool {
        if self.ready {
            return true;
        }
        if self.failed {
            return false;
        }
        let frames = pages::map(FRAME_WORDS * 8, true);
        let entries = pages::map(MAX_STACKS * 8, true);
        let index = pages::map_populated(MIN_INDEX_SLOTS * 4);
        if frames.is_null() || entries.is_null() || index.is_null() {
            self.failed = true;
            return false;
        }
        self.pages = Pages {
            frames: frames.cast(),
            frame_words: FRAME_WORDS,
            frames_used: 0,
            entries: entries.cast(),
            max_stacks: MAX_STACKS,
            count: 1,
            index: index.cast(),
            index_slots: MIN_INDEX_SLOTS,
        };
        self.ready = true;
        true
    }

    fn entry(&self, id: u32) -> Option<(usize, usize)> {
        if !self.ready || id as usize >= self.pages.count {
            return None;
        }
        // SAFETY: ids below `count` index initialised entries of the mapped
        // entry table.
        let [start, len] = unsafe { *self.pages.entries.add(id as usize) };
        Some((start as usize, len as usize))
    }

    /// Doubles the index and files every stack in it again; false (the
    /// old index kept) if it is at its largest or the kernel refused.
    fn grow_index(&mut self) -> bool {
        let slots = self.pages.index_slots * 2;
        if slots > MAX_INDEX_SLOTS {
            return false;
        }
        let fresh = pages::map_populated(slots * 4).cast::<u32>();
        if fresh.is_null() {
            return false;
        }
        // SAFETY: the store is ready and locked (`&mut self`), and `fresh`
        // maps `slots` zeroed ids, more than twice the stacks (the index is
        // grown when it would be more than half full).
        unsafe { refile(&self.pages, fresh, slots) };
        // SAFETY: the old index was mapped with this size by `init` or an
        // earlier `grow_index`, and nothing refers to it past this point.
        unsafe { pages::unmap(self.pages.index.cast(), self.pages.index_slots * 4) };
        self.pages.index = fresh;
        self.pages.index_slots = slots;
        true
    }
}

/// The stack's hash for the index: in the optimised walker object when
/// this crate is built unoptimised (a loop over every frame of every
/// capture), here otherwise.
fn hash(ips: &[usize]) -> u64 {
    #[cfg(leakcheck_prebuilt_walk)]
    {
        extern "C" {
            /// `walk_core::hash`, built optimised (`walk_object.rs`).
            fn leakcheck_stack_hash_v1(ips: *const usize, len: usize) -> u64;
        }
        // SAFETY: reads the `len` words of a live slice.
        unsafe { leakcheck_stack_hash_v1(ips.as_ptr(), ips.len()) }
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    {
        super::stack_hash::stack_hash(ips)
    }
}

#[cfg(leakcheck_prebuilt_walk)]
extern "C" {
    /// `stack_index::intern`, built optimised (`walk_object.rs`).
    fn leakcheck_stack_intern_v1(pages: *mut Pages, h: u64, ips: *const usize, len: usize) -> u64;
    /// `stack_index::refile` with `stack_hash`, built optimised.
    fn leakcheck_stack_refile_v1(pages: *const Pages, fresh: *mut u32, slots: usize);
}

/// `stack_index::intern`, from the optimised object when this crate is
/// built unoptimised.
///
/// # Safety
///
/// As `stack_index::intern`.
unsafe fn intern_in(pages: &mut Pages, h: u64, ips: &[usize]) -> u64 {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the caller's contract; `ips` is a live slice.
    unsafe {
        leakcheck_stack_intern_v1(pages, h, ips.as_ptr(), ips.len())
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller's contract.
    unsafe {
        super::stack_index::intern(pages, h, ips)
    }
}

/// `stack_index::refile` with [`hash`]'s function, from the optimised
/// object when this crate is built unoptimised.
///
/// # Safety
///
/// As `stack_index::refile`.
unsafe fn refile(pages: &Pages, fresh: *mut u32, slots: usize) {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the caller's contract.
    unsafe {
        leakcheck_stack_refile_v1(pages, fresh, slots)
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller's contract.
    unsafe {
        super::stack_index::refile(pages, fresh, slots, super::stack_hash::stack_hash)
    }
}

fn intern(ips: &[usize]) -> u32 {
    intern_hashed(ips, hash(ips))
}

/// [`intern`] of `ips`, whose [`hash`] is `h`.
fn intern_hashed(ips: &[usize], h: u64) -> u32 {
    let mut store = STORE.lock();
    if !store.init() {
        return 0;
    }
    loop {
        // SAFETY: the store is ready and locked; its pages keep
        // `stack_index`'s invariants (only `intern_in` and `grow_index`
        // write them).
        let found = unsafe { intern_in(&mut store.pages, h, ips) };
        if found != GROW {
            return found as u32;
        }
        // Keep the index at most half full: grow it, or take no more stacks.
        if !store.grow_index() {
            return 0;
        }
    }
}

/// `pthread_atfork` prepare.
pub(crate) fn lock_for_fork() {
    STORE.lock_for_fork();
}

/// `pthread_atfork` parent and child.
///
/// # Safety
///
/// Only after [`lock_for_fork`] on the forking thread.
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: the caller guarantees lock_for_fork holds the store.
    unsafe { STORE.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_distinguishes_stacks() {
        let a = intern(&[1, 2, 3]);
        let b = intern(&[1, 2, 4]);
        let c = intern(&[1, 2, 3]);
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(a, c);
        let mut out = Vec::new();
        frames(b, &mut out);
        assert_eq!(out, [1, 2, 4]);
        frames(0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn the_index_grows_and_keeps_every_stack() {
        // Several doublings of the index past its first size.
        let n = MIN_INDEX_SLOTS * 5;
        let ids: Vec<u32> = (0..n).map(|i| intern(&[0xdead_0000, i, 7])).collect();
        assert!(STORE.lock().pages.index_slots >= MIN_INDEX_SLOTS * 8);
        let mut out = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            assert_ne!(id, 0);
            assert_eq!(intern(&[0xdead_0000, i, 7]), id);
            frames(id, &mut out);
            assert_eq!(out, [0xdead_0000, i, 7]);
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), n);
    }
}
