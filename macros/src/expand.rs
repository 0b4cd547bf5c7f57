//! What `#[leak_checked]` expands to, and the checks on what it is given.
//!
//! ```text
//! #[leak_checked(fail_on = "definite", suppress = "leak:init")]
//! #[should_panic(expected = "x")]
//! fn my_test() -> Result<(), E> { body }
//! ```
//!
//! becomes
//!
//! ```text
//! #[should_panic(expected = "x")]
//! #[::core::prelude::v1::test] // only when no `#[…::test]` follows the attribute
//! fn my_test() -> ::std::process::ExitCode { // `-> R` becomes an exit code
//!     ::leakcheck::__private::run_test_report( // (`run_test` for `()` tests)
//!         "my_test",
//!         ::leakcheck::__private::Options::new()
//!             .fail_on("definite")
//!             .suppress(&[::leakcheck::__private::Suppression {
//!                 text: "leak:init",
//!                 file: ::core::file!(),
//!                 line: ::core::line!(), // spanned on the string: its line
//!             }])
//!             .crate_dir(::core::env!("CARGO_MANIFEST_DIR")),
//!         move || -> Result<(), E> { body },
//!     )
//! }
//! ```

use crate::stacked::{self, Form};
use proc_macro2::{Ident, Spacing, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Item, ItemFn, LitInt, LitStr, ReturnType, Signature};

/// Expands `#[leak_checked(args)] item`, or says everything wrong with it.
///
/// Argument and signature errors are all collected and combined, so one build
/// reports every mistake.
pub(crate) fn leak_checked(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = Args::parse(args, &mut errors);
    let func = match syn::parse2::<Item>(item) {
        Ok(Item::Fn(func)) => func,
        Ok(_) => {
            return Err(errors.with(syn::Error::new(
                Span::call_site(),
                "`#[leak_checked]` only applies to test functions (`fn name() { … }`)",
            )))
        }
        Err(err) => return Err(errors.with(err)),
    };
    let form = match stacked::form(&func.attrs, &func.sig) {
        Ok(form) => Some(form),
        Err(err) => {
            errors.push(err);
            None
        }
    };
    check_signature(&func.sig, form.as_ref(), &mut errors);
    errors.finish()?;
    expand(&args, func, form.unwrap_or(Form::Plain))
}

/// What `#[leak_checked(...)]` was given.
#[derive(Default)]
struct Args {
    /// `strict`: still-reachable blocks fail the test too.
    strict: bool,
    /// `fail_on = "…"`, already checked against valgrind's kind words.
    fail_on: Option<LitStr>,
    /// Each `suppress = "…"`, in the order written.
    suppress: Vec<LitStr>,
    /// `check_panicking = false`: a body that panics is not checked, and
    /// `#[should_panic]` is left to libtest.
    unchecked_panics: bool,
    /// `show = "…"`: the kinds the failure message gives sections of.
    show: Option<LitStr>,
    /// `max_sections = N`: at most N sections in the failure message.
    max_sections: Option<LitInt>,
}

/// A key that `#[leak_checked(...)]` accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Strict,
    FailOn,
    Suppress,
    CheckPanicking,
    Show,
    MaxSections,
}

impl Key {
    /// Every key, in the order the "expected one of" message lists them.
    const ALL: [Key; 6] = [
        Key::Strict,
        Key::FailOn,
        Key::Suppress,
        Key::Show,
        Key::MaxSections,
        Key::CheckPanicking,
    ];

    /// How it is written in the attribute.
    fn name(self) -> &'static str {
        match self {
            Key::Strict => "strict",
            Key::FailOn => "fail_on",
            Key::Suppress => "suppress",
            Key::CheckPanicking => "check_panicking",
            Key::Show => "show",
            Key::MaxSections => "max_sections",
        }
    }

    /// How to write it with a value, for the error messages.
    fn example(self) -> &'static str {
        match self {
            Key::Strict => "strict",
            Key::FailOn => "fail_on = \"definite,possible\"",
            Key::Suppress => "suppress = \"leak:function_name\"",
            Key::CheckPanicking => "check_panicking = false",
            Key::Show => "show = \"definite,indirect\"",
            Key::MaxSections => "max_sections = 10",
        }
    }
}

/// What the `strict`/`fail_on` conflict says, whichever comes second.
const STRICT_AND_FAIL_ON: &str = "`strict` is `fail_on = \"all\"`; use one of them";

/// valgrind's leak kinds (`--errors-for-leak-kinds`), as `fail_on` takes them.
const KIND_WORDS: &[&str] = &["definite", "indirect", "possible", "reachable"];

/// What `fail_on` accepts, for its error messages.
const EXPECTED_KINDS: &str = "expected `definite`, `indirect`, `possible`, `reachable` separated \
                              by commas, or `all`, or `none`";

