//! What a test crate named like a standard-library crate (`tests/stacks_crate_named_core.rs`, built as the test crate `core`;
//! likewise `std`) must get: its own frames in every stack, none of std's
//! allocation plumbing or leakcheck's, and every leak charged, whatever its
//! functions and modules are called. Those files include this one, tests
//! and all.

use crate::common::{assert_fixture_frame, assert_frame, assert_one_site, function, here, render};
use leakcheck::{Kind, Leak, Origin, Report};
use leakcheck_test_support::LEAK_FN;
use std::hint::black_box;
use std::path::Path;

extern "C" {
    /// The C fixture itself, with no Rust wrapper between it and the test:
    /// mallocs `n` blocks of `size` bytes and keeps no pointer to them.
    pub fn fixture_leak(n: usize, size: usize);
}

/// The stack's function names, innermost first.
pub fn names(leak: &Leak) -> Vec<&str> {
    leak.stack.iter().map(function).collect()
}

/// Asserts that every frame is this crate's test code or the C fixture:
/// std's allocation plumbing, its thread and closure glue and leakcheck's
/// own frames were all cut. Decided by the frames' source files, which the
/// compiler recorded; the names of a crate called `core` prove nothing.
pub fn assert_only_test_frames(leak: &Leak) {
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    for frame in &leak.stack {
        let file = frame.file.as_deref().unwrap_or("<no file>");
        assert!(
            Path::new(file).starts_with(tests) || file.ends_with("fixtures.c"),
            "frame `{}` in {file} is not the test's:\n{}",
            function(frame),
            render(&leak.stack)
        );
    }
}

/// A test body that calls C directly: the C frame, then the test's closure.
#[test]
fn c_leak_from_the_test_body_keeps_the_test_frame() {
    let mut closure = "";
    let report = leakcheck::check(|| {
        closure = here!();
        // SAFETY: the fixture mallocs `n` blocks of `size` bytes and keeps
        // no pointer to them.
        unsafe { fixture_leak(black_box(2), black_box(24)) };
        // Not a tail call, so the closure keeps a frame in release builds.
        black_box(());
    });
    let leak = assert_one_site(&report, (2, 48), Origin::C, "malloc");
    assert_eq!(names(leak), [LEAK_FN, closure], "{report}");
    assert_fixture_frame(&leak.stack[0], LEAK_FN, "leak");
    assert_only_test_frames(leak);
}

/// A Rust leak in the test body: only the test's line, no `__rust_alloc`,
/// `alloc::…`, `Box::new` above it, no `run_body` below it.
#[test]
fn rust_leak_shows_only_the_test_line() {
    let (mut closure, mut line) = ("", 0);
    let report = leakcheck::check(|| {
        closure = here!();
        line = line!() + 1; // the allocation is on the next line
        let leaked: &'static mut [u8; 40] = Box::leak(Box::new(black_box([7; 40])));
        black_box(leaked);
    });
    let leak = assert_one_site(&report, (1, 40), Origin::Rust, "alloc");
    assert_eq!(names(leak), [closure], "{report}");
    assert_frame(&leak.stack[0], closure, file!(), line);
    assert_only_test_frames(leak);
}

/// A user's module named `my::std::io`.
pub mod my {
    /// `std` as a module name of the user's.
    pub mod std {
        /// `io` under it.
        pub mod io {
            use crate::common::here;
            use std::hint::black_box;

            /// Leaks 24 bytes from a function named like std's; returns its
            /// path.
            #[inline(never)]
            pub fn stdout() -> &'static str {
                black_box(Box::leak(Box::new(black_box([1u8; 24]))));
                here!()
            }
        }
    }
}

/// Leaks 32 bytes from a function whose name spells std's printing; returns
/// its path.
#[inline(never)]
pub fn std_io_print() -> &'static str {
    black_box(Box::leak(Box::new(black_box([2u8; 32]))));
    here!()
}

/// Asserts that `report` charged one definitely lost Rust block of `bytes`
/// at each `(function, bytes)`, the function being the top frame.
pub fn assert_charged(report: &Report, sites: &[(&str, usize)]) {
    let total: usize = sites.iter().map(|(_, bytes)| bytes).sum();
    let leaked = (report.leaked_blocks(), report.leaked_bytes());
    assert_eq!(leaked, (sites.len(), total), "{report}");
    assert_eq!(report.leaks().len(), sites.len(), "{report}");
    for &(top, bytes) in sites {
        let leak = report
            .leaks()
            .iter()
            .find(|l| l.stack.first().map(function) == Some(top))
            .unwrap_or_else(|| panic!("no leak at `{top}`:\n{report}"));
        assert_eq!(
            (leak.kind, leak.origin, leak.blocks, leak.bytes),
            (Kind::DefinitelyLost, Origin::Rust, 1, bytes),
            "{report}"
        );
        assert_only_test_frames(leak);
    }
}

/// The user's namesakes of std's printing are the user's code: their leaks
/// are charged.
#[test]
fn functions_named_like_std_are_charged() {
    let mut tops = ("", "");
    let report = leakcheck::check(|| {
        tops = (my::std::io::stdout(), std_io_print());
    });
    assert_charged(&report, &[(tops.0, 24), (tops.1, 32)]);
}

/// Leaks 56 bytes from code the compiler must inline into its caller;
/// returns its path.
#[inline(always)]
fn inlined_helper() -> &'static str {
    black_box(Box::leak(Box::new(black_box([8u8; 56]))));
    here!()
}

/// Frames inlined at one address are kept, each: the helper and the
/// closure share an address. In release builds that address is inside the
/// harness's `run_body` (the closure is inlined there as well), whose own
/// frame alone is cut.
#[test]
fn inlined_user_frames_stay() {
    let mut expected = ("", "");
    let report = leakcheck::check(|| {
        let helper = inlined_helper();
        expected = (helper, here!());
    });
    let leak = assert_one_site(&report, (1, 56), Origin::Rust, "alloc");
    assert_eq!(names(leak), [expected.0, expected.1], "{report}");
    assert_eq!(leak.stack[0].ip, leak.stack[1].ip, "{report}");
    assert_only_test_frames(leak);
}
