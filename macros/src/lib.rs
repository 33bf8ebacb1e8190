//! `root_emulation!()` and `filter!(...)`: syscall tables in, a compile-time-verified filter out.
//!
//! Both expand to a `rootemu::Filter` whose program the codegen verifier and proof have
//! checked during expansion; any table, policy or program error is a `compile_error!`
//! naming the file, line and syscall. The program is also placed, with a small header,
//! in the `.rootemu_filter` ELF section so `rootemu inspect` finds it in any binary.

mod args;
mod expand;

use proc_macro::TokenStream;

/// The bundled root-emulation policy over the ABIs that a kernel running the binary being
/// built can deliver: the tables whose `rust_arches` name the target's `target_arch`
/// (x86_64 or x86: x86_64, x32 and i386), or every ABI for a target no table names.
///
/// `rootemu::root_emulation!()`
#[proc_macro]
pub fn root_emulation(input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    if !input.is_empty() {
        return syn::Error::new_spanned(
            input,
            "root_emulation!() takes no arguments; use rootemu::filter!(...) to choose a policy, tables or ABIs",
        )
        .to_compile_error()
        .into();
    }
    expand::expand_per_target(&args::Args::bundled()).into()
}

/// A filter from a policy, tables and ABIs of the caller's choice.
///
/// `rootemu::filter!(policy = "policy.yaml", tables = "tables", abis = [x86_64, i386])`:
/// every key is optional (bundled policy, bundled tables, all ABIs). Relative paths are
/// relative to the calling crate's `CARGO_MANIFEST_DIR`; `$VAR` expands an environment
/// variable.
#[proc_macro]
pub fn filter(input: TokenStream) -> TokenStream {
    match syn::parse::<args::Args>(input) {
        Ok(a) => expand::expand(&a).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The name of the bundled table that a binary built for the current target runs as (the
/// ABI whose `rust_native`, `endian` and `elf_class` match its `target_arch`,
/// `target_endian` and `target_pointer_width`), or `"unknown"`: what
/// `rootemu::install::running_abi()` returns. A `&'static str` constant expression.
#[proc_macro]
pub fn running_abi(_input: TokenStream) -> TokenStream {
    expand::running_abi(&args::Args::bundled()).into()
}

/// The bundled tables and policy as `&[(file name, text)]`, for tools that rebuild or
/// inspect the filter at run time (the `rootemu` CLI). Policies are named `policy/<file>`.
#[proc_macro]
pub fn bundled_sources(_input: TokenStream) -> TokenStream {
    expand::sources(&args::Args::bundled()).into()
}
