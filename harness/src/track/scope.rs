//! Scopes: which check a block belongs to.
//!
//! A scope is one running check. Its id lives in a per-thread slot; threads
//! created while it is set inherit it (see `hooks::pthread_create`). Each
//! active scope owns one of [`SLOTS`], which counts its live blocks so that a
//! clean test ends without scanning the table.
//!
//! Thread-local state is atomics, not `Cell`s: LLVM treats `malloc` as
//! touching no visible memory and, under LTO, has merged plain thread-local
//! reads and writes across calls into the hooks.

use crate::sys::reentry::{Bypass, Guard};
use crate::sys::relaxed::Relaxed as _;
use std::sync::atomic::{
    AtomicIsize, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

const SLOT_BITS: u32 = 8;
const SLOT_COUNT: usize = 1 << SLOT_BITS;

pub(crate) struct ThreadState {
    /// The scope new blocks of this thread belong to, 0 for none.
    scope: AtomicU32,
    /// Nesting depth of [`Untracked`]: while non-zero, new blocks belong to
    /// no scope (they are the runtime's or the harness's own).
    untracked: AtomicU32,
    /// Nesting depth of [`Untracked::harness`]: blocks allocated meanwhile
    /// are leakcheck's own and never roots for the classifier.
    harness: AtomicU32,
    /// This thread's current allocation epoch (0 until its first
    /// allocation): a new one starts when a check made on this thread ends.
    /// Blocks the checking thread allocated in its current epoch are the
    /// check's caller's, and roots for its verdict.
    epoch: AtomicU32,
    /// Stack address at which this thread's scope began: unwinding stops at
    /// frames above it.
    base: AtomicUsize,
    /// Lowest address of this thread's stack, 0 if unknown: the unwinder
    /// reads the stack only between here and `base`.
    stack_low: AtomicUsize,
    /// Nesting depth of signal handlers installed through `sigaction`
    /// running on this thread (see `hooks::sigaction`).
    #[cfg(leakcheck_interpose)]
    in_signal: AtomicU32,
    /// The scope whose [`Lane`] this thread writes: set on a check's body
    /// thread for the body's run, 0 elsewhere.
    lane_owner: AtomicU32,
}

impl ThreadState {
    /// A thread's state before anything ran on it.
    pub(crate) const fn new() -> ThreadState {
        ThreadState {
            scope: AtomicU32::new(0),
            untracked: AtomicU32::new(0),
            harness: AtomicU32::new(0),
            epoch: AtomicU32::new(0),
            base: AtomicUsize::new(0),
            stack_low: AtomicUsize::new(0),
            #[cfg(leakcheck_interpose)]
            in_signal: AtomicU32::new(0),
            lane_owner: AtomicU32::new(0),
        }
    }
}

/// Runs `f` on this thread's state, which lives in `sys::reentry`'s
/// thread-local beside the guard's flags; `None` once the thread is past
/// its thread-locals.
#[inline(always)]
fn state<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    crate::sys::reentry::with_thread(f)
}

/// What the allocation path needs to know about the current thread.
#[derive(Clone, Copy, Default)]
pub(crate) struct Current {
    pub(crate) scope: u32,
    /// In an [`Untracked::harness`] section.
    pub(crate) harness: bool,
    /// The thread's allocation epoch.
    pub(crate) epoch: u32,
    pub(crate) base: usize,
    pub(crate) stack_low: usize,
}

// The guard itself is `sys::reentry`'s; what it lets the allocation path
// read is the scope's.
impl Guard {
    /// The thread's scope, if the scope is still running and this thread is
    /// not in an [`Untracked`] section.
    #[inline]
    pub(crate) fn current(&self) -> Current {
        let s = self.thread();
        {
            let scope = s.scope.relaxed();
            if scope == 0 || s.untracked.relaxed() != 0 {
                return Current {
                    harness: s.harness.relaxed() != 0,
                    epoch: epoch_of(s),
                    ..Current::default()
                };
            }
            Current {
                scope,
                harness: false,
                epoch: 0,
                base: s.base.relaxed(),
                stack_low: s.stack_low.relaxed(),
            }
        }
    }

    /// Whether this thread is in an [`Untracked::harness`] section.
    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn in_harness(&self) -> bool {
        self.thread().harness.relaxed() != 0
    }

    /// Whether this thread is running a signal handler.
    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn in_signal_handler(&self) -> bool {
        self.thread().in_signal.relaxed() != 0
    }
}

