//! Recording blocks: what every allocation front end (the C hooks, the
//! tracking global allocator) does around the real allocator.
//!
//! Rules for everything here: never allocate through the tracked allocator
//! (bookkeeping runs under [`Guard`], which sends nested calls straight to
//! the real allocator), never take a lock that a fork or a signal could leave
//! held, never panic.

use crate::stacks;
use crate::sys::reentry::{self, Guard};
use crate::track::table::{self, Allocator, Block};
use crate::track::{cache, scope};
use std::ffi::c_void;

/// Blocks are handed out zeroed up to this many bytes (a reallocation's new
/// tail too).
const ZEROED_UP_TO: usize = 64 * 1024;

/// Zeroes `[from, to)` of a block just handed out, at most
/// [`ZEROED_UP_TO`] bytes. glibc reuses freed chunks as they are, so the
/// uninitialised part of a new block (a `Vec`'s spare capacity) would hold
/// whatever pointers the chunk's last user left there; the classifier scans
/// blocks conservatively, and such stale copies would make a leaked block
/// that reuses one of those addresses look reachable, depending on what ran
/// before. Zeroed, they cannot.
#[inline(always)]
fn zero_fresh(ptr: *mut c_void, from: usize, to: usize) {
    if to > from {
        // An `if`, not `min`: unoptimised, `min` is a call.
        let len = if to - from < ZEROED_UP_TO {
            to - from
        } else {
            ZEROED_UP_TO
        };
        // SAFETY: `ptr` is a block of at least `to` bytes the allocator just
        // returned to this caller, who has not seen it yet; `from + len <= to`.
        let at = unsafe { ptr.cast::<u8>().add(from) };
        // SAFETY: as above: `[at, at + len)` is the caller's to write.
        unsafe { crate::sys::zero(at, len) };
    }
}

/// The allocation path outside checks in one piece, for the blocks a
/// thread's cache takes (see `cache`): checks that the new block will be
/// one (no check on this thread, not leakcheck's own code, not a profile
/// sample, the caches open), then allocates it with `real` and files it.
/// `None`, with nothing done, when it would not be such a block: the caller
/// takes the general path.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) fn alloc_plain(
    size: usize,
    allocator: Allocator,
    align: usize,
    real: impl FnOnce() -> *mut c_void,
) -> Option<*mut c_void> {
    if !cache::open() {
        return None;
    }
    // Held across `real` too: glibc's allocator does not allocate.
    let guard = Guard::enter()?;
    let epoch = guard.plain_epoch()?;
    #[cfg(feature = "profile")]
    if !crate::track::sample::unsampled(size) {
        return None;
    }
    let ptr = real();
    if ptr.is_null() {
        return Some(ptr);
    }
    if !matches!(allocator, Allocator::Calloc | Allocator::RustAllocZeroed) {
        zero_fresh(ptr, 0, size);
    }
    let mut block = Block::new(ptr as usize, size, allocator, align);
    block.epoch = epoch;
    if !cache::put_if_open(&block) {
        insert(block);
    }
    drop(guard);
    Some(ptr)
}

/// The free of a block a thread's cache holds, in one piece: true if `ptr`
/// was this thread's cached block and `how` released it as it should (its
/// own family, its own layout), so that it is now retired and the caller
/// passes it to glibc. False, with nothing done, otherwise: the caller
/// takes the general path. No check is running while the caches are open,
/// so nothing is held back for the quarantine.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) fn free_plain(ptr: *mut c_void, how: crate::track::misuse::Release) -> bool {
    if ptr.is_null() || !cache::open() {
        return false;
    }
    let Some(guard) = Guard::enter() else {
        return false;
    };
    if guard.in_harness() {
        return false;
    }
    // Only plain blocks are cached (`cache::cacheable`).
    let freed = cache::take_own_if(ptr as usize, |packed| released_plainly(packed, how));
    drop(guard);
    freed
}

