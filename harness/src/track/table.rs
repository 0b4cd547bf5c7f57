//! Every live heap block in the process, keyed by address.
//!
//! The table knows all blocks, checked test or not: that is what lets a free
//! on any thread retire a block wherever it was allocated, and what later
//! classification and misuse detection stand on. It is sharded by address
//! hash; each shard is an open-addressing table (linear probing, backward
//! shift deletion, so no tombstones) in pages mapped from the kernel.

#[cfg(not(leakcheck_prebuilt_walk))]
use super::shard_core;
use super::shard_core::{hash_addr, Shard, Slot, SHARD_BITS};
use crate::sys::sync::{pages, SpinLock};
use std::ptr;

const SHARDS: usize = 1 << SHARD_BITS;
const PAGE: usize = 4096;
/// Slots of a new shard: one page of them.
const INITIAL_CAPACITY: usize = PAGE / std::mem::size_of::<Slot>();
/// A shard grows once it would be more than `LOAD_NUM / LOAD_DEN` full.
const LOAD_NUM: usize = 3;
const LOAD_DEN: usize = 4;

/// Which function made a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Allocator {
    Malloc = 1,
    Calloc,
    Realloc,
    PosixMemalign,
    AlignedAlloc,
    Memalign,
    Valloc,
    Pvalloc,
    Reallocarray,
    RustAlloc,
    RustAllocZeroed,
    RustRealloc,
}

impl Allocator {
    const ALL: [Allocator; 12] = [
        Allocator::Malloc,
        Allocator::Calloc,
        Allocator::Realloc,
        Allocator::PosixMemalign,
        Allocator::AlignedAlloc,
        Allocator::Memalign,
        Allocator::Valloc,
        Allocator::Pvalloc,
        Allocator::Reallocarray,
        Allocator::RustAlloc,
        Allocator::RustAllocZeroed,
        Allocator::RustRealloc,
    ];

    #[inline(always)]
    pub(crate) fn from_u8(v: u8) -> Allocator {
        // An index, not `get().copied().unwrap_or()`: three calls a block
        // unoptimised (a user's dev profile), on every free.
        let i = usize::from(v).wrapping_sub(1);
        if i < Allocator::ALL.len() {
            Allocator::ALL[i]
        } else {
            Allocator::Malloc
        }
    }

    /// The name users know it by.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Allocator::Malloc => "malloc",
            Allocator::Calloc => "calloc",
            Allocator::Realloc => "realloc",
            Allocator::PosixMemalign => "posix_memalign",
            Allocator::AlignedAlloc => "aligned_alloc",
            Allocator::Memalign => "memalign",
            Allocator::Valloc => "valloc",
            Allocator::Pvalloc => "pvalloc",
            Allocator::Reallocarray => "reallocarray",
            Allocator::RustAlloc => "alloc",
            Allocator::RustAllocZeroed => "alloc_zeroed",
            Allocator::RustRealloc => "realloc",
        }
    }

    #[inline(always)]
    pub(crate) fn is_rust(self) -> bool {
        matches!(
            self,
            Allocator::RustAlloc | Allocator::RustAllocZeroed | Allocator::RustRealloc
        )
    }
}

/// One live block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Block {
    /// Start address; 0 marks an empty slot.
    pub(crate) addr: usize,
    /// Requested size in bytes.
    pub(crate) size: usize,
    /// Owning scope, 0 for none.
    pub(crate) scope: u32,
    /// Interned allocation stack, 0 for none.
    pub(crate) stack: u32,
    allocator: u8,
    /// log2 of the requested alignment (Rust blocks; 0 for C).
    pub(crate) align_log2: u8,
    /// 1 for leakcheck's own blocks (see `scope::Untracked::harness`).
    pub(crate) harness: u8,
    /// The block's stack is a profile sample's (feature `profile`,
    /// `track::sample`): it stands for its share of all allocations.
    pub(crate) sampled: bool,
    /// 1 when guard bytes follow the block (`misuse::GUARD` of them, a
    /// block allocated inside a check).
    pub(crate) guarded: u8,
    /// The allocating thread's epoch, for blocks of no scope (see
    /// `scope::current_epoch`).
    pub(crate) epoch: u32,
}

