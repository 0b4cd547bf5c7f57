//! Where each fixture allocates: the function that calls the allocator (a
//! report's top frame), the file it is in, and the line, found by marker.

/// Absolute path of the C fixtures' source, as their debug info names it.
pub const FIXTURES_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/c/fixtures.c");

/// Absolute path of the Rust-heap fixtures' source, as their debug info names it.
pub const RUST_HEAP_RS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/rust_heap.rs");

/// Every file that holds markers, with its text as compiled.
const SOURCES: [(&str, &str); 2] = [
    (FIXTURES_C, include_str!("../c/fixtures.c")),
    (RUST_HEAP_RS, include_str!("rust_heap.rs")),
];

/// `fixture_leak` mallocs the blocks [`leak`](crate::leak) leaks (marker `leak`).
pub const LEAK_FN: &str = "fixture_leak";
/// `fixture_alloc` mallocs the block [`alloc`](crate::alloc) returns (marker `alloc`).
pub const ALLOC_FN: &str = "fixture_alloc";
/// `fixture_calloc` callocs for [`calloc`](crate::calloc) (marker `calloc`).
pub const CALLOC_FN: &str = "fixture_calloc";
/// `fixture_posix_memalign` calls `posix_memalign` (marker `posix_memalign`).
pub const POSIX_MEMALIGN_FN: &str = "fixture_posix_memalign";
/// `fixture_aligned_alloc` calls `aligned_alloc` (marker `aligned_alloc`).
pub const ALIGNED_ALLOC_FN: &str = "fixture_aligned_alloc";
/// `fixture_memalign` calls `memalign` (marker `memalign`).
pub const MEMALIGN_FN: &str = "fixture_memalign";
/// `fixture_valloc` calls `valloc` (marker `valloc`).
pub const VALLOC_FN: &str = "fixture_valloc";
/// `fixture_pvalloc` calls `pvalloc` (marker `pvalloc`).
pub const PVALLOC_FN: &str = "fixture_pvalloc";
/// `fixture_realloc_chain`'s last `realloc` returns the surviving block
/// (marker `realloc_chain`; the first `malloc` is `realloc_chain_first`, the
/// intermediate `realloc` is `realloc_chain_step`).
pub const REALLOC_CHAIN_FN: &str = "fixture_realloc_chain";
/// `fixture_strdup` calls `strdup` (marker `strdup`); glibc's `strdup` is the
/// frame that calls `malloc`.
pub const STRDUP_FN: &str = "fixture_strdup";
/// `fixture_asprintf` calls `asprintf` (marker `asprintf`); glibc mallocs.
pub const ASPRINTF_FN: &str = "fixture_asprintf";
/// `fixture_getline` calls `getline` (marker `getline`); glibc mallocs.
pub const GETLINE_FN: &str = "fixture_getline";
/// `fixture_list_new` mallocs every node of a [`CList`](crate::CList)
/// (marker `list_new`).
pub const LIST_NEW_FN: &str = "fixture_list_new";
/// `fixture_ring_new` mallocs every node of a [`CRing`](crate::CRing)
/// (marker `ring_new`).
pub const RING_NEW_FN: &str = "fixture_ring_new";
/// `fixture_pair_behind` mallocs the three nodes of a
/// [`CPairBehind`](crate::CPairBehind) (marker `pair_behind`).
pub const PAIR_BEHIND_FN: &str = "fixture_pair_behind";
/// `fixture_stale_stack` mallocs the block [`stale_stack`](crate::stale_stack)
/// leaves only dead stack copies of (marker `stale_stack`).
pub const STALE_STACK_FN: &str = "fixture_stale_stack";
/// `fixture_slots_new` mallocs a [`CSlots`](crate::CSlots) (marker `slots_new`).
pub const SLOTS_NEW_FN: &str = "fixture_slots_new";
/// `fixture_store` mallocs the block [`CSlots::store`](crate::CSlots::store)
/// keeps in a slot (marker `store`).
pub const STORE_FN: &str = "fixture_store";
/// `fixture_keeper_start` mallocs a [`CKeeper`](crate::CKeeper)'s state
/// (marker `keeper_start`).
pub const KEEPER_START_FN: &str = "fixture_keeper_start";
/// `fixture_keeper_give` mallocs the block [`CKeeper::give`](crate::CKeeper::give)
/// hands to the keeper thread (marker `keeper_give`).
pub const KEEPER_GIVE_FN: &str = "fixture_keeper_give";
/// The thread start routine that mallocs what [`thread_leak`](crate::thread_leak)
/// leaks (marker `thread_leak_main`); `fixture_thread_leak` created the thread.
pub const THREAD_LEAK_MAIN_FN: &str = "fixture_thread_leak_main";
/// `fixture_pthread_key_state` mallocs the thread-specific block (marker
/// `pthread_key_state`).
pub const PTHREAD_KEY_STATE_FN: &str = "fixture_pthread_key_state";
/// `fixture_cache_get` mallocs the cached block (marker `cache_get`).
pub const CACHE_GET_FN: &str = "fixture_cache_get";
/// `fixture_table_lookup` mallocs the table (marker `table_lookup`).
pub const TABLE_LOOKUP_FN: &str = "fixture_table_lookup";
/// `fixture_interior_global` mallocs the block only an interior pointer keeps
/// (marker `interior_global`).
pub const INTERIOR_GLOBAL_FN: &str = "fixture_interior_global";
/// `fixture_double_free` mallocs (marker `double_free_alloc`) and frees twice
/// (marker `double_free` on the second `free`).
pub const DOUBLE_FREE_FN: &str = "fixture_double_free";
/// `fixture_invalid_free` mallocs (marker `invalid_free_alloc`) and frees an
/// interior pointer (marker `invalid_free`).
pub const INVALID_FREE_FN: &str = "fixture_invalid_free";
/// zlib's default allocator (`zutil.c`), the frame that calls `malloc` for
/// [`zlib_deflate_init_leak`](crate::zlib_deflate_init_leak); no marker: the
/// file is libz-sys's.
pub const ZLIB_ALLOC_FN: &str = "zcalloc";
/// The zlib function that allocates a deflate stream's state, below
/// [`ZLIB_ALLOC_FN`] in the stack.
pub const ZLIB_DEFLATE_INIT_FN: &str = "deflateInit2_";
/// How many blocks `deflateInit` allocates, and
/// [`zlib_deflate_init_leak`](crate::zlib_deflate_init_leak) leaks: the state
/// (definitely lost) and its window, prev, head and pending buffers
/// (indirectly lost). Holds for the zlib 1.3 that libz-sys vendors.
pub const ZLIB_DEFLATE_INIT_BLOCKS: usize = 5;
/// The Rust function that allocates what [`rust_leak`](crate::rust_leak)
/// leaks, as a demangled symbol (marker `rust_leak`).
pub const RUST_LEAK_FN: &str = "leakcheck_test_support::rust_heap::rust_leak";