/// Records a new block. `hook_frame` comes from [`stacks::frame_marker`] in the
/// public entry point. `guarded`: the block was allocated with
/// `misuse::GUARD` bytes more than `size`, which get the guard fill.
#[inline(always)]
pub(crate) fn on_alloc(
    ptr: *mut c_void,
    size: usize,
    allocator: Allocator,
    align: usize,
    hook_frame: usize,
    guarded: bool,
) {
    if ptr.is_null() {
        return;
    }
    if !matches!(allocator, Allocator::Calloc | Allocator::RustAllocZeroed) {
        zero_fresh(ptr, 0, size);
    }
    #[cfg(leakcheck_interpose)]
    if guarded {
        crate::track::misuse::write_guard(ptr, size);
    }
    record_alloc(ptr, size, allocator, align, hook_frame, guarded);
}

/// The general allocation path of the C `malloc` hook and of leakcheck's
/// own global allocator (`Tracked<Glibc>`), when the thread's cache
/// cannot take the block (inside a check, in a harness section, for a
/// profile sample): one guard and one read of the thread's state for the
/// whole call, which decide the heap, the guard bytes and the record.
/// Unoptimised (a user's dev profile), each of the three thread-local
/// reads this replaces (`misuse::guard_for_new`, `hooks::base`'s choice
/// of heap, the record's guard) was about 150 instructions.
///
/// `glibc` allocates `n` bytes from glibc's heap; `routed` through
/// `hooks::real` (which picks the heap itself), for a call that cannot
/// take the guard (re-entered, bypassed): such a block is not recorded, as
/// on every front end.
///
/// In a harness section (leakcheck's own code: the verdict, the report)
/// the block comes from leakcheck's own heap. A Rust one is not recorded:
/// it is never a root nor a candidate of a verdict, and its free and
/// reallocation find it by its header ([`own_heap::unrecorded`]) or
/// address ([`own_heap_unrecorded`]); recording and retiring one cost
/// 4,600 instructions unoptimised, about 22 of them a clean check. A C one
/// is recorded as the harness's, as before.
///
/// [`own_heap::unrecorded`]: crate::track::own_heap::unrecorded
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) fn alloc_general(
    size: usize,
    align: usize,
    allocator: Allocator,
    hook_frame: usize,
    routed: impl FnOnce(usize) -> *mut c_void,
    glibc: impl FnOnce(usize) -> *mut c_void,
) -> *mut c_void {
    use crate::track::own_heap;
    let zeroed = matches!(allocator, Allocator::Calloc | Allocator::RustAllocZeroed);
    let Some(guard) = Guard::enter() else {
        let ptr = routed(size);
        if !ptr.is_null() && !zeroed {
            zero_fresh(ptr, 0, size);
        }
        return ptr;
    };
    let current = guard.current();
    if current.harness {
        let rust = allocator.is_rust();
        let ptr = if rust {
            own_heap::alloc_unrecorded(size, align)
        } else {
            own_heap::alloc(size, align)
        };
        if !ptr.is_null() {
            // Zeroed as any new block, unrecorded or not: a program may
            // grow a Rust one later (a `Report`'s string) into a block of
            // its check, whose spare bytes must hold no stale addresses.
            if zeroed {
                // SAFETY: a fresh block of `size` bytes.
                unsafe { crate::sys::zero(ptr.cast(), size) };
            } else {
                zero_fresh(ptr, 0, size);
            }
            if !rust {
                let block = new_block(ptr, size, allocator, align, false);
                record_entered(guard, current, block, hook_frame);
            }
            return ptr;
        }
        // Too big for the heap: from glibc, recorded as the harness's.
    }
    let guard_bytes =
        // `size <= MAX - GUARD`, not `checked_add`: a call unoptimised.
        if current.scope != 0 && size <= usize::MAX - crate::track::misuse::GUARD {
            crate::track::misuse::GUARD
        } else {
            0
        };
    let ptr = glibc(size + guard_bytes);
    if ptr.is_null() {
        return ptr;
    }
    if !zeroed {
        zero_fresh(ptr, 0, size);
    }
    if guard_bytes != 0 {
        crate::track::misuse::write_guard(ptr, size);
    }
    let block = new_block(ptr, size, allocator, align, guard_bytes != 0);
    record_entered(guard, current, block, hook_frame);
    ptr
}

