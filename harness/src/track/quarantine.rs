//! Freed blocks held back from glibc for a while: the quarantine.
//!
//! The classifier is conservative: any word equal to a block's address keeps
//! it reachable. Stale copies of freed addresses are everywhere (a cleared
//! `Vec`'s spare room, a moved-out value, the symboliser's caches, glibc's
//! own free lists), and glibc hands a freed chunk out again at once, so a
//! block a test leaks could get an address that such a stale copy still
//! names, and be reported still reachable. While a check runs (or
//! leakcheck's own code frees, or a check's or leakcheck's block is freed),
//! a freed block is therefore not given back to glibc but kept here, oldest
//! first: a new block cannot get an address that was freed while its check
//! runs. Each check pins the ring where it began ([`pin`]); once its verdict
//! has looked at its entries, what no running check needs (entries held
//! before the oldest running check began) is really freed, down to
//! [`RESERVE_BYTES`] of the newest; and the oldest entries go whenever the
//! quarantine is full ([`MAX_BYTES`]). So a suite of small tests holds
//! about a test's frees, not [`MAX_BYTES`] of them.
//!
//! Each entry records what misuse detection needs about a recently freed
//! block (address, size, owning check, its allocation stack and the stack
//! that freed it), so a double free of a held block is recognised and
//! reported rather than passed to glibc. A check's blocks are filled with
//! [`FREED_FILL`] when held; one whose fill changed when it leaves the
//! quarantine, or at its check's verdict, was written after its free
//! (`misuse::write_after_free`).
//!
//! Bounded in bytes ([`MAX_BYTES`]) and entries ([`CAPACITY`]); the ring's
//! pages are mapped from the kernel on first use, never heap. One spin lock;
//! the real `free` of an evicted block runs after it is released.

use crate::sys::sync::{pages, SpinLock};
use crate::track::hooks::real;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[cfg(test)]
use crate::track::quarantine_core::FILL_MAX;
use crate::track::quarantine_core::{self as qcore, cost_of, fill_len, Entries};
pub(crate) use crate::track::quarantine_core::{Freed, CAPACITY, FREED_FILL, MAX_BYTES};

/// Fills a block about to be held, if it was a check's.
fn fill(freed: &mut Freed) {
    if freed.scope != 0 {
        let len = fill_len(freed.size);
        // SAFETY: the block is live glibc memory of at least `size` bytes
        // that its owner has just freed: only the quarantine touches it now.
        // libc's `memset`, not `write_bytes` (see `misuse::write_guard`).
        unsafe { libc::memset(freed.addr as *mut libc::c_void, i32::from(FREED_FILL), len) };
        freed.filled = 1;
    }
}

/// The offset of the first byte of a held, filled block that no longer has
/// [`FREED_FILL`], if any.
///
/// # Safety
///
/// `freed` is held by the quarantine (its memory is not glibc's).
#[cfg(test)]
unsafe fn first_changed(freed: &Freed) -> Option<usize> {
    // SAFETY: the caller's contract.
    let at = unsafe { qcore::first_changed(freed, &first_not) };
    (at != usize::MAX).then_some(at)
}

/// `sys::first_not_at`, `usize::MAX` for none: the scanner
/// `quarantine_core` takes.
fn first_not(at: *const u8, len: usize, fill: u8) -> usize {
    // SAFETY: `quarantine_core` passes the bytes of a held block, which
    // nothing else touches meanwhile.
    unsafe { crate::sys::first_not_at(at, len, fill) }.unwrap_or(usize::MAX)
}

/// Gives a block that left the ring back to glibc.
///
/// # Safety
///
/// `addr` is a live glibc block that nothing else frees.
unsafe extern "C" fn give_back(addr: usize) {
    // SAFETY: the caller's contract.
    unsafe { real::free(addr as *mut _) }
}

#[cfg(leakcheck_prebuilt_walk)]
extern "C" {
    // `quarantine_core`, built optimised (`stacks/walk_object.rs`).
    fn leakcheck_quarantine_hold_v1(
        entries: *mut Entries,
        freed: *const Freed,
        cost: usize,
        evicted: *mut Freed,
    ) -> u32;
    fn leakcheck_quarantine_take_v1(
        entries: *mut Entries,
        reserve: usize,
        oldest_pin: u64,
        out: *mut Freed,
        max: usize,
    ) -> usize;
    fn leakcheck_quarantine_free_intact_v1(
        batch: *const Freed,
        n: usize,
        from: usize,
        free: unsafe extern "C" fn(usize),
    ) -> usize;
    fn leakcheck_quarantine_next_changed_v1(
        entries: *const Entries,
        from: usize,
        scope: u32,
    ) -> usize;
}

