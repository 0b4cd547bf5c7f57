//! `suppress = "…"` parsed at compile time, by the same parser the runtime
//! uses (`leakcheck-suppress`): a malformed suppression is a compile error
//! on its string, not a failure of the test when it runs.

use syn::LitStr;

/// The first error in the suppression text of `lit`, spanned on the string,
/// with the line and column inside it (a literal's span cannot be narrowed
/// to one of its lines on stable Rust).
pub(crate) fn check(lit: &LitStr) -> syn::Result<()> {
    let origin = leakcheck_suppress::Origin {
        path: String::new(),
        first_line: 1,
    };
    match leakcheck_suppress::parse(&lit.value(), &origin) {
        Ok(_) => Ok(()),
        Err(e) => Err(syn::Error::new_spanned(
            lit,
            format!(
                "malformed suppression (line {}, column {} of the string): {}",
                e.line, e.column, e.message
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Option<String> {
        check(&LitStr::new(text, proc_macro2::Span::call_site()))
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn accepted_and_rejected_text() {
        assert_eq!(message("leak:init"), None);
        assert_eq!(
            message("\n{\n   n\n   Memcheck:Leak\n   fun:malloc\n}\n"),
            None
        );
        let kind = message("{\n n\n Memcheck:Leek\n fun:malloc\n}").unwrap();
        assert!(
            kind.starts_with(
                "malformed suppression (line 3, column 2 of the string): unknown Memcheck \
                 suppression kind `Leek`; expected `Leak`"
            ),
            "{kind}"
        );
        let one_line = message("{ x Memcheck:Leak foo:bar }").unwrap();
        assert!(
            one_line.starts_with(
                "malformed suppression (line 1, column 1 of the string): a valgrind \
                 suppression block cannot be written on one line"
            ),
            "{one_line}"
        );
        assert!(!one_line.contains("expected `{`"), "{one_line}");
    }
}
