//! Classic BPF as seccomp uses it: instruction encoding, `struct seccomp_data` layout, return actions.

use std::fmt;

/// One classic BPF instruction (`struct sock_filter`). Its serde form,
/// `{"code": 32, "jt": 0, "jf": 0, "k": 4}`, is the one of `rootemu::SockFilter`: a program
/// built here can be stored and installed elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Insn {
    /// Opcode: class | size | mode, or class | op | source.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

impl Insn {
    /// An instruction from its four fields.
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        Insn { code, jt, jf, k }
    }

    /// The 8 bytes of this instruction in the given byte order.
    pub fn to_bytes(self, big_endian: bool) -> [u8; 8] {
        let mut b = [0u8; 8];
        let (code, k) =
            if big_endian { (self.code.to_be_bytes(), self.k.to_be_bytes()) } else { (self.code.to_le_bytes(), self.k.to_le_bytes()) };
        b[0..2].copy_from_slice(&code);
        b[2] = self.jt;
        b[3] = self.jf;
        b[4..8].copy_from_slice(&k);
        b
    }

    /// Decodes 8 bytes in the given byte order.
    pub fn from_bytes(b: [u8; 8], big_endian: bool) -> Self {
        let code = [b[0], b[1]];
        let k = [b[4], b[5], b[6], b[7]];
        if big_endian {
            Insn::new(u16::from_be_bytes(code), b[2], b[3], u32::from_be_bytes(k))
        } else {
            Insn::new(u16::from_le_bytes(code), b[2], b[3], u32::from_le_bytes(k))
        }
    }
}

/// Instruction classes, sizes, modes, operations and sources (`linux/bpf_common.h`).
pub mod op {
    #![allow(missing_docs)]
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;
    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;
    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;
    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;
    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    pub const A: u16 = 0x10;
    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;

    /// Instruction class (low 3 bits).
    pub const fn class(code: u16) -> u16 {
        code & 0x07
    }
}

/// `BPF_MAXINSNS`: the kernel refuses longer programs.
pub const MAX_INSNS: usize = 4096;
/// `BPF_MEMWORDS`: scratch memory slots.
pub const MEM_WORDS: u32 = 16;

/// Offsets in `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`.
pub mod data {
    /// `nr`.
    pub const NR: u32 = 0;
    /// `arch`.
    pub const ARCH: u32 = 4;
    /// `instruction_pointer` (8 bytes).
    pub const IP: u32 = 8;
    /// `args[0]` (8 bytes each).
    pub const ARGS: u32 = 16;
    /// `sizeof(struct seccomp_data)`.
    pub const SIZE: u32 = 64;

    /// Offset of the low 32 bits of `args[i]`: the data is in the ABI's byte order.
    pub const fn arg_lo(i: u32, big_endian: bool) -> u32 {
        ARGS + 8 * i + if big_endian { 4 } else { 0 }
    }
}

/// A seccomp return action (`SECCOMP_RET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Run the call.
    Allow,
    /// Skip the call and return `-errno` (0: fake success).
    Errno(u16),
    /// Kill the whole process.
    KillProcess,
    /// Kill the calling thread.
    KillThread,
    /// Send SIGSYS.
    Trap,
    /// Run the call and log it.
    Log,
    /// Notify a ptrace tracer.
    Trace(u16),
    /// Hand the call to the user-space supervisor holding the filter's listener
    /// (`SECCOMP_RET_USER_NOTIF`, Linux 5.0), which answers it.
    Notify,
}

impl Action {
    /// The 32-bit value a `ret` instruction returns.
    pub fn to_ret(self) -> u32 {
        match self {
            Action::Allow => 0x7fff_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Log => 0x7ffc_0000,
            Action::Trace(d) => 0x7ff0_0000 | u32::from(d),
            Action::Notify => 0x7fc0_0000,
        }
    }

    /// The action a returned value denotes, if it is one the kernel knows.
    pub fn from_ret(v: u32) -> Option<Action> {
        let data = (v & 0xffff) as u16;
        Some(match v & 0xffff_0000 {
            0x7fff_0000 if data == 0 => Action::Allow,
            0x0005_0000 => Action::Errno(data),
            0x8000_0000 if data == 0 => Action::KillProcess,
            0 if data == 0 => Action::KillThread,
            0x0003_0000 if data == 0 => Action::Trap,
            0x7ffc_0000 if data == 0 => Action::Log,
            0x7ff0_0000 => Action::Trace(data),
            0x7fc0_0000 if data == 0 => Action::Notify,
            _ => return None,
        })
    }

    /// Parses `allow`, `fake_success` (= `errno 0`), `errno N`, `kill_process`,
    /// `kill_thread`, `trap`, `log`, `trace N`, `notify`.
    pub fn parse(s: &str) -> Option<Action> {
        let mut words = s.split_whitespace();
        let head = words.next()?;
        let arg = words.next();
        if words.next().is_some() {
            return None;
        }
        let num = |a: Option<&str>| a.and_then(|a| a.parse::<u16>().ok());
        Some(match (head, arg) {
            ("allow", None) => Action::Allow,
            ("fake_success", None) => Action::Errno(0),
            ("errno", Some(_)) => Action::Errno(num(arg).filter(|e| *e <= 4095)?),
            ("kill_process", None) => Action::KillProcess,
            ("kill_thread", None) => Action::KillThread,
            ("trap", None) => Action::Trap,
            ("log", None) => Action::Log,
            ("trace", Some(_)) => Action::Trace(num(arg)?),
            ("notify", None) => Action::Notify,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("ALLOW"),
            Action::Errno(e) => write!(f, "ERRNO({e})"),
            Action::KillProcess => f.write_str("KILL_PROCESS"),
            Action::KillThread => f.write_str("KILL_THREAD"),
            Action::Trap => f.write_str("TRAP"),
            Action::Log => f.write_str("LOG"),
            Action::Trace(d) => write!(f, "TRACE({d})"),
            Action::Notify => f.write_str("USER_NOTIF"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_ret_values() {
        for a in [
            Action::Allow,
            Action::Errno(0),
            Action::Errno(38),
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Log,
            Action::Trace(7),
            Action::Notify,
        ] {
            assert_eq!(Action::from_ret(a.to_ret()), Some(a));
        }
        assert_eq!(Action::parse("fake_success"), Some(Action::Errno(0)));
        assert_eq!(Action::parse("errno 4096"), None);
        assert_eq!(Action::from_ret(0x7fff_0001), None);
    }

    #[test]
    fn instruction_bytes_follow_the_byte_order() {
        let i = Insn::new(0x15, 1, 2, 0xc000_003e);
        assert_eq!(i.to_bytes(false), [0x15, 0, 1, 2, 0x3e, 0, 0, 0xc0]);
        assert_eq!(i.to_bytes(true), [0, 0x15, 1, 2, 0xc0, 0, 0, 0x3e]);
        assert_eq!(Insn::from_bytes(i.to_bytes(true), true), i);
    }
}
