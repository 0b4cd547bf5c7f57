//! What `#[leak_checked]` hands the runtime, checked after rustc has expanded
//! it: the `Options` calls, and above all the `file`/`line` of each
//! `suppress = "…"`, which only rustc can compute (`line!()` spanned on the
//! string). A stand-in for `leakcheck::__private` keeps the options where the
//! test body can read them.

// `::leakcheck::…` in the expansion names this crate.
extern crate self as leakcheck;

use leakcheck_macros::leak_checked;

/// The stand-in for the real crate's hidden module, with the same signatures.
#[doc(hidden)]
pub mod __private {
    use std::cell::Cell;

    /// Mirrors `leakcheck::__private::Suppression`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Suppression {
        pub text: &'static str,
        pub file: &'static str,
        pub line: u32,
    }

    /// What each builder call of `leakcheck::__private::Options` was given;
    /// the methods have the real ones' signatures.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Options {
        pub strict: bool,
        pub fail_on: Option<&'static str>,
        pub suppressions: &'static [Suppression],
        pub crate_dir: Option<&'static str>,
    }

    impl Options {
        pub fn new() -> Self {
            Self::default()
        }
        pub fn strict(self) -> Self {
            Self {
                strict: true,
                ..self
            }
        }
        pub fn fail_on(self, kinds: &'static str) -> Self {
            Self {
                fail_on: Some(kinds),
                ..self
            }
        }
        pub fn suppress(self, suppressions: &'static [Suppression]) -> Self {
            Self {
                suppressions,
                ..self
            }
        }
        pub fn crate_dir(self, dir: &'static str) -> Self {
            Self {
                crate_dir: Some(dir),
                ..self
            }
        }
    }

    thread_local! {
        static OPTIONS: Cell<Option<Options>> = const { Cell::new(None) };
    }

    /// The options of the test running on this thread.
    pub fn options() -> Options {
        OPTIONS.get().expect("called from a #[leak_checked] body")
    }

    pub fn run_test<R: Send>(
        _name: &'static str,
        options: Options,
        body: impl FnOnce() -> R + Send,
    ) -> R {
        OPTIONS.set(Some(options));
        body()
    }

    /// Stands in for the real one's `#[should_panic]` verdict: the body
    /// must panic with a message containing `expected`.
    pub fn run_test_should_panic(
        name: &'static str,
        options: Options,
        expected: Option<&'static str>,
        body: impl FnOnce() + Send,
    ) {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_test(name, options, body)
        }))
        .expect_err("test did not panic as expected");
        let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(message.contains(expected.unwrap_or_default()), "{message}");
    }

    pub fn run_test_report<T: std::process::Termination>(
        name: &'static str,
        options: Options,
        body: impl FnOnce() -> T + Send,
    ) -> std::process::ExitCode {
        run_test(name, options, move || body().report())
    }
}

use __private::{options, Options, Suppression};

/// The line of this file on which `needle` first appears, so that the
/// expected lines follow the source however it is formatted.
fn line_of(needle: &str) -> u32 {
    let source = include_str!("options.rs");
    let index = source
        .lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} is not in this file"));
    u32::try_from(index + 1).expect("a short file")
}

const CRATE_DIR: Option<&str> = Some(env!("CARGO_MANIFEST_DIR"));

#[leak_checked]
fn bare_attribute_passes_only_the_crate_dir() {
    let expected = Options {
        crate_dir: CRATE_DIR,
        ..Options::new()
    };
    assert_eq!(options(), expected);
}

#[leak_checked(strict)]
fn strict() {
    assert!(options().strict);
    assert_eq!(options().fail_on, None);
}

#[leak_checked(fail_on = " definite,possible ")]
fn fail_on_is_passed_as_written() {
    assert_eq!(options().fail_on, Some(" definite,possible "));
    assert!(!options().strict);
}

#[leak_checked(suppress = "leak:options_rs_one_line")]
fn suppress_on_the_attribute_line() {
    let expected = [Suppression {
        text: "leak:options_rs_one_line",
        file: file!(),
        line: line_of("\"leak:options_rs_one_line\""),
    }];
    assert_eq!(options().suppressions, expected);
    assert_eq!(options().crate_dir, CRATE_DIR);
}

// Each string's own line, not the attribute's, over several lines.
#[leak_checked(
    suppress = "leak:options_rs_first",
    suppress = r#"{
   options-rs-block
   Memcheck:Leak
   fun:malloc
}"#,
    fail_on = "definite"
)]
fn suppressions_keep_their_order_and_lines() -> Result<(), String> {
    let got = options().suppressions;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].text, "leak:options_rs_first");
    assert_eq!(got[0].line, line_of("suppress = \"leak:options_rs_first\""));
    assert!(got[1].text.starts_with("{\n   options-rs-block\n"));
    assert_eq!(got[1].line, line_of("suppress = r#\"{"));
    assert!(got.iter().all(|s| s.file == file!()));
    assert_eq!(options().fail_on, Some("definite"));
    Ok(())
}

#[leak_checked(strict, suppress = "leak:options_rs_strict")]
#[should_panic(expected = "boom")]
fn strict_suppress_should_panic() {
    assert!(options().strict);
    assert_eq!(
        options().suppressions[0].line,
        line_of("\"leak:options_rs_strict\"")
    );
    panic!("boom");
}
