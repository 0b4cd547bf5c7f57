//! A spin lock for the allocation path.
//!
//! `std::sync::Mutex` cannot be force-unlocked from a `pthread_atfork` child
//! handler, and anything that can allocate is off limits here, so the tracker
//! uses this instead. Critical sections are a few dozen instructions (a hash
//! table probe), so spinning with a `sched_yield` back-off is cheaper than a
//! futex round trip and never allocates.

use crate::sys::relaxed::Relaxed as _;
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};

/// A lock around `T` that neither allocates nor registers anything.
pub(crate) struct SpinLock<T> {
    /// 1 while held.
    locked: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked`, so sharing the lock
// between threads is as sound as sending `T` between them.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    #[inline(always)]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        self.raw_lock();
        SpinGuard { lock: self }
    }

    #[inline(always)]
    fn raw_lock(&self) {
        // A swap, not a compare-exchange: the same `xchg`-class instruction,
        // but at `opt-level = 0` (a user's dev profile) the compare-exchange
        // went through `core`'s run-time match over both orderings, 90
        // instructions a lock on the allocation path.
        if self.take() == 0 {
            return;
        }
        self.lock_contended();
    }

    /// `locked.swap(1, Acquire)`: the previous value. Unoptimised on
    /// x86_64, the `xchg` itself (implicitly locked, a full barrier, so at
    /// least an acquire), not `swap`'s two calls and run-time match.
    #[inline(always)]
    fn take(&self) -> u32 {
        #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
        {
            let mut value: u32 = 1;
            // SAFETY: an atomic exchange on the atomic's own aligned memory
            // (an `AtomicU32` has `u32`'s size and representation).
            unsafe {
                core::arch::asm!(
                    "xchg {v:e}, dword ptr [{p}]",
                    p = in(reg) &self.locked as *const AtomicU32 as *const u32,
                    v = inout(reg) value,
                    options(nostack, preserves_flags),
                );
            }
            value
        }
        #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
        {
            self.locked.swap(1, Ordering::Acquire)
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            if self.locked.load(Ordering::Relaxed) == 0 && self.take() == 0 {
                return;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // sched_yield(2) on Unix: no allocation, no user-space lock.
                std::thread::yield_now();
            }
        }
    }

    /// Takes the lock and keeps it until [`SpinLock::force_unlock`]: for
    /// `pthread_atfork` handlers, which lock in one callback and unlock in
    /// another.
    pub(crate) fn lock_for_fork(&self) {
        self.raw_lock();
    }

    /// Releases a lock taken by [`SpinLock::lock_for_fork`].
    ///
    /// # Safety
    ///
    /// The lock must be held through `lock_for_fork` by this thread (or, in a
    /// fork child, by the thread that forked) and not through a guard.
    pub(crate) unsafe fn force_unlock(&self) {
        self.locked.set_release(0);
    }
}

/// Holds a [`SpinLock`] until dropped.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `locked` is held by us, so no
        // other reference to the value is live.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.locked.set_release(0);
    }
}

/// Anonymous private memory straight from the kernel: the tracker's own
/// storage never comes from the allocator it tracks.
#[cfg(unix)]
pub(crate) mod pages {
    use std::ptr;

    /// Maps `bytes` of zeroed memory, or returns null. With `reserve`, the
    /// range is only reserved (`MAP_NORESERVE` on Linux): pages are committed
    /// on first touch, so large capacities cost nothing until used.
    pub(crate) fn map(bytes: usize, reserve: bool) -> *mut u8 {
        #[cfg(target_os = "linux")]
        let flag = if reserve { libc::MAP_NORESERVE } else { 0 };
        #[cfg(not(target_os = "linux"))]
        let flag = {
            let _ = reserve;
            0
        };
        anonymous(bytes, flag)
    }

    /// Maps `bytes` of zeroed memory with every page committed up front
    /// (`MAP_POPULATE` on Linux), or returns null. For hashed tables whose
    /// every page is soon touched, and touched by a read first: a read of an
    /// untouched page maps the shared zero page, and the write after it must
    /// replace that page on every CPU the process runs on (a TLB shootdown,
    /// an interrupt to each). One populating `mmap` does all pages at once.
    pub(crate) fn map_populated(bytes: usize) -> *mut u8 {
        #[cfg(target_os = "linux")]
        let flag = libc::MAP_POPULATE;
        #[cfg(not(target_os = "linux"))]
        let flag = 0;
        anonymous(bytes, flag)
    }

    fn anonymous(bytes: usize, flag: libc::c_int) -> *mut u8 {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flag;
        // SAFETY: an anonymous private mapping at a kernel-chosen address has
        // no preconditions; failure is reported as MAP_FAILED, handled below.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            ptr::null_mut()
        } else {
            p.cast()
        }
    }

    /// Unmaps memory returned by [`map`] or [`map_populated`].
    ///
    /// # Safety
    ///
    /// `p` and `bytes` must describe one earlier `map` and nothing may use it
    /// afterwards.
    pub(crate) unsafe fn unmap(p: *mut u8, bytes: usize) {
        // SAFETY: the caller guarantees the range is ours and unused.
        unsafe { libc::munmap(p.cast(), bytes) };
    }

    /// Gives the pages of `[p, p + bytes)` back to the kernel, keeping them
    /// mapped: they read as zeros when touched again.
    ///
    /// # Safety
    ///
    /// The range is page-aligned, inside one earlier [`map`], and holds
    /// nothing anyone still needs.
    #[cfg(leakcheck_interpose)]
    pub(crate) unsafe fn discard(p: *mut u8, bytes: usize) {
        // SAFETY: the caller guarantees the range is ours, aligned and dead;
        // MADV_DONTNEED on private anonymous memory only drops its pages.
        unsafe { libc::madvise(p.cast(), bytes, libc::MADV_DONTNEED) };
    }
}

/// Where there is no `mmap`, the system allocator: it is not the tracked
/// global allocator (that is a wrapper around it), so this does not recurse.
#[cfg(not(unix))]
pub(crate) mod pages {
    use std::alloc::{GlobalAlloc, Layout, System};

    const ALIGN: usize = 4096;

    /// Allocates `bytes` of zeroed memory, or returns null.
    pub(crate) fn map(bytes: usize, _reserve: bool) -> *mut u8 {
        match Layout::from_size_align(bytes, ALIGN) {
            // SAFETY: the layout has a non-zero size for every caller.
            Ok(layout) => unsafe { System.alloc_zeroed(layout) },
            Err(_) => std::ptr::null_mut(),
        }
    }

    /// The same as [`map`]: there are no pages to populate here.
    pub(crate) fn map_populated(bytes: usize) -> *mut u8 {
        map(bytes, false)
    }

    /// Frees memory returned by [`map`] or [`map_populated`].
    ///
    /// # Safety
    ///
    /// `p` and `bytes` must describe one earlier `map`.
    pub(crate) unsafe fn unmap(p: *mut u8, bytes: usize) {
        // SAFETY: the caller guarantees `p` came from `map(bytes)`, whose
        // layout was valid.
        unsafe { System.dealloc(p, Layout::from_size_align_unchecked(bytes, ALIGN)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `map_populated`'s pages are resident before anything touches them
    /// (so a hashed table's first probe of a page is no zero-page fault),
    /// and zero; `map`'s are not resident until touched.
    #[cfg(target_os = "linux")]
    #[test]
    fn populated_pages_are_resident_and_zero_before_any_touch() {
        const PAGES: usize = 16;
        let resident = |p: *mut u8| {
            let mut vec = [0u8; PAGES];
            // SAFETY: `p` maps PAGES pages; `vec` has an entry for each.
            let r = unsafe { libc::mincore(p.cast(), PAGES * 4096, vec.as_mut_ptr()) };
            assert_eq!(r, 0, "mincore");
            vec.iter().filter(|&&v| v & 1 != 0).count()
        };
        let populated = pages::map_populated(PAGES * 4096);
        let lazy = pages::map(PAGES * 4096, false);
        assert!(!populated.is_null() && !lazy.is_null());
        assert_eq!(resident(populated), PAGES);
        assert_eq!(resident(lazy), 0);
        // SAFETY: the mapping's PAGES pages are readable.
        let bytes = unsafe { std::slice::from_raw_parts(populated, PAGES * 4096) };
        assert!(bytes.iter().all(|&b| b == 0));
        // SAFETY: both came from `map`/`map_populated` with these sizes and
        // nothing uses them after.
        unsafe {
            pages::unmap(populated, PAGES * 4096);
            pages::unmap(lazy, PAGES * 4096);
        }
    }

    #[test]
    fn contended_lock_is_exclusive() {
        static COUNTER: SpinLock<(u64, bool)> = SpinLock::new((0, false));
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..20_000u64 {
                        let mut guard = COUNTER.lock();
                        assert!(!guard.1, "two holders at once");
                        guard.1 = true;
                        // Now and then hold it long enough that waiters
                        // reach the yielding part of the wait.
                        if i % 5_000 == t {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                        guard.0 += 1;
                        guard.1 = false;
                    }
                });
            }
        });
        assert_eq!(COUNTER.lock().0, 80_000);
        assert_eq!(COUNTER.locked.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_lock_held_for_fork_is_released_by_force_unlock() {
        let lock = SpinLock::new(1u8);
        lock.lock_for_fork();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *lock.lock());
            std::thread::sleep(std::time::Duration::from_millis(20));
            // SAFETY: taken by lock_for_fork above, on this thread.
            unsafe { lock.force_unlock() };
            assert_eq!(waiter.join().unwrap(), 1);
        });
    }
}