/// [`alloc_general`] for leakcheck's own global allocator (`Tracked<Glibc>`).
///
/// # Safety
///
/// As `GlobalAlloc::alloc`: `size` non-zero, `align` a power of two.
#[cfg(all(leakcheck_interpose, feature = "global-allocator"))]
#[inline(always)]
pub(crate) unsafe fn alloc_glibc(
    size: usize,
    align: usize,
    allocator: Allocator,
    hook_frame: usize,
) -> *mut c_void {
    let zeroed = matches!(allocator, Allocator::RustAllocZeroed);
    alloc_general(
        size,
        align,
        allocator,
        hook_frame,
        |n| {
            // SAFETY: the caller's valid alignment, and a non-zero size
            // (`alloc_general` adds the guard bytes only where they fit).
            unsafe { glibc_block(n, align, zeroed, RoutedBy::Base) }
        },
        |n| {
            // SAFETY: as above.
            unsafe { glibc_block(n, align, zeroed, RoutedBy::Caller) }
        },
    )
}

/// Who chose the heap of a block [`glibc_block`] allocates.
#[cfg(all(leakcheck_interpose, feature = "global-allocator"))]
#[derive(Clone, Copy)]
pub(crate) enum RoutedBy {
    /// The caller: glibc's heap.
    Caller,
    /// `hooks::real`, which reads the thread's state.
    Base,
}

/// A block of glibc's with `align` (malloc when its guaranteed alignment
/// suffices, memalign otherwise), zeroed if `zeroed`: `global::Glibc`'s
/// allocation, with the heap chosen by `routed`.
///
/// # Safety
///
/// `size` non-zero, `align` a power of two.
#[cfg(all(leakcheck_interpose, feature = "global-allocator"))]
#[inline(always)]
pub(crate) unsafe fn glibc_block(
    size: usize,
    align: usize,
    zeroed: bool,
    routed: RoutedBy,
) -> *mut c_void {
    use crate::track::hooks::real;
    use crate::track::hooks::real::glibc::MIN_ALIGN;
    let plain = real::glibc::malloc_serves(size, align);
    // SAFETY: glibc's own contracts (or `hooks::real`'s, which forward to
    // them), with the caller's non-zero size and an alignment that is a
    // power of two of at least MIN_ALIGN where memalign gets it.
    let ptr = unsafe {
        match (routed, plain, zeroed) {
            (RoutedBy::Caller, true, false) => real::glibc::malloc(size),
            (RoutedBy::Caller, true, true) => real::glibc::calloc(size, 1),
            (RoutedBy::Caller, false, _) => real::glibc::memalign(align.max(MIN_ALIGN), size),
            (RoutedBy::Base, true, false) => real::malloc(size),
            (RoutedBy::Base, true, true) => real::calloc(size, 1),
            (RoutedBy::Base, false, _) => real::memalign(align.max(MIN_ALIGN), size),
        }
    };
    if !plain && zeroed && !ptr.is_null() {
        // SAFETY: a fresh block of `size` bytes.
        unsafe { crate::sys::zero(ptr.cast(), size) };
    }
    ptr
}

/// [`on_alloc`] without the zeroing and the guard fill: for a reallocation
/// of a block that was never recorded, whose contents are the caller's.
#[inline(always)]
fn record_alloc(
    ptr: *mut c_void,
    size: usize,
    allocator: Allocator,
    align: usize,
    hook_frame: usize,
    guarded: bool,
) {
    let Some(guard) = Guard::enter() else { return };
    let current = guard.current();
    #[cfg(leakcheck_interpose)]
    if current.harness && allocator.is_rust() && crate::track::own_heap::contains(ptr) {
        // A Rust block of a harness section (a reallocation's), from the
        // own heap: not recorded (see `alloc_general`).
        crate::track::own_heap::mark_unrecorded(ptr);
        drop(guard);
        return;
    }
    let block = new_block(ptr, size, allocator, align, guarded);
    record_entered(guard, current, block, hook_frame);
}

/// A new block's record, before its owner and stack are known.
#[inline(always)]
fn new_block(
    ptr: *mut c_void,
    size: usize,
    allocator: Allocator,
    align: usize,
    guarded: bool,
) -> Block {
    let mut block = Block::new(ptr as usize, size, allocator, align);
    block.guarded = u8::from(guarded);
    block
}

