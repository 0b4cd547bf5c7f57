//! How `#[leak_checked]` works with the attributes stacked below it: a
//! runtime's test attribute on an `async fn` (`#[tokio::test]`), attributes
//! that generate the tests from a function with arguments (`#[rstest]`,
//! `#[test_case(…)]`), and `#[should_panic]`, which the check takes over.

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Meta, Signature};

/// What the function under `#[leak_checked]` is, by the attributes below it.
pub(crate) enum Form {
    /// A test function: `fn name()`, with `#[test]` or not.
    Plain,
    /// An `async fn` with `#[tokio::test(…)]` below: the attribute at this
    /// index of the outer attributes. The check builds the runtime inside.
    Runtime(usize),
    /// A function with arguments that `#[rstest]` or `#[test_case(…)]`
    /// turns into tests calling it: its body is checked in place.
    Generated,
}

/// The two orders that work for an `async fn`.
const ASYNC_FORMS: &str = "`#[leak_checked]` on an `async fn` needs a runtime's test attribute \
     below it; write\n    #[leak_checked]\n    #[tokio::test] // any flavor and arguments\n    \
     async fn name() { … }\nor, for any runtime,\n    #[tokio::test]\n    #[leak_checked]\n    \
     async fn name() { … }";

/// Which form `attrs` (the outer attributes below `#[leak_checked]`) and
/// `sig` make, or why none fits.
pub(crate) fn form(attrs: &[Attribute], sig: &Signature) -> syn::Result<Form> {
    let generated = attrs.iter().any(generates_tests);
    let Some(asyncness) = sig.asyncness else {
        return Ok(if generated && !sig.inputs.is_empty() {
            Form::Generated
        } else {
            Form::Plain
        });
    };
    if generated {
        return Err(syn::Error::new(
            asyncness.span(),
            "`#[leak_checked]` above `#[rstest]` or `#[test_case(…)]` checks a function those \
             call, which cannot be `async`; write `#[leak_checked]` last instead, directly above \
             the runtime's test attribute (`#[tokio::test]`), so that it checks each test they \
             generate",
        ));
    }
    let Some(index) = attrs.iter().position(|attr| last_segment_is(attr, "test")) else {
        return Err(syn::Error::new(asyncness.span(), ASYNC_FORMS));
    };
    let attr = &attrs[index];
    if is_tokio(attr) {
        return Ok(Form::Runtime(index));
    }
    let path = attr.path().to_token_stream().to_string().replace(' ', "");
    Err(syn::Error::new_spanned(
        attr,
        format!(
            "`#[leak_checked]` runs `#[tokio::test]` itself, not `#[{path}]`; write `#[{path}]` \
             above `#[leak_checked]`, which then checks the function it makes (runtime included)"
        ),
    ))
}

/// Whether `attr` is `#[tokio::test]` or `#[::tokio::test(…)]`.
fn is_tokio(attr: &Attribute) -> bool {
    let segments = &attr.path().segments;
    segments.len() == 2 && segments[0].ident == "tokio" && segments[1].ident == "test"
}

/// Whether `attr`'s path ends in `name`.
fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

/// Whether `attr` makes tests out of a function with arguments: rstest's
/// `#[rstest]`, test-case's `#[test_case(…)]` and `#[test_matrix(…)]`.
fn generates_tests(attr: &Attribute) -> bool {
    ["rstest", "test_case", "test_matrix"]
        .iter()
        .any(|name| last_segment_is(attr, name))
}

