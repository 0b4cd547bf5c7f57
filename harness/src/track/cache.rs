//! Per-thread caches of blocks: the allocation path outside checks without
//! a lock.
//!
//! While no check runs anywhere in the process, nothing reads the block
//! table but the allocation path itself, so a block of no check (no scope,
//! no stack, not leakcheck's own) need not be in the shared table at all:
//! its thread files it in a small cache of its own, and a `free` on the same
//! thread finds it there. Those two steps are plain loads and stores in the
//! thread's own cache line — no lock, no read-modify-write — which is what
//! makes the pair cheap (two uncontended lock round trips alone cost twice
//! glibc's `malloc` + `free`).
//!
//! Each cache is direct-mapped: [`ENTRIES`] entries, a block's entry chosen
//! by its address. The protocol:
//!
//! - **Owner** (the thread the cache belongs to): every put and take runs
//!   inside its `busy` window (`busy = 1`, then the gate is read; `busy = 0`
//!   with release ordering at the end). A put into an empty entry is a plain
//!   store; a put over another block moves that block to the table first,
//!   claiming the entry with `addr → addr | MOVING` (a compare-exchange, so
//!   that no other thread can take the block meanwhile). A take of its own
//!   block is a plain store of 0.
//! - **Other threads** freeing a block that is in no table of theirs (a
//!   block handed to another thread): the shared table first, then the one
//!   entry of each cache where the address would be, taking it with a
//!   compare-exchange `addr → 0`, then the table again. An entry marked
//!   `MOVING` is on its way to the table: they wait for it to get there.
//!   A block only ever moves from a cache to the table, never back, so the
//!   three looks find it wherever it is.
//! - **Gate**: before a check starts, [`Closed`] shuts the gate: it is
//!   stored closed, `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` makes every
//!   running thread of the process execute a full barrier (so an owner that
//!   read the gate open has its `busy = 1` visible, and any later read sees
//!   it closed), then every cache's window is waited out and its blocks moved
//!   into the table. Until the last `Closed` is dropped — after the check's
//!   verdict — every block goes to the table, where the verdict sees it.
//!   Where `membarrier` is unavailable (an old kernel, a seccomp filter,
//!   valgrind), the gate never opens and the table is used as before.
//!
//! A thread's cache is released at its exit (a `pthread_key_create`
//! destructor) and claimed again by a new thread, blocks and all; caches are
//! never unmapped. A fork child frees the caches of the threads it did not
//! inherit, finishing any move the fork cut short.
//!
//! Known limit: a free the hooks let by unrecorded (a signal handler inside
//! a hook, a `Bypass` section) leaves its block's record behind, as it
//! always did in the table. A stale entry left here stays until its entry is
//! reused or drained, and a drain puts it over a newer record of the same
//! address if the table has one. Both are rare; retiring records on such
//! frees would end both.

use crate::track::table::{self, Block, Packed};

#[cfg(all(target_os = "linux", leakcheck_interpose))]
mod imp {
    use super::*;
    use crate::sys::reentry::Bypass;
    use crate::sys::relaxed::Relaxed as _;
    use crate::sys::sync::{pages, SpinLock};
    use std::ptr;
    use std::sync::atomic::{
        compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
        Ordering::{Acquire, Relaxed, Release, SeqCst},
    };

    /// Entries of a cache: with its header, one page.
    pub(crate) const ENTRIES: usize = 128;
    const INDEX_BITS: u32 = ENTRIES.trailing_zeros();
    const _: () = assert!(ENTRIES.is_power_of_two());
    const _: () = assert!(std::mem::size_of::<Cache>() <= 4096);

    /// Low bit of an entry's address: the owner is moving the block to the
    /// table (blocks are at least 2-aligned, so the bit is free).
    const MOVING: usize = 1;

    /// The gate is open (blocks may be cached) when it equals this: the
    /// barrier is registered and no [`Closed`] is alive.
    const OPEN: u32 = 1;
    /// The gate's count of live [`Closed`], in steps of this.
    const CLOSED_STEP: u32 = 2;