/// Records the new `block` under `guard`, `current` being the thread's
/// state it read: its owner, stack and epoch, then files it.
#[inline(always)]
fn record_entered(guard: Guard, current: scope::Current, mut block: Block, hook_frame: usize) {
    let size = block.size;
    if current.scope != 0 && guard.count_alloc(current.scope, size) {
        block.scope = current.scope;
        block.stack = stacks::capture(&guard, hook_frame, current.base, current.stack_low);
    }
    block.harness = u8::from(current.harness);
    block.epoch = current.epoch;
    #[cfg(feature = "profile")]
    crate::track::sample::on_alloc(&mut block, &guard, hook_frame);
    store(block);
    drop(guard);
}

/// Files a new `block`: in this thread's cache when it may go there (see
/// `cache`), else in the table. Under the guard.
#[inline(always)]
fn store(block: Block) {
    if !(cache::cacheable(&block) && cache::put(&block)) {
        insert(block);
    }
}

/// Inserts `block` in the table; a stale record it replaces (a free that
/// went by while the hooks were bypassed) stops counting for its scope.
#[inline(always)]
pub(crate) fn insert(block: Block) {
    if let Some(stale) = table::insert(block) {
        if stale.scope != 0 {
            scope::count_free(stale.scope, stale.size);
        }
    }
}

/// Retires a block before it is handed back to glibc (before, so that a
/// racing allocation that reuses the address can never be removed instead).
#[inline(always)]
pub(crate) fn on_free(ptr: *mut c_void) -> Option<Block> {
    if ptr.is_null() {
        return None;
    }
    #[cfg(leakcheck_interpose)]
    if crate::track::own_heap::unrecorded(ptr) {
        return None;
    }
    let guard = Guard::enter()?;
    let block = cache::remove(ptr as usize)?.unpack();
    if block.scope != 0 {
        guard.count_free(block.scope, block.size);
    }
    Some(block)
}

/// [`on_free`] for a block being freed for good (`free`, `dealloc`), by a
/// front end whose real free is glibc's: returns whether the caller must
/// still pass `ptr` to glibc. A block freed while a check runs, by
/// leakcheck's own code, or that was a check's or leakcheck's, goes to the
/// quarantine instead, so its address is not handed out again soon (see
/// `quarantine`). Misuse (`misuse`) is reported: a free of what is no live
/// block (a second free of a held block, an interior or stack pointer) is
/// swallowed; a free through the other family, or with another layout,
/// still frees.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) fn on_final_free(ptr: *mut c_void, how: crate::track::misuse::Release) -> bool {
    if ptr.is_null() {
        return false;
    }
    if crate::track::own_heap::unrecorded(ptr) {
        // No record to retire, nothing to hold (see `alloc_general`).
        return true;
    }
    let Some(guard) = Guard::enter() else {
        return true;
    };
    let Some(packed) = cache::remove(ptr as usize) else {
        return own_heap_unrecorded(ptr)
            || !crate::track::misuse::unknown_pointer(&guard, ptr as usize, how);
    };
    if packed.plain() && !guard.in_harness() && released_plainly(&packed, how) {
        // The common free: no check's block, through its own family, with
        // its own layout. Held only if a check started meanwhile.
        let hold = scope::any_active()
            && !guard.in_signal_handler()
            && !crate::track::hooks::async_handlers_installed();
        if !hold {
            drop(guard);
            return true;
        }
    }
    let block = packed.unpack();
    if block.scope != 0 {
        guard.count_free(block.scope, block.size);
    }
    let free_stack = crate::track::misuse::on_release(&guard, &block, how, true);
    if of_an_unknown_allocator(&block, how.call.is_rust()) {
        // Reported, kept.
        drop(guard);
        return false;
    }
    let held = quarantine_takes(&guard, &block, ptr)
        && crate::track::quarantine::hold(crate::track::quarantine::Freed {
            addr: block.addr,
            size: block.size,
            alloc_stack: block.stack,
            free_stack,
            scope: block.scope,
            filled: 0,
        });
    drop(guard);
    !held
}