/// `#[tokio::test(args)]` as `#[tokio::main(args)]`, which makes the
/// `async fn` a plain one running its body on a runtime it builds, and
/// registers no test. tokio's test flavor is the default, as with
/// `#[tokio::test]`.
pub(crate) fn runtime_main(attr: &Attribute) -> syn::Result<TokenStream> {
    let mut path = attr.path().clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = Ident::new("main", last.ident.span());
    }
    let args = match &attr.meta {
        Meta::Path(_) => TokenStream::new(),
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(_) => {
            return Err(syn::Error::new_spanned(
                attr,
                "expected `#[tokio::test]` or `#[tokio::test(…)]`",
            ))
        }
    };
    let has_flavor = args
        .clone()
        .into_iter()
        .any(|token| matches!(&token, TokenTree::Ident(ident) if ident == "flavor"));
    let flavor = (!has_flavor).then(|| {
        let comma = (!args.is_empty()).then(|| quote!(,));
        quote!(flavor = "current_thread" #comma)
    });
    Ok(quote!(#[#path(#flavor #args)]))
}

/// `#[should_panic]`'s expectation, taken out of `attrs`: `Some(None)` for
/// a bare `#[should_panic]`, `Some(Some(text))` with `expected`. A form it
/// does not know is left in place for rustc to judge (`None`).
pub(crate) fn take_should_panic(attrs: &mut Vec<Attribute>) -> Option<Option<LitStr>> {
    let index = attrs
        .iter()
        .position(|attr| attr.path().is_ident("should_panic"))?;
    let expected = match &attrs[index].meta {
        Meta::Path(_) => None,
        Meta::NameValue(pair) => match &pair.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => Some(text.clone()),
            _ => return None,
        },
        Meta::List(list) => {
            let pair: syn::MetaNameValue = list.parse_args().ok()?;
            match (pair.path.is_ident("expected"), &pair.value) {
                (
                    true,
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ) => Some(text.clone()),
                _ => return None,
            }
        }
    };
    attrs.remove(index);
    Some(expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn attrs_of(item: TokenStream) -> (Vec<Attribute>, Signature) {
        let func: syn::ItemFn = syn::parse2(item).expect("a function");
        (func.attrs, func.sig)
    }

    #[test]
    fn tokio_test_becomes_main_with_the_test_flavor() {
        for (attr, main) in [
            (
                quote!(#[tokio::test]),
                quote!(#[tokio::main(flavor = "current_thread")]),
            ),
            (
                quote!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]),
                quote!(#[tokio::main(flavor = "multi_thread", worker_threads = 2)]),
            ),
            (
                quote!(#[::tokio::test(start_paused = true)]),
                quote!(#[::tokio::main(flavor = "current_thread", start_paused = true)]),
            ),
        ] {
            let attr: Attribute = parse_quote!(#attr);
            let out = runtime_main(&attr).unwrap().to_string();
            assert_eq!(out, main.to_string());
        }
    }

    #[test]
    fn forms() {
        let (attrs, sig) = attrs_of(quote!(
            #[tokio::test]
            async fn t() {}
        ));
        assert!(matches!(form(&attrs, &sig), Ok(Form::Runtime(0))));
        let (attrs, sig) = attrs_of(quote!(
            #[ignore]
            #[::tokio::test]
            async fn t() {}
        ));
        assert!(matches!(form(&attrs, &sig), Ok(Form::Runtime(1))));
        let (attrs, sig) = attrs_of(quote!(
            #[rstest]
            #[case(1)]
            fn t(#[case] x: u8) {}
        ));
        assert!(matches!(form(&attrs, &sig), Ok(Form::Generated)));
        let (attrs, sig) = attrs_of(quote!(
            #[test_case(1)]
            fn t(x: u8) {}
        ));
        assert!(matches!(form(&attrs, &sig), Ok(Form::Generated)));
        let (attrs, sig) = attrs_of(quote!(
            #[test]
            fn t() {}
        ));
        assert!(matches!(form(&attrs, &sig), Ok(Form::Plain)));
    }

    fn form_error(item: TokenStream) -> String {
        let (attrs, sig) = attrs_of(item);
        match form(&attrs, &sig) {
            Err(err) => err.to_string(),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn async_without_a_runtime_shows_both_orders() {
        let err = form_error(quote!(
            async fn t() {}
        ));
        assert!(
            err.starts_with("`#[leak_checked]` on an `async fn` needs"),
            "{err}"
        );
        assert!(err.contains("#[leak_checked]\n    #[tokio::test]"), "{err}");
        assert!(err.contains("#[tokio::test]\n    #[leak_checked]"), "{err}");
    }

    #[test]
    fn another_runtime_is_told_to_go_above() {
        let err = form_error(quote!(
            #[async_std::test]
            async fn t() {}
        ));
        assert_eq!(
            err,
            "`#[leak_checked]` runs `#[tokio::test]` itself, not `#[async_std::test]`; write \
             `#[async_std::test]` above `#[leak_checked]`, which then checks the function it \
             makes (runtime included)"
        );
        let err = form_error(quote!(
            #[rstest]
            #[tokio::test]
            async fn t(#[case] x: u8) {}
        ));
        assert!(
            err.contains("write `#[leak_checked]` last instead"),
            "{err}"
        );
    }

    #[test]
    fn should_panic_forms() {
        let mut attrs: Vec<Attribute> =
            vec![parse_quote!(#[ignore]), parse_quote!(#[should_panic])];
        assert!(matches!(take_should_panic(&mut attrs), Some(None)));
        assert_eq!(attrs.len(), 1);
        for attr in [
            quote!(#[should_panic(expected = "boom")]),
            quote!(#[should_panic = "boom"]),
        ] {
            let mut attrs: Vec<Attribute> = vec![parse_quote!(#attr)];
            let expected = take_should_panic(&mut attrs).unwrap().unwrap();
            assert_eq!(expected.value(), "boom");
            assert!(attrs.is_empty());
        }
        let mut attrs: Vec<Attribute> = vec![parse_quote!(#[should_panic(unknown = 1)])];
        assert!(take_should_panic(&mut attrs).is_none());
        assert_eq!(attrs.len(), 1, "left for rustc to reject");
    }
}
