//! What `#[leak_checked]` expands to, and the checks on what it is given.
//!
//! ```text
//! #[leak_checked(strict)]
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
//!         ::leakcheck::__private::Options::new().strict(),
//!         move || -> Result<(), E> { body },
//!     )
//! }
//! ```

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Item, ItemFn, LitStr, ReturnType, Signature};

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
    check_signature(&func.sig, &mut errors);
    errors.finish()?;
    Ok(expand(&args, func))
}

/// What `#[leak_checked(...)]` was given.
#[derive(Debug, Default)]
struct Args {
    /// `strict`: still-reachable blocks fail the test too.
    strict: bool,
}

/// A key that `#[leak_checked(...)]` accepts. Every key is a bare name for now;
/// a key that takes a value will need a parser here as well.
struct Key {
    /// How it is written in the attribute.
    name: &'static str,
    /// Records it in [`Args`].
    set: fn(&mut Args),
}

/// Every accepted key, in the order the "expected one of" message lists them.
const KEYS: &[Key] = &[Key {
    name: "strict",
    set: |args| args.strict = true,
}];

impl Args {
    /// Parses the comma-separated keys of `#[leak_checked(...)]` (a trailing
    /// comma is fine), pushing an error for each bad one.
    fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let mut seen: Vec<&'static str> = Vec::new();
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
            let Some(key) = KEYS.iter().find(|key| key.name == name) else {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!(
                        "unknown leak_checked argument `{name}`; expected one of: {}",
                        expected_keys()
                    ),
                ));
                continue;
            };
            if !rest.is_empty() {
                errors.push(syn::Error::new_spanned(
                    tokens_of(rest),
                    format!("leak_checked argument `{name}` takes no value; write `#[leak_checked({name})]`"),
                ));
            } else if seen.contains(&key.name) {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!("duplicate leak_checked argument `{name}`"),
                ));
            } else {
                seen.push(key.name);
                (key.set)(&mut args);
            }
        }
        args
    }

    /// `::leakcheck::__private::Options::new()` with a builder call per key.
    fn options(&self) -> TokenStream {
        let mut options = quote!(::leakcheck::__private::Options::new());
        if self.strict {
            options.extend(quote!(.strict()));
        }
        options
    }
}

/// The accepted keys as the error messages list them: "`a`, `b`".
fn expected_keys() -> String {
    KEYS.iter()
        .map(|key| format!("`{}`", key.name))
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
/// on that part.
fn check_signature(sig: &Signature, errors: &mut Errors) {
    let arguments = if sig.inputs.is_empty() {
        sig.variadic.as_ref().map(ToTokens::to_token_stream)
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
            sig.asyncness.map(|token| token.to_token_stream()),
            "async tests are not supported by `#[leak_checked]` yet; use your runtime's test \
             attribute (such as `#[tokio::test]`) and call `leakcheck::check` inside the test",
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
            "`#[leak_checked]` tests take no arguments: a test function is called as `name()`",
        ),
    ];
    for (tokens, message) in rejected {
        if let Some(tokens) = tokens {
            errors.push(syn::Error::new_spanned(tokens, message));
        }
    }
}

/// The expansion of a function that passed every check.
fn expand(args: &Args, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let (outer, inner): (Vec<Attribute>, Vec<Attribute>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    // The full path, so a `use tokio::test;` in scope cannot capture it. It
    // goes last, after the attributes still to be expanded, so that a test
    // macro among them sees it and does not register the test a second time
    // (the convention of tokio, rstest and googletest).
    let test_attr = if outer.iter().any(is_test_attribute) {
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
    // would the value.
    let (runner, sig) = match &sig.output {
        ReturnType::Default => (quote!(run_test), sig),
        ReturnType::Type(arrow, ty) => {
            let mut outer_sig = sig.clone();
            outer_sig.output =
                syn::parse_quote_spanned!(ty.span()=> #arrow ::std::process::ExitCode);
            (quote!(run_test_report), outer_sig)
        }
    };
    let call = quote_spanned! {output_span(&sig)=>
        ::leakcheck::__private::#runner(#name, #options, #closure #closure_output #block)
    };
    quote! {
        #(#outer)*
        #test_attr
        #vis #sig {
            #(#inner)*
            #call
        }
    }
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

    const NO_ARGS: &str =
        "`#[leak_checked]` tests take no arguments: a test function is called as `name()`";

    #[test]
    fn bare_attribute_adds_test_and_default_options() {
        let out = expansion(quote! {}, quote! { fn my_test() { assert!(true); } });
        let expected = quote! {
            #[::core::prelude::v1::test]
            fn my_test() {
                ::leakcheck::__private::run_test(
                    "my_test",
                    ::leakcheck::__private::Options::new(),
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
                    ::leakcheck::__private::Options::new().strict(),
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
        assert_eq!(attr_paths(&func), ["doc", "ignore", "should_panic", test]);
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
            ["unknown leak_checked argument `foo`; expected one of: `strict`"]
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
            "expected the name of a leak_checked argument, one of: `strict`",
        );
    }

    #[test]
    fn empty_arguments_between_commas() {
        assert_args_fail(
            &[quote! { , }, quote! { , strict }, quote! { strict,, }],
            "expected a leak_checked argument before this comma; expected one of: `strict`",
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
    fn async_fn_points_to_check() {
        let errs = errors(quote! {}, quote! { async fn t() {} });
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("async tests are not supported"),
            "{errs:?}"
        );
        assert!(errs[0].contains("leakcheck::check"), "{errs:?}");
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

    #[test]
    fn errors_are_combined() {
        let args = quote! { foo, strict, strict, bar = 1 };
        let errs = errors(args, quote! { async fn t<T>(x: T) {} });
        assert_eq!(errs.len(), 6, "{errs:?}");
        assert!(errs[0].contains("`foo`"));
        assert!(errs[1].starts_with("duplicate"));
        assert!(errs[2].contains("`bar`"));
        assert!(errs[3].starts_with("async"));
        assert!(errs[4].contains("generic"));
        assert_eq!(errs[5], NO_ARGS);
    }
}
