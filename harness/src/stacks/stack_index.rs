//! The stack store's index: finding a captured stack among those interned,
//! and adding it. A file of its own, `core` only and `#[repr(C)]` for what
//! it shares: like `walk_core.rs`, it is also compiled into the optimised
//! object of unoptimised builds (`walk_object.rs`), where at `opt-level = 0`
//! this look-up had cost 1,300 instructions a capture. The pages, the lock
//! and the growth of the index stay with `capture::Store`.

/// The store's pages, as `capture::Store` maps them: an arena of frames,
/// a table of `[start, len]` per id (id 0 is never used), and an
/// open-addressing index of ids (0: an empty slot) at most half full.
#[repr(C)]
pub(crate) struct Pages {
    pub(crate) frames: *mut usize,
    /// Words the arena has room for, and words written.
    pub(crate) frame_words: usize,
    pub(crate) frames_used: usize,
    pub(crate) entries: *mut [u32; 2],
    /// Ids the table has room for, and the next id (ids below it are
    /// taken).
    pub(crate) max_stacks: usize,
    pub(crate) count: usize,
    pub(crate) index: *mut u32,
    /// Slots in `index`, a power of two.
    pub(crate) index_slots: usize,
}

/// [`intern`]'s answer when the index must grow before another stack is
/// added: above every id.
pub(crate) const GROW: u64 = 1 << 32;

/// The id of the stack `ips` (hashed to `h`), added if it is new; 0 if
/// there is no room for it (the arena or the table is full), [`GROW`] if
/// the index is half full (grow it, then ask again).
///
/// # Safety
///
/// `pages` describes mapped pages as above, written only under the caller's
/// lock, which it holds: `count <= max_stacks`, every id below `count`
/// names a range inside the first `frames_used <= frame_words` words of the
/// arena, and the index holds fewer ids than slots.
#[inline(always)]
pub(crate) unsafe fn intern(pages: &mut Pages, h: u64, ips: &[usize]) -> u64 {
    // SAFETY: the caller's contract.
    let empty = match unsafe { probe(pages, h, ips) } {
        Ok(id) => return u64::from(id),
        Err(empty) => empty,
    };
    if pages.count >= pages.max_stacks || ips.len() > pages.frame_words - pages.frames_used {
        return 0;
    }
    if (pages.count + 1) * 2 > pages.index_slots {
        return GROW;
    }
    let id = pages.count as u32;
    let start = pages.frames_used;
    // SAFETY: `start + ips.len() <= frame_words`, checked above, so the
    // copy stays inside the arena, which `ips` (a capture's own buffer)
    // does not overlap; `id < max_stacks`; `empty` is an empty slot of the
    // index the probe just found.
    unsafe {
        core::ptr::copy_nonoverlapping(ips.as_ptr(), pages.frames.add(start), ips.len());
        *pages.entries.add(id as usize) = [start as u32, ips.len() as u32];
        *pages.index.add(empty) = id;
    }
    pages.frames_used += ips.len();
    pages.count += 1;
    u64::from(id)
}

/// The frames of stack `id`, which must be below `count`.
///
/// # Safety
///
/// As [`intern`], and `0 < id < count`.
#[inline(always)]
unsafe fn stored(pages: &Pages, id: u32) -> &[usize] {
    // SAFETY: the caller's contract: the entry exists and its range lies in
    // the written part of the arena.
    unsafe {
        let [start, len] = *pages.entries.add(id as usize);
        core::slice::from_raw_parts(pages.frames.add(start as usize), len as usize)
    }
}

/// The index slot for a stack hashed to `h`: the one holding an equal
/// stack (`Ok`), else the empty one where it goes (`Err`).
///
/// # Safety
///
/// As [`intern`].
#[inline(always)]
unsafe fn probe(pages: &Pages, h: u64, ips: &[usize]) -> Result<u32, usize> {
    let mask = pages.index_slots - 1;
    let mut i = h as usize & mask;
    loop {
        // SAFETY: `i <= mask` indexes the mapped index; the ids it holds are
        // below `count`. The index is never full, so the loop ends.
        let id = unsafe { *pages.index.add(i) };
        if id == 0 {
            return Err(i);
        }
        // SAFETY: as above.
        if unsafe { stored(pages, id) } == ips {
            return Ok(id);
        }
        i = (i + 1) & mask;
    }
}

/// Files every stack of `pages` in `fresh`, an index of `slots` zeroed
/// slots (a power of two, more than twice the stacks), hashing each with
/// `hash`.
///
/// # Safety
///
/// As [`intern`], and `fresh` maps `slots` writable `u32`s.
#[inline(always)]
pub(crate) unsafe fn refile(
    pages: &Pages,
    fresh: *mut u32,
    slots: usize,
    hash: impl Fn(&[usize]) -> u64,
) {
    let mask = slots - 1;
    for id in 1..pages.count as u32 {
        // SAFETY: `0 < id < count`.
        let mut i = hash(unsafe { stored(pages, id) }) as usize & mask;
        // SAFETY: `i <= mask` indexes `fresh`, which holds fewer ids than
        // slots, so the probe ends at an empty one.
        unsafe {
            while *fresh.add(i) != 0 {
                i = (i + 1) & mask;
            }
            *fresh.add(i) = id;
        }
    }
}
