//! The crate root `build.rs` compiles `walk_core.rs` (with `cfi.rs`,
//! `capture_core.rs`, `stack_hash.rs`, `stack_index.rs`, `../sys/bytes.rs`,
//! `../track/shard_core.rs` and `../track/quarantine_core.rs`) through, as a
//! freestanding object at `opt-level = 3`, when leakcheck itself is built
//! at `opt-level = 0` (see `walk_core.rs`). Not a module of leakcheck.

#![no_std]

#[path = "walk_core.rs"]
mod walk_core;

#[path = "stack_hash.rs"]
mod stack_hash;

#[path = "capture_core.rs"]
mod capture_core;

#[path = "cfi.rs"]
mod cfi;

#[path = "stack_index.rs"]
mod stack_index;

#[path = "../sys/bytes.rs"]
mod bytes;

#[path = "../track/shard_core.rs"]
mod shard_core;

#[path = "../track/quarantine_core.rs"]
mod quarantine_core;

/// [`walk_core::walk`] under a name and ABI the unoptimised build links to.
///
/// # Safety
///
/// As [`walk_core::walk`], with `request` valid for reads and writes.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_walk_core_v1(request: *mut walk_core::Request) {
    // SAFETY: the caller passes a valid, unaliased request and upholds
    // `walk`'s contract.
    unsafe { walk_core::walk(&mut *request) }
}

/// [`capture_core::capture`] under a name and ABI the unoptimised build
/// links to.
///
/// # Safety
///
/// As [`capture_core::capture`], with `capture` valid for reads and writes.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_capture_core_v1(capture: *mut capture_core::Capture) {
    // SAFETY: the caller passes a valid, unaliased capture and upholds
    // `capture`'s contract.
    unsafe { capture_core::capture(&mut *capture) }
}

/// [`walk_core::remember`].
///
/// # Safety
///
/// `traces` is valid for reads and writes, and unshared.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_remember_v1(traces: *mut walk_core::Traces, value: u32) {
    // SAFETY: the caller's contract.
    walk_core::remember(unsafe { &mut *traces }, value)
}

/// [`stack_hash::stack_hash`] of the `len` words at `ips`.
///
/// # Safety
///
/// `ips` points to `len` readable words.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_stack_hash_v1(ips: *const usize, len: usize) -> u64 {
    // SAFETY: the caller passes a live slice's pointer and length.
    stack_hash::stack_hash(unsafe { core::slice::from_raw_parts(ips, len) })
}

/// [`cfi::rule_at`], packed as `walk_core::Entry::pack` with generation 0;
/// 0 for [`cfi::Answer::Unknown`].
///
/// # Safety
///
/// As [`cfi::rule_at`].
#[no_mangle]
pub unsafe extern "C" fn leakcheck_cfi_rule_v1(
    hdr: usize,
    start: usize,
    end: usize,
    address: usize,
) -> u64 {
    // SAFETY: the caller upholds `rule_at`'s contract.
    match unsafe { cfi::rule_at(hdr, start, end, address) } {
        cfi::Answer::Rule(rule) => walk_core::Entry::Rule(rule).pack(0),
        cfi::Answer::Unsupported => walk_core::Entry::Unsupported.pack(0),
        cfi::Answer::Unknown => 0,
    }
}

/// [`stack_index::intern`] of the `len` words at `ips`.
///
/// # Safety
///
/// As [`stack_index::intern`], with `pages` valid for reads and writes and
/// `ips` pointing to `len` readable words.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_stack_intern_v1(
    pages: *mut stack_index::Pages,
    h: u64,
    ips: *const usize,
    len: usize,
) -> u64 {
    // SAFETY: the caller upholds `intern`'s contract and passes a live
    // slice's pointer and length.
    unsafe { stack_index::intern(&mut *pages, h, core::slice::from_raw_parts(ips, len)) }
}

/// [`stack_index::refile`] with [`stack_hash::stack_hash`].
///
/// # Safety
///
/// As [`stack_index::refile`], with `pages` valid for reads.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_stack_refile_v1(
    pages: *const stack_index::Pages,
    fresh: *mut u32,
    slots: usize,
) {
    // SAFETY: the caller upholds `refile`'s contract.
    unsafe { stack_index::refile(&*pages, fresh, slots, stack_hash::stack_hash) }
}

/// [`bytes::zero`].
///
/// # Safety
///
/// As [`bytes::zero`].
#[no_mangle]
pub unsafe extern "C" fn leakcheck_zero_v1(at: *mut u8, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { bytes::zero(at, len) }
}