/// The Rust function that allocates what
/// [`rust_stale_stack`](crate::rust_stale_stack) leaks, as a demangled symbol
/// (marker `rust_stale_stack`).
pub const RUST_STALE_STACK_FN: &str = "leakcheck_test_support::rust_heap::rust_stale_stack";

/// The 1-based line of the marker `marker` (`"leak"` or `"@leak"`) in the
/// fixture sources: the line of the allocating call a report's top frame
/// should name.
///
/// Panics when no line, or more than one, carries the marker.
///
/// ```
/// use leakcheck_test_support::{file_of, line_of, FIXTURES_C};
///
/// assert!(line_of("leak") > 1);
/// assert_eq!(line_of("@leak"), line_of("leak"));
/// assert_eq!(file_of("leak"), FIXTURES_C);
/// ```
pub fn line_of(marker: &str) -> u32 {
    locate(marker).1
}

/// The absolute path of the fixture source that carries the marker `marker`:
/// [`FIXTURES_C`] or [`RUST_HEAP_RS`].
///
/// Panics when no line, or more than one, carries the marker.
pub fn file_of(marker: &str) -> &'static str {
    locate(marker).0
}

fn locate(marker: &str) -> (&'static str, u32) {
    let name = marker.strip_prefix('@').unwrap_or(marker);
    let mut hits = SOURCES.iter().flat_map(|&(file, text)| {
        text.lines()
            .zip(1u32..)
            .filter(|(line, _)| has_marker(line, name))
            .map(move |(_, number)| (file, number))
    });
    match (hits.next(), hits.next()) {
        (Some(hit), None) => hit,
        (None, _) => panic!("no fixture source line carries the marker @{name}"),
        (Some((f1, l1)), Some((f2, l2))) => {
            panic!("marker @{name} is on more than one line: {f1}:{l1} and {f2}:{l2}")
        }
    }
}

