//! Exporters: the program as raw bytes, a C header, JSON for tooling, or the policy as a
//! libseccomp profile for container runtimes (an OCI runtime spec's `linux.seccomp`, or a
//! Docker/Kubernetes seccomp profile).

mod c;
mod json;
mod oci;

use crate::bpf::Insn;

pub use c::c_header;
pub use json::json;
pub use oci::{AbiChoice, Profile, ProfileForm, profile};

/// The program as the kernel takes it: `struct sock_filter[]` in the given byte order.
pub fn raw(program: &[Insn], big_endian: bool) -> Vec<u8> {
    program.iter().flat_map(|i| i.to_bytes(big_endian)).collect()
}

/// Decodes raw bytes (a multiple of 8) in the given byte order.
pub fn from_raw(bytes: &[u8], big_endian: bool) -> Option<Vec<Insn>> {
    if bytes.len() % 8 != 0 {
        return None;
    }
    Some(bytes.chunks_exact(8).map(|c| Insn::from_bytes(c.try_into().expect("8 bytes"), big_endian)).collect())
}