/// Whether this thread runs for a check (outside an untracked section):
/// its new blocks get guard bytes. Two thread-local loads, no guard: the
/// allocation path asks it before it allocates.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) fn in_check_fast() -> bool {
    state(|s| s.scope.relaxed() != 0 && s.untracked.relaxed() == 0).unwrap_or(false)
}

/// Whether this thread is running a signal handler installed through
/// `sigaction`.
#[cfg(leakcheck_interpose)]
pub(crate) fn in_signal_handler_now() -> bool {
    state(|s| s.in_signal.load(Relaxed) != 0).unwrap_or(true)
}

static NEXT_EPOCH: AtomicU32 = AtomicU32::new(1);

/// The thread's epoch, assigned on first use.
#[inline]
fn epoch_of(s: &ThreadState) -> u32 {
    match s.epoch.relaxed() {
        0 => {
            let fresh = NEXT_EPOCH.fetch_add(1, Relaxed).max(1);
            s.epoch.set_relaxed(fresh);
            fresh
        }
        epoch => epoch,
    }
}

impl Guard {
    /// The epoch of this thread's new blocks if they belong to no check
    /// and are not leakcheck's own (no scope, or an untracked section, and
    /// no harness section): the blocks a thread's cache may take. `None`
    /// else. Read through the guard's own pointer to the thread's state:
    /// no second thread-local look-up.
    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn plain_epoch(&self) -> Option<u32> {
        let s = self.thread();
        let in_check = s.scope.relaxed() != 0 && s.untracked.relaxed() == 0;
        if in_check || s.harness.relaxed() != 0 {
            return None;
        }
        Some(epoch_of(s))
    }
}

/// The calling thread's current allocation epoch.
pub(crate) fn current_epoch() -> u32 {
    state(epoch_of).unwrap_or(0)
}

/// Starts a new allocation epoch on the calling thread: what it allocates
/// from now on belongs to the caller of its next check.
pub(crate) fn next_epoch() {
    let _ = state(|s| {
        s.epoch
            .store(NEXT_EPOCH.fetch_add(1, Relaxed).max(1), Relaxed)
    });
}

/// Marks a signal handler running on this thread while alive. Only touches
/// this thread's const-initialised state: async-signal-safe.
#[cfg(leakcheck_interpose)]
pub(crate) struct InSignalHandler(());

#[cfg(leakcheck_interpose)]
impl InSignalHandler {
    #[inline]
    pub(crate) fn enter() -> InSignalHandler {
        let _ = state(|s| s.in_signal.fetch_add(1, Relaxed));
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        InSignalHandler(())
    }
}

#[cfg(leakcheck_interpose)]
impl Drop for InSignalHandler {
    #[inline]
    fn drop(&mut self) {
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        let _ = state(|s| s.in_signal.fetch_sub(1, Relaxed));
    }
}

/// While alive, blocks this thread allocates belong to no scope: for the
/// harness's own work (spawning the body thread, symbolising, writing the
/// report) and for the runtime's (thread creation, the panic hook).
pub(crate) struct Untracked {
    harness: bool,
}

impl Untracked {
    /// Starts an untracked section on this thread, for the runtime's
    /// allocations.
    #[cfg(leakcheck_interpose)]
    pub(crate) fn enter() -> Untracked {
        let _ = state(|s| s.untracked.fetch_add(1, Relaxed));
        Untracked { harness: false }
    }

    /// Starts an untracked section for leakcheck's own work: what it
    /// allocates (symbols, reports, their spare capacity full of stale
    /// addresses) is also never a root when leaks are classified.
    pub(crate) fn harness() -> Untracked {
        let entered = state(|s| {
            s.untracked.fetch_add(1, Relaxed);
            s.harness.fetch_add(1, Relaxed);
        });
        if entered.is_some() {
            HARNESS_SECTIONS.fetch_add(1, Relaxed);
        }
        Untracked {
            harness: entered.is_some(),
        }
    }
}

impl Drop for Untracked {
    fn drop(&mut self) {
        let _ = state(|s| {
            s.untracked.fetch_sub(1, Relaxed);
            if self.harness {
                s.harness.fetch_sub(1, Relaxed);
            }
        });
        if self.harness {
            HARNESS_SECTIONS.fetch_sub(1, Relaxed);
        }
    }
}

