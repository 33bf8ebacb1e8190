//! Expansion: run the codegen pipeline and emit the verified program, or every error.

use crate::args::Args;
use proc_macro2::{Literal, TokenStream};
use quote::quote;
use rootemu_codegen::{Errors, Filter, Inputs};
use std::path::PathBuf;

/// Section holding every embedded program, each behind a `ROOTEMU\x01` header.
const SECTION: &str = ".rootemu_filter";

pub(crate) fn expand(args: &Args) -> TokenStream {
    let deps = tracked_files(args);
    let built = Filter::build(&Inputs { tables: &args.tables, policy: &args.policy, abis: &args.abis });
    match built {
        Ok(f) => {
            let body = emit(&f);
            quote! {{ #deps #body }}
        }
        Err(errors) => {
            let errs = compile_errors(&errors);
            // A value of the right type after the errors keeps rustc from adding its own.
            quote! {{ #deps #errs ::rootemu::Filter { policy: "", program: &[], abis: &[] } }}
        }
    }
}

/// One verified filter per group of Rust `target_arch` values (the ABIs a kernel running
/// such a binary delivers), each behind `#[cfg(target_arch = ...)]`, and the all-ABI filter
/// for any other target: only the target's program is compiled into the binary.
pub(crate) fn expand_per_target(args: &Args) -> TokenStream {
    let deps = tracked_files(args);
    let built = Filter::build_per_target(&Inputs { tables: &args.tables, policy: &args.policy, abis: &args.abis });
    let per = match built {
        Ok(per) => per,
        Err(errors) => {
            let errs = compile_errors(&errors);
            return quote! {{ #deps #errs ::rootemu::Filter { policy: "", program: &[], abis: &[] } }};
        }
    };
    let mut named = Vec::new();
    let arms = per.groups.iter().map(|(arches, f)| {
        named.extend(arches.iter().cloned());
        let body = emit(f);
        quote! { #[cfg(any(#(target_arch = #arches),*))] let filter = { #body }; }
    });
    let arms: Vec<TokenStream> = arms.collect();
    let rest = emit(&per.all);
    quote! {{
        #deps
        #(#arms)*
        #[cfg(not(any(#(target_arch = #named),*)))]
        let filter = { #rest };
        filter
    }}
}

/// The name of the table a binary of the target being built runs as: one `#[cfg]`'d
/// constant per ABI with `rust_native` (its target_arch values, `endian`, `elf_class`),
/// `"unknown"` for a target no table names. Validation keeps the constants exclusive.
pub(crate) fn running_abi(args: &Args) -> TokenStream {
    let deps = tracked_files(args);
    let tables = match rootemu_codegen::Tables::load_dir(&args.tables) {
        Ok(t) => t,
        Err(errors) => {
            let errs = compile_errors(&errors);
            return quote! {{ #deps #errs "unknown" }};
        }
    };
    let mut preds = Vec::new();
    let consts: Vec<TokenStream> = tables
        .abis
        .iter()
        .filter(|a| !a.rust_native.is_empty())
        .map(|a| {
            let arches = &a.rust_native;
            let endian = if a.endian == rootemu_codegen::Endian::Big { "big" } else { "little" };
            let width = a.elf_class.to_string();
            let pred = quote! { all(any(#(target_arch = #arches),*), target_endian = #endian, target_pointer_width = #width) };
            preds.push(pred.clone());
            let name = &a.name;
            quote! { #[cfg(#pred)] const ABI: &str = #name; }
        })
        .collect();
    quote! {{
        #deps
        #(#consts)*
        #[cfg(not(any(#(#preds),*)))]
        const ABI: &str = "unknown";
        ABI
    }}
}

/// `include_bytes!` of every input file, so editing one rebuilds the calling crate.
fn tracked_files(args: &Args) -> TokenStream {
    let files = input_files(args);
    let includes = files.iter().filter(|p| p.is_file()).filter_map(|p| p.to_str()).map(|p| quote! { const _: &[u8] = include_bytes!(#p); });
    quote! { #(#includes)* }
}

fn compile_errors(errors: &Errors) -> TokenStream {
    let msgs = errors.0.iter().map(|d| d.to_string());
    quote! { #(::core::compile_error!(#msgs);)* }
}

fn emit(f: &Filter) -> TokenStream {
    let n = f.program.len();
    let insns = f.program.iter().map(|i| {
        let (code, jt, jf, k) = (i.code, i.jt, i.jf, i.k);
        quote! { ::rootemu::SockFilter { code: #code, jt: #jt, jf: #jf, k: #k } }
    });
    let abis = f.tables.abis.iter().map(|a| {
        let (name, arch, kernel) = (&a.name, a.audit_arch, a.kernel());
        quote! { ::rootemu::AbiInfo { name: #name, audit_arch: #arch, kernel: #kernel } }
    });
    let names: Vec<&str> = f.tables.abis.iter().map(|a| a.name.as_str()).collect();
    let mut meta = format!("policy={}\nkernel={}\nabis={}\n", f.policy.name, f.kernel(), names.join(",")).into_bytes();
    let meta_len = meta.len() as u32;
    meta.resize(meta.len().next_multiple_of(8), 0);
    let m = meta.len();
    let meta = Literal::byte_string(&meta);
    let policy = &f.policy.name;
    quote! {
        #[unsafe(link_section = #SECTION)]
        #[used]
        static ROOTEMU_EMBEDDED: ::rootemu::Embedded<#n, #m> = ::rootemu::Embedded {
            magic: ::rootemu::Embedded::<0, 0>::MAGIC,
            insns: #n as u32,
            meta_len: #meta_len,
            program: [#(#insns),*],
            meta: *#meta,
        };
        ::rootemu::Filter { policy: #policy, program: &ROOTEMU_EMBEDDED.program, abis: &[#(#abis),*] }
    }
}

/// `&[(name, include_str!(path))]` for every table file and the policy.
pub(crate) fn sources(args: &Args) -> TokenStream {
    let files = input_files(args);
    let entries = files.iter().filter_map(|p| {
        let full = p.to_str()?;
        let rel = p.strip_prefix(&args.tables).ok()?.to_str()?;
        Some(quote! { (#rel, include_str!(#full)) })
    });
    quote! { &[#(#entries),*] }
}

/// The `*.yaml` files of the tables directory, sorted, then the policy.
fn input_files(args: &Args) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.tables)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "yaml")).collect())
        .unwrap_or_default();
    files.sort();
    files.push(args.policy.clone());
    files
}
