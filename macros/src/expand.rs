//! Expansion: run the codegen pipeline and emit the verified program, or every error.

use crate::args::Args;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
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
            quote! {{ #deps #errs ::rootemu::Filter { policy: "", program: &[], abis: &[], notified: &[] } }}
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
            return quote! {{ #deps #errs ::rootemu::Filter { policy: "", program: &[], abis: &[], notified: &[] } }};
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

/// Like [`expand_per_target`], as a `Result<rootemu::Filter, &'static str>`: a target family
/// whose filter cannot be built (consistent mode on an ABI without struct layouts) gets
/// `Err` with the reason, at run time; input errors are still compile errors.
pub(crate) fn expand_per_target_result(args: &Args) -> TokenStream {
    let deps = tracked_files(args);
    let built = Filter::build_groups(&Inputs { tables: &args.tables, policy: &args.policy, abis: &args.abis });
    let per = match built {
        Ok(per) => per,
        Err(errors) => {
            let errs = compile_errors(&errors);
            return quote! {{ #deps #errs ::core::result::Result::<::rootemu::Filter, &'static str>::Err("") }};
        }
    };
    let result = |f: &Result<Filter, Errors>| match f {
        Ok(f) => {
            let body = emit(f);
            quote! { ::core::result::Result::<::rootemu::Filter, &'static str>::Ok({ #body }) }
        }
        Err(e) => {
            let msg = e.to_string();
            quote! { ::core::result::Result::<::rootemu::Filter, &'static str>::Err(#msg) }
        }
    };
    let mut named = Vec::new();
    let arms: Vec<TokenStream> = per
        .groups
        .iter()
        .map(|(arches, f)| {
            named.extend(arches.iter().cloned());
            let body = result(f);
            quote! { #[cfg(any(#(target_arch = #arches),*))] let filter = #body; }
        })
        .collect();
    let rest = result(&per.all);
    quote! {{
        #deps
        #(#arms)*
        #[cfg(not(any(#(target_arch = #named),*)))]
        let filter = #rest;
        filter
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
    let notified = f.notified.iter().map(notified);
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
        ::rootemu::Filter { policy: #policy, program: &ROOTEMU_EMBEDDED.program, abis: &[#(#abis),*], notified: &[#(#notified),*] }
    }
}

/// The runtime enum variant named like a codegen one.
fn variant(v: &impl std::fmt::Debug) -> proc_macro2::Ident {
    format_ident!("{}", format!("{v:?}"))
}

/// One `rootemu::notified::Notified` entry (codegen's enums map onto the runtime's by name).
fn notified(n: &rootemu_codegen::notify::Notified) -> TokenStream {
    let (arch, nr, abi, name) = (n.audit_arch, n.nr, &n.abi, &n.name);
    let op = variant(&n.signature.op);
    let args = n.signature.args.iter().map(variant);
    let (nofollow, id16, big) = (n.signature.nofollow, n.id16, n.endian == rootemu_codegen::Endian::Big);
    let layout = match &n.layout {
        None => quote! { None },
        Some(l) => {
            let (lname, size, kept) = (&l.name, l.size, l.padding_kept);
            let max = match l.max_size {
                Some(m) => quote! { Some(#m) },
                None => quote! { None },
            };
            let fields = l.fields.iter().map(|f| {
                let kind = variant(&f.kind);
                let enc = variant(&f.encode);
                let (at, sz) = (f.at, f.size);
                quote! { ::rootemu::notified::Field { kind: ::rootemu::notified::FieldKind::#kind, at: #at, size: #sz, encode: ::rootemu::notified::Encode::#enc } }
            });
            quote! { Some(&::rootemu::notified::Layout { name: #lname, size: #size, max_size: #max, padding_kept: #kept, fields: &[#(#fields),*] }) }
        }
    };
    quote! {
        ::rootemu::notified::Notified {
            audit_arch: #arch, nr: #nr, abi: #abi, name: #name,
            op: ::rootemu::notified::Op::#op,
            args: &[#(::rootemu::notified::Role::#args),*],
            nofollow: #nofollow, id16: #id16, layout: #layout, big_endian: #big,
        }
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
    for name in [rootemu_codegen::shared::SIGNATURES_FILE, rootemu_codegen::shared::LAYOUTS_FILE] {
        let p = args.tables.join(name);
        if p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    files.push(args.policy.clone());
    files
}