impl Block {
    pub(crate) const EMPTY: Block = Block {
        addr: 0,
        size: 0,
        scope: 0,
        stack: 0,
        allocator: 0,
        align_log2: 0,
        harness: 0,
        sampled: false,
        guarded: 0,
        epoch: 0,
    };

    #[inline(always)]
    pub(crate) fn new(addr: usize, size: usize, allocator: Allocator, align: usize) -> Block {
        Block {
            addr,
            size,
            scope: 0,
            stack: 0,
            allocator: allocator as u8,
            align_log2: if align <= 1 {
                0
            } else {
                align.trailing_zeros() as u8
            },
            harness: 0,
            sampled: false,
            guarded: 0,
            epoch: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn allocator(&self) -> Allocator {
        Allocator::from_u8(self.allocator)
    }
}

impl Default for Block {
    fn default() -> Block {
        Block::EMPTY
    }
}

// How a [`Block`] is stored in the table (`shard_core::Slot`): 24 bytes
// instead of 32, since every live block of the process has one (5 million
// small blocks are 120 MB here, not 160). A block belongs to a scope or, if
// to none, carries its thread's epoch, never both, so the two share
// `owner`. `addr` is the start address (0 marks an empty slot); `meta` has
// `size` in the low 48 bits, then the allocator (4 bits), log2 of the
// alignment (6 bits), the harness bit, the epoch bit, the sampled bit and
// the guard bit; `owner` is the scope, or the epoch when `meta` has
// [`EPOCH_BIT`].

const SIZE_BITS: u32 = 48;
const SIZE_MASK: u64 = (1 << SIZE_BITS) - 1;
const ALLOCATOR_SHIFT: u32 = SIZE_BITS;
const ALIGN_SHIFT: u32 = ALLOCATOR_SHIFT + 4;
const HARNESS_BIT: u64 = 1 << (ALIGN_SHIFT + 6);
const EPOCH_BIT: u64 = HARNESS_BIT << 1;
const SAMPLED_BIT: u64 = EPOCH_BIT << 1;
const GUARD_BIT: u64 = EPOCH_BIT << 2;

const _: () = assert!(std::mem::size_of::<Slot>() == 24);
const _: () = assert!(Allocator::ALL.len() < 16);
// `Packed::is_rust`: the Rust allocators come last.
const _: () = assert!(
    Allocator::RustAlloc as u8 > Allocator::Reallocarray as u8
        && Allocator::RustAllocZeroed as u8 > Allocator::RustAlloc as u8
        && Allocator::RustRealloc as u8 > Allocator::RustAllocZeroed as u8
        && Allocator::ALL[Allocator::ALL.len() - 1] as u8 == Allocator::RustRealloc as u8
);

impl Slot {
    #[inline(always)]
    fn pack(b: &Block) -> Slot {
        // No block is 256 TiB; a larger size would be clamped, never wrap.
        let size = if (b.size as u64) < SIZE_MASK {
            b.size as u64
        } else {
            SIZE_MASK
        };
        let (owner, epoch_bit) = if b.scope == 0 && b.epoch != 0 {
            (b.epoch, EPOCH_BIT)
        } else {
            (b.scope, 0)
        };
        Slot {
            addr: b.addr,
            meta: size
                | u64::from(b.allocator & 0xf) << ALLOCATOR_SHIFT
                | u64::from(b.align_log2 & 0x3f) << ALIGN_SHIFT
                | if b.harness != 0 { HARNESS_BIT } else { 0 }
                | epoch_bit
                | if b.sampled { SAMPLED_BIT } else { 0 }
                | if b.guarded != 0 { GUARD_BIT } else { 0 },
            owner,
            stack: b.stack,
        }
    }

    #[inline(always)]
    fn unpack(&self) -> Block {
        let epoch = self.meta & EPOCH_BIT != 0;
        Block {
            addr: self.addr,
            size: (self.meta & SIZE_MASK) as usize,
            scope: if epoch { 0 } else { self.owner },
            stack: self.stack,
            allocator: (self.meta >> ALLOCATOR_SHIFT) as u8 & 0xf,
            align_log2: (self.meta >> ALIGN_SHIFT) as u8 & 0x3f,
            harness: u8::from(self.meta & HARNESS_BIT != 0),
            sampled: self.meta & SAMPLED_BIT != 0,
            guarded: u8::from(self.meta & GUARD_BIT != 0),
            epoch: if epoch { self.owner } else { 0 },
        }
    }

    /// Whether the slot holds a block of `scope` (never true of an empty
    /// slot: no scope is 0).
    #[inline]
    fn of_scope(&self, scope: u32) -> bool {
        self.owner == scope && self.meta & EPOCH_BIT == 0
    }

    fn is_harness(&self) -> bool {
        self.meta & HARNESS_BIT != 0
    }
}

/// A [`Block`] as the table stores it, in three whole words: what the
/// allocation path passes around until it needs the fields. (A `Block`
/// built a byte field at a time and copied whole stalls on store
/// forwarding; words move through registers or forward.)
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed {
    pub(crate) addr: usize,
    pub(crate) meta: u64,
    /// The slot's `owner`, and its `stack` in the high half.
    pub(crate) rest: u64,
}

impl Packed {
    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn new(block: &Block) -> Packed {
        Packed::from(Slot::pack(block))
    }

    #[inline(always)]
    fn from(slot: Slot) -> Packed {
        Packed {
            addr: slot.addr,
            meta: slot.meta,
            rest: u64::from(slot.owner) | u64::from(slot.stack) << 32,
        }
    }

    /// A block of no scope, no stack, not leakcheck's, not a profile
    /// sample, without guard bytes: one that may be cached, and whose free
    /// has nothing to look at but its family and layout.
    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn plain(&self) -> bool {
        self.meta & (HARNESS_BIT | SAMPLED_BIT | GUARD_BIT) == 0
            && (self.meta & EPOCH_BIT != 0 || self.rest as u32 == 0)
            && self.rest >> 32 == 0
    }

    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn size(&self) -> usize {
        (self.meta & SIZE_MASK) as usize
    }

    /// Whether the block came from a Rust allocation (without decoding
    /// which allocator).
    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn is_rust(&self) -> bool {
        (self.meta >> ALLOCATOR_SHIFT) & 0xf >= Allocator::RustAlloc as u64
    }

    #[cfg(leakcheck_interpose)]
    #[inline(always)]
    pub(crate) fn align_log2(&self) -> u32 {
        (self.meta >> ALIGN_SHIFT) as u32 & 0x3f
    }

    #[inline(always)]
    pub(crate) fn unpack(self) -> Block {
        Slot {
            addr: self.addr,
            meta: self.meta,
            owner: self.rest as u32,
            stack: (self.rest >> 32) as u32,
        }
        .unpack()
    }
}

/// What [`Shard::insert`] did.
enum Inserted {
    New,
    /// Over a stale record of the same address, returned.
    Replaced(Block),
    NoMemory,
}

// SAFETY: a shard's pages are owned by the shard and only touched under its
// lock.
unsafe impl Send for Shard {}

#[cfg(leakcheck_prebuilt_walk)]
extern "C" {
    // `shard_core`, built optimised (`stacks/walk_object.rs`).
    fn leakcheck_shard_find_v1(shard: *const Shard, addr: usize, hash: u64) -> usize;
    fn leakcheck_shard_insert_v1(
        shard: *mut Shard,
        slot: *const Slot,
        hash: u64,
        stale: *mut Slot,
    ) -> bool;
    fn leakcheck_shard_remove_v1(
        shard: *mut Shard,
        addr: usize,
        hash: u64,
        removed: *mut Slot,
    ) -> bool;
    fn leakcheck_shard_refile_v1(shard: *mut Shard, old: *const Slot, old_capacity: usize);
}

impl Shard {
    const fn new() -> Shard {
        Shard {
            slots: ptr::null_mut(),
            capacity: 0,
            len: 0,
        }
    }

    fn slot(&self, i: usize) -> &Slot {
        debug_assert!(i < self.capacity);
        // SAFETY: `slots` maps `capacity` blocks and `i < capacity`.
        unsafe { &*self.slots.add(i) }
    }

    /// `shard_core::find`, from the optimised object when this crate is
    /// built unoptimised (as the other operations below).
    fn find(&self, addr: usize, hash: u64) -> Option<usize> {
        #[cfg(leakcheck_prebuilt_walk)]
        {
            // SAFETY: the shard is locked (`&self` comes from its guard) and
            // keeps `shard_core`'s invariants (only this impl writes it).
            let at = unsafe { leakcheck_shard_find_v1(self, addr, hash) };
            // `if`s, not `then_some` (here and below): a call unoptimised,
            // at every block's allocation and free.
            if at == usize::MAX {
                None
            } else {
                Some(at)
            }
        }
        #[cfg(not(leakcheck_prebuilt_walk))]
        // SAFETY: as above.
        unsafe {
            shard_core::find(self, addr, hash)
        }
    }

    /// Inserts or overwrites.
    fn insert(&mut self, block: Block, hash: u64) -> Inserted {
        if (self.len + 1) * LOAD_DEN > self.capacity * LOAD_NUM && !self.grow() {
            return Inserted::NoMemory;
        }
        let slot = Slot::pack(&block);
        // A stale entry at the same address (its free went by while the
        // hooks were bypassed, e.g. in a signal handler) is replaced.
        #[cfg(leakcheck_prebuilt_walk)]
        let stale = {
            let mut stale = Slot::default();
            // SAFETY: as in `find`, and the load check above left room.
            if unsafe { leakcheck_shard_insert_v1(self, &slot, hash, &mut stale) } {
                Some(stale)
            } else {
                None
            }
        };
        #[cfg(not(leakcheck_prebuilt_walk))]
        // SAFETY: as above.
        let stale = unsafe { shard_core::insert(self, slot, hash) };
        match stale {
            None => Inserted::New,
            Some(stale) => Inserted::Replaced(stale.unpack()),
        }
    }

    /// Removes the block at `addr`, returning its slot: packed, so that
    /// the caller unpacks it into registers (a `Block` returned through
    /// memory, written a byte field at a time and read back whole, stalled
    /// every free on store forwarding).
    fn remove(&mut self, addr: usize, hash: u64) -> Option<Slot> {
        #[cfg(leakcheck_prebuilt_walk)]
        {
            let mut removed = Slot::default();
            // SAFETY: as in `find`.
            if unsafe { leakcheck_shard_remove_v1(self, addr, hash, &mut removed) } {
                Some(removed)
            } else {
                None
            }
        }
        #[cfg(not(leakcheck_prebuilt_walk))]
        // SAFETY: as in `find`.
        unsafe {
            shard_core::remove(self, addr, hash)
        }
    }

    fn grow(&mut self) -> bool {
        // Grown by half, to a whole number of pages: the table is between
        // half and three quarters full, 32 to 48 bytes a block.
        let per_page = PAGE / std::mem::size_of::<Slot>();
        let new_capacity = if self.capacity == 0 {
            INITIAL_CAPACITY
        } else {
            (self.capacity + self.capacity / 2).next_multiple_of(per_page)
        };
        let bytes = Shard::bytes(new_capacity);
        let new_slots = pages::map_populated(bytes).cast::<Slot>();
        if new_slots.is_null() {
            return false;
        }
        let (old_slots, old_capacity) = (self.slots, self.capacity);
        self.slots = new_slots;
        self.capacity = new_capacity;
        self.len = 0;
        if old_slots.is_null() {
            return true;
        }
        #[cfg(leakcheck_prebuilt_walk)]
        // SAFETY: the fresh array is all empty slots, larger than the old
        // one, and the shard is locked; the old array is still mapped.
        unsafe {
            leakcheck_shard_refile_v1(self, old_slots, old_capacity)
        };
        #[cfg(not(leakcheck_prebuilt_walk))]
        // SAFETY: as above.
        unsafe {
            shard_core::refile(self, old_slots, old_capacity)
        };
        // SAFETY: `old_slots` was mapped with exactly this size by an earlier
        // `grow` and every block has been copied out of it.
        unsafe { pages::unmap(old_slots.cast(), Shard::bytes(old_capacity)) };
        true
    }

    /// The mapping for `capacity` slots: whole pages.
    fn bytes(capacity: usize) -> usize {
        (capacity * std::mem::size_of::<Slot>()).next_multiple_of(PAGE)
    }
}

#[inline]
fn shard_of(hash: u64) -> &'static SpinLock<Shard> {
    &TABLE[(hash as usize) & (SHARDS - 1)]
}

static TABLE: [SpinLock<Shard>; SHARDS] = [const { SpinLock::new(Shard::new()) }; SHARDS];

/// Records a live block. Returns the stale record it replaced, if one was
/// left at the same address. If the table cannot grow the block goes
/// untracked (see [`dropped`]).
#[inline]
pub(crate) fn insert(block: Block) -> Option<Block> {
    let hash = hash_addr(block.addr);
    let inserted = shard_of(hash).lock().insert(block, hash);
    match inserted {
        Inserted::New => None,
        Inserted::Replaced(stale) => Some(stale),
        Inserted::NoMemory => {
            DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            None
        }
    }
}

/// Forgets the block at `addr`, returning it if it was live.
#[inline]
pub(crate) fn remove(addr: usize) -> Option<Packed> {
    let hash = hash_addr(addr);
    let removed = shard_of(hash).lock().remove(addr, hash);
    removed.map(Packed::from)
}

/// The live block starting at `addr`, if any, in the table or a thread's
/// cache.
pub(crate) fn get(addr: usize) -> Option<Block> {
    let _bypass = crate::sys::reentry::Bypass::enter();
    let hash = hash_addr(addr);
    let found = {
        let shard = shard_of(hash).lock();
        shard.find(addr, hash).map(|i| shard.slot(i).unpack())
    };
    found.or_else(|| crate::track::cache::peek(addr))
}

#[cfg(leakcheck_interpose)]
/// Calls `f` with the live block starting at `addr`, if any, with its shard
/// locked: the block cannot be freed meanwhile, so its memory (guard bytes
/// included) may be read. `f` must not allocate through the hooks (they are
/// bypassed meanwhile).
pub(crate) fn with_block<R>(addr: usize, f: impl FnOnce(&Block) -> R) -> Option<R> {
    let _bypass = crate::sys::reentry::Bypass::enter();
    let hash = hash_addr(addr);
    let shard = shard_of(hash).lock();
    shard.find(addr, hash).map(|i| f(&shard.slot(i).unpack()))
}

#[cfg(leakcheck_interpose)]
/// The live block whose bytes `[addr, addr + size)` hold `addr` past its
/// start (an interior pointer), if any. Scans every shard and every
/// thread's cache: for the rare free of a pointer that is no block's start.
pub(crate) fn containing(addr: usize) -> Option<Block> {
    containing_in_table(addr).or_else(|| crate::track::cache::containing(addr))
}

#[cfg(leakcheck_interpose)]
fn containing_in_table(addr: usize) -> Option<Block> {
    let _bypass = crate::sys::reentry::Bypass::enter();
    for shard in &TABLE {
        let shard = shard.lock();
        for i in 0..shard.capacity {
            let b = shard.slot(i);
            let size = (b.meta & SIZE_MASK) as usize;
            if b.addr != 0 && b.addr < addr && addr < b.addr.saturating_add(size.max(1)) {
                return Some(b.unpack());
            }
        }
    }
    None
}

static DROPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Blocks that could not be recorded because the kernel refused memory.
pub(crate) fn dropped() -> usize {
    DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Appends to `out` every live block owned by `scope`, without allocating
/// while a shard is locked. Returns how many matched; if that exceeds the
/// spare capacity of `out`, only the first ones were appended and the caller
/// retries with more room. Stops early once `expected` blocks are found (the
/// scope's own count of its live blocks, which nothing can exceed once the
/// scope has ended).
pub(crate) fn collect_scope(scope: u32, expected: usize, out: &mut [Block]) -> usize {
    debug_assert_ne!(scope, 0, "empty slots carry scope 0");
    let _bypass = crate::sys::reentry::Bypass::enter();
    let mut matched = 0;
    for shard in &TABLE {
        if matched >= expected {
            break;
        }
        let shard = shard.lock();
        for i in 0..shard.capacity {
            // Empty slots have scope 0 and no scope is 0, so the scope test
            // alone finds live blocks (and predicts well in a full table).
            let b = shard.slot(i);
            if b.of_scope(scope) {
                if let Some(slot) = out.get_mut(matched) {
                    *slot = b.unpack();
                }
                matched += 1;
            }
        }
    }
    matched
}

/// How many blocks the table holds (a snapshot; for sizing buffers).
pub(crate) fn len() -> usize {
    let _bypass = crate::sys::reentry::Bypass::enter();
    TABLE.iter().map(|shard| shard.lock().len).sum()
}

/// Calls `f` with every live block not of `scope` (nor leakcheck's own), one shard at a time with
/// that shard locked (so `f` must not allocate through the hooks, which it
/// cannot: the hooks are bypassed meanwhile). While its shard is locked a
/// block listed cannot be retired, so its memory is the block's.
pub(crate) fn for_each_other(scope: u32, mut f: impl FnMut(&Block)) {
    let _bypass = crate::sys::reentry::Bypass::enter();
    for shard in &TABLE {
        let shard = shard.lock();
        for i in 0..shard.capacity {
            let b = shard.slot(i);
            if b.addr != 0 && !b.of_scope(scope) && !b.is_harness() {
                f(&b.unpack());
            }
        }
    }
}

/// Calls `f` with every live block whose stack is a profile sample, one
/// shard at a time with that shard locked (the hooks are bypassed
/// meanwhile, so what `f` allocates goes straight to glibc, unrecorded).
#[cfg(feature = "profile")]
pub(crate) fn for_each_sampled(mut f: impl FnMut(&Block)) {
    let _bypass = crate::sys::reentry::Bypass::enter();
    for shard in &TABLE {
        let shard = shard.lock();
        for i in 0..shard.capacity {
            let b = shard.slot(i);
            if b.meta & SAMPLED_BIT != 0 && b.addr != 0 {
                f(&b.unpack());
            }
        }
    }
}

/// `pthread_atfork` prepare: hold every shard so the child gets the table in
/// a consistent state.
pub(crate) fn lock_all_for_fork() {
    for shard in &TABLE {
        shard.lock_for_fork();
    }
}

/// `pthread_atfork` parent and child: release what `lock_all_for_fork` took.
///
/// # Safety
///
/// Only after `lock_all_for_fork` on this thread (or the forking thread).
pub(crate) unsafe fn unlock_all_after_fork() {
    for shard in TABLE.iter().rev() {
        // SAFETY: the caller guarantees lock_all_for_fork holds every shard.
        unsafe { shard.force_unlock() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_insert_remove_and_backward_shift() {
        let mut shard = Shard::new();
        // Many addresses, including ones that collide in a small table.
        let addrs: Vec<usize> = (1..5000usize).map(|i| 0x1000_0000 + i * 16).collect();
        for &a in &addrs {
            assert!(matches!(
                shard.insert(Block::new(a, a & 0xff, Allocator::Malloc, 16), hash_addr(a)),
                Inserted::New
            ));
        }
        assert_eq!(shard.len, addrs.len());
        for &a in addrs.iter().step_by(3) {
            let b = shard.remove(a, hash_addr(a)).expect("present").unpack();
            assert_eq!(b.size, a & 0xff);
        }
        for (i, &a) in addrs.iter().enumerate() {
            assert_eq!(
                shard.find(a, hash_addr(a)).is_some(),
                i % 3 != 0,
                "addr {a:#x}"
            );
        }
        assert!(shard.remove(0x42, hash_addr(0x42)).is_none());
    }

    #[test]
    fn slots_round_trip_every_field_in_24_bytes() {
        let mut b = Block::new(
            0x7f00_1234_5670,
            (1 << 40) + 3,
            Allocator::RustRealloc,
            4096,
        );
        b.scope = 0x00ab_cdef;
        b.stack = 77;
        b.harness = 1;
        b.sampled = true;
        b.guarded = 1;
        assert_eq!(Slot::pack(&b).unpack(), b);
        assert!(Slot::pack(&b).of_scope(0x00ab_cdef));
        assert!(Slot::pack(&b).is_harness());
        // A block of no scope keeps its epoch, and is of no scope.
        let mut c = Block::new(0x10, 24, Allocator::Calloc, 16);
        c.epoch = 9;
        assert_eq!(Slot::pack(&c).unpack(), c);
        assert!(!Slot::pack(&c).of_scope(9));
        assert!(!Slot::pack(&c).is_harness());
        assert!(!Slot::pack(&b).of_scope(0x00ab_cdee), "another scope");
        for allocator in Allocator::ALL {
            let d = Block::new(0x20, 1, allocator, 1);
            assert_eq!(Slot::pack(&d).unpack().allocator(), allocator);
        }
    }

    #[test]
    fn a_shard_grows_by_half_and_keeps_every_block() {
        let mut shard = Shard::new();
        let mut capacities = Vec::new();
        for i in 1..=20_000usize {
            let a = 0x5000_0000 + i * 32;
            assert!(matches!(
                shard.insert(Block::new(a, i, Allocator::Malloc, 16), hash_addr(a)),
                Inserted::New
            ));
            if capacities.last() != Some(&shard.capacity) {
                capacities.push(shard.capacity);
            }
            assert!(shard.len * LOAD_DEN <= shard.capacity * LOAD_NUM);
        }
        // By half, rounded up to whole pages (which doubles the smallest).
        for pair in capacities.windows(2) {
            assert!(pair[1] >= pair[0] * 3 / 2, "{capacities:?}");
            assert!(pair[1] <= pair[0] * 2, "{capacities:?}");
            if pair[0] > 4000 {
                assert!(pair[1] * 10 <= pair[0] * 16, "{capacities:?}");
            }
        }
        for i in 1..=20_000usize {
            let a = 0x5000_0000 + i * 32;
            let found = shard
                .find(a, hash_addr(a))
                .map(|s| shard.slot(s).unpack().size);
            assert_eq!(found, Some(i));
        }
    }

    #[test]
    fn block_round_trips_allocator_and_alignment() {
        let b = Block::new(0x10, 3, Allocator::PosixMemalign, 64);
        assert_eq!(b.allocator(), Allocator::PosixMemalign);
        assert_eq!(b.align_log2, 6);
        assert_eq!(Allocator::from_u8(200), Allocator::Malloc);
    }
}

#[cfg(test)]
mod signal_tests {
    use super::*;

    extern "C" fn allocating_handler(_signal: libc::c_int) {
        // SAFETY: a plain allocation and its free, from a signal handler.
        unsafe { libc::free(std::hint::black_box(libc::malloc(40))) };
    }

    /// While a thread holds tracker locks outside a hook (the verdict's scan
    /// does), a signal handler that allocates on that thread must be sent
    /// straight to glibc, not wait for the locks its own thread holds.
    #[test]
    fn an_allocating_signal_handler_never_waits_for_locks_its_thread_holds() {
        // SAFETY: installs a handler for SIGUSR2 that only mallocs and frees.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = allocating_handler as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
                0
            );
        }
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let bypass = crate::sys::reentry::Bypass::enter();
            // Every shard held, as during a scan of each in turn.
            lock_all_for_fork();
            // SAFETY: raise delivers the signal to this thread before it
            // returns; the handler only allocates and frees.
            unsafe { libc::raise(libc::SIGUSR2) };
            // SAFETY: taken by lock_all_for_fork on this thread just above.
            unsafe { unlock_all_after_fork() };
            drop(bypass);
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the signal handler deadlocked on the table's locks");
    }
}
