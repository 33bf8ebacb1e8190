//! rootemu's runtime: verified seccomp filters embedded at compile time, installed for real.

extern crate self as rootemu;

pub use rootemu_macros::{filter, root_emulation};

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
}
