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

/// `STATE`'s offset from the thread pointer when it lies in the
/// executable's own static TLS block, where that offset is the same on
/// every thread; 0 until [`init_state_offset`] found it so (or where it is
/// not: leakcheck in a shared object, whose TLS may be allocated per
/// thread, lazily).
#[cfg(all(leakcheck_interpose, target_arch = "x86_64", leakcheck_unoptimized))]
static STATE_OFFSET: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The thread pointer (`fs:0` on x86_64 glibc: the thread's own TCB
/// address, which its static TLS blocks sit below at fixed offsets).
#[cfg(all(leakcheck_interpose, target_arch = "x86_64", leakcheck_unoptimized))]
#[inline(always)]
fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reads the word at `fs:0`, which glibc sets on every thread
    // to the thread's TCB address; no stack use, flags untouched.
    unsafe {
        core::arch::asm!(
            "mov {tp}, qword ptr fs:[0]",
            tp = out(reg) tp,
            options(nostack, readonly, preserves_flags),
        );
    }
    tp
}

/// Finds [`STATE_OFFSET`], once, on any thread: in a user's dev profile
/// every hook's `STATE.try_with` is a `LocalKey` call through a function
/// pointer and a closure, about 80 instructions (twice a block, and at
/// every allocation of the harness's); with the offset it is two loads.
/// Only where `STATE` provably lies in the executable's TLS block: the
/// loader's module 1 (the main program's), whose block this thread's
/// `dlpi_tls_data` points at, holding all of `STATE`.
#[cfg(all(leakcheck_interpose, target_arch = "x86_64", leakcheck_unoptimized))]
pub(crate) fn init_state_offset() {
    struct Find {
        addr: usize,
        len: usize,
        inside: bool,
    }
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // A loader whose info ends before the TLS fields: not found.
        let tls_fields_end = std::mem::offset_of!(libc::dl_phdr_info, dlpi_tls_data)
            + std::mem::size_of::<*mut libc::c_void>();
        if size < tls_fields_end {
            return 1;
        }
        // SAFETY: dl_iterate_phdr passes a valid info of `size` bytes for
        // the duration of the call, and `data` is the `Find` below,
        // borrowed by no one else.
        let (info, find) = unsafe { (&*info, &mut *data.cast::<Find>()) };
        if info.dlpi_tls_modid != 1 || info.dlpi_tls_data.is_null() {
            return 0;
        }
        let block = info.dlpi_tls_data as usize;
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers.
            let phdr = unsafe { &*info.dlpi_phdr.add(i) };
            if phdr.p_type == libc::PT_TLS {
                let size = phdr.p_memsz as usize;
                // Checked sums: a panic here would be in the allocation
                // path's set-up.
                find.inside = find.addr >= block
                    && match (find.addr.checked_add(find.len), block.checked_add(size)) {
                        (Some(end), Some(limit)) => end <= limit,
                        _ => false,
                    };
            }
        }
        1
    }
    let Ok(addr) = STATE.try_with(|s| s as *const Flags as usize) else {
        return;
    };
    let mut find = Find {
        addr,
        len: std::mem::size_of::<Flags>(),
        inside: false,
    };
    // SAFETY: the callback only reads the infos and writes `find`; it
    // neither allocates nor unwinds.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut find as *mut Find).cast()) };
    let offset = addr.wrapping_sub(thread_pointer());
    if find.inside && offset != 0 {
        STATE_OFFSET.store(offset, std::sync::atomic::Ordering::Relaxed);
    }
}

/// This thread's `STATE`, or null once it is past its thread-locals (never,
/// for a const-initialised state without a destructor, but `try_with` says
/// so if it ever is).
#[inline(always)]
fn state() -> *const Flags {
    #[cfg(all(leakcheck_interpose, target_arch = "x86_64", leakcheck_unoptimized))]
    {
        let offset = STATE_OFFSET.relaxed();
        if offset != 0 {
            return thread_pointer().wrapping_add(offset) as *const Flags;
        }
    }
    match STATE.try_with(|s| s as *const Flags) {
        Ok(state) => state,
        Err(_) => std::ptr::null(),
    }
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
        let state = state();
        if state.is_null() {
            return None;
        }
        // SAFETY: `state` is this thread's live `STATE` (see `thread`).
        let flags = unsafe { &(*state).flags };
        if flags.relaxed() != 0 {
            return None;
        }
        flags.set_relaxed(GUARD);
        Some(Guard { state })
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
    let state = state();
    if state.is_null() {
        return None;
    }
    // SAFETY: `state` is this thread's live `STATE` (see `Guard::thread`).
    Some(f(unsafe { &(*state).scope }))
}

/// Sets this thread's allocation-path flags while alive, then restores
/// what was there: the one mechanism behind [`Bypass`] and
/// [`WrappedAllocatorCall`].
struct FlagsSet(u32);

impl FlagsSet {
    #[inline]
    fn enter(flags: u32) -> FlagsSet {
        let state = state();
        let prev = if state.is_null() {
            0
        } else {
            // SAFETY: `state` is this thread's live `STATE` (see
            // `Guard::thread`).
            unsafe { (*state).flags.swap(flags, Relaxed) }
        };
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        FlagsSet(prev)
    }
}

impl Drop for FlagsSet {
    #[inline]
    fn drop(&mut self) {
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        let state = state();
        if !state.is_null() {
            // SAFETY: as in `enter`.
            unsafe { (*state).flags.store(self.0, Relaxed) };
        }
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
    let state = state();
    if !state.is_null() {
        // SAFETY: `state` is this thread's live `STATE` (see
        // `Guard::thread`).
        let s = unsafe { &*state };
        s.flags_before_fork
            .store(s.flags.swap(GUARD, Relaxed), Relaxed);
    }
}

/// `pthread_atfork` parent and child: undoes [`bypass_before_fork`].
pub(crate) fn bypass_after_fork() {
    let state = state();
    if !state.is_null() {
        // SAFETY: as in `bypass_before_fork`.
        let s = unsafe { &*state };
        s.flags.store(s.flags_before_fork.load(Relaxed), Relaxed);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The address every hook uses is `STATE`'s on each thread: the main
    /// test thread, a thread spawned now, and one spawned from that one.
    #[test]
    fn the_state_found_by_offset_is_each_threads_own() {
        crate::track::hooks::init();
        fn same_here() -> bool {
            let by_std = STATE
                .try_with(|s| s as *const Flags)
                .expect("a const thread-local without a destructor");
            state() == by_std
        }
        assert!(same_here());
        let nested = std::thread::spawn(|| (same_here(), std::thread::spawn(same_here).join()));
        let (outer, inner) = nested.join().unwrap();
        assert!(outer);
        assert!(inner.unwrap());
        // The test binary is an executable: in its dev profile, the fast
        // path is the one taken.
        #[cfg(all(leakcheck_interpose, target_arch = "x86_64", leakcheck_unoptimized))]
        assert_ne!(
            STATE_OFFSET.relaxed(),
            0,
            "STATE was not found in the executable's TLS"
        );
    }
}