    static GATE: AtomicU32 = AtomicU32::new(0);
    /// Serialises the gate's transitions and the drain.
    static GATE_LOCK: SpinLock<()> = SpinLock::new(());
    /// Whether any block was cached since the last drain: frees that miss
    /// the table skip looking through the caches when none was.
    static CACHED: AtomicBool = AtomicBool::new(false);
    /// Every cache ever mapped, newest first; never unmapped.
    static REGISTRY: AtomicPtr<Cache> = AtomicPtr::new(ptr::null_mut());
    /// The `pthread_key_create` key whose destructor releases a thread's
    /// cache; `usize::MAX` until created.
    static KEY: AtomicUsize = AtomicUsize::new(usize::MAX);

    /// One cached block: the table's packed form, in atomics (other threads
    /// read entries while the owner writes them).
    #[repr(C)]
    struct Entry {
        addr: AtomicUsize,
        meta: AtomicU64,
        rest: AtomicU64,
    }

    #[repr(C, align(64))]
    struct Cache {
        /// 1 while the owner is inside a put or take.
        busy: AtomicU32,
        /// 1 while a live thread owns the cache.
        claimed: AtomicU32,
        /// 1 once a block was put here since the last drain (as [`CACHED`]
        /// for all caches): a drain skips the entries of the others.
        cached: AtomicU32,
        /// The next older cache in [`REGISTRY`]; set before publication.
        next: AtomicPtr<Cache>,
        entries: [Entry; ENTRIES],
    }

    /// This thread's cache; null before its first claim, [`DEAD`] once the
    /// thread is exiting (or no cache could be had).
    const DEAD: *mut Cache = 1 as *mut Cache;

    thread_local! {
        static OWN: AtomicPtr<Cache> = const { AtomicPtr::new(ptr::null_mut()) };
    }

    #[inline(always)]
    fn index(addr: usize) -> usize {
        (((addr >> 4) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - INDEX_BITS)) as usize
    }

    #[inline(always)]
    fn packed(addr: usize, meta: u64, rest: u64) -> Packed {
        Packed { addr, meta, rest }
    }

