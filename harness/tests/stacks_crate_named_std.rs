//! A test crate named `std` (this file's name) keeps its own frames, and
//! its functions whose paths spell std's runtime — `std::io::stdio::_print`,
//! `std::stack_overflow::…`, which leakcheck leaves out of every verdict
//! when std's own code allocates there — are the user's code: their leaks
//! fail the check. What is std's is decided by what the compiler recorded
//! for a frame (its source file, its crate), not by its name.

mod common;
#[path = "common/named_crate.rs"]
mod named_crate;

use std::hint::black_box;

/// Paths that, in this crate, read `std::io::stdio::…`.
mod io {
    pub mod stdio {
        use crate::common::here;
        use std::hint::black_box;

        /// Leaks 16 bytes; returns its path.
        #[inline(never)]
        pub fn _print() -> &'static str {
            black_box(Box::leak(Box::new(black_box([4u8; 16]))));
            here!()
        }

        /// Leaks 8 bytes; returns its path.
        #[inline(never)]
        pub fn print_to_buffer_if_capture_used() -> &'static str {
            black_box(Box::leak(Box::new(black_box([5u8; 8]))));
            here!()
        }
    }
}

/// Leaks 48 bytes from `std::stack_overflow::thread_info` (this crate's
/// path); returns it.
mod stack_overflow {
    use crate::common::here;
    use std::hint::black_box;

    #[inline(never)]
    pub fn thread_info() -> &'static str {
        black_box(Box::leak(Box::new(black_box([6u8; 48]))));
        here!()
    }
}

#[test]
fn paths_that_spell_std_runtime_functions_are_charged() {
    let mut tops = ("", "", "");
    let report = leakcheck::check(|| {
        tops = (
            io::stdio::_print(),
            io::stdio::print_to_buffer_if_capture_used(),
            stack_overflow::thread_info(),
        );
    });
    assert_eq!(tops.0, "std::io::stdio::_print");
    named_crate::assert_charged(&report, &[(tops.0, 16), (tops.1, 8), (tops.2, 48)]);
    assert!(report
        .to_string()
        .contains("at std::stack_overflow::thread_info"));
}

#[test]
fn std_printing_is_still_the_runtimes() {
    // std's own stdout buffer, made on first use, and libtest's capture
    // buffer grown by `println!`: std's code by identity, never charged.
    let report = leakcheck::check(|| {
        println!("{}", black_box("printed from a crate named std"));
    });
    assert!(report.is_clean(), "{report}");
    assert!(report.leaks().is_empty(), "{report}");
}
