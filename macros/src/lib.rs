//! `root_emulation!()` and `filter!(...)`: syscall tables in, a compile-time-verified filter out.
//!
//! Both expand to a `rootemu::Filter` whose program the codegen verifier and proof have
//! checked during expansion; any table, policy or program error is a `compile_error!`
//! naming the file, line and syscall. The program is also placed, with a small header
//! (`rootemu_codegen::record`), in the `.rootemu_filter` ELF section so `rootemu inspect`
//! finds it in any binary. Use them through the `rootemu` crate, which re-exports them:
//!
//! ```ignore
//! static FILTER: rootemu::Filter = rootemu::root_emulation!();
//! let mine = rootemu::filter!(policy = "policy.yaml", tables = "$MY_TABLES", abis = [x86_64, i386]);
//! ```
//!
//! (the `rootemu` crate's documentation compiles this example.)
//!
//! Cost in a user's crate: this crate's build script validates the bundled tables once
//! and hands them over as JSON, and `root_emulation!()` builds only the target's program
//! (each other target's `filter!` sits behind a `cfg` rustc never expands), so an
//! unoptimised proc-macro expands either macro, proof included, in tens of milliseconds.
//!
//! Rebuilds: the bundled directory is watched whole by the build script; for inputs of
//! the caller's, each file read is an `include_bytes!` and each `$VAR` an `env!` in the
//! expansion, which cargo tracks (see the `rootemu` crate's documentation).
//!
//! Architecture: this crate depends on `rootemu-codegen` only; the code it emits names
//! `::rootemu` types, so it is used through the `rootemu` crate.

#![warn(missing_docs)]

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

/// The bundled consistent-mode policy (`tables/policy/consistent.yaml`: chown, chmod,
/// device mknod, stat and xattr calls go to a supervisor) over the ABIs a kernel running
/// the binary can deliver, as a `Result<rootemu::Filter, &'static str>`: `Err` names why
/// (an ABI of the target without the struct layouts consistent mode needs).
///
/// `rootemu::consistent_emulation!()`
#[proc_macro]
pub fn consistent_emulation(input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    if !input.is_empty() {
        return syn::Error::new_spanned(input, "consistent_emulation!() takes no arguments").to_compile_error().into();
    }
    expand::expand_per_target_result(&args::Args::bundled_policy("consistent.yaml")).into()
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