/// Whether `line` carries the marker: `/* @name */` in C, a trailing
/// `// @name` in Rust. Exact, so `leak` does not match `@leak_more`.
fn has_marker(line: &str, name: &str) -> bool {
    line.match_indices('@').any(|(at, _)| {
        let Some(after) = line[at + 1..].strip_prefix(name) else {
            return false;
        };
        let before = line[..at].trim_end();
        (before.ends_with("/*") && after.trim_start().starts_with("*/"))
            || (before.ends_with("//") && after.trim().is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every marker the constants' docs name, with the file it must be in.
    const MARKERS: &[(&str, &str)] = &[
        ("leak", FIXTURES_C),
        ("alloc", FIXTURES_C),
        ("calloc", FIXTURES_C),
        ("posix_memalign", FIXTURES_C),
        ("aligned_alloc", FIXTURES_C),
        ("memalign", FIXTURES_C),
        ("valloc", FIXTURES_C),
        ("pvalloc", FIXTURES_C),
        ("realloc", FIXTURES_C),
        ("realloc_chain", FIXTURES_C),
        ("realloc_chain_first", FIXTURES_C),
        ("realloc_chain_step", FIXTURES_C),
        ("strdup", FIXTURES_C),
        ("asprintf", FIXTURES_C),
        ("getline", FIXTURES_C),
        ("list_new", FIXTURES_C),
        ("ring_new", FIXTURES_C),
        ("pair_behind", FIXTURES_C),
        ("stale_stack", FIXTURES_C),
        ("slots_new", FIXTURES_C),
        ("store", FIXTURES_C),
        ("keeper_start", FIXTURES_C),
        ("keeper_give", FIXTURES_C),
        ("thread_leak_main", FIXTURES_C),
        ("pthread_key_state", FIXTURES_C),
        ("cache_get", FIXTURES_C),
        ("table_lookup", FIXTURES_C),
        ("interior_global", FIXTURES_C),
        ("double_free_alloc", FIXTURES_C),
        ("double_free", FIXTURES_C),
        ("invalid_free_alloc", FIXTURES_C),
        ("invalid_free", FIXTURES_C),
        ("rust_leak", RUST_HEAP_RS),
        ("rust_stale_stack", RUST_HEAP_RS),
    ];

    #[test]
    fn every_marker_is_on_one_line_of_its_file() {
        for &(marker, file) in MARKERS {
            assert_eq!(file_of(marker), file, "@{marker}");
            assert!(line_of(marker) > 0, "@{marker}");
        }
    }

    #[test]
    fn the_leak_marker_is_on_the_malloc_line_of_fixture_leak() {
        let text = SOURCES[0].1;
        let line = text.lines().nth(line_of("leak") as usize - 1).unwrap();
        assert!(line.contains("malloc(size)"), "{line}");
        let opening = text.find("void fixture_leak(").unwrap();
        let opening_line = text[..opening].lines().count() as u32 + 1;
        assert!(opening_line < line_of("leak"));
    }

    #[test]
    fn markers_match_exactly() {
        assert!(has_marker("  p = malloc(1); /* @leak */", "leak"));
        assert!(has_marker(
            "  let v = vec![0u8; 1]; // @rust_leak",
            "rust_leak"
        ));
        assert!(!has_marker("  p = malloc(1); /* @leak_more */", "leak"));
        assert!(!has_marker("  p = malloc(1); /* @lea */", "leak"));
        assert!(!has_marker("  see `@leak` in the docs", "leak"));
    }

    #[test]
    #[should_panic(expected = "no fixture source line carries the marker @no_such_marker")]
    fn an_unknown_marker_panics() {
        line_of("no_such_marker");
    }
}