/// How many [`Untracked::harness`] sections are open, on all threads: the
/// allocation path reads its thread's own flag only when some are.
static HARNESS_SECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Whether the calling thread is in an [`Untracked::harness`] section, for
/// the allocators' choice of heap (`own_heap`), before any guard is taken.
/// One shared load when no thread is.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) fn in_harness_now() -> bool {
    HARNESS_SECTIONS.relaxed() != 0 && state(|s| s.harness.relaxed() != 0).unwrap_or(false)
}

/// The scope and stack base of this thread, for handing to a child thread.
#[cfg(leakcheck_interpose)]
pub(crate) fn inheritable() -> Current {
    state(|s| {
        let scope = s.scope.load(Relaxed);
        if scope == 0 || s.untracked.load(Relaxed) != 0 || !is_active(scope) {
            Current::default()
        } else {
            Current {
                scope,
                ..Current::default()
            }
        }
    })
    .unwrap_or_default()
}

/// Puts this thread in `scope`, with frames above `base` cut from stacks.
/// Returns what was there before.
pub(crate) fn enter_thread(scope: u32, base: usize) -> Current {
    let stack_low = this_thread_stack_low();
    state(|s| {
        let prev = Current {
            harness: false,
            epoch: 0,
            scope: s.scope.swap(scope, Relaxed),
            base: s.base.swap(base, Relaxed),
            stack_low: s.stack_low.swap(stack_low, Relaxed),
        };
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        prev
    })
    .unwrap_or_default()
}

/// The lowest address of this thread's stack, or 0 if unknown. Allocates
/// (glibc's `pthread_getattr_np` reallocs), so it must never run inside a
/// hook: it runs before the thread enters its scope.
#[cfg(target_os = "linux")]
fn this_thread_stack_low() -> usize {
    crate::sys::thread::stack_bounds().0
}

#[cfg(not(target_os = "linux"))]
fn this_thread_stack_low() -> usize {
    0
}

/// The calling thread's stack low bound as [`enter_thread`] found it, 0 if
/// unknown.
pub(crate) fn stack_low() -> usize {
    state(|s| s.stack_low.load(Relaxed)).unwrap_or(0)
}

/// [`enter_thread`] for a check's body thread, which from now on counts the
/// scope's blocks in the scope's lane (until [`leave_thread`]).
pub(crate) fn enter_body(scope: u32, base: usize) -> Current {
    let _ = state(|s| s.lane_owner.store(scope, Relaxed));
    enter_thread(scope, base)
}

/// Restores what [`enter_thread`] returned. A body thread stops owning its
/// scope's lane: what it frees from here on (its thread-locals, at exit)
/// counts as any other thread's would.
pub(crate) fn leave_thread(prev: Current) {
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    let _ = state(|s| {
        s.lane_owner.store(0, Relaxed);
        s.scope.store(prev.scope, Relaxed);
        s.base.store(prev.base, Relaxed);
        s.stack_low.store(prev.stack_low, Relaxed);
    });
}

/// Per-scope counters that any thread may update: `live` packs the owning
/// scope id (high 32 bits) with the count of live blocks these updates
/// added (low 32 bits, wrapping: frees of the body thread's blocks by other
/// threads take it below zero), so a late free of a block from a scope that
/// has ended can never touch the counters of the scope that reused the slot.
/// The body thread counts in its [`Lane`] instead.
#[repr(C, align(64))]
struct Slot {
    live: AtomicU64,
    /// Threads created in the scope that have not yet registered themselves
    /// (packed with the scope id like `live`).
    pending_threads: AtomicU64,
    /// Threads of the scope that found the registry of [`THREADS`] full, so
    /// the verdict could not wait for them (packed like `live`).
    unwaited_threads: AtomicU64,
    /// Signed: a late free from an ended scope may land here after a reuse,
    /// and frees of the body thread's blocks land here.
    live_bytes: AtomicIsize,
    /// The highest total of live bytes an update here saw.
    peak_bytes: AtomicUsize,
    allocations: AtomicUsize,
    frees: AtomicUsize,
}

/// The counters of a scope's body thread (the thread `run` starts for the
/// check, which makes most of its allocations): written by that thread
/// alone, with plain loads and stores (atomics only so that the verdict's
/// thread may read them; it does after joining the body thread), so that an
/// allocation inside a check makes no shared read-modify-write. Each in a
/// cache line of its own: no other thread writes near it. The verdict adds
/// them to the [`Slot`]'s. Under the re-entrancy guard, so a signal handler
/// never interrupts an update with one of its own.
#[repr(C, align(64))]
struct Lane {
    live: AtomicIsize,
    live_bytes: AtomicIsize,
    peak_bytes: AtomicUsize,
    allocations: AtomicUsize,
    frees: AtomicUsize,
}

