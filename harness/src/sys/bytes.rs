//! Byte work on the allocation path: zeroing the start of a new block, and
//! finding the first byte of a block that lost its fill. A file of its own,
//! `core` only: like `stacks/walk_core.rs` it is also compiled into the
//! optimised object of unoptimised builds (`stacks/walk_object.rs`), where
//! at `opt-level = 0` the small stores and the chunked compare had cost
//! hundreds of instructions a block in `core`'s precondition checks. Nothing
//! here may panic: the object must not need `core`'s panic machinery.

/// Zeroes the `len` bytes at `at`: with a few overlapping stores up to 64
/// bytes (for the small blocks most programs allocate, a call to `memset`
/// costs more than the stores), with `memset` beyond.
///
/// # Safety
///
/// `[at, at + len)` is valid for writes.
#[inline(always)]
pub(crate) unsafe fn zero(at: *mut u8, len: usize) {
    type Wide = [u64; 2];
    // SAFETY: every store below writes inside `[at, at + len)`, as its
    // branch's bounds on `len` show; unaligned stores need no alignment.
    unsafe {
        if len > 64 {
            core::ptr::write_bytes(at, 0, len);
        } else if len > 32 {
            at.cast::<Wide>().write_unaligned([0; 2]);
            at.add(16).cast::<Wide>().write_unaligned([0; 2]);
            at.add(len - 32).cast::<Wide>().write_unaligned([0; 2]);
            at.add(len - 16).cast::<Wide>().write_unaligned([0; 2]);
        } else if len >= 16 {
            at.cast::<Wide>().write_unaligned([0; 2]);
            at.add(len - 16).cast::<Wide>().write_unaligned([0; 2]);
        } else if len >= 8 {
            at.cast::<u64>().write_unaligned(0);
            at.add(len - 8).cast::<u64>().write_unaligned(0);
        } else if len >= 4 {
            at.cast::<u32>().write_unaligned(0);
            at.add(len - 4).cast::<u32>().write_unaligned(0);
        } else {
            let mut i = 0;
            while i < len {
                at.add(i).write(0);
                i += 1;
            }
        }
    }
}

/// The offset of the first byte of `bytes` that is not `fill`. Compared
/// against a run of the fill a chunk at a time (slice equality is libc's
/// `bcmp`, optimised whatever the profile): a byte loop was most of a
/// check's `free`, one evicted block each.
// Only the quarantine and the guard bytes (the C hooks') use it.
#[cfg_attr(not(leakcheck_interpose), allow(dead_code))]
#[inline(always)]
pub(crate) fn first_not(bytes: &[u8], fill: u8) -> Option<usize> {
    const CHUNK: usize = 256;
    let run = [fill; CHUNK];
    let mut at = 0;
    while at < bytes.len() {
        let n = if bytes.len() - at < CHUNK {
            bytes.len() - at
        } else {
            CHUNK
        };
        let (Some(chunk), Some(same)) = (bytes.get(at..at + n), run.get(..n)) else {
            return None;
        };
        if chunk != same {
            return chunk.iter().position(|&b| b != fill).map(|i| at + i);
        }
        at += n;
    }
    None
}
