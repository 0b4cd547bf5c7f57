//! Which lost block is definitely lost must not depend on where the
//! allocator put the blocks. Three Rust blocks, A → B and B ⇄ C (a doubly
//! linked pair), nothing pointing to A: A is definitely lost, B and C
//! indirectly lost (memcheck's definition), in every allocation order and
//! with several sizes. Flooding from the unreached blocks in address order,
//! as memcheck does, made C definitely lost too whenever C had the lowest
//! address: C's flood took B, and A's stopped there. valgrind 3.19 does
//! exactly that with the C version (`pair_cba` in
//! `test-support/c/valgrind_agreement.sh`: 2 definitely lost).
//!
//! The same shape built by C code (`pair_behind`) is the second test, in
//! the same process on purpose: the two once had to be split, because a
//! stale pointer left in a static by one test's report symbolisation (the
//! dead bytes of backtrace's symbol cache) could land inside the other's B,
//! making B and C possibly lost. leakcheck's own blocks now come from pages
//! no program block can get (`track::own_heap`), so they share a process
//! again, as tests of a real suite do.

mod common;

use leakcheck::{Kind, Origin, Report, Status};
use leakcheck_test_support::{pair_behind, LIST_NODE_BYTES, PAIR_BEHIND_FN};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::hint::black_box;

use Kind::{DefinitelyLost, IndirectlyLost};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).expect("a valid layout")
}

/// One zeroed block of `size` bytes (at least two words); its first word is
/// its pointer to the next node, its second `mark`.
fn node(size: usize, mark: usize) -> *mut usize {
    assert!(size >= 16, "a node has two words");
    // SAFETY: `layout(size)` has a non-zero size.
    let p = unsafe { alloc_zeroed(layout(size)) }.cast::<usize>();
    assert!(!p.is_null(), "out of memory");
    // SAFETY: the block has two words.
    unsafe { p.add(1).write(mark) };
    p
}

// One allocating function per block, so that each block's stack names it;
// the marks keep optimised builds from merging the three.
#[inline(never)]
fn node_a(size: usize) -> *mut usize {
    black_box(node(size, 0xA))
}

#[inline(never)]
fn node_b(size: usize) -> *mut usize {
    black_box(node(size, 0xB))
}

#[inline(never)]
fn node_c(size: usize) -> *mut usize {
    black_box(node(size, 0xC))
}

/// Allocates A, B and C in `order` with `sizes` (indexed by A, B, C), links
/// A → B ⇄ C, forgets every pointer and returns the addresses.
fn leak_shape(order: [usize; 3], sizes: [usize; 3]) -> [usize; 3] {
    let mut at = [std::ptr::null_mut::<usize>(); 3];
    for who in order {
        at[who] = match who {
            A => node_a(sizes[A]),
            B => node_b(sizes[B]),
            _ => node_c(sizes[C]),
        };
    }
    // SAFETY: each pointer is a live block of at least two words.
    unsafe {
        *at[A] = at[B] as usize;
        *at[B] = at[C] as usize;
        *at[C] = at[B] as usize;
    }
    at.map(|p| p as usize)
}

/// Asserts that the report has a site of `kind` whose stack goes through
/// `function` (the allocating node function), of one block of `bytes`.
fn assert_site(report: &Report, kind: Kind, function: &str, bytes: usize) {
    let sites: Vec<_> = report.leaks().iter().filter(|l| l.kind == kind).collect();
    let site = sites
        .iter()
        .find(|l| l.stack.iter().any(|f| common::function(f) == function))
        .unwrap_or_else(|| panic!("no {kind:?} block from {function}:\n{report}"));
    assert_eq!((site.blocks, site.bytes), (1, bytes), "{report}");
}

#[test]
fn a_to_a_doubly_linked_pair_is_one_definite_two_indirect_in_every_order() {
    const ORDERS: [[usize; 3]; 6] = [
        [A, B, C],
        [A, C, B],
        [B, A, C],
        [B, C, A],
        [C, A, B],
        [C, B, A],
    ];
    const SIZES: [[usize; 3]; 6] = [
        [32, 32, 32],
        [48, 48, 48],
        [24, 40, 64],
        [64, 40, 24],
        [40, 24, 64],
        [1000, 16, 4096],
    ];
    // Which block had the lowest address, per run: the old bug needed C.
    let mut lowest = [0usize; 3];
    for sizes in SIZES {
        for order in ORDERS {
            let mut at = [0usize; 3];
            let report = leakcheck::check(|| at = leak_shape(order, sizes));
            let case = format!("order {order:?}, sizes {sizes:?}, addresses {at:x?}");

            let found = common::kinds(&report);
            let expected = vec![
                (DefinitelyLost, 1, sizes[A]),
                (IndirectlyLost, 2, sizes[B] + sizes[C]),
            ];
            assert_eq!(found, expected, "{case}\n{report}");
            assert_eq!(report.status(), Status::Leaked, "{case}\n{report}");
            assert_eq!(
                (report.leaked_blocks(), report.leaked_bytes()),
                (3, sizes.iter().sum()),
                "{case}\n{report}"
            );
            assert_site(
                &report,
                DefinitelyLost,
                concat!(module_path!(), "::node_a"),
                sizes[A],
            );
            assert_site(
                &report,
                IndirectlyLost,
                concat!(module_path!(), "::node_b"),
                sizes[B],
            );
            assert_site(
                &report,
                IndirectlyLost,
                concat!(module_path!(), "::node_c"),
                sizes[C],
            );
            assert!(report.errors().is_empty(), "{case}\n{report}");
            // A's flood takes B and C, whatever the addresses: its site
            // holds them.
            let root = &report.leaks()[0];
            assert_eq!(root.kind, DefinitelyLost, "{case}\n{report}");
            assert_eq!(
                (root.indirect_blocks, root.indirect_bytes),
                (Some(2), Some(sizes[B] + sizes[C])),
                "{case}\n{report}"
            );

            let low = (0..3).min_by_key(|&who| at[who]).unwrap();
            lowest[low] += 1;
            for (who, &address) in at.iter().enumerate() {
                // SAFETY: each address is a block `leak_shape` allocated with
                // this size, freed once.
                unsafe { dealloc(address as *mut u8, layout(sizes[who])) };
            }
        }
    }
    // The runs covered the layouts that matter, C lowest among them.
    assert!(
        lowest.iter().all(|&n| n > 0),
        "lowest block per run (A, B, C): {lowest:?}"
    );
}

#[test]
fn the_c_shape_is_one_definite_two_indirect_in_every_order() {
    const A_BYTES: usize = 48;
    for order in ["ABC", "ACB", "BAC", "BCA", "CAB", "CBA"] {
        let report = leakcheck::check(|| pair_behind(black_box(order), A_BYTES).leak());
        let found = common::kinds(&report);
        let expected = vec![
            (DefinitelyLost, 1, A_BYTES),
            (IndirectlyLost, 2, 2 * LIST_NODE_BYTES),
        ];
        assert_eq!(found, expected, "order {order}\n{report}");
        assert_eq!(report.status(), Status::Leaked, "{report}");
        let definite = report.leaks().iter().find(|l| l.kind == DefinitelyLost);
        let definite = definite.unwrap_or_else(|| panic!("{report}"));
        assert_eq!(definite.origin, Origin::C, "{report}");
        common::assert_fixture_frame(&definite.stack[0], PAIR_BEHIND_FN, "pair_behind");
    }
}