impl Args {
    /// Parses the comma-separated arguments of `#[leak_checked(...)]` (a
    /// trailing comma is fine), pushing an error for each bad one.
    fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let mut seen: Vec<Key> = Vec::new();
        for arg in split_on_commas(tokens) {
            let Some((first, rest)) = arg.tokens.split_first() else {
                // An empty argument: `(,)`, `(strict,,)` or `(, strict)`.
                if let Some(comma) = arg.comma {
                    errors.push(syn::Error::new(
                        comma.span(),
                        format!("expected a leak_checked argument before this comma; expected one of: {}", expected_keys()),
                    ));
                }
                continue;
            };
            let TokenTree::Ident(ident) = first else {
                errors.push(syn::Error::new_spanned(
                    tokens_of(&arg.tokens),
                    format!(
                        "expected the name of a leak_checked argument, one of: {}",
                        expected_keys()
                    ),
                ));
                continue;
            };
            let name = ident.unraw().to_string();
            let Some(key) = Key::ALL.into_iter().find(|key| key.name() == name) else {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!(
                        "unknown leak_checked argument `{name}`; expected one of: {}",
                        expected_keys()
                    ),
                ));
                continue;
            };
            if let Err(err) = args.set(key, ident, rest, &mut seen) {
                errors.push(err);
            }
        }
        args
    }

    /// Records `key` and what follows it (`rest`), if they are well formed
    /// and allowed next to the keys `seen` so far.
    fn set(
        &mut self,
        key: Key,
        ident: &Ident,
        rest: &[TokenTree],
        seen: &mut Vec<Key>,
    ) -> syn::Result<()> {
        match key {
            Key::Strict => {
                no_value(ident, rest)?;
                once(key, ident, seen)?;
                self.strict = true;
            }
            Key::FailOn => {
                let kinds = string_value(key, ident, rest)?;
                once(key, ident, seen)?;
                check_kinds(&kinds, key.name())?;
                self.fail_on = Some(kinds);
            }
            Key::Show => {
                let kinds = string_value(key, ident, rest)?;
                once(key, ident, seen)?;
                check_kinds(&kinds, key.name())?;
                self.show = Some(kinds);
            }
            Key::MaxSections => {
                let n = int_value(key, ident, rest)?;
                once(key, ident, seen)?;
                self.max_sections = Some(n);
            }
            Key::Suppress => {
                let text = string_value(key, ident, rest)?;
                check_suppression(&text)?;
                crate::suppression::check(&text)?;
                self.suppress.push(text);
            }
            Key::CheckPanicking => {
                let check = bool_value(key, ident, rest)?;
                once(key, ident, seen)?;
                self.unchecked_panics = !check;
            }
        }
        Ok(())
    }

    /// `::leakcheck::__private::Options::new()` with a builder call per key,
    /// and the test crate's directory (where `leakcheck.supp` is looked for).
    fn options(&self) -> TokenStream {
        let mut options = quote!(::leakcheck::__private::Options::new());
        if self.strict {
            options.extend(quote!(.strict()));
        }
        if let Some(kinds) = &self.fail_on {
            options.extend(quote!(.fail_on(#kinds)));
        }
        if let Some(kinds) = &self.show {
            options.extend(quote!(.show(#kinds)));
        }
        if let Some(n) = &self.max_sections {
            options.extend(quote!(.max_sections(#n)));
        }
        if !self.suppress.is_empty() {
            let suppressions = self.suppress.iter().map(|text| {
                // `line!()` spanned on the string reports the line the string
                // starts on (the expansion's call site), not the attribute's:
                // that is the line the runtime counts the text's lines from.
                let line = quote_spanned!(text.span()=> ::core::line!());
                quote! {
                    ::leakcheck::__private::Suppression {
                        text: #text,
                        file: ::core::file!(),
                        line: #line,
                    }
                }
            });
            options.extend(quote!(.suppress(&[#(#suppressions),*])));
        }
        if self.unchecked_panics {
            options.extend(quote!(.check_panicking(false)));
        }
        options.extend(quote!(.crate_dir(::core::env!("CARGO_MANIFEST_DIR"))));
        options
    }
}

/// Checks that a bare key (`strict`) has nothing after it.
fn no_value(ident: &Ident, rest: &[TokenTree]) -> syn::Result<()> {
    if rest.is_empty() {
        return Ok(());
    }
    let name = ident.unraw();
    Err(syn::Error::new_spanned(
        tokens_of(rest),
        format!("leak_checked argument `{name}` takes no value; write `#[leak_checked({name})]`"),
    ))
}

/// Rejects a second `key`, and `strict` next to `fail_on`; then notes `key`
/// as seen.
fn once(key: Key, ident: &Ident, seen: &mut Vec<Key>) -> syn::Result<()> {
    if seen.contains(&key) {
        return Err(syn::Error::new(
            ident.span(),
            format!("duplicate leak_checked argument `{}`", key.name()),
        ));
    }
    seen.push(key);
    let rival = match key {
        Key::Strict => Key::FailOn,
        Key::FailOn => Key::Strict,
        Key::Suppress | Key::Show | Key::MaxSections | Key::CheckPanicking => return Ok(()),
    };
    if seen.contains(&rival) {
        return Err(syn::Error::new(ident.span(), STRICT_AND_FAIL_ON));
    }
    Ok(())
}

/// The string of `key = "…"`, or an error saying how to write it.
fn string_value(key: Key, ident: &Ident, rest: &[TokenTree]) -> syn::Result<LitStr> {
    let (name, example) = (key.name(), key.example());
    let Some((eq, value)) = rest.split_first() else {
        return Err(syn::Error::new(
            ident.span(),
            format!("leak_checked argument `{name}` takes a string; write `{example}`"),
        ));
    };
    if !matches!(eq, TokenTree::Punct(punct) if punct.as_char() == '=' && punct.spacing() == Spacing::Alone)
    {
        return Err(syn::Error::new_spanned(
            tokens_of(rest),
            format!("expected `=` after `{name}`; write `{example}`"),
        ));
    }
    if value.is_empty() {
        return Err(syn::Error::new(
            eq.span(),
            format!("expected a string after `{name} =`; write `{example}`"),
        ));
    }
    syn::parse2::<LitStr>(tokens_of(value)).map_err(|_| {
        syn::Error::new_spanned(
            tokens_of(value),
            format!("`{name}` takes a string literal; write `{example}`"),
        )
    })
}

/// The `true` or `false` of `key = true`, or an error saying how to write it.
fn bool_value(key: Key, ident: &Ident, rest: &[TokenTree]) -> syn::Result<bool> {
    let (name, example) = (key.name(), key.example());
    let value = match rest {
        [TokenTree::Punct(eq), value] if eq.as_char() == '=' && eq.spacing() == Spacing::Alone => {
            value
        }
        [] => {
            return Err(syn::Error::new(
                ident.span(),
                format!(
                    "leak_checked argument `{name}` takes `true` or `false`; write `{example}`"
                ),
            ))
        }
        _ => {
            return Err(syn::Error::new_spanned(
                tokens_of(rest),
                format!("expected `= true` or `= false` after `{name}`; write `{example}`"),
            ))
        }
    };
    match value {
        TokenTree::Ident(value) if value == "true" => Ok(true),
        TokenTree::Ident(value) if value == "false" => Ok(false),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{name}` takes `true` or `false`; write `{example}`"),
        )),
    }
}

/// `key = N`: a whole number, or an error saying how to write it.
fn int_value(key: Key, ident: &Ident, rest: &[TokenTree]) -> syn::Result<LitInt> {
    let (name, example) = (key.name(), key.example());
    let wrong = |tokens: TokenStream| {
        syn::Error::new_spanned(
            tokens,
            format!("`{name}` takes a whole number; write `{example}`"),
        )
    };
    match rest {
        [TokenTree::Punct(eq), value @ ..]
            if eq.as_char() == '=' && eq.spacing() == Spacing::Alone =>
        {
            let lit =
                syn::parse2::<LitInt>(tokens_of(value)).map_err(|_| wrong(tokens_of(rest)))?;
            match lit.base10_parse::<usize>() {
                Ok(_) if lit.suffix().is_empty() => Ok(lit),
                _ => Err(wrong(lit.to_token_stream())),
            }
        }
        [] => Err(wrong(ident.to_token_stream())),
        _ => Err(wrong(tokens_of(rest))),
    }
}

/// Checks `fail_on`'s (or `show`'s) words the way the runtime parses them
/// (valgrind's `--errors-for-leak-kinds` syntax), so a typo fails the
/// build, not the test.
fn check_kinds(lit: &LitStr, key: &str) -> syn::Result<()> {
    let text = lit.value();
    let text = text.trim();
    let message = match text {
        "all" | "none" => return Ok(()),
        "" => format!("`{key}` is empty; {EXPECTED_KINDS}"),
        _ => {
            let Some(word) = text
                .split(',')
                .map(str::trim)
                .find(|word| !KIND_WORDS.contains(word))
            else {
                return Ok(());
            };
            match word {
                "" => format!("empty leak kind in `{key}` (a comma too many?); {EXPECTED_KINDS}"),
                "all" | "none" => format!(
                    "`{word}` cannot be combined with other leak kinds; write `{key} = \"{word}\"`"
                ),
                _ => format!("unknown leak kind `{word}` in `{key}`; {EXPECTED_KINDS}"),
            }
        }
    };
    Err(syn::Error::new(lit.span(), message))
}

/// The runtime parses a suppression's text; all the attribute can tell is
/// that there is some.
fn check_suppression(lit: &LitStr) -> syn::Result<()> {
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "`suppress` is empty; write a suppression: a LeakSanitizer line such as \
             `suppress = \"leak:function_name\"`, or a valgrind `{ … }` block in a raw string",
        ));
    }
    Ok(())
}

/// The accepted keys as the error messages list them: "`a`, `b`".
fn expected_keys() -> String {
    Key::ALL
        .iter()
        .map(|key| format!("`{}`", key.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tokens of one argument, and the comma that ends it (none for the last).
struct Arg {
    tokens: Vec<TokenTree>,
    comma: Option<TokenTree>,
}

/// Splits attribute arguments on their top-level commas. A trailing comma
/// yields no empty argument; any other empty argument is kept, to be reported.
fn split_on_commas(tokens: TokenStream) -> Vec<Arg> {
    let mut args = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == ',' => {
                args.push(Arg {
                    tokens: std::mem::take(&mut current),
                    comma: Some(token),
                });
            }
            _ => current.push(token),
        }
    }
    // After a trailing comma `current` is empty: there is no last argument.
    if !current.is_empty() {
        args.push(Arg {
            tokens: current,
            comma: None,
        });
    }
    args
}

/// Token trees back into a stream, for `Error::new_spanned` to span them all.
fn tokens_of(trees: &[TokenTree]) -> TokenStream {
    trees.iter().cloned().collect()
}

/// Pushes an error for each part of the signature a test cannot have, spanned
/// on that part. `form` (when known) allows `async` (a runtime's attribute
/// below) or arguments (an attribute below makes the tests): an `async fn`
/// with no form has had its error already.
fn check_signature(sig: &Signature, form: Option<&Form>, errors: &mut Errors) {
    let arguments = if sig.inputs.is_empty() {
        sig.variadic.as_ref().map(ToTokens::to_token_stream)
    } else if matches!(form, Some(Form::Generated)) {
        None
    } else {
        Some(sig.inputs.to_token_stream())
    };
    let generics = (!sig.generics.params.is_empty()).then(|| sig.generics.to_token_stream());
    let rejected = [
        (
            sig.constness.map(|token| token.to_token_stream()),
            "`#[leak_checked]` tests cannot be `const fn`",
        ),
        (
            sig.unsafety.map(|token| token.to_token_stream()),
            "`#[leak_checked]` tests cannot be `unsafe fn`; use an `unsafe` block in the body",
        ),
        (
            sig.abi.as_ref().map(ToTokens::to_token_stream),
            "`#[leak_checked]` tests cannot be `extern` functions",
        ),
        (
            generics,
            "`#[leak_checked]` tests cannot be generic: a test function takes no type, lifetime \
             or const parameters",
        ),
        (
            arguments,
            "`#[leak_checked]` tests take no arguments: a test function is called as `name()` \
             (for cases, write `#[leak_checked]` above `#[rstest]` or `#[test_case(…)]`)",
        ),
    ];
    for (tokens, message) in rejected {
        if let Some(tokens) = tokens {
            errors.push(syn::Error::new_spanned(tokens, message));
        }
    }
}

/// The expansion of a function that passed every check.
fn expand(args: &Args, func: ItemFn, form: Form) -> syn::Result<TokenStream> {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let (mut outer, inner): (Vec<Attribute>, Vec<Attribute>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    // The runtime's attribute goes inside, on the body (its index is before
    // `#[should_panic]` is taken out).
    let (block, form) = match form {
        Form::Runtime(index) => {
            let runtime = stacked::runtime_main(&outer.remove(index))?;
            sig.asyncness = None;
            let ident = &sig.ident;
            let output = &sig.output;
            let block = quote! {{
                #runtime
                async fn #ident() #output #block
                #ident()
            }};
            (block, Form::Plain)
        }
        form => (block.to_token_stream(), form),
    };
    // A body that panicked as `#[should_panic]` expects and leaked must
    // fail, which libtest's `#[should_panic]` cannot do: the check judges
    // both. (Tests returning a value cannot be `#[should_panic]`: rustc
    // says so.)
    let should_panic = match sig.output {
        ReturnType::Default if !args.unchecked_panics => stacked::take_should_panic(&mut outer),
        _ => None,
    };
    // The full path, so a `use tokio::test;` in scope cannot capture it. It
    // goes last, after the attributes still to be expanded, so that a test
    // macro among them sees it and does not register the test a second time
    // (the convention of tokio, rstest and googletest). Generated tests
    // call the function: they are the tests.
    let test_attr = if matches!(form, Form::Generated) || outer.iter().any(is_test_attribute) {
        None
    } else {
        Some(quote!(#[::core::prelude::v1::test]))
    };
    let name = LitStr::new(&sig.ident.unraw().to_string(), sig.ident.span());
    let options = args.options();
    // The closure states the return type, so `?` in the body knows what to
    // convert into; `impl Trait` is not allowed there, so then it is inferred.
    let closure_output = match &sig.output {
        ReturnType::Type(arrow, ty) if !mentions_impl(ty.to_token_stream()) => quote!(#arrow #ty),
        _ => TokenStream::new(),
    };
    // Errors about the call (such as a return type that is not `Send`) point
    // at the return type, errors about the closure (such as `?` in a test that
    // returns `()`) at the function's name.
    let closure = quote_spanned!(sig.ident.span()=> move ||);
    // A test that returns something (`Result<(), Box<dyn Error>>`, ...) has
    // its value turned into an exit code on the body's own thread, since the
    // value need not be `Send`; libtest treats the `ExitCode` exactly as it
    // would the value. A generated test's function returns its value to the
    // test that calls it.
    let (runner, sig) = match (&sig.output, &form) {
        (ReturnType::Default, _) | (_, Form::Generated) => (quote!(run_test), sig),
        (ReturnType::Type(arrow, ty), _) => {
            let mut outer_sig = sig.clone();
            outer_sig.output =
                syn::parse_quote_spanned!(ty.span()=> #arrow ::std::process::ExitCode);
            (quote!(run_test_report), outer_sig)
        }
    };
    let call = match should_panic {
        Some(expected) => {
            let expected = match expected {
                Some(text) => quote!(::core::option::Option::Some(#text)),
                None => quote!(::core::option::Option::None),
            };
            quote_spanned! {output_span(&sig)=>
                ::leakcheck::__private::run_test_should_panic(#name, #options, #expected, #closure #block)
            }
        }
        None => quote_spanned! {output_span(&sig)=>
            ::leakcheck::__private::#runner(#name, #options, #closure #closure_output #block)
        },
    };
    Ok(quote! {
        #(#outer)*
        #test_attr
        #vis #sig {
            #(#inner)*
            #call
        }
    })
}

/// The return type's span, or the name's when the test returns `()`.
fn output_span(sig: &Signature) -> Span {
    match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    }
}

/// Whether `attr` is a test attribute: `#[test]`, `#[tokio::test]`,
/// `#[test_log::test]`, … (any path whose last segment is `test`).
fn is_test_attribute(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "test")
}

/// Whether a type mentions `impl Trait` anywhere.
fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// Errors collected so that one build reports all of them.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// All the errors, ending with `err`.
    fn with(self, err: syn::Error) -> syn::Error {
        match self.0 {
            Some(mut errors) => {
                errors.combine(err);
                errors
            }
            None => err,
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion as a string, panicking with the messages on an error.
    fn expansion(args: TokenStream, item: TokenStream) -> String {
        match leak_checked(args, item) {
            Ok(tokens) => tokens.to_string(),
            Err(err) => panic!("unexpected errors: {:?}", messages(err)),
        }
    }

    /// The expansion parsed back into a function.
    fn expanded_fn(args: TokenStream, item: TokenStream) -> ItemFn {
        let out = expansion(args, item);
        syn::parse_str(&out).expect("the expansion is a function")
    }

    /// The messages of the errors the expansion must produce.
    fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        match leak_checked(args, item) {
            Ok(tokens) => panic!("expected errors, got {tokens}"),
            Err(err) => messages(err),
        }
    }

    fn messages(err: syn::Error) -> Vec<String> {
        err.into_iter().map(|err| err.to_string()).collect()
    }

    fn attr_paths(func: &ItemFn) -> Vec<String> {
        let paths = func
            .attrs
            .iter()
            .map(|attr| attr.path().to_token_stream().to_string());
        paths.collect()
    }

    const NO_ARGS: &str = "`#[leak_checked]` tests take no arguments: a test function is called \
                           as `name()` (for cases, write `#[leak_checked]` above `#[rstest]` or \
                           `#[test_case(…)]`)";

    #[test]
    fn bare_attribute_adds_test_and_default_options() {
        let out = expansion(quote! {}, quote! { fn my_test() { assert!(true); } });
        let expected = quote! {
            #[::core::prelude::v1::test]
            fn my_test() {
                ::leakcheck::__private::run_test(
                    "my_test",
                    ::leakcheck::__private::Options::new()
                        .crate_dir(::core::env!("CARGO_MANIFEST_DIR")),
                    move || { assert!(true); }
                )
            }
        };
        assert_eq!(out, expected.to_string());
    }

    #[test]
    fn strict_result_should_panic_expansion() {
        let item = quote! {
            #[should_panic(expected = "x")]
            fn my_test() -> Result<(), E> { body() }
        };
        let expected = quote! {
            #[should_panic(expected = "x")]
            #[::core::prelude::v1::test]
            fn my_test() -> ::std::process::ExitCode {
                ::leakcheck::__private::run_test_report(
                    "my_test",
                    ::leakcheck::__private::Options::new()
                        .strict()
                        .crate_dir(::core::env!("CARGO_MANIFEST_DIR")),
                    move || -> Result<(), E> { body() }
                )
            }
        };
        assert_eq!(expansion(quote! { strict }, item), expected.to_string());
    }

    #[test]
    fn existing_test_attribute_is_kept_not_doubled() {
        for path in [
            quote! { test },
            quote! { tokio::test },
            quote! { test_log::test },
            quote! { ::core::prelude::v1::test },
        ] {
            let func = expanded_fn(quote! {}, quote! { #[#path] fn t() {} });
            assert_eq!(attr_paths(&func), [path.to_string()]);
        }
    }

    #[test]
    fn attributes_doc_and_visibility_are_preserved_in_order() {
        let item = quote! {
            /// Docs.
            #[ignore]
            #[should_panic]
            pub(crate) fn t() {}
        };
        let func = expanded_fn(quote! {}, item);
        let test = ":: core :: prelude :: v1 :: test";
        // `#[should_panic]` is the check's to judge (`run_test_should_panic`).
        assert_eq!(attr_paths(&func), ["doc", "ignore", test]);
        assert_eq!(func.vis.to_token_stream().to_string(), "pub (crate)");
    }

    #[test]
    fn inner_attributes_stay_inside_the_function() {
        let func = expanded_fn(
            quote! {},
            quote! { fn t() { #![allow(unused)] let x = 1; } },
        );
        assert!(func
            .attrs
            .iter()
            .any(|attr| matches!(attr.style, AttrStyle::Inner(_))));
        let out = func.to_token_stream().to_string();
        let inner = out
            .find("# ! [allow (unused)]")
            .expect("inner attribute kept");
        assert!(
            inner < out.find("run_test").expect("run_test call"),
            "{out}"
        );
    }

    #[test]
    fn strict_with_and_without_trailing_comma() {
        for args in [quote! { strict }, quote! { strict, }] {
            let out = expansion(args, quote! { fn t() {} });
            assert!(out.contains("Options :: new () . strict ()"), "{out}");
        }
        let out = expansion(quote! {}, quote! { fn t() {} });
        assert!(!out.contains("strict"), "{out}");
    }

    #[test]
    fn raw_identifiers_are_named_without_r_hash() {
        let out = expansion(quote! { r#strict }, quote! { fn r#match() {} });
        assert!(out.contains("\"match\""), "{out}");
        assert!(out.contains(". strict ()"), "{out}");
    }

    #[test]
    fn impl_trait_return_is_left_to_inference() {
        let out = expansion(quote! {}, quote! { fn t() -> impl Termination { () } });
        assert!(out.contains("move || { () }"), "{out}");
        let out = expansion(
            quote! {},
            quote! { fn t() -> Result<(), Box<impl Error>> { Ok(()) } },
        );
        assert!(out.contains("move || { Ok (()) }"), "{out}");
    }

    #[test]
    fn unknown_key_lists_valid_keys() {
        assert_eq!(
            errors(quote! { foo }, quote! { fn t() {} }),
            ["unknown leak_checked argument `foo`; expected one of: `strict`, `fail_on`, `suppress`, `show`, `max_sections`, `check_panicking`"]
        );
    }

    #[test]
    fn duplicate_key() {
        assert_eq!(
            errors(quote! { strict, strict }, quote! { fn t() {} }),
            ["duplicate leak_checked argument `strict`"]
        );
    }

    /// Asserts that each of `cases`, as arguments, fails with just `message`.
    fn assert_args_fail(cases: &[TokenStream], message: &str) {
        for args in cases {
            let errs = errors(args.clone(), quote! { fn t() {} });
            assert_eq!(errs, [message], "#[leak_checked({args})]");
        }
    }

    #[test]
    fn key_with_value() {
        assert_args_fail(
            &[
                quote! { strict = true },
                quote! { strict(true) },
                quote! { strict::x },
            ],
            "leak_checked argument `strict` takes no value; write `#[leak_checked(strict)]`",
        );
    }

    #[test]
    fn non_ident_arguments() {
        assert_args_fail(
            &[
                quote! { "strict" },
                quote! { 1 },
                quote! { = strict },
                quote! { (strict) },
            ],
            "expected the name of a leak_checked argument, one of: `strict`, `fail_on`, `suppress`, `show`, `max_sections`, `check_panicking`",
        );
    }

    #[test]
    fn empty_arguments_between_commas() {
        assert_args_fail(
            &[quote! { , }, quote! { , strict }, quote! { strict,, }],
            "expected a leak_checked argument before this comma; expected one of: `strict`, `fail_on`, `suppress`, `show`, `max_sections`, `check_panicking`",
        );
    }

    #[test]
    fn not_a_function() {
        for item in [
            quote! { struct S; },
            quote! { mod m {} },
            quote! { const X: u8 = 0; },
        ] {
            assert_eq!(
                errors(quote! {}, item),
                ["`#[leak_checked]` only applies to test functions (`fn name() { … }`)"]
            );
        }
    }

    #[test]
    fn unparsable_item_is_an_error_not_a_panic() {
        assert_eq!(errors(quote! {}, quote! { fn }).len(), 1);
        assert_eq!(errors(quote! {}, quote! {}).len(), 1);
    }

    #[test]
    fn async_fn_without_a_runtime_shows_the_two_forms() {
        let errs = errors(quote! {}, quote! { async fn t() {} });
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("`#[leak_checked]` on an `async fn` needs a runtime's test"),
            "{errs:?}"
        );
    }

    #[test]
    fn tokio_test_below_runs_inside_the_check() {
        let item = quote! {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[should_panic(expected = "x")]
            async fn t() { body().await }
        };
        let expected = quote! {
            #[::core::prelude::v1::test]
            fn t() {
                ::leakcheck::__private::run_test_should_panic(
                    "t",
                    ::leakcheck::__private::Options::new()
                        .crate_dir(::core::env!("CARGO_MANIFEST_DIR")),
                    ::core::option::Option::Some("x"),
                    move || {
                        #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
                        async fn t() { body().await }
                        t()
                    }
                )
            }
        };
        assert_eq!(expansion(quote! {}, item), expected.to_string());
    }

    #[test]
    fn generated_cases_are_checked_in_place() {
        let item = quote! {
            #[rstest]
            #[case(1)]
            fn t(#[case] x: u32) -> u32 { x }
        };
        let expected = quote! {
            #[rstest]
            #[case(1)]
            fn t(#[case] x: u32) -> u32 {
                ::leakcheck::__private::run_test(
                    "t",
                    ::leakcheck::__private::Options::new()
                        .crate_dir(::core::env!("CARGO_MANIFEST_DIR")),
                    move || -> u32 { x }
                )
            }
        };
        assert_eq!(expansion(quote! {}, item), expected.to_string());
    }

    #[test]
    fn check_panicking_false_leaves_should_panic_to_libtest() {
        let item = quote! { #[should_panic] fn t() {} };
        let out = expansion(quote! { check_panicking = false }, item);
        assert!(out.starts_with("# [should_panic]"), "{out}");
        assert!(out.contains(". check_panicking (false)"), "{out}");
        assert!(out.contains(":: run_test ("), "{out}");
        let out = expansion(quote! {}, quote! { #[should_panic] fn t() {} });
        assert!(out.contains("run_test_should_panic"), "{out}");
        assert!(!out.contains("should_panic ]"), "{out}");
    }

    #[test]
    fn check_panicking_takes_a_bool() {
        let expected = "`check_panicking` takes `true` or `false`; write `check_panicking = false`";
        assert_args_fail(
            &[
                quote! { check_panicking = "no" },
                quote! { check_panicking = 0 },
            ],
            expected,
        );
        assert_args_fail(
            &[quote! { check_panicking }],
            "leak_checked argument `check_panicking` takes `true` or `false`; write `check_panicking = false`",
        );
        assert_args_fail(
            &[quote! { check_panicking = false, check_panicking = true }],
            "duplicate leak_checked argument `check_panicking`",
        );
    }

    #[test]
    fn arguments_and_self_are_rejected() {
        assert_eq!(errors(quote! {}, quote! { fn t(x: u8) {} }), [NO_ARGS]);
        assert_eq!(errors(quote! {}, quote! { fn t(&self) {} }), [NO_ARGS]);
    }

    #[test]
    fn generics_are_rejected() {
        for item in [
            quote! { fn t<T>() {} },
            quote! { fn t<'a>() {} },
            quote! { fn t<const N: usize>() {} },
        ] {
            let errs = errors(quote! {}, item);
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].contains("cannot be generic"), "{errs:?}");
        }
    }

    #[test]
    fn const_unsafe_extern_are_rejected() {
        for item in [
            quote! { const fn t() {} },
            quote! { unsafe fn t() {} },
            quote! { extern "C" fn t() {} },
        ] {
            let errs = errors(quote! {}, item);
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(
                errs[0].starts_with("`#[leak_checked]` tests cannot be"),
                "{errs:?}"
            );
        }
    }

    /// The options expression of a test with these arguments.
    fn options_of(args: TokenStream) -> String {
        let out = expansion(args, quote! { fn t() {} });
        let start = out
            .find("Options :: new ()")
            .expect("options in the expansion");
        let end = out
            .find(", move ||")
            .or_else(|| out.find(", move | |"))
            .expect("the closure after the options");
        out[start..end].trim_end().to_owned()
    }

    const CRATE_DIR: &str = ". crate_dir (:: core :: env ! (\"CARGO_MANIFEST_DIR\"))";

    #[test]
    fn fail_on_is_passed_as_written() {
        for kinds in [
            "definite",
            "indirect",
            "possible",
            "reachable",
            "all",
            "none",
            "definite,possible",
            " definite , indirect ",
            "definite,definite",
            "reachable,possible,indirect,definite",
        ] {
            let lit = LitStr::new(kinds, Span::call_site());
            assert_eq!(
                options_of(quote! { fail_on = #lit }),
                format!("Options :: new () . fail_on ({kinds:?}) {CRATE_DIR}"),
            );
        }
        let raw = options_of(quote! { fail_on = r"all", });
        assert_eq!(
            raw,
            format!("Options :: new () . fail_on (r\"all\") {CRATE_DIR}")
        );
    }

    #[test]
    fn fail_on_rejects_what_the_runtime_would() {
        let expected = "expected `definite`, `indirect`, `possible`, `reachable` separated by \
                        commas, or `all`, or `none`";
        let cases = [
            (
                "defnite",
                format!("unknown leak kind `defnite` in `fail_on`; {expected}"),
            ),
            (
                "definite,lost",
                format!("unknown leak kind `lost` in `fail_on`; {expected}"),
            ),
            (
                "Definite",
                format!("unknown leak kind `Definite` in `fail_on`; {expected}"),
            ),
            (
                "definite possible",
                format!("unknown leak kind `definite possible` in `fail_on`; {expected}"),
            ),
            ("", format!("`fail_on` is empty; {expected}")),
            ("  ", format!("`fail_on` is empty; {expected}")),
            (
                "definite,",
                format!("empty leak kind in `fail_on` (a comma too many?); {expected}"),
            ),
            (
                "definite,,possible",
                format!("empty leak kind in `fail_on` (a comma too many?); {expected}"),
            ),
            (
                "definite,all",
                "`all` cannot be combined with other leak kinds; write `fail_on = \"all\"`"
                    .to_owned(),
            ),
            (
                "none,possible",
                "`none` cannot be combined with other leak kinds; write `fail_on = \"none\"`"
                    .to_owned(),
            ),
        ];
        for (kinds, message) in cases {
            let lit = LitStr::new(kinds, Span::call_site());
            assert_args_fail(&[quote! { fail_on = #lit }], &message);
        }
    }

    #[test]
    fn fail_on_and_strict_conflict() {
        assert_args_fail(
            &[
                quote! { strict, fail_on = "all" },
                quote! { fail_on = "definite", strict },
            ],
            "`strict` is `fail_on = \"all\"`; use one of them",
        );
        let errs = errors(quote! { fail_on = "bogus", strict }, quote! { fn t() {} });
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("unknown leak kind `bogus`"), "{errs:?}");
        assert!(errs[1].starts_with("`strict` is"), "{errs:?}");
    }

    #[test]
    fn fail_on_twice() {
        assert_args_fail(
            &[
                quote! { fail_on = "all", fail_on = "all" },
                quote! { fail_on = "all", fail_on = "none" },
            ],
            "duplicate leak_checked argument `fail_on`",
        );
    }

    #[test]
    fn values_must_be_string_literals() {
        for key in ["fail_on", "suppress"] {
            let ident = Ident::new(key, Span::call_site());
            let example = match key {
                "fail_on" => "fail_on = \"definite,possible\"",
                _ => "suppress = \"leak:function_name\"",
            };
            assert_args_fail(
                &[
                    quote! { #ident = definite },
                    quote! { #ident = 1 },
                    quote! { #ident = b"all" },
                    quote! { #ident = concat!("a", "b") },
                    quote! { #ident = "a" "b" },
                    quote! { #ident = ("all") },
                ],
                &format!("`{key}` takes a string literal; write `{example}`"),
            );
            assert_args_fail(
                &[quote! { #ident }],
                &format!("leak_checked argument `{key}` takes a string; write `{example}`"),
            );
            assert_args_fail(
                &[quote! { #ident = }],
                &format!("expected a string after `{key} =`; write `{example}`"),
            );
            assert_args_fail(
                &[
                    quote! { #ident "all" },
                    quote! { #ident("all") },
                    quote! { #ident: "all" },
                    quote! { #ident == "all" },
                ],
                &format!("expected `=` after `{key}`; write `{example}`"),
            );
        }
    }

    #[test]
    fn suppress_expansion() {
        let expected = quote! {
            Options::new()
                .suppress(&[
                    ::leakcheck::__private::Suppression {
                        text: "leak:sqlite3_initialize",
                        file: ::core::file!(),
                        line: ::core::line!(),
                    },
                    ::leakcheck::__private::Suppression {
                        text: r#"{
   init
   Memcheck:Leak
   fun:malloc
}"#,
                        file: ::core::file!(),
                        line: ::core::line!(),
                    }
                ])
        };
        let args = quote! {
            suppress = "leak:sqlite3_initialize",
            suppress = r#"{
   init
   Memcheck:Leak
   fun:malloc
}"#,
        };
        assert_eq!(options_of(args), format!("{expected} {CRATE_DIR}"));
    }

    #[test]
    fn strict_and_fail_on_come_before_suppress() {
        assert_eq!(
            options_of(quote! { suppress = "leak:a", strict }),
            format!(
                "Options :: new () . strict () . suppress (& [:: leakcheck :: __private :: \
                 Suppression {{ text : \"leak:a\" , file : :: core :: file ! () , line : :: core \
                 :: line ! () , }}]) {CRATE_DIR}"
            ),
        );
        let out = options_of(quote! { suppress = "leak:a", fail_on = "none", suppress = "leak:b" });
        let (fail_on, a, b) = (
            out.find(". fail_on (\"none\")").expect("fail_on"),
            out.find("\"leak:a\"").expect("first suppression"),
            out.find("\"leak:b\"").expect("second suppression"),
        );
        assert!(fail_on < a && a < b, "{out}");
    }

    #[test]
    fn suppress_must_say_something() {
        let message = "`suppress` is empty; write a suppression: a LeakSanitizer line such as \
                       `suppress = \"leak:function_name\"`, or a valgrind `{ … }` block in a raw \
                       string";
        assert_args_fail(
            &[
                quote! { suppress = "" },
                quote! { suppress = "  \n\t" },
                quote! { suppress = r#""# },
            ],
            message,
        );
    }

    #[test]
    fn errors_are_combined() {
        let args = quote! { foo, strict, strict, bar = 1, fail_on = "x", suppress = "" };
        let errs = errors(args, quote! { async fn t<T>(x: T) {} });
        assert_eq!(errs.len(), 8, "{errs:?}");
        assert!(errs[0].contains("`foo`"));
        assert!(errs[1].starts_with("duplicate"));
        assert!(errs[2].contains("`bar`"));
        assert!(errs[3].starts_with("`strict` is `fail_on"));
        assert!(errs[4].starts_with("`suppress` is empty"));
        assert!(errs[5].contains("needs a runtime's test attribute"));
        assert!(errs[6].contains("generic"));
        assert_eq!(errs[7], NO_ARGS);
    }

    #[test]
    fn show_and_max_sections_are_passed_as_written() {
        assert_eq!(
            options_of(quote! { show = "definite,indirect", max_sections = 12 }),
            format!(
                "Options :: new () . show (\"definite,indirect\") . max_sections (12) {CRATE_DIR}"
            ),
        );
        assert_eq!(
            options_of(quote! { max_sections = 0, strict }),
            format!("Options :: new () . strict () . max_sections (0) {CRATE_DIR}"),
        );
    }

    #[test]
    fn show_and_max_sections_reject_bad_values() {
        let expected = "expected `definite`, `indirect`, `possible`, `reachable` separated by \
                        commas, or `all`, or `none`";
        assert_args_fail(
            &[quote! { show = "definite,lost" }],
            &format!("unknown leak kind `lost` in `show`; {expected}"),
        );
        assert_args_fail(
            &[quote! { show = "" }],
            &format!("`show` is empty; {expected}"),
        );
        assert_args_fail(
            &[quote! { show = "all", show = "all" }],
            "duplicate leak_checked argument `show`",
        );
        assert_args_fail(
            &[
                quote! { max_sections },
                quote! { max_sections = },
                quote! { max_sections = "5" },
                quote! { max_sections = -1 },
                quote! { max_sections = 2.5 },
                quote! { max_sections = 5u8 },
                quote! { max_sections(5) },
            ],
            "`max_sections` takes a whole number; write `max_sections = 10`",
        );
        assert_args_fail(
            &[quote! { max_sections = 1, max_sections = 2 }],
            "duplicate leak_checked argument `max_sections`",
        );
    }
}
