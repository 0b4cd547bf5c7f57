//! One shard of the block table: an open-addressing array of [`Slot`]s
//! with linear probing and backward-shift deletion. A file of its own,
//! `core` only and `#[repr(C)]` for what it shares: like
//! `stacks/walk_core.rs`, it is also compiled into the optimised object of
//! unoptimised builds (`stacks/walk_object.rs`), where at `opt-level = 0`
//! an insert and a remove had cost about 800 instructions a block. The
//! lock, the pages and the growth stay with `table`. Nothing here may
//! panic: the object must not need `core`'s panic machinery.

/// How a block is stored: 24 bytes (see `table`, which packs and unpacks
/// it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Slot {
    /// Start address; 0 marks an empty slot.
    pub(crate) addr: usize,
    pub(crate) meta: u64,
    pub(crate) owner: u32,
    pub(crate) stack: u32,
}

/// A shard's array: `capacity` slots mapped at `slots` (null when 0), `len`
/// of them taken.
#[repr(C)]
pub(crate) struct Shard {
    pub(crate) slots: *mut Slot,
    pub(crate) capacity: usize,
    pub(crate) len: usize,
}

/// The low bits of an address's hash that choose its shard.
pub(crate) const SHARD_BITS: u32 = 6;

/// The hash of a block's address: the shard from its low bits, the home
/// slot from its high ones.
#[inline(always)]
pub(crate) fn hash_addr(addr: usize) -> u64 {
    let h = ((addr as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// Where a hash's probe starts in a shard of `capacity` slots: the high
/// bits of the hash (the low ones chose the shard) scaled to the capacity,
/// which need not be a power of two.
#[inline(always)]
pub(crate) fn home(hash: u64, capacity: usize) -> usize {
    ((u128::from(hash << SHARD_BITS) * capacity as u128) >> 64) as usize
}

/// The slot after `i`, wrapping at the end.
#[inline(always)]
fn next(i: usize, capacity: usize) -> usize {
    if i + 1 == capacity {
        0
    } else {
        i + 1
    }
}

/// The slot holding `addr` (hashed to `hash`), if any.
///
/// # Safety
///
/// `shard` describes its mapped array, touched only under its lock, which
/// the caller holds; fewer slots are taken than there are.
#[inline(always)]
pub(crate) unsafe fn find(shard: &Shard, addr: usize, hash: u64) -> Option<usize> {
    if shard.capacity == 0 {
        return None;
    }
    let mut i = home(hash, shard.capacity);
    loop {
        // SAFETY: `i < capacity`: `home` scales below it and `next` wraps.
        let b = unsafe { (*shard.slots.add(i)).addr };
        if b == addr {
            return Some(i);
        }
        if b == 0 {
            return None;
        }
        i = next(i, shard.capacity);
    }
}

/// Puts `slot` (hashed to `hash`) in its place. Returns the stale slot it
/// replaced, of the same address, if there was one.
///
/// # Safety
///
/// As [`find`], and the shard has room for one more (`len < capacity`).
#[inline(always)]
pub(crate) unsafe fn insert(shard: &mut Shard, slot: Slot, hash: u64) -> Option<Slot> {
    let mut i = home(hash, shard.capacity);
    loop {
        // SAFETY: `i < capacity`, as in `find`; the lock makes this the
        // only access. There is an empty slot, so the probe ends.
        let at = unsafe { &mut *shard.slots.add(i) };
        if at.addr == 0 {
            *at = slot;
            shard.len += 1;
            return None;
        }
        if at.addr == slot.addr {
            return Some(core::mem::replace(at, slot));
        }
        i = next(i, shard.capacity);
    }
}

/// Removes the block at `addr` (hashed to `hash`), returning its slot.
///
/// # Safety
///
/// As [`find`].
#[inline(always)]
pub(crate) unsafe fn remove(shard: &mut Shard, addr: usize, hash: u64) -> Option<Slot> {
    // SAFETY: the caller's contract.
    let mut i = unsafe { find(shard, addr, hash) }?;
    let slots = shard.slots;
    let capacity = shard.capacity;
    // SAFETY: this index and those below are `< capacity`, as in `find`,
    // and the lock makes this the only access.
    let removed = unsafe { *slots.add(i) };
    // Backward-shift deletion keeps every probe chain unbroken.
    let mut j = i;
    loop {
        j = next(j, capacity);
        // SAFETY: as above.
        let candidate = unsafe { *slots.add(j) };
        if candidate.addr == 0 {
            break;
        }
        let h = home(hash_addr(candidate.addr), capacity);
        // Move `candidate` into the hole at `i` unless its home lies
        // cyclically in (i, j].
        let stays = if i <= j {
            i < h && h <= j
        } else {
            i < h || h <= j
        };
        if !stays {
            // SAFETY: as above.
            unsafe { *slots.add(i) = candidate };
            i = j;
        }
    }
    // SAFETY: as above.
    unsafe { *slots.add(i) = Slot::default() };
    shard.len -= 1;
    Some(removed)
}

/// Files the `old_capacity` slots at `old` (taken ones: `addr != 0`, no
/// address twice) in `shard`, a fresh array with room for all of them.
///
/// # Safety
///
/// As [`find`] for `shard`, whose array is all empty slots and has more
/// slots than `old` holds blocks; `old` points to `old_capacity` readable
/// slots.
#[inline(always)]
pub(crate) unsafe fn refile(shard: &mut Shard, old: *const Slot, old_capacity: usize) {
    for k in 0..old_capacity {
        // SAFETY: `k < old_capacity`.
        let slot = unsafe { *old.add(k) };
        if slot.addr == 0 {
            continue;
        }
        let mut i = home(hash_addr(slot.addr), shard.capacity);
        // SAFETY: indices `< capacity`, as in `find`; there is room, so the
        // probe ends at an empty slot.
        unsafe {
            while (*shard.slots.add(i)).addr != 0 {
                i = next(i, shard.capacity);
            }
            *shard.slots.add(i) = slot;
        }
        shard.len += 1;
    }
}