static SLOTS: [Slot; SLOT_COUNT] = [const {
    Slot {
        live: AtomicU64::new(0),
        pending_threads: AtomicU64::new(0),
        unwaited_threads: AtomicU64::new(0),
        live_bytes: AtomicIsize::new(0),
        peak_bytes: AtomicUsize::new(0),
        allocations: AtomicUsize::new(0),
        frees: AtomicUsize::new(0),
    }
}; SLOT_COUNT];

static LANES: [Lane; SLOT_COUNT] = [const {
    Lane {
        live: AtomicIsize::new(0),
        live_bytes: AtomicIsize::new(0),
        peak_bytes: AtomicUsize::new(0),
        allocations: AtomicUsize::new(0),
        frees: AtomicUsize::new(0),
    }
}; SLOT_COUNT];

static NEXT_GENERATION: AtomicU32 = AtomicU32::new(1);

/// How many scopes are running.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether any check is running in the process.
#[cfg(leakcheck_interpose)]
#[inline]
pub(crate) fn any_active() -> bool {
    ACTIVE.relaxed() != 0
}

fn slot(scope: u32) -> &'static Slot {
    &SLOTS[scope as usize & (SLOT_COUNT - 1)]
}

fn lane(scope: u32) -> &'static Lane {
    &LANES[scope as usize & (SLOT_COUNT - 1)]
}

pub(crate) fn is_active(scope: u32) -> bool {
    (slot(scope).live.relaxed() >> 32) as u32 == scope
}

/// Whether this thread counts `scope`'s blocks in its lane. The body thread
/// owns its lane only while its scope runs (the verdict joins it first).
#[inline(always)]
fn owns(scope: u32) -> bool {
    state(|s| s.lane_owner.relaxed() == scope).unwrap_or(false)
}

impl Guard {
    /// Counts a new block for `scope` (false if the scope has ended: the
    /// block then belongs to no scope), in the scope's lane if this thread
    /// owns it, read through the guard's own pointer to the thread's
    /// state: no second thread-local look-up.
    #[inline(always)]
    pub(crate) fn count_alloc(&self, scope: u32, size: usize) -> bool {
        count_alloc_as(self.thread().lane_owner.relaxed() == scope, scope, size)
    }

    /// [`count_free`], as [`Guard::count_alloc`].
    #[inline(always)]
    pub(crate) fn count_free(&self, scope: u32, size: usize) {
        count_free_as(self.thread().lane_owner.relaxed() == scope, scope, size);
    }
}

/// `value + delta`, by the lane's only writer.
#[inline(always)]
fn add_own(value: &AtomicIsize, delta: isize) -> isize {
    let next = value.relaxed().wrapping_add(delta);
    value.set_relaxed(next);
    next
}

#[inline(always)]
fn bump_own(value: &AtomicUsize) {
    value.set_relaxed(value.relaxed().wrapping_add(1));
}

