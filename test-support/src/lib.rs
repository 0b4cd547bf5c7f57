//! C fixtures, with safe Rust wrappers, for leakcheck's own tests: known
//! leaks, clean paths, C threads, C globals, what keeps a block reachable or
//! not (for the leak kinds), a C library (zlib), and heap misuse.
//!
//! The C side is `c/fixtures.c`, compiled at `-O0 -g` by `build.rs` and linked
//! statically, so its `malloc` calls resolve to the test binary's `malloc`.
//! Every fixture that allocates has a `*_FN` constant naming the function that
//! calls the allocator — the top frame a report should show — and a marker on
//! the allocating line, which [`line_of`] finds:
//!
//! ```
//! use leakcheck_test_support::{file_of, line_of, FIXTURES_C, LEAK_FN};
//!
//! // A report for `leak(3, 48)` should start at:
//! let top = format!("{LEAK_FN} ({}:{})", file_of("leak"), line_of("leak"));
//! assert!(top.starts_with(&format!("fixture_leak ({FIXTURES_C}:")));
//! ```
//!
//! The allocator-family fixtures ([`alloc`], [`calloc`], [`posix_memalign`],
//! [`realloc_chain`], …) return a [`CBlock`]: `.free()` it for a clean path,
//! `.leak()` (or drop) it for a leak. Other fixtures come as `*_leak` and
//! `*_clean` wrappers, or leak by what they are ([`leak`], [`thread_leak`]);
//! [`churn`], [`thread_clean`] and the like free everything they allocate.

mod c_heap;
mod globals;
mod go;
mod misuse;
mod reach;
mod rust_heap;
mod sites;
mod strings;
mod threads;
mod zlib;

pub use c_heap::{
    aligned_alloc, alloc, calloc, churn, leak, list_new, memalign, posix_memalign, pvalloc,
    realloc_chain, valloc, CBlock, CList, LIST_NODE_BYTES,
};
pub use globals::{
    cache_get, cache_reset, interior_global, interior_release, table_lookup, table_reset,
    CACHE_BYTES, INTERIOR_OFFSET, TABLE_BYTES, TABLE_LEN,
};
pub use go::go_tool_pprof;
pub use misuse::{
    c_free, double_free, free_stack_address, free_static_address, invalid_free, overrun_strcpy,
    thread_double_free, usable_size, write_after_free,
};
pub use reach::{pair_behind, ring_new, stale_stack, CKeeper, CPairBehind, CRing, CSlots};
pub use rust_heap::{rust_churn, rust_leak, rust_stale_stack};
pub use sites::*;
pub use strings::{
    asprintf_clean, asprintf_leak, getline_clean, getline_leak, strdup_clean, strdup_leak,
};
pub use threads::{pthread_key_state, thread_clean, thread_key_state, thread_leak};
pub use zlib::{zlib_deflate_init_leak, zlib_roundtrip_clean};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_c_fixtures_run() {
        churn(100, 48);
        alloc(64).free();
        calloc(4, 16).free();
        posix_memalign(64, 100).free();
        aligned_alloc(64, 128).free();
        memalign(256, 100).free();
        valloc(100).free();
        pvalloc(100).free();
        realloc_chain(10, 40).free();
        realloc_chain(0, 8).free();
        list_new(5).free();
        list_new(0).free();
        ring_new(2).free();
        ring_new(1).free();
        ring_new(0).free();
        for order in ["ABC", "ACB", "BAC", "BCA", "CAB", "CBA"] {
            pair_behind(order, 48).free();
        }
        let mut slots = CSlots::new(3);
        slots.store(0, 16);
        slots.store(2, 24);
        slots.free();
        let keeper = CKeeper::start();
        keeper.give(40);
        keeper.give(8);
        keeper.stop();
        thread_clean(10, 32);
        thread_key_state(48);
        pthread_key_state(16);
        pthread_key_state(24);
        rust_churn(10, 32);
    }

    /// They leak, which harms nothing here; this only shows they return.
    #[test]
    fn leaking_fixtures_run() {
        leak(3, 48);
        alloc(16).leak();
        calloc(2, 8).leak();
        posix_memalign(32, 40).leak();
        aligned_alloc(64, 64).leak();
        memalign(64, 40).leak();
        valloc(40).leak();
        pvalloc(40).leak();
        realloc_chain(5, 72).leak();
        strdup_leak(c"leaked");
        asprintf_leak(7);
        getline_leak(c"a line\n");
        list_new(3).leak();
        ring_new(3).leak();
        pair_behind("CBA", 48).leak();
        stale_stack(24);
        rust_stale_stack(24);
        thread_leak(2, 24);
        zlib_deflate_init_leak();
        rust_leak(2, 24);
    }

    #[test]
    fn libc_strings_come_back() {
        assert_eq!(strdup_clean(c"hello").to_str(), Ok("hello"));
        assert_eq!(asprintf_clean(-42).to_str(), Ok("value=-42"));
        assert_eq!(getline_clean(c"first\nsecond\n").to_str(), Ok("first\n"));
        assert_eq!(getline_clean(c"only").to_str(), Ok("only"));
    }

    #[test]
    fn globals_allocate_once_and_reset() {
        // Process globals: this is the only test in this binary that touches them.
        let first = cache_get();
        assert_eq!(cache_get(), first);
        cache_reset();
        cache_reset();

        assert_eq!(table_lookup(3), 9);
        assert_eq!(table_lookup(TABLE_LEN + 5), 25);
        table_reset();

        interior_global(32);
        interior_global(16);
        interior_release();
        interior_release();
    }

    #[test]
    fn zlib_roundtrip_matches_input() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(zlib_roundtrip_clean(&data), data);
        assert_eq!(zlib_roundtrip_clean(b""), b"");
    }

    #[test]
    fn zlib_is_the_vendored_static_build() {
        // SAFETY: zlibVersion returns a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(libz_sys::zlibVersion()) };
        let version = version.to_str().unwrap();
        assert!(version.starts_with("1.3"), "{version}");
    }
}
