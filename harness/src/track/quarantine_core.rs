//! The quarantine's ring of held blocks, as far as its loops over entries
//! touch it: holding a block (evicting the oldest when full), taking the
//! entries no running check needs, checking their fills and freeing them,
//! and finding a check's blocks written after their free. A file of its
//! own, `core` only and `#[repr(C)]` for what it shares: like
//! `stacks/walk_core.rs`, it is also compiled into the optimised object of
//! unoptimised builds (`stacks/walk_object.rs`), where at `opt-level = 0`
//! these loops had cost 500–800 instructions a held block (a tenth of a
//! real suite's). The lock, the pages, the pins and the fill itself stay
//! with `quarantine`. Nothing here may panic: the object must not need
//! `core`'s panic machinery.

/// A freed block held back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Freed {
    /// Start address, as the allocator returned it.
    pub(crate) addr: usize,
    /// Requested size in bytes.
    pub(crate) size: usize,
    /// Interned allocation stack (0 for a block of no check).
    pub(crate) alloc_stack: u32,
    /// Interned stack of the `free`, 0 where none was captured (blocks of
    /// no check).
    pub(crate) free_stack: u32,
    /// The check that owned the block, 0 for none.
    pub(crate) scope: u32,
    /// 1 when the block's bytes were filled with [`FREED_FILL`].
    pub(crate) filled: u32,
}

/// What a held block of a check is filled with: a write after its free
/// changes it.
pub(crate) const FREED_FILL: u8 = 0xfd;

/// Bytes filled (and checked) per held block at most: a write after free
/// past them is not seen; larger blocks cost no more than this.
pub(crate) const FILL_MAX: usize = 4096;

/// Entries held at most (32 bytes each: 8 MiB of address space, mapped
/// without reserving, touched as it fills). A power of two: positions wrap
/// by a mask.
pub(crate) const CAPACITY: usize = 1 << 18;
const _: () = assert!(CAPACITY.is_power_of_two());

/// Bytes held at most, counting glibc's 16-byte chunk overhead. Held
/// blocks are resident memory glibc cannot hand out again, so this bounds
/// most of leakcheck's fixed cost in peak RSS (it was 64 MiB): rusqlite's
/// 168 tests held 14.8 MB in 41,000 blocks at the end, a third of the
/// process. valgrind's `--freelist-vol`, for the same purpose, is 20 MB.
/// Smaller costs time instead: at 8 MiB the same suite's peak fell by
/// 4 MB but its CPU time rose by a fifth in the dev profile (every
/// evicted block's fill is checked byte by byte).
pub(crate) const MAX_BYTES: usize = 16 << 20;

/// glibc's per-chunk overhead, counted against [`MAX_BYTES`].
const CHUNK_OVERHEAD: usize = 16;

/// How many of a block's bytes are filled: an `if`, not `min`, which is a
/// call unoptimised (a user's dev profile), at every quarantined free.
#[inline(always)]
pub(crate) fn fill_len(size: usize) -> usize {
    if size < FILL_MAX {
        size
    } else {
        FILL_MAX
    }
}

/// What a held block counts against [`MAX_BYTES`].
#[inline(always)]
pub(crate) fn cost_of(size: usize) -> usize {
    // `size.next_multiple_of(16)`, as the instructions: unoptimised that is
    // a call with its overflow checks, twice a quarantined block. No
    // overflow: held blocks are at most `quarantine::MAX_BLOCK` bytes.
    ((size + 15) & !15) + CHUNK_OVERHEAD
}

/// The ring's entries: `len` of them from `head` (wrapping at
/// [`CAPACITY`]) in `slots`, oldest first.
#[repr(C)]
pub(crate) struct Entries {
    /// [`CAPACITY`] entries, or null until mapped.
    pub(crate) slots: *mut Freed,
    /// Index of the oldest entry.
    pub(crate) head: usize,
    pub(crate) len: usize,
    /// What the entries cost, by [`cost_of`].
    pub(crate) bytes: usize,
    /// Entries pushed since the start, evicted ones included: the entry at
    /// offset `i` from the oldest was the `pushed - len + i`-th pushed.
    pub(crate) pushed: u64,
    /// One past the last entry that left because the ring was full (an
    /// eviction, in push order), not because no check needed it.
    pub(crate) evicted_to: u64,
}

/// [`hold_in`]'s answer: the new entry was pushed.
pub(crate) const HELD: u32 = 1;
/// [`hold_in`]'s answer: the oldest entry was taken out to make room.
pub(crate) const EVICTED: u32 = 2;

impl Entries {
    pub(crate) const EMPTY: Entries = Entries {
        slots: core::ptr::null_mut(),
        head: 0,
        len: 0,
        bytes: 0,
        pushed: 0,
        evicted_to: 0,
    };

    /// The entry at ring index `i` (masked into the ring).
    ///
    /// # Safety
    ///
    /// `slots` is mapped, and the caller has the ring to itself.
    #[inline(always)]
    unsafe fn at(&self, i: usize) -> *mut Freed {
        // SAFETY: the caller's contract; the mask keeps `i` in the ring.
        unsafe { self.slots.add(i & (CAPACITY - 1)) }
    }

    /// The entry `i` places after the oldest (`i < len`).
    ///
    /// # Safety
    ///
    /// As [`at`](Self::at).
    #[inline(always)]
    pub(crate) unsafe fn nth(&self, i: usize) -> Freed {
        // SAFETY: the caller's contract.
        unsafe { *self.at(self.head + i) }
    }

    #[inline(always)]
    pub(crate) fn fits(&self, cost: usize) -> bool {
        self.len < CAPACITY && self.bytes + cost <= MAX_BYTES
    }