/// [`bytes::first_not`] of the `len` bytes at `at`; `usize::MAX` for none.
///
/// # Safety
///
/// `at` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_first_not_v1(at: *const u8, len: usize, fill: u8) -> usize {
    // SAFETY: the caller passes a live slice's pointer and length.
    bytes::first_not(unsafe { core::slice::from_raw_parts(at, len) }, fill).unwrap_or(usize::MAX)
}

/// [`shard_core::find`]; `usize::MAX` for none.
///
/// # Safety
///
/// As [`shard_core::find`], with `shard` valid for reads.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_shard_find_v1(
    shard: *const shard_core::Shard,
    addr: usize,
    hash: u64,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe { shard_core::find(&*shard, addr, hash) }.unwrap_or(usize::MAX)
}

/// [`shard_core::insert`] of `*slot`; true, with the stale slot in
/// `*stale`, if one was replaced.
///
/// # Safety
///
/// As [`shard_core::insert`], with the pointers valid.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_shard_insert_v1(
    shard: *mut shard_core::Shard,
    slot: *const shard_core::Slot,
    hash: u64,
    stale: *mut shard_core::Slot,
) -> bool {
    // SAFETY: the caller's contract.
    match unsafe { shard_core::insert(&mut *shard, *slot, hash) } {
        Some(old) => {
            // SAFETY: `stale` is valid for writes.
            unsafe { *stale = old };
            true
        }
        None => false,
    }
}

/// [`shard_core::remove`]; true, with the slot in `*removed`, if `addr`
/// was there.
///
/// # Safety
///
/// As [`shard_core::remove`], with the pointers valid.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_shard_remove_v1(
    shard: *mut shard_core::Shard,
    addr: usize,
    hash: u64,
    removed: *mut shard_core::Slot,
) -> bool {
    // SAFETY: the caller's contract.
    match unsafe { shard_core::remove(&mut *shard, addr, hash) } {
        Some(slot) => {
            // SAFETY: `removed` is valid for writes.
            unsafe { *removed = slot };
            true
        }
        None => false,
    }
}

/// [`shard_core::refile`].
///
/// # Safety
///
/// As [`shard_core::refile`], with `shard` valid.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_shard_refile_v1(
    shard: *mut shard_core::Shard,
    old: *const shard_core::Slot,
    old_capacity: usize,
) {
    // SAFETY: the caller's contract.
    unsafe { shard_core::refile(&mut *shard, old, old_capacity) }
}

/// `bytes::first_not` over a pointer and a length, `usize::MAX` for none:
/// the scanner `quarantine_core` takes.
fn first_not_at(at: *const u8, len: usize, fill: u8) -> usize {
    // SAFETY: `quarantine_core` passes the held bytes of a block.
    bytes::first_not(unsafe { core::slice::from_raw_parts(at, len) }, fill).unwrap_or(usize::MAX)
}

/// [`quarantine_core::hold_in`].
///
/// # Safety
///
/// As [`quarantine_core::hold_in`], with the pointers valid.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_quarantine_hold_v1(
    entries: *mut quarantine_core::Entries,
    freed: *const quarantine_core::Freed,
    cost: usize,
    evicted: *mut quarantine_core::Freed,
) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { quarantine_core::hold_in(&mut *entries, &*freed, cost, &mut *evicted) }
}

/// [`quarantine_core::take_releasable`].
///
/// # Safety
///
/// As [`quarantine_core::take_releasable`], with `entries` valid.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_quarantine_take_v1(
    entries: *mut quarantine_core::Entries,
    reserve: usize,
    oldest_pin: u64,
    out: *mut quarantine_core::Freed,
    max: usize,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe { quarantine_core::take_releasable(&mut *entries, reserve, oldest_pin, out, max) }
}

/// [`quarantine_core::free_intact`], freeing with `free`.
///
/// # Safety
///
/// As [`quarantine_core::free_intact`]; `free` gives a block back to glibc.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_quarantine_free_intact_v1(
    batch: *const quarantine_core::Freed,
    n: usize,
    from: usize,
    free: unsafe extern "C" fn(usize),
) -> usize {
    // SAFETY: the caller's contract, `free`'s included.
    unsafe {
        quarantine_core::free_intact(batch, n, from, &first_not_at, &|addr| free(addr))
    }
}

/// [`quarantine_core::next_changed`].
///
/// # Safety
///
/// As [`quarantine_core::next_changed`], with `entries` valid.
#[no_mangle]
pub unsafe extern "C" fn leakcheck_quarantine_next_changed_v1(
    entries: *const quarantine_core::Entries,
    from: usize,
    scope: u32,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe { quarantine_core::next_changed(&*entries, from, scope, &first_not_at) }
}