/// Whether the quarantine is to take `block` (at `ptr`, retired from the
/// table), being freed for good now: a check's block or leakcheck's, or any
/// while a check runs or in a harness section. Not in a signal handler: one
/// that allocates and frees must get its freed chunk back from glibc's
/// per-thread cache, or its next malloc takes the arena lock, which the
/// code it interrupted may hold. A block of leakcheck's own heap is never
/// held: its address is never handed to the program (see `own_heap`).
#[cfg(leakcheck_interpose)]
#[inline(always)]
fn quarantine_takes(guard: &Guard, block: &Block, ptr: *mut c_void) -> bool {
    !guard.in_signal_handler()
        && !crate::track::hooks::async_handlers_installed()
        && !crate::track::own_heap::contains(ptr)
        && (block.scope != 0 || block.harness != 0 || scope::any_active() || guard.in_harness())
}

/// Whether `block`, released through a C call (`call_is_rust` false), is a
/// Rust block of an allocator leakcheck does not know (yours, wrapped in
/// `Tracked`): glibc must never get it, neither freed nor moved.
#[cfg(leakcheck_interpose)]
#[inline(always)]
fn of_an_unknown_allocator(block: &Block, call_is_rust: bool) -> bool {
    block.allocator().is_rust() && !call_is_rust && !cfg!(feature = "global-allocator")
}

/// A reallocation made here when glibc's would free the old block:
/// `old` (at `ptr`, retired from the table, its misuse checked) to `size`
/// bytes and `guard` guard bytes after them, with `align` (0 for C's
/// `realloc`), recorded as `allocator`. glibc's `realloc` frees the old
/// block itself, and hands its address to the next allocation of its size
/// at once, while stale copies of it may remain in the program's memory and
/// would make that allocation reachable. So where the quarantine would take
/// the block were it freed ([`on_final_free`]) and it cannot be resized
/// where it is, the new block is glibc's `malloc`'s (or `memalign`'s, as
/// `global::Glibc` moves an over-aligned block), the contents are copied,
/// the old block is held and the new one recorded ([`on_realloc`]), as
/// valgrind moves every reallocation. Returns the new block (null if glibc
/// had none: the old one is intact and recorded again), or `None` if the
/// caller's reallocation is to run.
///
/// # Safety
///
/// `ptr` is the live block of glibc's that `old` describes, which the
/// caller is reallocating and no longer uses if `Some` non-null returns.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) unsafe fn realloc_holding(
    ptr: *mut c_void,
    old: Block,
    size_and_guard: (usize, usize),
    allocator: Allocator,
    align: usize,
    hook_frame: usize,
) -> Option<*mut c_void> {
    // What `quarantine_takes` needs of a block, read without the guard:
    // the common realloc outside checks costs a few loads more, no call.
    let may_hold =
        old.scope != 0 || old.harness != 0 || scope::any_active() || scope::in_harness_now();
    if !may_hold
        || old.size > crate::track::quarantine::MAX_BLOCK
        || of_an_unknown_allocator(&old, allocator.is_rust())
    {
        return None;
    }
    // SAFETY: forwarded: the caller's contract.
    unsafe { realloc_moving(ptr, old, size_and_guard, allocator, align, hook_frame) }
}

