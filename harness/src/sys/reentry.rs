//! Re-entrancy: which of leakcheck's own calls is running on this thread.
//!
//! The allocation path records a block only when no bookkeeping of ours is
//! already running on the thread; everything below it (stack capture, the
//! tables, the thread registry) marks itself here, so that a nested
//! allocation — from the unwinder, a signal handler, a wrapped allocator —
//! goes straight to the real allocator, unrecorded.
//!
//! Thread-local state is atomics, not `Cell`s: LLVM treats `malloc` as
//! touching no visible memory and, under LTO, has merged plain thread-local
//! reads and writes across calls into the hooks.

use crate::sys::relaxed::Relaxed as _;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

const GUARD: u32 = 1;
const IN_WRAPPED_ALLOCATOR: u32 = 2;

struct Flags {
    /// `GUARD` while this thread is inside tracker bookkeeping;
    /// `IN_WRAPPED_ALLOCATOR` while a `Tracked<A>` calls its inner allocator.
    flags: AtomicU32,
    /// `flags` as they were before `pthread_atfork`'s prepare handler.
    flags_before_fork: AtomicU32,
    /// What the allocation path reads of the thread's check (`track::scope`
    /// owns it). Here, in the guard's thread-local, so that a hook finds all
    /// of its thread's state at the address [`Guard::enter`] read once: at
    /// `opt-level = 0` each access through `LocalKey` had cost 100 to 230
    /// instructions, several times a hook.
    scope: crate::track::scope::ThreadState,
    /// This thread's previous walks (`walk_core::Traces`), touched only by
    /// a capture's walk and the `remember_in` after it, under the guard:
    /// here too, so that a capture reaches them through the guard's
    /// pointer rather than a thread-local look-up of their own (about 67
    /// instructions a capture unoptimised).
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    traces: std::cell::UnsafeCell<crate::stacks::walk_core::Traces>,
}

thread_local! {
    static STATE: Flags = const {
        Flags {
            flags: AtomicU32::new(0),
            flags_before_fork: AtomicU32::new(0),
            scope: crate::track::scope::ThreadState::new(),
            #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
            traces: std::cell::UnsafeCell::new(crate::stacks::walk_core::NO_TRACES),
        }
    };
}

/// The re-entrancy guard: *the* way for the allocation path to do anything
/// that may allocate. While it is held on a thread, the hooks pass every call
/// straight to glibc without recording it, so bookkeeping can never recurse
/// into itself (stack unwinding, a signal handler that mallocs, ...).
///
/// It holds the address of its thread's state: a raw pointer, so a guard is
/// neither `Send` nor `Sync` and never leaves the thread that took it.
pub(crate) struct Guard {
    state: *const Flags,
}

impl Guard {
    /// Takes the guard, or returns `None` if this thread already holds it, is
    /// inside a wrapped allocator, or is exiting and past its thread-locals.
    #[inline]
    pub(crate) fn enter() -> Option<Guard> {
        // A `match`, not `.ok().flatten()` (or `unwrap_or_default`):
        // unoptimised (a user's dev profile) those are calls on every
        // allocation.
        #[allow(clippy::manual_unwrap_or_default)]
        match STATE.try_with(|s| {
            if s.flags.relaxed() != 0 {
                return None;
            }
            s.flags.set_relaxed(GUARD);
            Some(Guard { state: s })
        }) {
            Ok(guard) => guard,
            Err(_) => None,
        }
    }

    /// This thread's walks, for a capture made under this guard (the only
    /// access: nothing else holds a reference into them meanwhile).
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64"))]
    #[inline(always)]
    pub(crate) fn traces(&self) -> *mut crate::stacks::walk_core::Traces {
        // SAFETY: `state` is this thread's live `STATE` (see `thread`).
        unsafe { (*self.state).traces.get() }
    }

    /// This thread's state as `track::scope` keeps it.
    #[inline(always)]
    pub(crate) fn thread(&self) -> &crate::track::scope::ThreadState {
        // SAFETY: `state` is this thread's `STATE`, const-initialised and
        // without a destructor, so it lives as long as the thread; the guard
        // cannot leave the thread (a raw pointer: neither Send nor Sync),
        // and every field is an atomic, so shared access is sound.
        unsafe { &(*self.state).scope }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as in `thread`: the thread's own live thread-local.
        unsafe { (*self.state).flags.set_relaxed(0) };
    }
}

/// Runs `f` on this thread's `track::scope` state, for code that holds no
/// [`Guard`]; `None` once the thread is past its thread-locals.
#[inline(always)]
pub(crate) fn with_thread<R>(f: impl FnOnce(&crate::track::scope::ThreadState) -> R) -> Option<R> {
    STATE.try_with(|s| f(&s.scope)).ok()
}

/// Sets this thread's allocation-path flags while alive, then restores
/// what was there: the one mechanism behind [`Bypass`] and
/// [`WrappedAllocatorCall`].
struct FlagsSet(u32);

impl FlagsSet {
    #[inline]
    fn enter(flags: u32) -> FlagsSet {
        let prev = STATE
            .try_with(|s| s.flags.swap(flags, Relaxed))
            .unwrap_or(0);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        FlagsSet(prev)
    }
}

impl Drop for FlagsSet {
    #[inline]
    fn drop(&mut self) {
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        let prev = self.0;
        let _ = STATE.try_with(|s| s.flags.store(prev, Relaxed));
    }
}

/// While alive, the hooks pass every call on this thread straight to the
/// real allocator, unrecorded. Held by everything that takes a tracker lock
/// outside a hook (the verdict's table scan, the stack store, the thread
/// registry): a signal handler that allocates on this thread must not wait
/// for a lock its own thread holds.
pub(crate) struct Bypass(#[expect(dead_code, reason = "held for its Drop")] FlagsSet);

impl Bypass {
    pub(crate) fn enter() -> Bypass {
        Bypass(FlagsSet::enter(GUARD))
    }
}

/// `pthread_atfork` prepare: from here until [`bypass_after_fork`] this
/// thread holds every tracker lock, so its own allocations (a later prepare
/// handler's, a signal handler's) must not wait for them.
pub(crate) fn bypass_before_fork() {
    let _ = STATE.try_with(|s| {
        s.flags_before_fork
            .store(s.flags.swap(GUARD, Relaxed), Relaxed)
    });
}

/// `pthread_atfork` parent and child: undoes [`bypass_before_fork`].
pub(crate) fn bypass_after_fork() {
    let _ = STATE.try_with(|s| s.flags.store(s.flags_before_fork.load(Relaxed), Relaxed));
}

/// Marks a wrapped allocator's call into its inner allocator, so that the C
/// hooks do not record the same block a second time.
pub(crate) struct WrappedAllocatorCall(#[expect(dead_code, reason = "held for its Drop")] FlagsSet);

impl WrappedAllocatorCall {
    #[inline]
    pub(crate) fn enter() -> WrappedAllocatorCall {
        WrappedAllocatorCall(FlagsSet::enter(IN_WRAPPED_ALLOCATOR))
    }
}
