//! Leaks from every other allocator of the C malloc family — `calloc`,
//! `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc` — are
//! caught one site each, named by the allocator that made them. Freed, they
//! are clean.

mod common;

use common::{assert_clean, assert_ends_at, assert_fixture_frame, here, leak_through};
use leakcheck::{Kind, Origin, Status};
use leakcheck_test_support as fixtures;
use std::hint::black_box;

/// Each allocator, with the fixture function that calls it: the top frame,
/// whose name without `fixture_` marks the allocating line.
const ALLOCATORS: [(&str, &str); 6] = [
    ("calloc", fixtures::CALLOC_FN),
    ("posix_memalign", fixtures::POSIX_MEMALIGN_FN),
    ("aligned_alloc", fixtures::ALIGNED_ALLOC_FN),
    ("memalign", fixtures::MEMALIGN_FN),
    ("valloc", fixtures::VALLOC_FN),
    ("pvalloc", fixtures::PVALLOC_FN),
];

/// The bytes each allocator is asked for, distinct per allocator.
/// `pvalloc` rounds up to whole pages, so it is asked for one page: its size
/// is the same however the block is counted.
fn size(allocator: &str) -> usize {
    match allocator {
        "calloc" => 64,
        "posix_memalign" => 100,
        "aligned_alloc" => 192,
        "memalign" => 300,
        "valloc" => 40,
        "pvalloc" => {
            // SAFETY: sysconf only reads a system constant.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            usize::try_from(page).expect("a page size")
        }
        other => unreachable!("no fixture for {other}"),
    }
}

/// Allocates with `allocator`, through its fixture. Called directly, not
/// through a `fn` pointer to a closure, whose `core::ops` shim would sit in
/// the stack.
fn allocate(allocator: &str) -> fixtures::CBlock {
    let size = black_box(size(allocator));
    match allocator {
        "calloc" => fixtures::calloc(black_box(4), size / 4),
        "posix_memalign" => fixtures::posix_memalign(black_box(64), size),
        "aligned_alloc" => fixtures::aligned_alloc(black_box(64), size),
        "memalign" => fixtures::memalign(black_box(256), size),
        "valloc" => fixtures::valloc(size),
        "pvalloc" => fixtures::pvalloc(size),
        other => unreachable!("no fixture for {other}"),
    }
}

/// The fixture marker of a fixture function: its name without `fixture_`.
fn marker(function: &str) -> &str {
    function
        .strip_prefix("fixture_")
        .expect("a fixture function")
}

#[test]
fn each_allocator_leak_is_its_own_site() {
    let mut test_fn = "";
    let report = leakcheck::check(|| {
        test_fn = here!();
        for (allocator, _) in ALLOCATORS {
            allocate(allocator).leak();
        }
        black_box(());
    });

    assert_eq!(report.status(), Status::Leaked, "{report}");
    let total: usize = ALLOCATORS
        .iter()
        .map(|(allocator, _)| size(allocator))
        .sum();
    let leaked = (report.leaked_blocks(), report.leaked_bytes());
    assert_eq!(leaked, (ALLOCATORS.len(), total), "{report}");
    assert_eq!(report.leaks().len(), ALLOCATORS.len(), "{report}");
    for (allocator, function) in ALLOCATORS {
        let leak = leak_through(&report, function);
        assert_eq!(leak.kind, Kind::DefinitelyLost, "{allocator}");
        assert_eq!(leak.origin, Origin::C, "{allocator}");
        assert_eq!(leak.allocator, allocator, "{report}");
        let site = (leak.blocks, leak.bytes);
        assert_eq!(site, (1, size(allocator)), "{allocator}: {report}");
        assert_fixture_frame(&leak.stack[0], function, marker(function));
        assert_ends_at(leak, test_fn);
    }
}

#[test]
fn each_allocator_freed_is_clean() {
    let report = leakcheck::check(|| {
        for (allocator, _) in ALLOCATORS {
            allocate(allocator).free();
        }
    });
    assert_clean(&report, ALLOCATORS.len());
    assert!(
        report.stats().frees >= ALLOCATORS.len(),
        "{:?}",
        report.stats()
    );
}