/// [`realloc_holding`] past its quick refusals.
///
/// # Safety
///
/// As [`realloc_holding`].
#[cfg(leakcheck_interpose)]
#[inline(never)]
unsafe fn realloc_moving(
    ptr: *mut c_void,
    old: Block,
    (size, guard_bytes): (usize, usize),
    allocator: Allocator,
    align: usize,
    hook_frame: usize,
) -> Option<*mut c_void> {
    use crate::track::hooks::real::glibc;
    use crate::track::quarantine;
    let request = size.checked_add(guard_bytes)?;
    let guard = Guard::enter()?;
    if !quarantine_takes(&guard, &old, ptr) {
        return None;
    }
    let plain = glibc::malloc_serves(request, align);
    // SAFETY: `ptr` is a live block of glibc's (the caller's contract; not
    // of the own heap, which `quarantine_takes` ruled out).
    if plain && request <= unsafe { glibc::usable_size(ptr) } {
        // glibc resizes it where it is: no address is freed.
        return None;
    }
    // SAFETY: glibc's own contracts, with a non-zero size (the caller's
    // request) and, for memalign, a power of two of at least MIN_ALIGN.
    let new = unsafe {
        if plain {
            glibc::malloc(request)
        } else {
            glibc::memalign(align.max(glibc::MIN_ALIGN), request)
        }
    };
    if new.is_null() {
        drop(guard);
        on_realloc_failed(Some(old));
        return Some(new);
    }
    // SAFETY: two live, distinct blocks: `ptr` of `old.size` bytes at
    // least, `new` of `request`.
    unsafe {
        std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), old.size.min(size));
    }
    let free_stack = if old.scope != 0 {
        let current = guard.current();
        stacks::capture(&guard, hook_frame, current.base, current.stack_low)
    } else {
        0
    };
    let held = quarantine::hold(quarantine::Freed {
        addr: old.addr,
        size: old.size,
        alloc_stack: old.stack,
        free_stack,
        scope: old.scope,
        filled: 0,
    });
    drop(guard);
    if !held {
        // SAFETY: the block is glibc's, out of the table, its contents
        // copied; the caller no longer uses it.
        unsafe { glibc::free(ptr) };
    }
    // The realloc's stack, taken once: the old block's free stack is the
    // new block's allocation stack.
    record_realloc(
        Some(old),
        new,
        size,
        allocator,
        align,
        hook_frame,
        guard_bytes != 0,
        free_stack,
    );
    Some(new)
}

/// Whether `ptr`, which the table does not know, is a block of leakcheck's
/// own heap: a Rust block of a harness section, never recorded (see
/// [`alloc_general`]), which glibc's entry points free and resize there by
/// address wherever the call is made (a `Report` is built in a harness
/// section and dropped by the program). Such a free is no misuse; asked
/// first, this spares it `misuse::unknown_pointer`'s look-ups (the table,
/// the threads' stacks, `dladdr`). Asked only of unknown pointers.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) fn own_heap_unrecorded(ptr: *mut c_void) -> bool {
    crate::track::own_heap::contains(ptr)
}

/// Whether a plain block (`Packed::plain`) is freed through its own family
/// with its own layout: then, if by the program (not in a harness section),
/// the misuse checks have nothing to report and no stack to take.
#[cfg(leakcheck_interpose)]
#[inline(always)]
fn released_plainly(packed: &table::Packed, how: crate::track::misuse::Release) -> bool {
    let rust_block = packed.is_rust();
    if rust_block != how.call.is_rust() {
        return false;
    }
    match how.layout {
        Some((size, align)) if rust_block => {
            size == packed.size() && align.trailing_zeros() == packed.align_log2()
        }
        _ => true,
    }
}

/// Puts back a block whose reallocation failed (the old block is intact).
pub(crate) fn on_realloc_failed(old: Option<Block>) {
    let Some(old) = old else { return };
    let Some(guard) = Guard::enter() else { return };
    let mut block = old;
    if block.scope != 0 && !guard.count_alloc(block.scope, block.size) {
        block.scope = 0;
    }
    store(block);
}

/// Records the block a reallocation produced. A block keeps its owner when it
/// grows, shrinks or moves; if the reallocating thread is in that owner's
/// scope the stack becomes the reallocation's, as valgrind reports it.
#[inline(always)]
pub(crate) fn on_realloc(
    old: Option<Block>,
    ptr: *mut c_void,
    size: usize,
    allocator: Allocator,
    align: usize,
    hook_frame: usize,
    guarded: bool,
) {
    record_realloc(old, ptr, size, allocator, align, hook_frame, guarded, 0);
}

