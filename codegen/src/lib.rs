//! rootemu's code generator: syscall tables and policies in, a verified seccomp BPF program out.

pub mod bpf;
pub mod diag;
pub mod policy;
pub mod table;
mod yaml;

pub use diag::{Diagnostic, Errors};
pub use table::{Abi, Endian, Tables};
