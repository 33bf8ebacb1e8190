//! rootemu's runtime: verified seccomp filters embedded at compile time, installed for real.

extern crate self as rootemu;

pub use rootemu_macros::{bundled_sources, consistent_emulation, filter, root_emulation};

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A consistent-mode tree as an image holds it: entries with their records applied.
pub mod image;
/// Installing a seccomp filter (`PR_SET_NO_NEW_PRIVS` + `seccomp(2)`) and proving it is active.
pub mod install;
/// The user-namespace launcher behind `rootemu run`: namespaces, new root, filter, exec.
pub mod launch;
/// What a supervisor knows about each notified syscall (generated from the tables).
pub mod notified;
/// What consistent mode records, and where.
pub mod record;
/// Consistent mode's supervisor: answers the calls a filter notifies.
pub mod supervisor;

/// A program as the macros place it in the `.rootemu_filter` ELF section: a header,
/// the instructions, then `key=value` lines (policy, kernel, abis), in the target's byte order.
#[repr(C)]
pub struct Embedded<const N: usize, const M: usize> {
    /// [`Embedded::MAGIC`].
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

impl Embedded<0, 0> {
    /// The header every embedded program starts with.
    pub const MAGIC: [u8; 8] = *b"ROOTEMU\x01";
}
