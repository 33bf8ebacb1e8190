//! rootemu's runtime: verified seccomp filters embedded at compile time, installed for real.
//!
//! [`root_emulation!()`](root_emulation) compiles the bundled root-emulation policy over
//! the ABIs the target's kernel delivers (x86_64, x32 and i386 for an x86_64 binary) into a
//! [`Filter`] whose program the verifier and the proof checked while the macro expanded;
//! [`install::install`] hands it to the kernel and [`install::self_test`] proves it active:
//!
//! ```no_run
//! static FILTER: rootemu::Filter = rootemu::root_emulation!();
//!
//! fn main() -> Result<(), rootemu::install::InstallError> {
//!     rootemu::install::install(FILTER.program, Default::default())?;
//!     rootemu::install::self_test(&FILTER)?;
//!     // chown to unmapped ids, setuid, setgroups and mknod of devices now return 0.
//!     Ok(())
//! }
//! ```
//!
//! [`filter!`] takes a policy, tables and ABIs of your own (paths relative to your crate,
//! `$VAR` expands an environment variable); any table, policy or program error is a
//! `compile_error!` naming the file and line. [`launch`] runs a command in a user
//! namespace under the filter, as `rootemu run` does.
//!
//! ## Rebuilds
//!
//! A crate that expands the macros is rebuilt when an input changes: the bundled tables and
//! policy (watched, whole directory, by `rootemu-macros`' build script), every file a
//! `filter!(tables = ..., policy = ...)` read, and every environment variable its paths
//! name. cargo cannot watch a directory of yours without a build script in your crate, so
//! a table file added to or removed from such a directory is seen on the crate's next
//! rebuild: name the ABIs (`abis = [...]`) to make the input exactly the files named.
//!
//! ## Programs built at run time
//!
//! With the `codegen` feature, a program that `rootemu_codegen` builds at run time (from
//! tables and a policy a user supplies) converts with `SockFilter::program` and installs
//! the same way; with `serde`, [`SockFilter`] reads and writes the form of
//! `rootemu_codegen::Insn` (`{"code": 32, "jt": 0, "jf": 0, "k": 4}`), so programs can be
//! stored as data.
//!
//! ## Architecture
//!
//! Data flows one way: tables (YAML) -> `rootemu-codegen` (model, compiler, verifier,
//! proof) -> `rootemu-macros` (compile time) and the `rootemu` command (`rootemu-cli`) ->
//! this crate. This crate depends on `rootemu-macros` and `libc` only (on
//! `rootemu-codegen` with the `codegen` feature); codegen depends on no other rootemu
//! crate, and nothing depends on the CLI.

#![warn(missing_docs)]

extern crate self as rootemu;

pub use rootemu_macros::{bundled_sources, consistent_emulation, filter, root_emulation};

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

#[cfg(feature = "codegen")]
impl From<rootemu_codegen::Insn> for SockFilter {
    fn from(i: rootemu_codegen::Insn) -> Self {
        SockFilter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }
    }
}

#[cfg(feature = "codegen")]
impl From<SockFilter> for rootemu_codegen::Insn {
    fn from(s: SockFilter) -> Self {
        rootemu_codegen::Insn::new(s.code, s.jt, s.jf, s.k)
    }
}

#[cfg(feature = "codegen")]
impl SockFilter {
    /// A program built by `rootemu_codegen` (e.g. `Filter::build(..)?.program`), ready
    /// for [`install::install`].
    pub fn program(insns: &[rootemu_codegen::Insn]) -> Vec<SockFilter> {
        insns.iter().map(|&i| i.into()).collect()
    }
}

/// One ABI a filter covers, as the macro saw it in the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbiInfo {
    /// ABI name, e.g. `x86_64`.
    pub name: &'static str,
    /// AUDIT_ARCH value.
    pub audit_arch: u32,
    /// Kernel release its numbers were imported from.
    pub kernel: &'static str,
}

/// A filter whose program the proc-macro generated and verified.
#[derive(Clone, Copy, Debug)]
pub struct Filter {
    /// The policy's name.
    pub policy: &'static str,
    /// The BPF program, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
    pub program: &'static [SockFilter],
    /// The ABIs the program has a branch for.
    pub abis: &'static [AbiInfo],
    /// The syscalls the program hands to a supervisor (`notify`), sorted by
    /// `(audit_arch, nr)`; empty for a policy that notifies nothing.
    pub notified: &'static [notified::Notified],
}

// Each module's documentation is its own `//!` text (links in it resolve there).
pub mod image;
pub mod install;
pub mod launch;
/// What a supervisor knows about each notified syscall (generated from the tables).
pub mod notified;
/// What consistent mode records, and where.
pub mod record;
/// Records of files that cannot carry them, in a directory of the user's.
pub mod store;
/// Consistent mode's supervisor: answers the calls a filter notifies.
pub mod supervisor;

/// A program as the macros place it in the `.rootemu_filter` ELF section: the record
/// layout of `rootemu_codegen::record` (magic, instruction count, metadata length, the
/// instructions, `key=value` metadata), written by the compiler in the target's byte order.
#[repr(C)]
pub struct Embedded<const N: usize, const M: usize> {
    /// `rootemu_codegen::record::MAGIC`.
    pub magic: [u8; 8],
    /// Number of instructions.
    pub insns: u32,
    /// Length of the metadata text (without padding).
    pub meta_len: u32,
    /// The program.
    pub program: [SockFilter; N],
    /// Metadata text, zero-padded to a multiple of 8 bytes.
    pub meta: [u8; M],
}
