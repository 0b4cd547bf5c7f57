//! A stale copy of a freed block's address cannot make a later leak
//! reachable: while a check runs, freed blocks are held back from glibc (the
//! quarantine), so a block the test leaks right after a free never gets the
//! freed address, which glibc would otherwise hand out again at once, and
//! which a global here still holds.
//!
//! A `realloc` that moves a block frees the old one inside glibc: inside a
//! check that old block is held the same way, so a stale copy of the
//! address it had cannot make a later leak reachable either.
//!
//! A double free of a held block is recognised (and reported as heap
//! misuse) and never reaches glibc.

mod common;

use common::{assert_clean, assert_one_site, is_child, run_child};
use leakcheck::Origin;
use leakcheck_test_support::{alloc, double_free};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The address of a block freed in the check: a stale copy, as a cleared
/// `Vec` or a moved-out value keeps one.
static STALE: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_c_leak_never_gets_the_address_a_global_still_holds() {
    for size in [24, 48, 200, 4000, 100_000] {
        let report = leakcheck::check(|| {
            let freed = alloc(black_box(size));
            STALE.store(freed.as_ptr() as usize, Ordering::Relaxed);
            freed.free();
            alloc(black_box(size)).leak();
        });
        assert_one_site(&report, (1, size), Origin::C, "malloc");
    }
}

#[test]
fn a_rust_leak_never_gets_the_address_a_global_still_holds() {
    let report = leakcheck::check(|| {
        let freed = Box::new(black_box([1u8; 64]));
        STALE.store(&*freed as *const [u8; 64] as usize, Ordering::Relaxed);
        drop(freed);
        let leaked: &'static mut [u8; 64] = Box::leak(Box::new(black_box([2u8; 64])));
        black_box(leaked);
    });
    assert_one_site(&report, (1, 64), Origin::Rust, "alloc");
}

/// The byte a block's `i`-th byte is filled with, to see it survive a move.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

#[test]
fn a_c_leak_never_gets_the_address_a_moving_realloc_left() {
    for size in [24, 48, 200, 4000] {
        let mut moved = false;
        let mut kept = false;
        let report = leakcheck::check(|| {
            let block = alloc(black_box(size));
            let bytes = block.as_ptr().cast::<u8>();
            for i in 0..size {
                // SAFETY: the block has `size` bytes.
                unsafe { bytes.add(i).write(pattern(i)) };
            }
            STALE.store(bytes as usize, Ordering::Relaxed);
            let grown = block.realloc(black_box(200_000));
            let new = grown.as_ptr().cast::<u8>();
            moved = new != bytes;
            // SAFETY: the grown block has at least `size` bytes.
            kept = (0..size).all(|i| unsafe { new.add(i).read() } == pattern(i));
            grown.free();
            alloc(black_box(size)).leak();
        });
        assert!(moved, "precondition: growing a {size}-byte block moves it");
        assert!(kept, "the {size} bytes moved with the block");
        assert_one_site(&report, (1, size), Origin::C, "malloc");
    }
}

#[test]
fn a_shrinking_realloc_stays_where_it_is() {
    let mut same = false;
    let report = leakcheck::check(|| {
        let block = alloc(black_box(4000));
        let old = block.as_ptr();
        let shrunk = block.realloc(black_box(100));
        same = shrunk.as_ptr() == old;
        shrunk.free();
    });
    assert!(same, "glibc shrinks in place; leakcheck does not move it");
    assert_clean(&report, 2);
}

#[test]
fn a_rust_leak_never_gets_the_address_a_growing_vec_left() {
    let mut moved = false;
    let mut kept = false;
    let report = leakcheck::check(|| {
        let mut vec: Vec<u8> = Vec::with_capacity(black_box(64));
        vec.extend((0..64).map(pattern));
        let old = vec.as_ptr() as usize;
        STALE.store(old, Ordering::Relaxed);
        vec.reserve_exact(black_box(200_000));
        moved = vec.as_ptr() as usize != old;
        kept = vec.iter().copied().eq((0..64).map(pattern));
        drop(vec);
        let leaked: &'static mut [u8; 64] = Box::leak(Box::new(black_box([2u8; 64])));
        black_box(leaked);
    });
    assert!(moved, "precondition: growing the Vec moves it");
    assert!(kept, "the Vec's bytes moved with it");
    assert_one_site(&report, (1, 64), Origin::Rust, "alloc");
}

/// A cache line: Rust asks glibc's `memalign` for these.
#[derive(Clone, Copy, PartialEq, Debug)]
#[repr(align(64))]
struct Line(u64);

/// An over-aligned block leakcheck moves itself (with `memalign`, as
/// `global::Glibc` would) keeps its alignment and contents, and a leak of
/// the old block's layout after it is definitely lost. (glibc's `memalign`
/// does not hand a freed address back at once as `malloc` does, so here
/// this guards the move, not the stale address.)
#[test]
fn an_over_aligned_vec_moves_aligned_and_whole() {
    let mut aligned = false;
    let mut kept = false;
    let report = leakcheck::check(|| {
        let mut vec: Vec<Line> = Vec::with_capacity(black_box(2));
        vec.extend([Line(7), Line(8)]);
        STALE.store(vec.as_ptr() as usize, Ordering::Relaxed);
        vec.reserve_exact(black_box(1000));
        aligned = vec.as_ptr() as usize % 64 == 0;
        kept = vec == [Line(7), Line(8)];
        drop(vec);
        // The old block's layout (128 bytes, aligned to 64) again.
        let mut leaked: Vec<Line> = Vec::with_capacity(black_box(2));
        leaked.push(Line(9));
        std::mem::forget(leaked);
    });
    assert!(aligned, "the moved block keeps its alignment");
    assert!(kept, "the Vec's values moved with it");
    assert_one_site(&report, (1, 128), Origin::Rust, "alloc");
}

#[test]
fn many_frees_in_a_check_are_clean_and_bounded() {
    // More than the quarantine holds, in bytes: the oldest are really freed.
    let report = leakcheck::check(|| {
        for _ in 0..200 {
            drop(black_box(vec![0u8; 1 << 20]));
            alloc(black_box(4096)).free();
        }
    });
    assert_clean(&report, 400);
}

const DOUBLE_FREE: &str = "double_free_of_a_held_block_never_reaches_glibc";

#[test]
fn double_free_of_a_held_block_never_reaches_glibc() {
    if is_child(DOUBLE_FREE) {
        let report = leakcheck::check(|| {
            // SAFETY: inside a check the first free is held by the
            // quarantine, so the second is caught, not passed to glibc.
            unsafe { double_free() };
        });
        // Reported as misuse (`track_heap_misuse.rs` checks the report).
        assert_eq!(report.status(), leakcheck::Status::Error, "{report}");
        assert_eq!(report.misuse()[0].kind, "double_free", "{report}");
        println!("survived the double free");
        return;
    }
    // glibc aborts on this double free; the child must pass.
    run_child(DOUBLE_FREE, &[]).assert_passed("survived the double free");
}
