//! rootemu's code generator: syscall tables and policies in, a verified seccomp BPF program out.
//!
//! [`Tables`] (one YAML file per ABI: AUDIT_ARCH facts and every syscall name -> number)
//! and a [`Policy`] (actions by syscall name, never by number) are validated with every
//! error at once ([`Errors`], each naming file, line and syscall). [`compile`] turns them
//! into one program, [`verifier`] applies the kernel's rules to it and [`proof`] proves its
//! verdict equal to the policy's meaning for every AUDIT_ARCH, every syscall number and
//! every argument class; [`Filter`] runs all of it:
//!
//! ```
//! use rootemu_codegen::{Action, Filter, sim};
//! use std::path::Path;
//!
//! let table = "abi: x86_64\naudit_arch: 0xc000003e\nelf_machine: 62\nbits: 64\nendian: little\n\
//!              nr_base: 0\nnr_limit: 1024\nimport: {table: arch/x86/entry/syscalls/syscall_64.tbl, tags: [common, 64]}\n\
//!              syscalls: {read: 0, chown: 92}\n";
//! let policy = "policy: demo\ndefault: allow\nunknown_abi: kill_process\n\
//!               rules:\n  - action: fake_success\n    syscalls: [chown]\n";
//! let f = Filter::from_texts(&[(Path::new("x86_64.yaml"), table)], (Path::new("demo.yaml"), policy), &[])?;
//! let chown = sim::SeccompData { nr: 92, arch: 0xc000_003e, ..Default::default() };
//! assert_eq!(sim::run(&f.program, &chown).unwrap().ret, Action::Errno(0).to_ret());
//! assert!(f.listing().contains("jeq #92"));
//! # Ok::<(), rootemu_codegen::Errors>(())
//! ```
//!
//! Architecture: data flows one way, tables -> this crate -> `rootemu-macros` (at compile
//! time) and the `rootemu` command -> the `rootemu` library. This crate depends on no other
//! rootemu crate; nothing in it knows a syscall number or an ABI except through the
//! tables. [`record`] owns the format in which programs travel inside binaries.

#![warn(missing_docs)]

mod asm;
pub mod bpf;
pub mod compile;
pub mod diag;
pub mod disasm;
pub mod export;
pub mod files;
pub mod filter;
pub mod import;
pub mod layout;
pub mod matrix;
pub mod notify;
pub mod partition;
pub mod policy;
pub mod proof;
pub mod record;
pub mod shared;
pub mod sim;
pub mod table;
pub mod verifier;
mod yaml;

pub use bpf::{Action, Insn};
pub use diag::{Diagnostic, Errors};
pub use filter::{Filter, Groups, Inputs, PerTarget};
pub use policy::Policy;
pub use table::{Abi, Endian, Tables};
