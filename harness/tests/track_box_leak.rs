//! `Box::leak` in the test's own code is caught as a Rust leak whose stack
//! starts — and ends — at the test's closure, on the line that allocated.
//! A box that is dropped is clean.

mod common;

use common::{assert_clean, assert_ends_at, assert_frame, assert_one_site, here};
use leakcheck::Origin;
use std::hint::black_box;

#[test]
fn box_leak_is_caught_at_the_test_line() {
    let (mut test_fn, mut line) = ("", 0);
    let report = leakcheck::check(|| {
        test_fn = here!();
        line = line!() + 1; // the allocation is on the next line
        let leaked: &'static mut [u8; 40] = Box::leak(Box::new(black_box([0x5a; 40])));
        black_box(leaked);
    });

    let leak = assert_one_site(&report, (1, 40), Origin::Rust, "alloc");
    // The allocator plumbing (`Box::new`, `__rust_alloc`) is cut above it.
    assert_frame(&leak.stack[0], test_fn, file!(), line);
    assert_ends_at(leak, test_fn);
}

#[test]
fn boxes_of_several_sizes_are_counted_exactly() {
    let report = leakcheck::check(|| {
        for size in [8usize, 24, 1000] {
            let leaked: &'static mut [u8] =
                Box::leak(vec![0xa5; black_box(size)].into_boxed_slice());
            black_box(leaked);
        }
    });
    let leaked = (report.leaked_blocks(), report.leaked_bytes());
    assert_eq!(leaked, (3, 8 + 24 + 1000), "{report}");
    assert!(
        report.leaks().iter().all(|l| l.origin == Origin::Rust),
        "{report}"
    );
}

#[test]
fn dropped_box_is_clean() {
    let report = leakcheck::check(|| {
        let boxed = Box::new(black_box([0x5a_u8; 40]));
        drop(black_box(boxed));
    });
    assert_clean(&report, 1);
    assert_eq!(report.stats().peak_live_bytes, 40, "{:?}", report.stats());
}
