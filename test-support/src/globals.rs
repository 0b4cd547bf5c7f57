//! C process globals that keep blocks: a lazily filled cache and table (still
//! reachable) and a block reachable only through an interior pointer
//! (possibly lost).
//!
//! They are one per process, shared by every test in a binary: a test that
//! counts their allocations must run alone in its process (a child process) or
//! reset them first, and must expect a parallel test to race it.

use std::ffi::{c_int, c_long, c_void};

extern "C" {
    fn fixture_cache_get(size: usize) -> *mut c_void;
    fn fixture_cache_reset();
    fn fixture_table_lookup(i: usize) -> c_long;
    fn fixture_table_reset();
    fn fixture_interior_global(size: usize) -> c_int;
    fn fixture_interior_release();
}

/// Bytes of the block [`cache_get`] allocates.
pub const CACHE_BYTES: usize = 64;

/// Entries in the table behind [`table_lookup`] (C `long`s).
pub const TABLE_LEN: usize = 16;

/// Bytes of the table behind [`table_lookup`].
pub const TABLE_BYTES: usize = TABLE_LEN * std::mem::size_of::<c_long>();

/// How far into its block the pointer that [`interior_global`] keeps points.
pub const INTERIOR_OFFSET: usize = 8;

/// The C cache block: the first call (since a [`cache_reset`]) mallocs
/// [`CACHE_BYTES`] into a C global, later calls return the same block.
/// The global keeps it still reachable.
pub fn cache_get() -> *mut c_void {
    // SAFETY: `fixture_cache_get` guards its global with a mutex.
    let block = unsafe { fixture_cache_get(CACHE_BYTES) };
    assert!(!block.is_null(), "fixture_cache_get: allocation failed");
    block
}

/// Frees the C cache block, if there is one; pointers from [`cache_get`] dangle.
pub fn cache_reset() {
    // SAFETY: `fixture_cache_reset` guards its global with a mutex.
    unsafe { fixture_cache_reset() }
}

/// Looks `i` up in a C table of squares of [`TABLE_LEN`] entries, returning
/// `(i % TABLE_LEN)²`. The first call (since a [`table_reset`]) mallocs the
/// [`TABLE_BYTES`] table into a C global, which keeps it still reachable.
pub fn table_lookup(i: usize) -> c_long {
    // SAFETY: `fixture_table_lookup` guards its global with a mutex.
    let value = unsafe { fixture_table_lookup(i) };
    assert!(value >= 0, "fixture_table_lookup: allocation failed");
    value
}

/// Frees the C table, if there is one.
pub fn table_reset() {
    // SAFETY: `fixture_table_reset` guards its global with a mutex.
    unsafe { fixture_table_reset() }
}

/// Mallocs `size` (> [`INTERIOR_OFFSET`]) bytes in C and keeps only a pointer
/// [`INTERIOR_OFFSET`] bytes into the block, in a C global: possibly lost.
/// Frees the block an earlier call kept.
pub fn interior_global(size: usize) {
    assert!(
        size > INTERIOR_OFFSET,
        "the interior pointer must point inside the block"
    );
    // SAFETY: `size` leaves the interior pointer inside the block, and
    // `fixture_interior_global` guards its global with a mutex.
    let rc = unsafe { fixture_interior_global(size) };
    assert!(rc == 0, "fixture_interior_global: allocation failed");
}

/// Frees the block [`interior_global`] kept, if there is one.
pub fn interior_release() {
    // SAFETY: `fixture_interior_release` guards its global with a mutex.
    unsafe { fixture_interior_release() }
}