    /// Adds `freed`, which costs `cost`, as the newest entry.
    ///
    /// # Safety
    ///
    /// As [`at`](Self::at), and `len < CAPACITY`.
    #[inline(always)]
    pub(crate) unsafe fn push(&mut self, freed: Freed, cost: usize) {
        // SAFETY: the caller's contract.
        unsafe { *self.at(self.head + self.len) = freed };
        self.len += 1;
        self.bytes += cost;
        self.pushed += 1;
    }

    /// Takes the oldest entry out, if any.
    ///
    /// # Safety
    ///
    /// As [`at`](Self::at).
    #[inline(always)]
    pub(crate) unsafe fn pop_oldest(&mut self) -> Option<Freed> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: the caller's contract.
        let oldest = unsafe { *self.at(self.head) };
        self.head = (self.head + 1) & (CAPACITY - 1);
        self.len -= 1;
        self.bytes -= cost_of(oldest.size);
        Some(oldest)
    }
}

/// `hold`'s work under the ring's lock: when `freed` (costing `cost`) does
/// not fit, the oldest entry goes out into `evicted` (and counts as an
/// eviction); then `freed` goes in if it fits. Returns [`HELD`] and
/// [`EVICTED`] as they happened.
///
/// # Safety
///
/// `entries.slots` is mapped, and the caller holds the ring's lock.
#[inline(always)]
pub(crate) unsafe fn hold_in(
    entries: &mut Entries,
    freed: &Freed,
    cost: usize,
    evicted: &mut Freed,
) -> u32 {
    let mut out = 0;
    if !entries.fits(cost) {
        // SAFETY: the caller's contract.
        if let Some(oldest) = unsafe { entries.pop_oldest() } {
            // The popped entry was the `pushed - len - 1`-th (len already
            // counts it out).
            entries.evicted_to = entries.pushed - entries.len as u64;
            *evicted = oldest;
            out |= EVICTED;
        }
    }
    if entries.fits(cost) {
        // SAFETY: the caller's contract; `fits` means `len < CAPACITY`.
        unsafe { entries.push(*freed, cost) };
        out |= HELD;
    }
    out
}

/// Takes out, oldest first, up to `max` entries into `out` while more than
/// `reserve` bytes are held and the oldest was pushed before `oldest_pin`
/// (where the oldest running check began). Returns how many.
///
/// # Safety
///
/// As [`hold_in`], and `out` has room for `max` entries.
#[inline(always)]
pub(crate) unsafe fn take_releasable(
    entries: &mut Entries,
    reserve: usize,
    oldest_pin: u64,
    out: *mut Freed,
    max: usize,
) -> usize {
    let mut taken = 0;
    while taken < max
        && entries.len != 0
        && entries.bytes > reserve
        && entries.pushed - (entries.len as u64) < oldest_pin
    {
        // SAFETY: the caller's contract; `len != 0`.
        match unsafe { entries.pop_oldest() } {
            // SAFETY: `taken < max`, and `out` has room for `max`.
            Some(oldest) => unsafe { out.add(taken).write(oldest) },
            None => break,
        }
        taken += 1;
    }
    taken
}

/// The offset of the first byte of `freed`, a held and filled block, that
/// no longer has [`FREED_FILL`], by `first_not` (`bytes::first_not` over a
/// pointer and a length; `usize::MAX` for none); `usize::MAX` for a block
/// that was not filled.
///
/// # Safety
///
/// `freed` is held by the quarantine (its memory is not glibc's), and
/// `first_not` reads only the bytes it is given.
#[inline(always)]
pub(crate) unsafe fn first_changed(
    freed: &Freed,
    first_not: &impl Fn(*const u8, usize, u8) -> usize,
) -> usize {
    if freed.filled == 0 {
        return usize::MAX;
    }
    first_not(freed.addr as *const u8, fill_len(freed.size), FREED_FILL)
}

/// Frees, by `free`, the entries `batch[from..n]` whose fill is intact,
/// stopping at the first whose fill changed: returns its index (not freed;
/// the caller reports it, frees it and goes on after it), or `n`.
///
/// # Safety
///
/// The `n` entries at `batch` left the ring just now (held by the caller
/// alone, not freed yet); `free` gives a block back to glibc; the caller
/// runs under the re-entrancy guard.
#[inline(always)]
pub(crate) unsafe fn free_intact(
    batch: *const Freed,
    n: usize,
    from: usize,
    first_not: &impl Fn(*const u8, usize, u8) -> usize,
    free: &impl Fn(usize),
) -> usize {
    let mut i = from;
    while i < n {
        // SAFETY: `i < n`, the batch's length.
        let freed = unsafe { &*batch.add(i) };
        // SAFETY: the caller's contract: the block is still held.
        if unsafe { first_changed(freed, first_not) } != usize::MAX {
            return i;
        }
        free(freed.addr);
        i += 1;
    }
    n
}

/// The first entry at or after place `from` (counted from the oldest) that
/// belongs to check `scope` and whose fill changed, or `len` if none.
///
/// # Safety
///
/// As [`hold_in`], and `first_not` as [`first_changed`].
#[inline(always)]
pub(crate) unsafe fn next_changed(
    entries: &Entries,
    from: usize,
    scope: u32,
    first_not: &impl Fn(*const u8, usize, u8) -> usize,
) -> usize {
    let mut i = from;
    while i < entries.len {
        // SAFETY: the caller's contract; `i < len`.
        let entry = unsafe { &*entries.at(entries.head + i) };
        // SAFETY: the entry is held, and the lock keeps it so.
        if entry.scope == scope && unsafe { first_changed(entry, first_not) } != usize::MAX {
            return i;
        }
        i += 1;
    }
    entries.len
}
