//! A string that glibc's `strdup` allocates for C code and nobody frees is
//! caught: the stack starts in glibc's `strdup`, then the C fixture line that
//! called it. Copying the string out and freeing it is clean.

mod common;

use common::{
    assert_clean, assert_ends_at, assert_fixture_frame, assert_one_site, function, here, render,
};
use leakcheck::Origin;
use leakcheck_test_support::{strdup_clean, strdup_leak, STRDUP_FN};
use std::hint::black_box;

#[test]
fn strdup_leak_is_caught_through_glibc() {
    let mut test_fn = "";
    let report = leakcheck::check(|| {
        test_fn = here!();
        strdup_leak(black_box(c"leaked by strdup"));
        black_box(());
    });

    // The copy and its NUL.
    let bytes = "leaked by strdup".len() + 1;
    let leak = assert_one_site(&report, (1, bytes), Origin::C, "malloc");
    // glibc's strdup calls malloc; the fixture's line called strdup.
    let stack = render(&leak.stack);
    let fixture = leak
        .stack
        .iter()
        .take(2)
        .position(|f| function(f) == STRDUP_FN);
    let fixture =
        fixture.unwrap_or_else(|| panic!("{STRDUP_FN} is not in the first 2 frames:\n{stack}"));
    if fixture == 1 {
        let top = function(&leak.stack[0]);
        assert!(
            top.ends_with("strdup"),
            "top frame is not glibc's strdup:\n{stack}"
        );
    }
    assert_fixture_frame(&leak.stack[fixture], STRDUP_FN, "strdup");
    assert_ends_at(leak, test_fn);
}

#[test]
fn strdup_freed_is_clean() {
    let report = leakcheck::check(|| {
        let copy = strdup_clean(black_box(c"freed after use"));
        assert_eq!(copy.to_str(), Ok("freed after use"));
    });
    // strdup's block and the Rust copy.
    assert_clean(&report, 2);
}
