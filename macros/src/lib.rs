//! `root_emulation!()` and `filter!(...)`: tables in, a compile-time-verified filter out.

use proc_macro::TokenStream;

/// The bundled root-emulation filter for every bundled ABI.
#[proc_macro]
pub fn root_emulation(_input: TokenStream) -> TokenStream {
    "compile_error!(\"not yet\")".parse().unwrap()
}

/// A filter from a caller's own policy and tables.
#[proc_macro]
pub fn filter(_input: TokenStream) -> TokenStream {
    "compile_error!(\"not yet\")".parse().unwrap()
}
