//! Tagged pointers: a pointer to a block's start with a tag in the bits
//! below the block's alignment counts as a start pointer. crossbeam-epoch
//! marks a deleted list entry by setting bit 0 of the pointer to it, so the
//! `Local` of every thread that pinned and exited is held only by a tagged
//! pointer until the list is next swept; memcheck calls such a block
//! possibly lost, which failed every test that built a rayon pool (the real
//! crates' cases are in `real-crates/tests/verdict_tagged_pointers_real.rs`).
//! A pointer at or past the alignment is still an interior pointer:
//! possibly lost.

mod common;

use common::kinds;
use leakcheck::{Kind, Origin, Report, Status};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use Kind::{PossiblyLost, StillReachable};

/// Asserts a clean verdict of one still reachable block of `bytes`.
fn assert_one_still_reachable(report: &Report, bytes: usize, origin: Origin) {
    assert_eq!(kinds(report), [(StillReachable, 1, bytes)], "{report}");
    assert_eq!(report.status(), Status::Clean, "{report}");
    assert_eq!(report.leaks()[0].origin, origin, "{report}");
    assert!(report.errors().is_empty(), "{report}");
}

/// A Rust value aligned to 8 bytes: 3 tag bits.
#[repr(align(8))]
struct Aligned8([u8; 48]);

#[test]
fn rust_block_held_by_a_tagged_pointer_in_a_global_is_still_reachable() {
    static TAGGED: AtomicUsize = AtomicUsize::new(0);
    const TAG: usize = 0b111;
    let report = leakcheck::check(|| {
        let value = Aligned8(black_box([1; 48]));
        assert_eq!(value.0[47], 1);
        let block = Box::into_raw(Box::new(value));
        TAGGED.store(block as usize | TAG, SeqCst);
    });
    let block = TAGGED.swap(0, SeqCst) & !TAG;
    // SAFETY: the box leaked above, freed once.
    drop(unsafe { Box::from_raw(block as *mut Aligned8) });

    assert_one_still_reachable(&report, 48, Origin::Rust);
}

#[test]
fn c_block_held_by_a_tagged_pointer_in_a_global_is_still_reachable() {
    static TAGGED: AtomicUsize = AtomicUsize::new(0);
    const TAG: usize = 1;
    let report = leakcheck::check(|| {
        // SAFETY: malloc has no preconditions; the block is freed below.
        let block = unsafe { libc::malloc(black_box(40)) };
        assert!(!block.is_null());
        TAGGED.store(block as usize | TAG, SeqCst);
    });
    let block = TAGGED.swap(0, SeqCst) & !TAG;
    // SAFETY: the block malloc'd above, freed once.
    unsafe { libc::free(block as *mut libc::c_void) };

    assert_one_still_reachable(&report, 40, Origin::C);
}

/// Keeps only `block + offset` in `held` (a global) during a check and
/// returns the report; frees the block after.
fn held_at_offset<T: Send + 'static>(
    held: &'static AtomicUsize,
    value: T,
    offset: usize,
) -> Report {
    let report = leakcheck::check(|| {
        let block = Box::into_raw(Box::new(black_box(value)));
        held.store(block as usize + offset, SeqCst);
    });
    let block = held.swap(0, SeqCst) - offset;
    // SAFETY: the box of a `T` leaked above, freed once.
    drop(unsafe { Box::from_raw(block as *mut T) });
    report
}

/// Asserts that the report's one block, of `bytes`, is possibly lost.
fn assert_possibly_lost(report: &Report, bytes: usize) {
    assert_eq!(kinds(report), [(PossiblyLost, 1, bytes)], "{report}");
    assert_eq!(report.status(), Status::Leaked, "{report}");
    assert_eq!(
        (report.leaked_blocks(), report.leaked_bytes()),
        (1, bytes),
        "{report}"
    );
}

#[test]
fn pointer_to_the_second_word_of_an_8_aligned_block_is_possibly_lost() {
    static HELD: AtomicUsize = AtomicUsize::new(0);
    // The alignment is 8: offset 8 is the second field, not a tag.
    let report = held_at_offset(&HELD, Aligned8([2; 48]), 8);
    assert_possibly_lost(&report, 48);
}

#[test]
fn pointer_one_byte_into_a_byte_buffer_is_possibly_lost() {
    static HELD: AtomicUsize = AtomicUsize::new(0);
    // A byte array is aligned to 1: there is no tag bit, offset 1 is a
    // pointer to the second byte.
    let report = held_at_offset(&HELD, [3u8; 40], 1);
    assert_possibly_lost(&report, 40);
}
