//! Compile-time behaviour of `#[leak_checked]` and `leakcheck::suppress!`:
//! every accepted form builds, every rejected one fails with the message in
//! its `.stderr`.
//!
//! Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p leakcheck --test ui`, then review them.
//!
//! trybuild builds the `pass` cases as binaries, where `#[test]` functions are
//! dropped before type checking: they prove that the attribute accepts each
//! form, not that its expansion compiles. The tests in [`expansion`] do that
//! part, in a real test build.

use leakcheck::leak_checked;

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

/// The expansion of each accepted form, compiled and run as a test.
mod expansion {
    use super::leak_checked;

    #[leak_checked]
    fn bare_attribute_is_a_test() {
        assert_eq!(vec![1, 2, 3].len(), 3);
    }

    #[leak_checked(strict)]
    #[test]
    fn strict_before_test() {}

    #[leak_checked(strict)]
    #[should_panic(expected = "boom")]
    fn should_panic_still_works() {
        panic!("boom");
    }

    #[leak_checked]
    fn result_with_question_mark() -> Result<(), std::num::ParseIntError> {
        let n: u8 = "42".parse()?;
        assert_eq!(n, 42);
        Ok(())
    }

    #[leak_checked]
    fn result_with_boxed_error_that_is_not_send() -> Result<(), Box<dyn std::error::Error>> {
        let n: u8 = "7".parse()?;
        assert_eq!(n, 7);
        Ok(())
    }

    /// Documented, public, with an inner attribute.
    #[leak_checked]
    pub fn documented_pub_fn() {
        #![allow(unused_variables)]
        let unused = 1;
    }

    #[leak_checked(fail_on = "definite")]
    fn fail_on_one_kind() {}

    #[leak_checked(fail_on = "definite,indirect,possible,reachable")]
    fn fail_on_every_kind() {}

    #[leak_checked(fail_on = "all")]
    fn fail_on_all() {}

    #[leak_checked(show = "all", max_sections = 1)]
    fn show_and_max_sections() {}

    #[leak_checked(fail_on = "none")]
    fn fail_on_none_lets_a_leak_pass() {
        std::hint::black_box(Box::leak(Box::new([0u8; 16])));
    }

    #[leak_checked(suppress = "leak:leakcheck_ui_expansion_no_such_function")]
    fn suppress_once() {}

    #[leak_checked(
        suppress = "leak:leakcheck_ui_expansion_no_such_function",
        suppress = r#"
{
   leakcheck-ui-expansion
   Memcheck:Leak
   fun:malloc
   fun:leakcheck_ui_expansion_no_such_function
}
"#
    )]
    fn suppress_repeated_with_a_valgrind_block() {}

    #[leak_checked(strict, suppress = "leak:leakcheck_ui_expansion_no_such_function")]
    #[should_panic(expected = "boom")]
    fn strict_suppress_should_panic() {
        panic!("boom");
    }

    #[leak_checked(
        fail_on = "definite,possible",
        suppress = "leak:leakcheck_ui_expansion_no_such_function"
    )]
    fn fail_on_suppress_result() -> Result<(), std::num::ParseIntError> {
        let n: u8 = "42".parse()?;
        assert_eq!(n, 42);
        Ok(())
    }
}
