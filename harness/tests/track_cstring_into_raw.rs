//! A `CString` handed to C with `into_raw` and never taken back is caught as
//! a Rust leak of the string's bytes, allocated in the test's closure. Taken
//! back with `from_raw` and dropped, it is clean.

mod common;

use common::{assert_clean, assert_ends_at, assert_frame, assert_one_site, function, here, render};
use leakcheck::{Origin, Report};
use std::ffi::{c_char, CString};
use std::hint::black_box;

/// Leaks a `CString` through `into_raw`; returns the report, the closure's
/// name and the allocating line.
fn leak_a_cstring() -> (Report, &'static str, u32) {
    let (mut test_fn, mut line) = ("", 0);
    let report = leakcheck::check(|| {
        test_fn = here!();
        line = line!() + 1; // the allocation is on the next line
        let raw: *mut c_char = CString::new(black_box("handed to C")).unwrap().into_raw();
        black_box(raw);
    });
    (report, test_fn, line)
}

/// std's own frames inside `CString::new`: `alloc::…`,
/// `<&str as <alloc::…>>::…`, `<u8 as alloc::…>::…`.
fn is_std_alloc(name: &str) -> bool {
    name.starts_with("alloc::")
        || name.starts_with("<alloc::")
        || (name.starts_with('<')
            && (name.contains(" as alloc::") || name.contains(" as <alloc::")))
}

#[test]
fn cstring_into_raw_is_caught() {
    let (report, test_fn, line) = leak_a_cstring();
    let bytes = "handed to C".len() + 1;
    let leak = assert_one_site(&report, (1, bytes), Origin::Rust, "alloc");
    // The first frame that is not std's is the test's line.
    let user = leak.stack.iter().position(|f| !is_std_alloc(function(f)));
    let user = user.unwrap_or_else(|| panic!("only std frames:\n{}", render(&leak.stack)));
    assert_frame(&leak.stack[user], test_fn, file!(), line);
    assert_ends_at(leak, test_fn);
}

/// DESIGN.md: a stack starts at "the Rust frame that allocated — not
/// `alloc::`/`core::` plumbing". Today the report starts inside std
/// (`<&str as <alloc::ffi::c_str::CString>::new::SpecNewImpl>::spec_new_impl`):
/// trait-impl frames of std's types are not recognised as plumbing.
#[test]
fn cstring_into_raw_top_frame_is_the_test_line() {
    let (report, test_fn, line) = leak_a_cstring();
    let leak = assert_one_site(&report, (1, 12), Origin::Rust, "alloc");
    assert_frame(&leak.stack[0], test_fn, file!(), line);
}

#[test]
fn cstring_taken_back_is_clean() {
    let report = leakcheck::check(|| {
        let raw = CString::new(black_box("handed to C")).unwrap().into_raw();
        // SAFETY: `raw` came from `CString::into_raw` and is taken back once.
        let back = unsafe { CString::from_raw(black_box(raw)) };
        assert_eq!(back.to_str(), Ok("handed to C"));
    });
    assert_clean(&report, 1);
}