/// `quarantine_core::hold_in` (from the optimised object when this crate
/// is built unoptimised, as the three below).
///
/// # Safety
///
/// As `quarantine_core::hold_in`.
#[inline(always)]
unsafe fn hold_in(entries: &mut Entries, freed: &Freed, cost: usize, evicted: &mut Freed) -> u32 {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the caller's contract; the references are valid pointers.
    unsafe {
        leakcheck_quarantine_hold_v1(entries, freed, cost, evicted)
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller's contract.
    unsafe {
        qcore::hold_in(entries, freed, cost, evicted)
    }
}

/// `quarantine_core::take_releasable` into `out`.
///
/// # Safety
///
/// As `quarantine_core::take_releasable`.
#[inline(always)]
unsafe fn take_releasable(
    entries: &mut Entries,
    reserve: usize,
    oldest_pin: u64,
    out: &mut [Freed],
) -> usize {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the caller's contract; `out` has room for its length.
    unsafe {
        leakcheck_quarantine_take_v1(entries, reserve, oldest_pin, out.as_mut_ptr(), out.len())
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller's contract; `out` has room for its length.
    unsafe {
        qcore::take_releasable(entries, reserve, oldest_pin, out.as_mut_ptr(), out.len())
    }
}

/// `quarantine_core::free_intact` of `batch` from `from`, freeing with
/// [`give_back`].
///
/// # Safety
///
/// As `quarantine_core::free_intact`.
#[inline(always)]
unsafe fn free_intact(batch: &[Freed], from: usize) -> usize {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the caller's contract; `give_back` frees a block to glibc.
    unsafe {
        leakcheck_quarantine_free_intact_v1(batch.as_ptr(), batch.len(), from, give_back)
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller's contract; `give_back`'s is the batch's: each
    // block left the ring and is freed once.
    unsafe {
        qcore::free_intact(batch.as_ptr(), batch.len(), from, &first_not, &|addr| {
            give_back(addr)
        })
    }
}

/// `quarantine_core::next_changed`.
///
/// # Safety
///
/// As `quarantine_core::next_changed`.
#[inline(always)]
unsafe fn next_changed(entries: &Entries, from: usize, scope: u32) -> usize {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the caller's contract.
    unsafe {
        leakcheck_quarantine_next_changed_v1(entries, from, scope)
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller's contract.
    unsafe {
        qcore::next_changed(entries, from, scope, &first_not)
    }
}

/// Bigger blocks are freed at once: glibc gives them their own mapping,
/// which `munmap` returns to the kernel, and they would crowd out thousands
/// of small ones.
pub(crate) const MAX_BLOCK: usize = 1 << 20;
/// The kernel's page, the ring's unit of memory.
const PAGE: usize = 4096;
const _: () = assert!(PAGE % std::mem::size_of::<Freed>() == 0);
const _: () = assert!(CAPACITY % (PAGE / std::mem::size_of::<Freed>()) == 0);

struct Ring {
    /// The entries (the ring dereferences to them). Their `evicted_to`:
    /// every entry from a running check's pin up to it went back to glibc
    /// before that check's verdict ([`evicted_since`]).
    entries: Entries,
    /// The kernel refused the ring's pages: hold nothing.
    failed: bool,
    /// Where each running check began ([`pin`]), `NO_PIN` for a free
    /// entry: every entry pushed since the oldest of them is kept for the
    /// checks that may still need it.
    pins: [u64; PINS],
    /// Checks running with no entry in `pins` (all were taken): while there
    /// are any, nothing is released early (the ring is FIFO as without pins).
    unpinned: usize,
    /// Where the head was when the ring last gave pages back: the pages
    /// released since wait until they make a run of [`DISCARD_RUN`].
    discarded_to: usize,
}

impl std::ops::Deref for Ring {
    type Target = Entries;
    fn deref(&self) -> &Entries {
        &self.entries
    }
}

impl std::ops::DerefMut for Ring {
    fn deref_mut(&mut self) -> &mut Entries {
        &mut self.entries
    }
}

/// Released pages given back to the kernel at once, at the least: each
/// `madvise` is a system call and a TLB shootdown on every other CPU of the
/// process, and a check's end releases about a page (rusqlite's unit
/// tests: 220 single-page calls). Up to this many pages (64 KiB) of
/// released entries stay resident meanwhile.
const DISCARD_RUN: usize = 16;

/// Checks whose start [`pin`] records at once: as many as can run
/// (`scope`'s slots); more only make the release wait.
const PINS: usize = 256;
const NO_PIN: u64 = u64::MAX;

/// Bytes of entries no running check needs that stay held, newest first:
/// a check starting right after another does not get at once the addresses
/// the previous one freed (stale copies of which it may have left in
/// globals or in blocks of no check). Small next to [`MAX_BYTES`]: what is
/// held beyond it is memory glibc cannot reuse, so the process grows.
/// It was 2 MiB while `tests/verdict_sqlite_shape.rs` (three checks in
/// parallel leaking the same shape) got a wrong kind in one debug run in
/// ten with 256 KiB: the stale copy was in the `backtrace` crate's symbol
/// cache, pointing into memory its symboliser had freed. leakcheck's own
/// blocks now come from pages no program block can get
/// (`track::own_heap`), so that root is gone and 256 KiB is back: what is
/// left to guard against is a stale copy the program itself keeps.
pub(crate) const RESERVE_BYTES: usize = 256 << 10;

// SAFETY: the ring's pages are owned by the ring and only touched under its
// lock.
unsafe impl Send for Ring {}

impl Ring {
    /// Empty, its pages not mapped yet.
    const fn new() -> Ring {
        Ring {
            entries: Entries::EMPTY,
            failed: false,
            pins: [NO_PIN; PINS],
            unpinned: 0,
            discarded_to: 0,
        }
    }

    /// Maps the slots on first use. False if that failed.
    fn ready(&mut self) -> bool {
        if self.slots.is_null() && !self.failed {
            self.slots = pages::map(CAPACITY * std::mem::size_of::<Freed>(), true).cast();
            self.failed = self.slots.is_null();
        }
        !self.slots.is_null()
    }

    /// Adds `freed` as the newest entry; the ring is ready and has room.
    #[cfg(test)]
    fn push(&mut self, freed: Freed, cost: usize) {
        assert!(!self.slots.is_null() && self.fits(cost));
        // SAFETY: the slots are mapped (asserted) and `&mut self` is the
        // lock's; `fits` means `len < CAPACITY`.
        unsafe { self.entries.push(freed, cost) }
    }

    /// Takes the oldest entry out, if any.
    #[cfg(test)]
    fn pop_oldest(&mut self) -> Option<Freed> {
        if self.slots.is_null() {
            return None;
        }
        // SAFETY: the slots are mapped, and `&mut self` is the lock's.
        unsafe { self.entries.pop_oldest() }
    }

    fn find(&self, addr: usize) -> Option<Freed> {
        if self.slots.is_null() {
            return None;
        }
        (0..self.len).find_map(|i| {
            // SAFETY: the slots are mapped, `i < len`, and `&self` is the
            // lock's.
            let entry = unsafe { self.entries.nth(i) };
            (entry.addr == addr).then_some(entry)
        })
    }

    #[cfg(test)]
    fn contains(&mut self, addr: usize) -> bool {
        self.find(addr).is_some()
    }
}

static RING: SpinLock<Ring> = SpinLock::new(Ring::new());

/// Frees of addresses the quarantine still held: double frees, not passed
/// to glibc (which could abort, or corrupt its heap, on them).
static DOUBLE_FREES: AtomicUsize = AtomicUsize::new(0);

/// Takes `freed` (a block already retired from the table, allocated by
/// glibc's malloc family) instead of freeing it, evicting and really freeing
/// the oldest entries if there is no room. Returns false if it was not
/// taken: the caller frees it. Call only under the re-entrancy guard.
#[inline]
pub(crate) fn hold(mut freed: Freed) -> bool {
    if freed.size > MAX_BLOCK {
        return false;
    }
    fill(&mut freed);
    let cost = cost_of(freed.size);
    loop {
        // When full, one entry out and the new one in under one lock (the
        // steady state); a big block may need more room, freed a lock each.
        let mut evicted = Freed::default();
        let done = {
            let mut ring = RING.lock();
            if !ring.ready() {
                return false;
            }
            // SAFETY: the slots are mapped (`ready`) and the lock is held.
            unsafe { hold_in(&mut ring.entries, &freed, cost, &mut evicted) }
        };
        if done & qcore::EVICTED != 0 {
            // SAFETY: the entry left the ring just now and is not freed yet;
            // `hold` runs under the guard.
            unsafe { really_free(&evicted) };
        }
        if done & qcore::HELD != 0 {
            return true;
        }
        if done & qcore::EVICTED == 0 {
            return false;
        }
    }
}

/// The held block at `addr`, a pointer the table does not know: then it is
/// being freed a second time, which is counted and must not reach glibc. A
/// linear search, run only for such frees.
#[cold]
pub(crate) fn held_at(addr: usize) -> Option<Freed> {
    let held = {
        let ring = RING.lock();
        if ring.len == 0 {
            None
        } else {
            ring.find(addr)
        }
    };
    if held.is_some() {
        DOUBLE_FREES.fetch_add(1, Relaxed);
    }
    held
}

/// A running check's hold on the quarantine: every entry held from its
/// start on stays held (unless the quarantine is full) until it is dropped,
/// after the check's verdict has looked at its entries ([`check_scope`]).
/// Dropping it releases what no running check needs any more, down to
/// [`RESERVE_BYTES`].
pub(crate) struct Pin {
    /// Where the ring was when the check began: every block of the check
    /// that is held later comes after it.
    pub(crate) since: u64,
    /// Its entry in the ring's pins, `None` if they were all taken.
    index: Option<usize>,
}

/// How many of the entries held since `since` (a [`Pin`]'s) left the ring
/// because it was full, before a verdict that needed them: freed blocks
/// whose addresses glibc could hand out again while the check ran. The
/// ring is FIFO and a pin keeps everything after it from being released
/// otherwise, so they are exactly the entries from `since` to the last
/// eviction.
pub(crate) fn evicted_since(since: u64) -> u64 {
    let _bypass = crate::sys::reentry::Bypass::enter();
    RING.lock().evicted_to.saturating_sub(since)
}

/// Pins the ring where it is now, for a check about to begin.
pub(crate) fn pin() -> Pin {
    let _bypass = crate::sys::reentry::Bypass::enter();
    let mut ring = RING.lock();
    let since = ring.pushed;
    let index = ring.pins.iter().position(|&p| p == NO_PIN);
    match index {
        Some(i) => ring.pins[i] = since,
        None => ring.unpinned += 1,
    }
    Pin { since, index }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _bypass = crate::sys::reentry::Bypass::enter();
        {
            let mut ring = RING.lock();
            match self.index {
                Some(i) => ring.pins[i] = NO_PIN,
                None => ring.unpinned -= 1,
            }
        }
        release_unneeded();
    }
}

/// Really frees the oldest entries that no running check needs while more
/// than [`RESERVE_BYTES`] are held, a batch per lock (their fills checked
/// and freed outside it, as an eviction's).
fn release_unneeded() {
    const BATCH: usize = 64;
    // Taken once: a pin added meanwhile is where the ring is then, after
    // every entry this releases.
    let oldest_pin = {
        let ring = RING.lock();
        // The common case, at the end of a check that freed little: the
        // ring holds no more than its reserve, so there is nothing to scan
        // the pins for.
        if !ring.may_release() {
            return;
        }
        ring.oldest_pin()
    };
    let mut batch = [Freed::default(); BATCH];
    loop {
        let taken = {
            let mut ring = RING.lock();
            let taken = ring.take_releasable(oldest_pin, &mut batch);
            ring.discard_in_runs();
            taken
        };
        let taken_now = &batch[..taken];
        let mut from = 0;
        while from < taken {
            // SAFETY: the entries left the ring just now and are not freed
            // yet; this runs under a bypass of the guard.
            let changed = unsafe { free_intact(taken_now, from) };
            if changed == taken {
                break;
            }
            // SAFETY: as above; `free_intact` left this one alone.
            unsafe { really_free(&taken_now[changed]) };
            from = changed + 1;
        }
        if taken < BATCH {
            return;
        }
    }
}

/// Reports a write after free into `freed`, which has just left the ring,
/// then gives it back to glibc.
///
/// # Safety
///
/// `freed` left the ring just now (so it is still a live glibc block that
/// nothing else frees); call with the re-entrancy guard (or a bypass) held.
unsafe fn really_free(freed: &Freed) {
    // SAFETY: the caller guarantees the block is still held by us alone.
    let offset = unsafe { qcore::first_changed(freed, &first_not) };
    if offset != usize::MAX {
        crate::track::misuse::write_after_free(freed, offset);
    }
    // SAFETY: the entry was a live glibc block when it was held, and
    // leaving the ring makes this its only free.
    unsafe { give_back(freed.addr) };
}

impl Ring {
    /// Gives the kernel back the ring's pages that entries released since
    /// the head was at `from` emptied (each page from `from`'s own up to the
    /// head's, those no entry still held touches): released from the front,
    /// the ring creeps through all its pages (8 MiB resident in the end),
    /// and moving the entries to the front instead had cost, at every
    /// verdict, a copy of every entry kept (12% of a real suite's
    /// instructions in the dev profile) or, copied less often, room for
    /// twice the entries kept. The page of the head stays: it holds the
    /// oldest entry.
    fn discard_released(&mut self, from: usize) {
        const PER_PAGE: usize = PAGE / std::mem::size_of::<Freed>();
        const PAGES: usize = CAPACITY / PER_PAGE;
        if self.slots.is_null() {
            return;
        }
        let end = self.head / PER_PAGE;
        let mut page = from / PER_PAGE;
        // A run of whole pages to discard: `[run, page)`, not wrapping.
        let mut run = page;
        while page != end {
            if self.holds_entries_in(page * PER_PAGE, PER_PAGE) {
                self.discard_pages(run, page);
                run = page + 1;
            }
            page += 1;
            if page == PAGES {
                self.discard_pages(run, page);
                page = 0;
                run = 0;
            }
        }
        self.discard_pages(run, page);
    }

    /// [`discard_released`](Self::discard_released) from where the last
    /// discard left off, once the head has moved a run of
    /// [`DISCARD_RUN`] pages past it (evictions move it too: their pages
    /// are the ring's again at once, and still hold entries, which the
    /// discard skips).
    fn discard_in_runs(&mut self) {
        const PER_PAGE: usize = PAGE / std::mem::size_of::<Freed>();
        let moved = (self.head + CAPACITY - self.discarded_to) & (CAPACITY - 1);
        if moved < DISCARD_RUN * PER_PAGE {
            return;
        }
        let from = self.discarded_to;
        self.discard_released(from);
        self.discarded_to = self.head;
    }

    /// Whether an entry still held lies at an index in `[at, at + n)`.
    fn holds_entries_in(&self, at: usize, n: usize) -> bool {
        if self.len == 0 {
            return false;
        }
        let overlaps = |start: usize, end: usize| start < at + n && at < end;
        let end = self.head + self.len;
        if end <= CAPACITY {
            overlaps(self.head, end)
        } else {
            overlaps(self.head, CAPACITY) || overlaps(0, end - CAPACITY)
        }
    }

    /// Discards the ring's pages `[first, end)` (page indices).
    fn discard_pages(&mut self, first: usize, end: usize) {
        const PER_PAGE: usize = PAGE / std::mem::size_of::<Freed>();
        if end > first {
            // SAFETY: the pages lie inside the ring's mapping (`end <=
            // CAPACITY / PER_PAGE`), page-aligned (`PER_PAGE` entries a
            // page), and hold no entry still held (checked by the caller).
            unsafe {
                pages::discard(
                    self.slots.add(first * PER_PAGE).cast(),
                    (end - first) * PAGE,
                )
            };
        }
    }

    /// Where the oldest running check began; [`NO_PIN`] if none runs.
    fn oldest_pin(&self) -> u64 {
        // An index loop: unoptimised (a user's dev profile),
        // `iter().copied().min()` over the 256 pins cost 28,000
        // instructions at every verdict.
        let mut oldest = NO_PIN;
        let mut i = 0;
        while i < PINS {
            if self.pins[i] < oldest {
                oldest = self.pins[i];
            }
            i += 1;
        }
        oldest
    }

    /// Takes out into `out`, oldest first, the entries that may be released
    /// early: while more than [`RESERVE_BYTES`] are held, every running
    /// check is pinned, and the oldest was pushed before the oldest of them
    /// began (`oldest_pin`). Returns how many.
    fn take_releasable(&mut self, oldest_pin: u64, out: &mut [Freed]) -> usize {
        if self.unpinned != 0 || self.slots.is_null() {
            return 0;
        }
        // SAFETY: the slots are mapped, and `&mut self` is the lock's.
        unsafe { take_releasable(&mut self.entries, RESERVE_BYTES, oldest_pin, out) }
    }

    /// Whether any entry may be released early, whichever checks run: more
    /// than [`RESERVE_BYTES`] are held and every running check is pinned.
    #[inline(always)]
    fn may_release(&self) -> bool {
        self.len != 0 && self.bytes > RESERVE_BYTES && self.unpinned == 0
    }
}

/// Calls `changed` with every held block of `scope` whose fill changed (a
/// write after free), and fills it again, so that each write is reported
/// once. Only the entries held since `since` (the check's [`Pin::since`]) are looked at: the check's blocks can only be there,
/// and the rest of the ring (up to [`CAPACITY`] entries, most of them
/// earlier checks') is not walked again at every verdict under the lock
/// every quarantined free takes. For the check's verdict; `changed` must
/// not allocate.
pub(crate) fn check_scope(scope: u32, since: u64, changed: impl FnMut(&Freed, usize)) {
    let _bypass = crate::sys::reentry::Bypass::enter();
    RING.lock().check_scope(scope, since, changed);
}

impl Ring {
    /// [`check_scope`] on this ring.
    fn check_scope(&mut self, scope: u32, since: u64, mut changed: impl FnMut(&Freed, usize)) {
        let oldest = self.pushed - self.len as u64;
        let skip = usize::try_from(since.saturating_sub(oldest))
            .unwrap_or(usize::MAX)
            .min(self.len);
        if self.slots.is_null() {
            return;
        }
        let mut i = skip;
        loop {
            // SAFETY: the slots are mapped, and the lock (held for `&mut
            // self`) keeps every entry held.
            i = unsafe { next_changed(&self.entries, i, scope) };
            if i >= self.len {
                return;
            }
            // SAFETY: as above, and `i < len`.
            let mut entry = unsafe { self.entries.nth(i) };
            // SAFETY: as above.
            let offset = unsafe { qcore::first_changed(&entry, &first_not) };
            changed(&entry, offset);
            fill(&mut entry);
            i += 1;
        }
    }
}

/// How many double frees of held blocks were swallowed so far.
#[cfg(test)]
pub(crate) fn double_frees() -> usize {
    DOUBLE_FREES.load(Relaxed)
}

/// (entries, bytes) held now.
#[cfg(test)]
pub(crate) fn held() -> (usize, usize) {
    let ring = RING.lock();
    (ring.len, ring.bytes)
}

/// `pthread_atfork` prepare: the child must not inherit the ring locked.
pub(crate) fn lock_for_fork() {
    RING.lock_for_fork();
}

/// `pthread_atfork` parent and child.
///
/// # Safety
///
/// Only after [`lock_for_fork`] on the forking thread.
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: the caller guarantees lock_for_fork holds the ring.
    unsafe { RING.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_block(size: usize) -> Freed {
        // SAFETY: a plain glibc allocation, handed to the quarantine.
        let addr = unsafe { real::malloc(size) } as usize;
        assert_ne!(addr, 0);
        Freed {
            addr,
            size,
            ..Freed::default()
        }
    }

    #[test]
    fn a_held_block_is_a_double_free_and_bytes_stay_bounded() {
        // As a running check does: another test's check ending meanwhile
        // releases nothing held from here on.
        let pin = pin();
        assert_eq!(
            evicted_since(pin.since),
            0,
            "nothing held since was evicted yet"
        );
        let first = held_block(40);
        assert!(hold(first));
        let before = double_frees();
        assert_eq!(held_at(first.addr).map(|f| f.addr), Some(first.addr));
        assert!(double_frees() > before);
        // More than the quarantine holds: the oldest are evicted (really
        // freed) on the way.
        for _ in 0..(MAX_BYTES / MAX_BLOCK + 8) {
            assert!(hold(held_block(MAX_BLOCK)));
            assert!(held().1 <= MAX_BYTES, "{:?}", held());
        }
        // The check pinned before them is told: at least the first block
        // and every big one the ring could not keep went back to glibc
        // early (other tests' entries only add to it).
        let pushed_big = (MAX_BYTES / MAX_BLOCK + 8) as u64;
        let kept_big = (MAX_BYTES / cost_of(MAX_BLOCK)) as u64;
        let evicted = evicted_since(pin.since);
        assert!(evicted > pushed_big - kept_big, "{evicted}");
        let huge = held_block(MAX_BLOCK + 1);
        assert!(!hold(huge), "bigger blocks are freed at once");
        // SAFETY: not held, so still ours.
        unsafe { real::free(huge.addr as *mut _) };
    }

    #[test]
    fn first_not_finds_the_first_changed_byte() {
        fn first_not(bytes: &[u8], fill: u8) -> Option<usize> {
            // SAFETY: the bytes of a live slice.
            unsafe { crate::sys::first_not_at(bytes.as_ptr(), bytes.len(), fill) }
        }
        for len in [0, 1, 7, 8, 9, 16, 63, 64, 65, 4096] {
            let mut bytes = vec![FREED_FILL; len];
            assert_eq!(first_not(&bytes, FREED_FILL), None, "{len}");
            for at in (0..len).rev() {
                bytes[at] = 0;
                assert_eq!(first_not(&bytes, FREED_FILL), Some(at), "{len} {at}");
            }
        }
    }

    #[test]
    fn the_first_changed_byte_is_found_at_any_offset() {
        for size in [1usize, 7, 8, 9, 63, 64, 100, FILL_MAX, FILL_MAX + 50] {
            let mut bytes = vec![FREED_FILL; size];
            let freed = Freed {
                addr: bytes.as_mut_ptr() as usize,
                size,
                filled: 1,
                ..Freed::default()
            };
            // SAFETY: `bytes` is live and `size` long throughout.
            assert_eq!(unsafe { first_changed(&freed) }, None, "size {size}");
            for at in [0, 1, 7, 8, 15, size / 2, size - 1]
                .into_iter()
                .filter(|&at| at < size)
            {
                bytes[at] = 0;
                let seen = (at < FILL_MAX).then_some(at);
                // SAFETY: as above.
                let found = unsafe { first_changed(&freed) };
                assert_eq!(found, seen, "size {size}, byte {at}");
                bytes[at] = FREED_FILL;
            }
            bytes[size - 1] = 1;
            if size > 3 {
                bytes[3] = 2;
                // SAFETY: as above.
                let found = unsafe { first_changed(&freed) };
                assert_eq!(found, Some(3), "the first of two");
            }
        }
    }

    #[test]
    fn a_check_looks_only_at_what_was_held_since_it_began() {
        let mut ring = Ring::new();
        assert!(ring.ready());
        let scope = 7;
        let mut memory = [[0u8; 24]; 3];
        let mut entry = |i: usize, scope: u32| {
            let mut freed = Freed {
                addr: memory[i].as_mut_ptr() as usize,
                size: 24,
                scope,
                ..Freed::default()
            };
            fill(&mut freed);
            freed
        };
        let early = entry(0, scope);
        let other = entry(1, scope + 1);
        let late = entry(2, scope);
        ring.push(early, cost_of(24));
        let since = ring.pushed;
        ring.push(other, cost_of(24));
        ring.push(late, cost_of(24));
        for freed in [early, other, late] {
            // SAFETY: `memory` outlives the ring's use of it, and only this
            // test writes it: a write after the "free".
            unsafe { *(freed.addr as *mut u8).add(5) = 1 };
        }
        let mut seen = Vec::new();
        ring.check_scope(scope, since, |freed, offset| {
            seen.push((freed.addr, offset))
        });
        assert_eq!(
            seen,
            vec![(late.addr, 5)],
            "only the check's block held since"
        );
        let mut again = Vec::new();
        ring.check_scope(scope, 0, |freed, offset| again.push((freed.addr, offset)));
        assert_eq!(
            again,
            vec![(early.addr, 5)],
            "the late one was filled again"
        );
        // Evicted entries are behind the oldest: `since` past them is fine.
        assert_eq!(ring.pop_oldest(), Some(early));
        let mut none = Vec::new();
        ring.check_scope(scope, 0, |freed, offset| none.push((freed.addr, offset)));
        assert_eq!(none, vec![]);
        // SAFETY: mapped by `ready` with this size; no entry is used after.
        unsafe { pages::unmap(ring.slots.cast(), CAPACITY * std::mem::size_of::<Freed>()) };
    }

    #[test]
    fn only_entries_older_than_every_running_check_beyond_the_reserve_are_released() {
        let mut ring = Ring::new();
        assert!(ring.ready());
        let entry = |i: usize| Freed {
            addr: 0x1000 + i * 4096,
            size: 4000,
            ..Freed::default()
        };
        let cost = cost_of(4000);
        let reserve_entries = RESERVE_BYTES / cost;
        for i in 0..reserve_entries {
            ring.push(entry(i), cost);
        }
        let mut one = [Freed::default()];
        let mut release = |ring: &mut Ring| {
            let pin = ring.oldest_pin();
            (ring.take_releasable(pin, &mut one) == 1).then_some(one[0])
        };
        let len = ring.len;
        assert_eq!(release(&mut ring), None, "within the reserve");
        assert_eq!(ring.len, len);
        for i in reserve_entries..2 * reserve_entries {
            ring.push(entry(i), cost);
        }
        // A check began at entry 3: entries 0..3 may go, and no more.
        ring.pins[7] = 3;
        let mut released = 0;
        while let Some(freed) = release(&mut ring) {
            assert_eq!(freed, entry(released));
            released += 1;
        }
        assert_eq!(released, 3);
        // A check that found no pin free: nothing goes early.
        ring.pins[7] = NO_PIN;
        ring.unpinned = 1;
        assert_eq!(release(&mut ring), None);
        ring.unpinned = 0;
        // No check runs: everything beyond the reserve goes.
        assert_eq!(release(&mut ring), Some(entry(3)));
        while release(&mut ring).is_some() {}
        assert!(ring.bytes <= RESERVE_BYTES && ring.bytes + cost > RESERVE_BYTES);
        // Giving the emptied pages back keeps every entry held, in order.
        let len = ring.len;
        ring.discard_released(0);
        let entries: Vec<Freed> = std::iter::from_fn(|| ring.pop_oldest()).collect();
        let expected: Vec<Freed> = (2 * reserve_entries - len..2 * reserve_entries)
            .map(entry)
            .collect();
        assert_eq!(entries, expected);
        // SAFETY: mapped by `ready` with this size; no entry is used after.
        unsafe { pages::unmap(ring.slots.cast(), CAPACITY * std::mem::size_of::<Freed>()) };
    }

    /// Which of the ring's first `pages` pages are resident.
    fn resident(ring: &Ring, pages: usize) -> Vec<bool> {
        let mut vec = vec![0u8; pages];
        // SAFETY: the ring's first `pages` pages are inside its mapping, and
        // `vec` has a byte for each.
        let r = unsafe { libc::mincore(ring.slots.cast(), pages * PAGE, vec.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore");
        vec.iter().map(|&v| v & 1 != 0).collect()
    }

    /// Released pages wait for a run of `DISCARD_RUN`: fewer stay
    /// resident, then the whole run goes at once and the head's page stays.
    #[test]
    fn released_pages_go_back_in_runs() {
        let pages = DISCARD_RUN + 3;
        let mut ring = ring_holding(0, pages * PER_PAGE);
        assert!(resident(&ring, pages).iter().all(|&r| r));
        // One page short of a run: nothing goes yet.
        for _ in 0..(DISCARD_RUN - 1) * PER_PAGE {
            ring.pop_oldest();
        }
        ring.discard_in_runs();
        assert!(resident(&ring, pages).iter().all(|&r| r), "discarded early");
        assert_eq!(ring.discarded_to, 0);
        // A run and a half: the run's pages go, the head's stays.
        for _ in 0..PER_PAGE + PER_PAGE / 2 {
            ring.pop_oldest();
        }
        ring.discard_in_runs();
        let now = resident(&ring, pages);
        assert!(now[..DISCARD_RUN].iter().all(|&r| !r), "{now:?}");
        assert!(now[DISCARD_RUN..].iter().all(|&r| r), "{now:?}");
        assert_eq!(ring.discarded_to, ring.head);
        // What is still held reads back whole.
        let kept: Vec<Freed> = std::iter::from_fn(|| ring.pop_oldest()).collect();
        assert_eq!(
            kept,
            (DISCARD_RUN * PER_PAGE + PER_PAGE / 2..pages * PER_PAGE)
                .map(numbered)
                .collect::<Vec<_>>()
        );
        unmap(ring);
    }

    /// Entries of the ring's page.
    const PER_PAGE: usize = PAGE / std::mem::size_of::<Freed>();

    /// Entry `i` of a test ring: a distinct address, 8 bytes.
    fn numbered(i: usize) -> Freed {
        Freed {
            addr: 0x1000 + i * 16,
            size: 8,
            ..Freed::default()
        }
    }

    /// A ring of its own (not the process's) holding entries `0..n`
    /// from index `head` on.
    fn ring_holding(head: usize, n: usize) -> Ring {
        let mut ring = Ring::new();
        assert!(ring.ready());
        ring.head = head;
        for i in 0..n {
            ring.push(numbered(i), cost_of(8));
        }
        ring
    }

    fn unmap(ring: Ring) {
        // SAFETY: mapped by `ready` with this size; no entry is used after.
        unsafe { pages::unmap(ring.slots.cast(), CAPACITY * std::mem::size_of::<Freed>()) };
    }

    #[test]
    fn released_pages_go_back_to_the_kernel_and_held_ones_stay() {
        let mut ring = ring_holding(0, 5 * PER_PAGE);
        let entry = numbered;
        let cost = cost_of(8);
        assert_eq!(resident(&ring, 6), [true, true, true, true, true, false]);
        // Two pages and a half released: the two whole ones go, the head's
        // stays.
        for _ in 0..2 * PER_PAGE + PER_PAGE / 2 {
            ring.pop_oldest();
        }
        ring.discard_released(0);
        assert_eq!(resident(&ring, 6), [false, false, true, true, true, false]);
        let kept: Vec<Freed> = std::iter::from_fn(|| ring.pop_oldest()).collect();
        assert_eq!(
            kept,
            (2 * PER_PAGE + PER_PAGE / 2..5 * PER_PAGE)
                .map(entry)
                .collect::<Vec<_>>()
        );
        // Around the end of the mapping: the entries held at its start (after
        // the wrap) keep their page, the emptied ones before the end go.
        let pages = CAPACITY / PER_PAGE;
        ring.head = CAPACITY - 2 * PER_PAGE;
        ring.pushed = 0;
        for i in 0..3 * PER_PAGE {
            ring.push(entry(i), cost);
        }
        for _ in 0..2 * PER_PAGE + 1 {
            ring.pop_oldest();
        }
        assert_eq!(ring.head, 1);
        ring.discard_released(CAPACITY - 2 * PER_PAGE);
        let mut last = vec![0u8; 2];
        // SAFETY: the ring's last two pages are inside its mapping.
        let r = unsafe {
            libc::mincore(
                ring.slots.add((pages - 2) * PER_PAGE).cast(),
                2 * PAGE,
                last.as_mut_ptr(),
            )
        };
        assert_eq!(
            (r, last[0] & 1, last[1] & 1),
            (0, 0, 0),
            "the last two pages went"
        );
        assert!(resident(&ring, 1)[0], "the head's page stays");
        let kept: Vec<Freed> = std::iter::from_fn(|| ring.pop_oldest()).collect();
        assert_eq!(
            kept,
            (2 * PER_PAGE + 1..3 * PER_PAGE)
                .map(entry)
                .collect::<Vec<_>>()
        );
        unmap(ring);
    }

    #[test]
    fn ring_is_fifo_and_bounded_in_entries_and_bytes() {
        let mut pages_ring = Ring::new();
        assert!(pages_ring.ready());
        let entry = |i: usize| Freed {
            addr: 0x1000 + i * 16,
            size: 8,
            alloc_stack: i as u32,
            ..Freed::default()
        };
        let cost = cost_of(8);
        for i in 0..CAPACITY {
            assert!(pages_ring.fits(cost), "entry {i}");
            pages_ring.push(entry(i), cost);
        }
        assert!(!pages_ring.fits(cost), "full in entries");
        assert!(pages_ring.contains(entry(CAPACITY - 1).addr));
        assert_eq!(pages_ring.pop_oldest(), Some(entry(0)));
        assert!(!pages_ring.contains(entry(0).addr));
        pages_ring.push(entry(CAPACITY), cost);
        assert_eq!(pages_ring.pop_oldest(), Some(entry(1)));
        while pages_ring.pop_oldest().is_some() {}
        assert_eq!((pages_ring.len, pages_ring.bytes), (0, 0));
        assert!(!pages_ring.fits(MAX_BYTES + 1), "bounded in bytes");
        assert!(pages_ring.fits(MAX_BYTES));
        // SAFETY: mapped by `ready` with this size; no entry is used after.
        unsafe {
            pages::unmap(
                pages_ring.slots.cast(),
                CAPACITY * std::mem::size_of::<Freed>(),
            )
        };
    }
}