    fn caches() -> impl Iterator<Item = &'static Cache> {
        let mut next = REGISTRY.load(Acquire);
        std::iter::from_fn(move || {
            // SAFETY: registry entries are mapped pages, initialised before
            // being published with release ordering, and never unmapped.
            let cache = unsafe { next.as_ref() }?;
            next = cache.next.load(Acquire);
            Some(cache)
        })
    }

    /// Sets up the barrier and the exit key; the gate opens if both work.
    /// Called once, from `hooks::init`, outside any hook.
    pub(crate) fn init() {
        let _bypass = Bypass::enter();
        let _lock = GATE_LOCK.lock();
        if GATE.load(Relaxed) & OPEN != 0 || KEY.load(Relaxed) != usize::MAX {
            return;
        }
        // SAFETY: registering for private expedited barriers takes no
        // pointers; it fails cleanly where unsupported.
        let registered = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                libc::MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                0,
                0,
            )
        } == 0;
        if !registered {
            return;
        }
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is valid for the write; the destructor is a plain
        // function that only touches this module's atomics.
        if unsafe { libc::pthread_key_create(&mut key, Some(release_at_exit)) } != 0 {
            return;
        }
        KEY.store(key as usize, Relaxed);
        GATE.fetch_or(OPEN, Release);
    }

    extern "C" fn release_at_exit(cache: *mut libc::c_void) {
        let _ = OWN.try_with(|own| own.store(DEAD, Relaxed));
        // SAFETY: the value set for the key is this thread's claimed cache.
        if let Some(cache) = unsafe { cache.cast::<Cache>().as_ref() } {
            cache.claimed.store(0, Release);
        }
    }

    /// This thread's cache, claimed (or mapped) on first use; `None` when
    /// the thread cannot have one. Call under the re-entrancy guard.
    #[inline(always)]
    fn own() -> Option<&'static Cache> {
        // A `match`: unoptimised, `.ok()?` is two calls.
        let cache = match OWN.try_with(|own| own.relaxed()) {
            Ok(cache) => cache,
            Err(_) => return None,
        };
        // Null and `DEAD` in one compare on the fast path.
        if cache as usize <= DEAD as usize {
            return if cache.is_null() { claim() } else { None };
        }
        // SAFETY: a claimed cache is a mapped page that is never unmapped.
        Some(unsafe { &*cache })
    }

    #[cold]
    #[inline(never)]
    fn claim() -> Option<&'static Cache> {
        let key = KEY.load(Relaxed);
        if key == usize::MAX {
            return None;
        }
        let cache = match caches().find(|c| {
            c.claimed.load(Relaxed) == 0
                && c.claimed.compare_exchange(0, 1, Acquire, Relaxed).is_ok()
        }) {
            Some(cache) => cache,
            None => {
                let page = pages::map(std::mem::size_of::<Cache>(), false).cast::<Cache>();
                if page.is_null() {
                    let _ = OWN.try_with(|own| own.store(DEAD, Relaxed));
                    return None;
                }
                // SAFETY: a fresh zeroed mapping of a `Cache`'s size, which
                // is all atomics, for which zero bytes are a valid value:
                // empty entries, not busy.
                let cache = unsafe { &*page };
                cache.claimed.store(1, Relaxed);
                let mut head = REGISTRY.load(Relaxed);
                loop {
                    cache.next.store(head, Relaxed);
                    match REGISTRY.compare_exchange_weak(head, page, Release, Relaxed) {
                        Ok(_) => break,
                        Err(now) => head = now,
                    }
                }
                cache
            }
        };
        let raw = cache as *const Cache as *mut Cache;
        // SAFETY: `key` was created by `init`; setting a value may allocate
        // (glibc's second-level key arrays), which the caller's guard sends
        // straight to glibc.
        if unsafe { libc::pthread_setspecific(key as libc::pthread_key_t, raw.cast()) } != 0 {
            cache.claimed.store(0, Release);
            let _ = OWN.try_with(|own| own.store(DEAD, Relaxed));
            return None;
        }
        let _ = OWN.try_with(|own| own.store(raw, Relaxed));
        Some(cache)
    }

    /// Whether blocks may be cached now (a hint: `put` and `take_own` look
    /// again inside the owner's window).
    #[inline(always)]
    pub(crate) fn open() -> bool {
        GATE.relaxed() == OPEN
    }

    /// Opens the owner's window; false (window closed again) if the gate is
    /// shut.
    #[inline(always)]
    fn enter(cache: &Cache) -> bool {
        cache.busy.set_relaxed(1);
        // The heavy side is `membarrier` in `Closed::new`: a compiler fence
        // here is enough to order the store above before the load below.
        compiler_fence(SeqCst);
        if GATE.relaxed() == OPEN {
            return true;
        }
        cache.busy.set_release(0);
        false
    }

    #[inline(always)]
    fn leave(cache: &Cache) {
        cache.busy.set_release(0);
    }

    /// Files `block` in this thread's cache if the gate is open; false if
    /// the caller must put it in the table. The block must be of no scope,
    /// no stack and not leakcheck's own. Call under the re-entrancy guard.
    #[inline(always)]
    pub(crate) fn put(block: &Block) -> bool {
        GATE.relaxed() == OPEN && put_if_open(block)
    }

    /// [`put`] for a caller that has just seen the gate open
    /// ([`open`]): the owner's window looks again.
    #[inline(always)]
    pub(crate) fn put_if_open(block: &Block) -> bool {
        let Some(cache) = own() else { return false };
        if !enter(cache) {
            return false;
        }
        // Inside the window, before the block is published: a drain, which
        // reads the flag after every window, or a free on another thread
        // that got the block from this one, then sees it set.
        if !CACHED.relaxed() {
            CACHED.store(true, Relaxed);
        }
        if cache.cached.relaxed() == 0 {
            cache.cached.set_relaxed(1);
        }
        let entry = &cache.entries[index(block.addr)];
        let old = entry.addr.relaxed();
        if old != 0 {
            evict(entry, old);
        }
        let packed = Packed::new(block);
        entry.meta.set_relaxed(packed.meta);
        entry.rest.set_relaxed(packed.rest);
        entry.addr.set_release(block.addr);
        leave(cache);
        true
    }

    /// Moves the block at `entry` (address `old`) to the table, unless
    /// another thread took it first. The entry is left empty or `MOVING`;
    /// the caller overwrites it.
    #[inline(never)]
    fn evict(entry: &Entry, old: usize) {
        debug_assert_eq!(old & MOVING, 0);
        if entry
            .addr
            .compare_exchange(old, old | MOVING, Acquire, Relaxed)
            .is_err()
        {
            // Taken by its free on another thread: the entry is empty.
            return;
        }
        let block = packed(old, entry.meta.relaxed(), entry.rest.relaxed());
        crate::track::record::insert(block.unpack());
    }

    /// Takes the block at `addr` out of this thread's cache, if it is there
    /// and the gate is open. Call under the re-entrancy guard.
    #[inline(always)]
    pub(crate) fn take_own(addr: usize) -> Option<Packed> {
        if GATE.relaxed() != OPEN {
            return None;
        }
        let cache = own()?;
        if !enter(cache) {
            return None;
        }
        let entry = &cache.entries[index(addr)];
        let found = if entry.addr.relaxed() == addr {
            let block = packed(addr, entry.meta.relaxed(), entry.rest.relaxed());
            // A plain store: only another free of the same block (a double
            // free racing this one) could take it concurrently.
            entry.addr.set_relaxed(0);
            Some(block)
        } else {
            None
        };
        leave(cache);
        found
    }

    /// Takes the block at `addr` out of this thread's cache if it is there,
    /// the gate is open and `release` says the free needs nothing else (its
    /// block is plain, its family and layout right); true then. Otherwise
    /// the block stays where it is. Call under the re-entrancy guard.
    #[inline(always)]
    pub(crate) fn take_own_if(addr: usize, release: impl FnOnce(&Packed) -> bool) -> bool {
        let Some(cache) = own() else { return false };
        if !enter(cache) {
            return false;
        }
        let entry = &cache.entries[index(addr)];
        let taken = entry.addr.relaxed() == addr
            && release(&packed(addr, entry.meta.relaxed(), entry.rest.relaxed()));
        if taken {
            // A plain store, as in `take_own`.
            entry.addr.set_relaxed(0);
        }
        leave(cache);
        taken
    }

    /// Takes the block at `addr` out of whichever cache holds it (another
    /// thread's, or this one's with the gate shut), waiting out a move to
    /// the table. `None` if no cache holds it now: it is in the table, or
    /// nowhere. Call under the re-entrancy guard.
    #[cold]
    #[inline(never)]
    pub(crate) fn take_any(addr: usize) -> Option<Packed> {
        if !CACHED.load(Acquire) {
            return None;
        }
        let i = index(addr);
        for cache in caches() {
            let entry = &cache.entries[i];
            let mut spins = 0u32;
            loop {
                let seen = entry.addr.load(Acquire);
                if seen == addr | MOVING {
                    // On its way to the table, where the caller looks next.
                    backoff(&mut spins);
                    continue;
                }
                if seen != addr {
                    break;
                }
                let meta = entry.meta.load(Relaxed);
                let rest = entry.rest.load(Relaxed);
                // The entry is rewritten only after its address changes, so
                // `meta` and `rest` were this block's if the exchange works.
                if entry
                    .addr
                    .compare_exchange(addr, 0, Acquire, Relaxed)
                    .is_ok()
                {
                    return Some(packed(addr, meta, rest));
                }
            }
        }
        None
    }

    /// The block at `addr` if some cache holds it, left where it is.
    pub(crate) fn peek(addr: usize) -> Option<Block> {
        let i = index(addr);
        caches().find_map(|cache| {
            let entry = &cache.entries[i];
            let meta = entry.meta.load(Relaxed);
            let rest = entry.rest.load(Relaxed);
            (entry.addr.load(Acquire) & !MOVING == addr).then(|| packed(addr, meta, rest).unpack())
        })
    }

    /// The cached block whose bytes hold `addr` past its start, if any.
    #[cfg(leakcheck_interpose)]
    pub(crate) fn containing(addr: usize) -> Option<Block> {
        caches().find_map(|cache| {
            cache.entries.iter().find_map(|entry| {
                let start = entry.addr.load(Acquire) & !MOVING;
                let b = packed(start, entry.meta.load(Relaxed), 0).unpack();
                (start != 0 && start < addr && addr < start.saturating_add(b.size.max(1)))
                    .then_some(b)
            })
        })
    }

    /// Shuts the gate while alive: every block is in the table, and stays
    /// there, until the last one is dropped. Taken before a check starts,
    /// dropped once its verdict no longer reads the table.
    pub(crate) struct Closed(());

    impl Closed {
        pub(crate) fn new() -> Closed {
            let _bypass = Bypass::enter();
            let _lock = GATE_LOCK.lock();
            let before = GATE.fetch_add(CLOSED_STEP, SeqCst);
            if before == OPEN {
                // SAFETY: a process-wide barrier; no pointers. Registered in
                // `init` (the gate was open, so registration worked).
                let barrier = unsafe {
                    libc::syscall(
                        libc::SYS_membarrier,
                        libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED,
                        0,
                        0,
                    )
                };
                if barrier != 0 {
                    // Cannot happen once registered. If it did, an owner
                    // could still be about to put a block: keep the gate
                    // shut for good, and drain what is there.
                    GATE.fetch_and(!OPEN, SeqCst);
                }
                drain();
            }
            Closed(())
        }
    }

    impl Drop for Closed {
        fn drop(&mut self) {
            let _bypass = Bypass::enter();
            let _lock = GATE_LOCK.lock();
            GATE.fetch_sub(CLOSED_STEP, Release);
        }
    }

    /// Spins a while, then yields (`sched_yield`: no allocation, no lock).
    fn backoff(spins: &mut u32) {
        *spins += 1;
        if *spins < 128 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }

    /// Waits until the owner of `cache` is outside its window.
    fn wait_out_window(cache: &Cache) {
        let mut spins = 0u32;
        while cache.busy.load(Acquire) != 0 {
            backoff(&mut spins);
        }
    }

    /// Moves every cached block into the table. The gate is shut.
    fn drain() {
        // Every window closed first: a put that set the flag is then seen.
        caches().for_each(wait_out_window);
        if !CACHED.load(Acquire) {
            return;
        }
        for cache in caches() {
            // Read after every window closed, as `CACHED`; no put can set
            // it again before the gate opens.
            if cache.cached.acquire() == 0 {
                continue;
            }
            cache.cached.set_relaxed(0);
            // An index loop and one-instruction loads: every check shuts
            // the gate, and unoptimised (a user's dev profile) the
            // iterator and `load(Acquire)` cost 25,000 instructions a
            // drain for empty caches.
            let entries = &cache.entries;
            let mut i = 0;
            while i < entries.len() {
                let entry = &entries[i];
                i += 1;
                let addr = entry.addr.acquire();
                if addr == 0 || addr & MOVING != 0 {
                    continue;
                }
                // Marked moving, not emptied, until it is in the table: a
                // free racing the drain waits for it there.
                if entry
                    .addr
                    .compare_exchange(addr, addr | MOVING, Acquire, Relaxed)
                    .is_ok()
                {
                    let block = packed(addr, entry.meta.load(Relaxed), entry.rest.load(Relaxed));
                    crate::track::record::insert(block.unpack());
                    entry.addr.store(0, Release);
                }
            }
        }
        CACHED.store(false, Release);
    }

    /// `pthread_atfork` child, after the table's locks are released: the
    /// threads that owned the other caches do not exist here. Their caches
    /// are freed for new threads, their windows closed, and a move the fork
    /// cut short is finished.
    pub(crate) fn after_fork_child() {
        let own = OWN.try_with(|own| own.load(Relaxed)).unwrap_or(DEAD);
        for cache in caches() {
            cache.busy.store(0, Relaxed);
            if !ptr::eq(cache, own) {
                cache.claimed.store(0, Relaxed);
            }
            for entry in &cache.entries {
                let addr = entry.addr.load(Relaxed);
                if addr & MOVING != 0 {
                    // Its owner had claimed it for the table and may or may
                    // not have put it there: put it (over itself if so).
                    let block = packed(
                        addr & !MOVING,
                        entry.meta.load(Relaxed),
                        entry.rest.load(Relaxed),
                    );
                    crate::track::record::insert(block.unpack());
                    entry.addr.store(0, Relaxed);
                }
            }
        }
    }

    /// `pthread_atfork` prepare: the gate's lock is held across the fork so
    /// that the child never inherits it taken.
    pub(crate) fn lock_for_fork() {
        GATE_LOCK.lock_for_fork();
    }

    /// Releases what [`lock_for_fork`] took.
    ///
    /// # Safety
    ///
    /// Only after `lock_for_fork` on this thread (or the forking thread).
    pub(crate) unsafe fn unlock_after_fork() {
        // SAFETY: the caller guarantees lock_for_fork holds it.
        unsafe { GATE_LOCK.force_unlock() };
    }
}