/// Adds `delta` to the wrapping count in the low half of `live`, if its
/// high half is still `scope`. False if the scope has ended.
#[inline]
fn adjust_live(live: &AtomicU64, scope: u32, delta: u32) -> bool {
    let mut cur = live.load(Relaxed);
    loop {
        if (cur >> 32) as u32 != scope {
            return false;
        }
        let next = (cur & !u64::from(u32::MAX)) | u64::from((cur as u32).wrapping_add(delta));
        match live.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}

/// Counts a new block for `scope` ([`Guard::count_alloc`] on the
/// allocation path), as this thread's: in the scope's lane if it owns it.
#[cfg(test)]
fn count_alloc(scope: u32, size: usize) -> bool {
    count_alloc_as(owns(scope), scope, size)
}

/// Counts a new block for `scope`, in its lane if `owned` (this thread
/// writes the lane). Returns false if the scope has ended (the block then
/// belongs to no scope).
#[inline(always)]
fn count_alloc_as(owned: bool, scope: u32, size: usize) -> bool {
    let size = size as isize;
    if owned {
        let lane = lane(scope);
        add_own(&lane.live, 1);
        bump_own(&lane.allocations);
        let own = add_own(&lane.live_bytes, size);
        let total = own.saturating_add(slot(scope).live_bytes.relaxed());
        let total = total.max(0) as usize;
        if total > lane.peak_bytes.relaxed() {
            lane.peak_bytes.set_relaxed(total);
        }
        return true;
    }
    let slot = slot(scope);
    if !adjust_live(&slot.live, scope, 1) {
        return false;
    }
    slot.allocations.fetch_add(1, Relaxed);
    let live = slot
        .live_bytes
        .fetch_add(size, Relaxed)
        .saturating_add(size)
        .saturating_add(lane(scope).live_bytes.relaxed());
    slot.peak_bytes.fetch_max(live.max(0) as usize, Relaxed);
    true
}

/// Adds `delta` to the scope's count of threads created but not yet
/// registered, if the scope is still running.
#[cfg(leakcheck_interpose)]
fn adjust_pending(scope: u32, delta: i64) {
    let slot = slot(scope);
    let mut cur = slot.pending_threads.load(Relaxed);
    loop {
        if (cur >> 32) as u32 != scope || (delta < 0 && cur as u32 == 0) {
            return;
        }
        let next = (cur as i64 + delta) as u64;
        match slot
            .pending_threads
            .compare_exchange_weak(cur, next, Relaxed, Relaxed)
        {
            Ok(_) => return,
            Err(now) => cur = now,
        }
    }
}

/// Called by the `pthread_create` hook before the thread exists, so that a
/// verdict taken before the new thread first runs still waits for it.
#[cfg(leakcheck_interpose)]
pub(crate) fn thread_creating(scope: u32) {
    adjust_pending(scope, 1);
}

/// Undoes [`thread_creating`]: the thread has registered itself (or was
/// never created).
#[cfg(leakcheck_interpose)]
pub(crate) fn thread_created(scope: u32) {
    adjust_pending(scope, -1);
}

fn pending_threads(scope: u32) -> bool {
    let v = slot(scope).pending_threads.load(Relaxed);
    (v >> 32) as u32 == scope && v as u32 != 0
}

/// Counts the end of a block that belonged to `scope`.
#[inline]
pub(crate) fn count_free(scope: u32, size: usize) {
    count_free_as(owns(scope), scope, size);
}

/// [`count_free`], `owned` saying whether this thread writes the lane.
#[inline(always)]
fn count_free_as(owned: bool, scope: u32, size: usize) {
    if owned {
        let lane = lane(scope);
        add_own(&lane.live, -1);
        bump_own(&lane.frees);
        add_own(&lane.live_bytes, -(size as isize));
        return;
    }
    let slot = slot(scope);
    if !adjust_live(&slot.live, scope, u32::MAX) {
        return;
    }
    slot.frees.fetch_add(1, Relaxed);
    slot.live_bytes.fetch_sub(size as isize, Relaxed);
}

/// What a scope did, read when it ends.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ScopeStats {
    pub(crate) live_blocks: usize,
    pub(crate) allocations: usize,
    pub(crate) frees: usize,
    pub(crate) peak_live_bytes: usize,
    /// Threads the verdict could not wait for: more than [`THREAD_CAPACITY`]
    /// threads of running checks were alive at once.
    pub(crate) unwaited_threads: usize,
}

/// Claims a free slot and returns the new scope's id, or `None` if every
/// slot is taken by a running check.
pub(crate) fn begin() -> Option<u32> {
    // Serialised so that resetting a slot's counters cannot race another
    // `begin` claiming the same slot.
    static BEGIN: crate::sys::sync::SpinLock<()> = crate::sys::sync::SpinLock::new(());
    let _bypass = Bypass::enter();
    let _serial = BEGIN.lock();
    for _ in 0..SLOT_COUNT * 4 {
        let generation = NEXT_GENERATION.fetch_add(1, Relaxed) & ((1 << (32 - SLOT_BITS)) - 1);
        if generation == 0 {
            continue;
        }
        for index in 0..SLOT_COUNT as u32 {
            let id = (generation << SLOT_BITS) | index;
            let slot = &SLOTS[index as usize];
            // Acquire: the `end` that freed the slot read its counters and
            // its lane before (its Release swap), so resetting them here
            // cannot change what that check reports.
            let cur = slot.live.load(Acquire);
            if cur >> 32 != 0 {
                continue;
            }
            slot.live_bytes.store(0, Relaxed);
            slot.pending_threads.store(u64::from(id) << 32, Relaxed);
            slot.unwaited_threads.store(u64::from(id) << 32, Relaxed);
            slot.peak_bytes.store(0, Relaxed);
            slot.allocations.store(0, Relaxed);
            slot.frees.store(0, Relaxed);
            // No thread owns the lane: its last owner, an ended scope's
            // body thread, was joined before that scope's `end`.
            let lane = &LANES[index as usize];
            lane.live.store(0, Relaxed);
            lane.live_bytes.store(0, Relaxed);
            lane.peak_bytes.store(0, Relaxed);
            lane.allocations.store(0, Relaxed);
            lane.frees.store(0, Relaxed);
            if slot
                .live
                .compare_exchange(cur, u64::from(id) << 32, Relaxed, Relaxed)
                .is_ok()
            {
                ACTIVE.fetch_add(1, Relaxed);
                return Some(id);
            }
        }
    }
    None
}

