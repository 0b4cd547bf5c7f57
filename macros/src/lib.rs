//! The `#[leak_checked]` attribute. Depend on `leakcheck`, which re-exports it.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

/// See `leakcheck::leak_checked`.
#[proc_macro_attribute]
pub fn leak_checked(args: TokenStream, item: TokenStream) -> TokenStream {
    let _ = args;
    item
}