#[cfg(not(all(target_os = "linux", leakcheck_interpose)))]
mod imp {
    //! Without the C hooks (or `membarrier`) every block goes to the table.
    use super::*;

    #[inline(always)]
    pub(crate) fn put(_: &Block) -> bool {
        false
    }
    #[inline(always)]
    pub(crate) fn take_own(_: usize) -> Option<Packed> {
        None
    }
    pub(crate) fn take_any(_: usize) -> Option<Packed> {
        None
    }
    pub(crate) fn peek(_: usize) -> Option<Block> {
        None
    }
    pub(crate) struct Closed(());
    impl Closed {
        pub(crate) fn new() -> Closed {
            Closed(())
        }
    }
    impl Drop for Closed {
        fn drop(&mut self) {}
    }
    pub(crate) fn after_fork_child() {}
    pub(crate) fn lock_for_fork() {}
    pub(crate) unsafe fn unlock_after_fork() {}
}

pub(crate) use imp::*;

/// Whether `block` may live in a thread's cache: of no check, with no stack
/// (no profile sample), no guard bytes, and not leakcheck's own.
#[inline(always)]
pub(crate) fn cacheable(block: &Block) -> bool {
    block.scope == 0
        && block.stack == 0
        && block.harness == 0
        && !block.sampled
        && block.guarded == 0
}

/// Takes the live block at `addr` from wherever it is recorded: this
/// thread's cache, the table, another thread's cache. Call under the
/// re-entrancy guard.
#[inline(always)]
pub(crate) fn remove(addr: usize) -> Option<Packed> {
    if let Some(block) = take_own(addr) {
        return Some(block);
    }
    if let Some(block) = table::remove(addr) {
        return Some(block);
    }
    remove_slow(addr)
}

#[cold]
#[inline(never)]
fn remove_slow(addr: usize) -> Option<Packed> {
    // A block moves from a cache to the table, never back: if it left a
    // cache after the table was searched, the second search finds it.
    take_any(addr).or_else(|| table::remove(addr))
}
