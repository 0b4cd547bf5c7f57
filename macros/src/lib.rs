//! The `#[leak_checked]` attribute. Depend on `leakcheck`, which re-exports it.
#![forbid(unsafe_code)]

mod expand;
mod stacked;
mod suppression;

use proc_macro::TokenStream;

/// See `leakcheck::leak_checked`.
#[proc_macro_attribute]
pub fn leak_checked(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand::leak_checked(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        // Keep the function so IDEs and the rest of the crate still see it.
        Err(err) => {
            let mut out = err.to_compile_error();
            out.extend(item);
            out.into()
        }
    }
}
