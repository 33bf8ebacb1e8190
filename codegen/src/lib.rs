//! rootemu's code generator: syscall tables and policies in, a verified seccomp BPF program out.

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
pub mod policy;
pub mod proof;
pub mod sim;
pub mod table;
pub mod verifier;
mod yaml;

pub use bpf::{Action, Insn};
pub use diag::{Diagnostic, Errors};
pub use filter::{Filter, Inputs, PerTarget};
pub use policy::Policy;
pub use table::{Abi, Endian, Tables};
