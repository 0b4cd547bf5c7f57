//! Suppressions written in code for the whole test binary: `suppress!`.
//!
//! Each `suppress!` is an [`inventory`] registration, so it takes effect
//! wherever it is written — any module of any test crate linked into the
//! binary — without being called. The runtime reads them all through
//! [`registered`].

inventory::collect!(Suppression);

/// Suppressions written in code: by `leakcheck::suppress!` (registered for
/// the whole binary) or by the attribute's `suppress = "…"` (one test).
/// `text` is in the suppressions-file format; `file` and `line` say where it
/// was written, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suppression {
    /// Suppressions-file text: valgrind blocks and/or `leak:` lines.
    pub text: &'static str,
    /// The source file that wrote it.
    pub file: &'static str,
    /// The line it was written on.
    pub line: u32,
}

/// Every `suppress!` linked into this binary, in no particular order.
pub(crate) fn registered() -> impl Iterator<Item = &'static Suppression> {
    inventory::iter::<Suppression>.into_iter()
}

/// Whether `text` has nothing but whitespace: such a suppression is a
/// mistake, and `suppress!` rejects it at compile time.
#[doc(hidden)]
pub const fn is_blank(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_whitespace() {
            return false;
        }
        i += 1;
    }
    true
}

/// Suppresses leaks for every test in the binary, written in the
/// suppressions-file format: a LeakSanitizer `leak:pattern` line, or a
/// valgrind `{ … }` block (in a raw string), or several of either.
///
/// Write it at item level anywhere in a test crate (any module, any
/// integration test file); it applies to every `#[leak_checked]` test linked
/// into the same binary, as a `leakcheck.supp` file next to `Cargo.toml`
/// would. Nothing needs to call it. To suppress for one test only, use the
/// attribute's `suppress = "…"` instead.
///
/// ```
/// // A LeakSanitizer line: any leak with this function on its stack.
/// leakcheck::suppress!("leak:sqlite3_initialize");
///
/// // A valgrind block, as `--gen-suppressions=yes` prints it.
/// leakcheck::suppress!(r#"
/// {
///    sqlite-init
///    Memcheck:Leak
///    fun:malloc
///    ...
///    fun:sqlite3_initialize
/// }
/// "#);
/// # fn main() {}
/// ```
///
/// The text must be a string literal, and not empty. Messages about it name
/// the file and line of the `suppress!`, counting the text's lines from
/// there: start the string on the line of `suppress!(` for them to match
/// your editor's.
#[macro_export]
macro_rules! suppress {
    ($text:literal $(,)?) => {
        const _: () = {
            // A literal that is not a string fails here, as "expected `&str`".
            const TEXT: &str = $text;
            ::core::assert!(
                !$crate::__private::is_blank(TEXT),
                "leakcheck::suppress! text is empty; write a `leak:pattern` line or a valgrind `{{ … }}` block",
            );
            $crate::__private::inventory::submit! {
                $crate::__private::Suppression {
                    text: TEXT,
                    file: ::core::file!(),
                    line: ::core::line!(),
                }
            }
        };
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "leakcheck::suppress! takes one string literal, such as \
             `leakcheck::suppress!(\"leak:function_name\")`, or a valgrind `{ … }` block in a raw string"
        );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::suppress!("leak:leakcheck_inline_unit_test");
    const LEAK_LINE: u32 = line!() - 1;

    leakcheck::suppress!(
        r#"{
   leakcheck-inline-unit-test
   Memcheck:Leak
   fun:malloc
   fun:leakcheck_inline_never_called
}"#,
    );
    const BLOCK_LINE: u32 = line!() - 8;

    mod nested {
        crate::suppress!("leak:leakcheck_inline_nested");
    }

    fn find(text: &str) -> Vec<&'static Suppression> {
        registered().filter(|s| s.text == text).collect()
    }

    #[test]
    fn registrations_are_listed_with_file_and_line() {
        assert_eq!(
            find("leak:leakcheck_inline_unit_test"),
            [&Suppression {
                text: "leak:leakcheck_inline_unit_test",
                file: file!(),
                line: LEAK_LINE,
            }]
        );
        let block = registered()
            .find(|s| s.text.contains("leakcheck-inline-unit-test"))
            .expect("the block is registered");
        assert!(block.text.starts_with("{\n"), "{:?}", block.text);
        assert_eq!((block.file, block.line), (file!(), BLOCK_LINE));
    }

    #[test]
    fn registrations_in_nested_modules_are_listed() {
        let nested = find("leak:leakcheck_inline_nested");
        assert_eq!(nested.len(), 1, "{nested:?}");
        assert_eq!(nested[0].file, file!());
    }

    #[test]
    fn blank_is_whitespace_only() {
        assert!(is_blank(""));
        assert!(is_blank(" \n\t\r "));
        assert!(!is_blank(" leak:x "));
        assert!(!is_blank("{"));
    }
}
