//! Expansion: run the codegen pipeline and emit the verified program, or every error.

use crate::args::Args;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use rootemu_codegen::record::{self, SECTION};
use rootemu_codegen::{Errors, Filter, Tables};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The bundled tables, validated by the build script (`build.rs`); `None` when they have
/// errors, which loading the YAML then reports.
fn bundled_tables() -> Option<&'static Tables> {
    static JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/bundled-tables.json"));
    static TABLES: OnceLock<Option<Tables>> = OnceLock::new();
    TABLES.get_or_init(|| serde_json::from_str(JSON).ok()).as_ref()
}

/// The tables `args` names: the bundled ones as the build script left them, else loaded.
fn tables(args: &Args) -> Result<std::borrow::Cow<'static, Tables>, Errors> {
    match bundled_tables().filter(|_| args.bundled_tables) {
        Some(t) => Ok(std::borrow::Cow::Borrowed(t)),
        None => Tables::load_dir(&args.tables).map(std::borrow::Cow::Owned),
    }
}

pub(crate) fn expand(args: &Args) -> TokenStream {
    let deps = tracked_inputs(args);
    let built = tables(args).and_then(|t| Filter::with_tables(&t, &args.policy, &args.abis));
    match built {
        Ok(f) => {
            let body = emit(&f);
            quote! {{ #deps #body }}
        }
        Err(errors) => failed(deps, &errors),
    }
}

/// The bundled policy over the ABIs a kernel running the binary delivers: one
/// `filter!(abis = [...])` per group of Rust `target_arch` values, each behind
/// `#[cfg(target_arch = ...)]`, and `filter!()` (every ABI) for any other target. rustc
/// removes the statements whose `cfg` is false before expanding what they contain, so
/// only the target's program is built, proved and compiled in.
pub(crate) fn expand_per_target(args: &Args) -> TokenStream {
    let deps = tracked_inputs(args);
    let tables = match tables(args) {
        Ok(t) => t,
        Err(errors) => return failed(deps, &errors),
    };
    let mut named = Vec::new();
    let arms: Vec<TokenStream> = tables
        .by_rust_arch()
        .into_iter()
        .map(|(arches, abis)| {
            named.extend(arches.iter().cloned());
            quote! { #[cfg(any(#(target_arch = #arches),*))] let filter = ::rootemu::filter!(abis = [#(#abis),*]); }
        })
        .collect();
    quote! {{
        #deps
        #(#arms)*
        #[cfg(not(any(#(target_arch = #named),*)))]
        let filter = ::rootemu::filter!();
        filter
    }}
}

/// Like [`expand_per_target`], as a `Result<rootemu::Filter, &'static str>`: a target family
/// whose filter cannot be built (consistent mode on an ABI without struct layouts) gets
/// `Err` with the reason, at run time; input errors are still compile errors.
pub(crate) fn expand_per_target_result(args: &Args) -> TokenStream {
    let deps = tracked_inputs(args);
    let built = tables(args).and_then(|t| Filter::build_groups(&t, &args.policy, &args.abis));
    let per = match built {
        Ok(per) => per,
        Err(errors) => {
            let msgs = errors.0.iter().map(|d| d.to_string());
            return quote! {{ #deps #(::core::compile_error!(#msgs);)* ::core::result::Result::<::rootemu::Filter, &'static str>::Err("") }};
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

/// `compile_error!` for each error, then a value of the right type so that rustc adds none.
fn failed(deps: TokenStream, errors: &Errors) -> TokenStream {
    let msgs = errors.0.iter().map(|d| d.to_string());
    quote! {{ #deps #(::core::compile_error!(#msgs);)* ::rootemu::Filter { policy: "", program: &[], abis: &[], notified: &[] } }}
}

/// The name of the table a binary of the target being built runs as: one `#[cfg]`'d
/// constant per ABI with `rust_native` (its target_arch values, `endian`, `elf_class`),
/// `"unknown"` for a target no table names. Validation keeps the constants exclusive.
pub(crate) fn running_abi(args: &Args) -> TokenStream {
    let deps = tracked_inputs(args);
    let tables = match tables(args) {
        Ok(t) => t,
        Err(errors) => {
            let msgs = errors.0.iter().map(|d| d.to_string());
            return quote! {{ #deps #(::core::compile_error!(#msgs);)* "unknown" }};
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

/// What makes cargo rebuild the calling crate when an input changes: `include_bytes!` of
/// each file read from a directory of the caller's (the bundled ones are watched by this
/// crate's build script), and `env!` of each variable a path named, which rustc records
/// in the crate's dep-info (`# env-dep:`) and cargo compares on the next build.
fn tracked_inputs(args: &Args) -> TokenStream {
    let mut files = Vec::new();
    if !args.bundled_tables {
        files.extend(table_files(&args.tables));
    }
    if !args.bundled_policy && args.policy.is_file() {
        files.push(args.policy.clone());
    }
    let includes = files.iter().filter_map(|p| p.to_str()).map(|p| quote! { const _: &[u8] = include_bytes!(#p); });
    let vars = args.vars.iter().map(|v| quote! { const _: &str = env!(#v); });
    quote! { #(#includes)* #(#vars)* }
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
    let meta = record::meta(&f.policy.name, &f.kernel(), &names);
    let meta_len = meta.len() as u32;
    let meta = record::padded(&meta);
    let m = meta.len();
    let meta = Literal::byte_string(&meta);
    let magic = Literal::byte_string(&record::MAGIC);
    let policy = &f.policy.name;
    let notified = f.notified.iter().map(notified);
    quote! {
        #[unsafe(link_section = #SECTION)]
        #[used]
        static ROOTEMU_EMBEDDED: ::rootemu::Embedded<#n, #m> = ::rootemu::Embedded {
            magic: *#magic,
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

/// The ABI tables of a tables directory and the shared files it has.
fn table_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = rootemu_codegen::files::yaml_files(dir).unwrap_or_default();
    let shared = [rootemu_codegen::shared::SIGNATURES_FILE, rootemu_codegen::shared::LAYOUTS_FILE];
    files.extend(shared.iter().map(|name| dir.join(name)).filter(|p| p.is_file()));
    files
}

/// `&[(name, include_str!(path))]` for every table file, the shared files, the policy and
/// every other policy of the tables' `policy/`.
pub(crate) fn sources(args: &Args) -> TokenStream {
    let mut files = table_files(&args.tables);
    let policies = rootemu_codegen::files::yaml_files(&args.tables.join("policy")).unwrap_or_default();
    if !policies.contains(&args.policy) {
        files.push(args.policy.clone());
    }
    files.extend(policies);
    let entries = files.iter().filter_map(|p: &PathBuf| {
        let full = p.to_str()?;
        let rel = p.strip_prefix(&args.tables).ok()?.to_str()?;
        Some(quote! { (#rel, include_str!(#full)) })
    });
    quote! { &[#(#entries),*] }
}
