//! `#[should_panic(expected = …)]` on a `#[leak_checked]` test matches the
//! leak report's message: these tests pass because their leaks are caught.

use leakcheck::leak_checked;
use leakcheck_test_support::leak;
use std::hint::black_box;

#[leak_checked]
#[should_panic(expected = "`c_leak_is_expected` leaked 2 blocks (48 bytes) from 1 allocation site")]
fn c_leak_is_expected() {
    leak(black_box(2), black_box(24));
}

#[leak_checked]
#[should_panic(expected = "leaked 1 block (16 bytes)")]
#[test]
fn rust_leak_is_expected_with_test_attribute_after() {
    let leaked: &'static mut [u8; 16] = Box::leak(Box::new(black_box([0; 16])));
    black_box(leaked);
}

#[leak_checked]
#[should_panic(expected = "fixture_leak")]
fn the_message_names_the_allocating_function() {
    leak(black_box(1), black_box(8));
}