/// Ends `scope`: from now on its threads allocate into no scope. Blocks it
/// left live keep its id in the table.
pub(crate) fn end(scope: u32) -> ScopeStats {
    let slot = slot(scope);
    let lane = lane(scope);
    // Everything is read, and the slot's thread counts retired, before the
    // slot is freed (the swap of `live` below): from then on a `begin` may
    // claim it for another check and reset its counters and its lane (it
    // takes the lowest free slot, so it often does at once). The body
    // thread has been joined: its lane is final. A block another thread
    // counted in `live` may still be adding to the slot's statistics.
    slot.pending_threads.store(0, Relaxed);
    let unwaited = slot.unwaited_threads.swap(0, Relaxed);
    let lane_live = lane.live.load(Relaxed);
    let allocations = slot
        .allocations
        .load(Relaxed)
        .wrapping_add(lane.allocations.load(Relaxed));
    let frees = slot
        .frees
        .load(Relaxed)
        .wrapping_add(lane.frees.load(Relaxed));
    let peak_live_bytes = slot
        .peak_bytes
        .load(Relaxed)
        .max(lane.peak_bytes.load(Relaxed));
    // Release: the reads above come before the slot is free to a `begin`
    // (which loads `live` with Acquire before resetting anything).
    let live = slot.live.swap(0, Release);
    let unwaited = if (unwaited >> 32) as u32 == scope {
        unwaited as u32 as usize
    } else {
        0
    };
    if (live >> 32) as u32 == scope {
        ACTIVE.fetch_sub(1, Relaxed);
    }
    debug_assert_eq!((live >> 32) as u32, scope);
    let live_blocks = (live as u32 as i32 as isize).wrapping_add(lane_live);
    ScopeStats {
        live_blocks: live_blocks.max(0) as usize,
        allocations,
        frees,
        peak_live_bytes,
        unwaited_threads: unwaited,
    }
}

/// Threads created inside scopes: (scope, kernel thread id, has returned
/// from its start routine). `std::thread::scope` returns once its threads'
/// closures are done, not once the threads have exited, so a verdict taken at
/// once would see their thread-locals and std's thread handles as leaks.
static THREADS: crate::sys::sync::SpinLock<Registered> =
    crate::sys::sync::SpinLock::new(Registered {
        entries: [(0, 0, false); THREAD_CAPACITY],
        used: 0,
    });

/// The entries of [`THREADS`]: free ones are `(0, 0, false)`.
struct Registered {
    entries: [(u32, i32, bool); THREAD_CAPACITY],
    /// Every entry from here on is free: scans stop here. Entries are taken
    /// lowest first, so it stays near the most threads of checks alive at
    /// once, and a verdict does not walk all of [`THREAD_CAPACITY`] (it had
    /// been 100,000 instructions a check in the dev profile).
    used: usize,
}

impl Registered {
    /// The entries that may be taken.
    fn taken(&mut self) -> &mut [(u32, i32, bool)] {
        &mut self.entries[..self.used]
    }
}

/// Threads of running checks alive at once that the verdict can wait for.
pub(crate) const THREAD_CAPACITY: usize = 1024;

#[cfg(leakcheck_interpose)]
use crate::sys::thread::current_tid as gettid;

#[cfg(target_os = "linux")]
use crate::sys::thread::{
    alive as thread_alive, cpu_ns as thread_cpu_ns, runnable as thread_runnable,
};

