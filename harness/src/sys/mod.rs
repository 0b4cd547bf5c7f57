//! The floor every stage stands on: primitives that allocate nothing through
//! the tracked allocator and name no stage above them — spin locks and
//! mapped pages, a `Vec` in mapped pages, the operating system's view of
//! threads, and the re-entrancy flag that tells the allocation path which of
//! leakcheck's own calls is running on this thread.

#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
mod bytes;
pub(crate) mod fasthash;
pub(crate) mod mapvec;
pub(crate) mod reentry;
pub(crate) mod relaxed;
#[cfg(unix)]
pub(crate) mod signals;
pub(crate) mod sync;
#[cfg(target_os = "linux")]
pub(crate) mod thread;

#[cfg(leakcheck_prebuilt_walk)]
extern "C" {
    /// `bytes::zero`, built optimised (`stacks/walk_object.rs`).
    fn leakcheck_zero_v1(at: *mut u8, len: usize);
    /// `bytes::first_not`, built optimised; `usize::MAX` for none.
    #[cfg(leakcheck_interpose)]
    fn leakcheck_first_not_v1(at: *const u8, len: usize, fill: u8) -> usize;
}

/// Zeroes the `len` bytes at `at` (`bytes::zero`: from the optimised object
/// when this crate is built unoptimised).
///
/// # Safety
///
/// `[at, at + len)` is valid for writes.
#[inline(always)]
pub(crate) unsafe fn zero(at: *mut u8, len: usize) {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the caller's contract.
    unsafe {
        leakcheck_zero_v1(at, len)
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller's contract.
    unsafe {
        bytes::zero(at, len)
    }
}

/// The offset of the first of the `len` bytes at `at` that is not `fill`
/// (`bytes::first_not`: from the optimised object when this crate is built
/// unoptimised). A pointer, not a slice: the allocation path's callers run
/// unoptimised in a user's dev profile, where making a slice costs a
/// hundred instructions of precondition checks.
///
/// # Safety
///
/// `[at, at + len)` is readable and not written meanwhile.
#[cfg(leakcheck_interpose)]
#[inline(always)]
pub(crate) unsafe fn first_not_at(at: *const u8, len: usize, fill: u8) -> Option<usize> {
    #[cfg(leakcheck_prebuilt_walk)]
    {
        // SAFETY: the caller's contract.
        let at = unsafe { leakcheck_first_not_v1(at, len, fill) };
        // An `if`, not `then_some`: a call unoptimised, at every fill check.
        if at == usize::MAX {
            None
        } else {
            Some(at)
        }
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    {
        // SAFETY: the caller's contract.
        bytes::first_not(unsafe { std::slice::from_raw_parts(at, len) }, fill)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroing_writes_exactly_the_block() {
        // The small stores (up to 64 bytes) and `memset` beyond.
        for len in 1..=160 {
            for offset in 0..8 {
                let mut buf = [0xAAu8; 192];
                // SAFETY: `offset + len <= 167 < 192`.
                unsafe { super::zero(buf.as_mut_ptr().add(offset), len) };
                for (i, &b) in buf.iter().enumerate() {
                    let inside = (offset..offset + len).contains(&i);
                    assert_eq!(
                        b,
                        if inside { 0 } else { 0xAA },
                        "len {len} offset {offset} byte {i}"
                    );
                }
            }
        }
    }
}