/// [`on_realloc`], with `captured` (non-zero) the stack of this call when
/// the caller took it already (the old block's free stack): it is the new
/// block's too.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn record_realloc(
    old: Option<Block>,
    ptr: *mut c_void,
    size: usize,
    allocator: Allocator,
    align: usize,
    hook_frame: usize,
    guarded: bool,
    captured: u32,
) {
    #[cfg(leakcheck_interpose)]
    if guarded && !ptr.is_null() {
        crate::track::misuse::write_guard(ptr, size);
    }
    let Some(old) = old else {
        if !ptr.is_null() {
            record_alloc(ptr, size, allocator, align, hook_frame, guarded);
        }
        return;
    };
    if ptr.is_null() {
        return;
    }
    zero_fresh(ptr, old.size, size);
    let Some(guard) = Guard::enter() else { return };
    let mut block = Block::new(ptr as usize, size, allocator, align);
    block.guarded = u8::from(guarded);
    block.harness = old.harness;
    block.epoch = old.epoch;
    if old.scope != 0 && guard.count_alloc(old.scope, size) {
        block.scope = old.scope;
        let current = guard.current();
        block.stack = if current.scope != old.scope {
            old.stack
        } else if captured != 0 {
            captured
        } else {
            stacks::capture(&guard, hook_frame, current.base, current.stack_low)
        };
    }
    #[cfg(feature = "profile")]
    crate::track::sample::on_alloc(&mut block, &guard, hook_frame);
    store(block);
    drop(guard);
}

#[cfg(unix)]
extern "C" fn before_fork() {
    reentry::bypass_before_fork();
    cache::lock_for_fork();
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    crate::stacks::unwind::lock_for_fork();
    scope::lock_for_fork();
    #[cfg(target_os = "linux")]
    crate::track::threads::lock_for_fork();
    stacks::lock_for_fork();
    table::lock_all_for_fork();
    #[cfg(leakcheck_interpose)]
    crate::track::quarantine::lock_for_fork();
    #[cfg(leakcheck_interpose)]
    crate::track::misuse::lock_for_fork();
    #[cfg(leakcheck_interpose)]
    crate::track::own_heap::lock_for_fork();
}

#[cfg(unix)]
extern "C" fn after_fork() {
    #[cfg(leakcheck_interpose)]
    // SAFETY: pthread_atfork runs this after `before_fork` in the forking
    // thread (parent) or its copy (child), which holds every lock.
    unsafe {
        crate::track::own_heap::unlock_after_fork()
    };
    #[cfg(leakcheck_interpose)]
    // SAFETY: pthread_atfork runs this after `before_fork` in the forking
    // thread (parent) or its copy (child), which holds every lock.
    unsafe {
        crate::track::misuse::unlock_after_fork()
    };
    #[cfg(leakcheck_interpose)]
    // SAFETY: pthread_atfork runs this after `before_fork` in the forking
    // thread (parent) or its copy (child), which holds every lock.
    unsafe {
        crate::track::quarantine::unlock_after_fork()
    };
    // SAFETY: as above.
    unsafe { table::unlock_all_after_fork() };
    // SAFETY: as above.
    unsafe { stacks::unlock_after_fork() };
    // SAFETY: as above.
    unsafe { scope::unlock_after_fork() };
    #[cfg(target_os = "linux")]
    // SAFETY: as above.
    unsafe {
        crate::track::threads::unlock_after_fork()
    };
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    // SAFETY: as above.
    unsafe {
        crate::stacks::unwind::unlock_after_fork()
    };
    // SAFETY: as above.
    unsafe { cache::unlock_after_fork() };
    reentry::bypass_after_fork();
}

#[cfg(unix)]
extern "C" fn after_fork_child() {
    #[cfg(target_os = "linux")]
    crate::sys::thread::forget_ids_in_child();
    after_fork();
    // The other threads' caches, with the table's locks free again. Under
    // the guard the prepare handler's bypass left: nothing here is recorded.
    let _bypass = reentry::Bypass::enter();
    cache::after_fork_child();
}

/// Holds the tracker's locks across `fork`, so a child never inherits one
/// that another thread held. Call once.
#[cfg(unix)]
pub(crate) fn register_fork_handlers() {
    // SAFETY: the handlers are plain functions that only take and release
    // our spin locks, which is all pthread_atfork requires.
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork_child)) };
}

#[cfg(not(unix))]
pub(crate) fn register_fork_handlers() {}