// Without the pthread_create hook no thread is ever registered.
#[cfg(not(target_os = "linux"))]
fn thread_alive(_tid: i32) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn thread_runnable(_tid: i32) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_ns(_tid: i32) -> u64 {
    0
}

/// `pthread_atfork` prepare: a child must not inherit the registry locked.
pub(crate) fn lock_for_fork() {
    THREADS.lock_for_fork();
}

/// `pthread_atfork` parent and child.
///
/// # Safety
///
/// Only after [`lock_for_fork`] on the forking thread.
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: the caller guarantees lock_for_fork holds the registry.
    unsafe { THREADS.force_unlock() };
}

/// Notes that this thread runs for `scope`.
#[cfg(leakcheck_interpose)]
pub(crate) fn thread_started(scope: u32) {
    let tid = gettid();
    let _bypass = Bypass::enter();
    let mut threads = THREADS.lock();
    // Entries of scopes that have ended are free too: a thread that
    // registers after its scope's verdict would otherwise hold one forever.
    // The first entry past `used` is free.
    let free = |threads: &Registered| {
        threads.entries[..(threads.used + 1).min(THREAD_CAPACITY)]
            .iter()
            .position(|&(s, _, _)| s == 0 || !is_active(s))
    };
    // Full: entries of threads that have exited are free as well (a test
    // that starts thousands of short-lived threads one after another).
    let found = free(&threads).or_else(|| {
        for entry in threads
            .taken()
            .iter_mut()
            .filter(|(_, t, _)| !thread_alive(*t))
        {
            *entry = (0, 0, false);
        }
        free(&threads)
    });
    match found {
        Some(i) => {
            threads.entries[i] = (scope, tid, false);
            threads.used = threads.used.max(i + 1);
        }
        None => {
            let unwaited = &slot(scope).unwaited_threads;
            let mut cur = unwaited.load(Relaxed);
            while (cur >> 32) as u32 == scope {
                match unwaited.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
        }
    }
}

/// Notes that this thread has returned from its start routine: it only runs
/// its thread-local destructors now, then exits.
#[cfg(leakcheck_interpose)]
pub(crate) fn thread_exiting() {
    let tid = gettid();
    let _bypass = Bypass::enter();
    let mut threads = THREADS.lock();
    if let Some(slot) = threads
        .taken()
        .iter_mut()
        .find(|(s, t, _)| *s != 0 && *t == tid)
    {
        slot.2 = true;
    }
}

/// Waits until the threads `scope` created have exited, so that their
/// thread-local destructors have run: up to `limit` for threads already on
/// their way out, not yet started, or still in their start routine but
/// making progress (a scoped thread between its closure and its exit, which
/// a loaded machine may keep from a CPU, or blocked for a moment on a lock);
/// a thread in its start routine that has made no progress for `grace` is
/// an idle worker the test left running, and is not waited for.
pub(crate) fn wait_for_threads(scope: u32, grace: std::time::Duration, limit: std::time::Duration) {
    let started = std::time::Instant::now();
    // Threads still in their start routine: when their CPU time last moved.
    let mut progress = crate::sys::mapvec::MapVec::<Progress>::new();
    let mut running = crate::sys::mapvec::MapVec::<i32>::new();
    loop {
        let mut exiting = false;
        running.clear();
        {
            let _bypass = Bypass::enter();
            let mut threads = THREADS.lock();
            for slot in threads.taken().iter_mut().filter(|(s, _, _)| *s == scope) {
                if !thread_alive(slot.1) {
                    *slot = (0, 0, false);
                } else if slot.2 {
                    exiting = true;
                } else if !running.push(slot.1) {
                    // No memory to track it: wait as for one on its way out.
                    exiting = true;
                }
            }
        }
        // A thread created but not yet started will start, and is no
        // long-lived worker: wait for it as for one on its way out.
        exiting |= pending_threads(scope);
        let now = std::time::Instant::now();
        let waited = now - started;
        // Outside the registry's lock: reading a thread's state is a file.
        let busy = waited >= grace
            && running
                .iter()
                .any(|&tid| making_progress(&mut progress, tid, now, grace));
        let idle_only = !running.is_empty() && waited >= grace && !busy;
        let done = (!exiting && running.is_empty()) || waited >= limit || (!exiting && idle_only);
        if done {
            let _bypass = Bypass::enter();
            let mut threads = THREADS.lock();
            for slot in threads.taken().iter_mut().filter(|(s, _, _)| *s == scope) {
                *slot = (0, 0, false);
            }
            return;
        }
        let pause = if waited >= grace { 1000 } else { 20 };
        std::thread::sleep(std::time::Duration::from_micros(pause));
    }
}

/// A thread's CPU time when last seen, and when it last changed.
#[derive(Clone, Copy)]
struct Progress {
    tid: i32,
    cpu_ns: u64,
    moved: std::time::Instant,
}

/// Whether thread `tid` has run, or waited for a CPU, within the last
/// `window`: its CPU time moved, or it is runnable now. A thread first seen
/// here counts as progressing for one window.
fn making_progress(
    progress: &mut crate::sys::mapvec::MapVec<Progress>,
    tid: i32,
    now: std::time::Instant,
    window: std::time::Duration,
) -> bool {
    let cpu_ns = thread_cpu_ns(tid);
    let runnable = thread_runnable(tid);
    match progress.iter_mut().find(|p| p.tid == tid) {
        Some(seen) => {
            if seen.cpu_ns != cpu_ns || runnable {
                seen.cpu_ns = cpu_ns;
                seen.moved = now;
            }
            now - seen.moved < window
        }
        None => {
            let _ = progress.push(Progress {
                tid,
                cpu_ns,
                moved: now,
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_ignore_ended_scopes() {
        let a = begin().expect("slot");
        assert!(count_alloc(a, 10));
        assert!(count_alloc(a, 20));
        count_free(a, 10);
        let stats = end(a);
        assert_eq!(stats.live_blocks, 1);
        assert_eq!(stats.allocations, 2);
        assert_eq!(stats.frees, 1);
        assert_eq!(stats.peak_live_bytes, 30);
        assert!(!count_alloc(a, 5), "an ended scope takes no blocks");
        count_free(a, 20); // a late free must not disturb anything
        assert!(!is_active(a));
    }

    #[test]
    fn the_body_threads_lane_and_other_threads_add_up() {
        let a = begin().expect("slot");
        std::thread::scope(|s| {
            s.spawn(|| {
                let previous = enter_body(a, 0);
                // This thread's own allocations stay out of the counts.
                let untracked = Untracked::harness();
                assert!(count_alloc(a, 100));
                assert!(count_alloc(a, 50));
                count_free(a, 100);
                // Another thread frees one of the body's blocks meanwhile,
                // and allocates one of its own.
                std::thread::scope(|t| {
                    t.spawn(|| {
                        count_free(a, 50);
                        assert!(count_alloc(a, 70));
                    });
                });
                assert!(count_alloc(a, 30));
                drop(untracked);
                leave_thread(previous);
                // After the body: counted as any other thread's free.
                count_free(a, 30);
            });
        });
        let stats = end(a);
        assert_eq!(stats.live_blocks, 1, "{stats:?}");
        assert_eq!(stats.allocations, 4, "{stats:?}");
        assert_eq!(stats.frees, 3, "{stats:?}");
        // 150 live before the remote free; 70 + 30 after.
        assert_eq!(stats.peak_live_bytes, 150, "{stats:?}");
        assert!(!count_alloc(a, 5), "an ended scope takes no blocks");
    }

    /// Checks ending on some threads while others begin: each gets its own
    /// counts. `begin` takes the lowest free slot, so the slot a check
    /// ends in is claimed again at once, and the new check resets the
    /// slot's counters and its lane; `end` must have read them first (it
    /// read the lane after freeing the slot, and a check whose blocks were
    /// all its body thread's came out with no allocation and no live
    /// block: a clean verdict for a leak).
    #[test]
    fn a_check_ending_while_another_begins_keeps_its_counts() {
        const THREADS: usize = 4;
        const CHECKS: usize = 200_000;
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..CHECKS {
                        let Some(a) = begin() else { continue };
                        // The lane's only writer, as a body thread is.
                        assert!(count_alloc_as(true, a, 16));
                        assert!(count_alloc_as(true, a, 16));
                        count_free_as(true, a, 16);
                        assert!(count_alloc_as(false, a, 8));
                        let stats = end(a);
                        assert_eq!(
                            (stats.live_blocks, stats.allocations, stats.frees),
                            (2, 3, 1),
                            "{stats:?}"
                        );
                        assert_eq!(stats.peak_live_bytes, 32, "{stats:?}");
                    }
                });
            }
        });
    }
}
