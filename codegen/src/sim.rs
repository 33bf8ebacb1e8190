//! The simulator: runs a program on a `struct seccomp_data` like the kernel's classic BPF interpreter.

use crate::bpf::{Insn, MEM_WORDS, data, op};
use std::fmt;

/// The input a filter sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    /// Syscall number.
    pub nr: u32,
    /// AUDIT_ARCH.
    pub arch: u32,
    /// Instruction pointer.
    pub ip: u64,
    /// Arguments.
    pub args: [u64; 6],
    /// Whether the kernel lays the struct out big-endian (an ABI fact).
    pub big_endian: bool,
}

impl SeccompData {
    /// The 32-bit word at byte offset `k` (aligned, inside the struct), as a BPF load sees it.
    pub fn word(&self, k: u32) -> Option<u32> {
        if k % 4 != 0 || k >= data::SIZE {
            return None;
        }
        Some(match k {
            data::NR => self.nr,
            data::ARCH => self.arch,
            _ => {
                let v = if k < data::ARGS { self.ip } else { self.args[((k - data::ARGS) / 8) as usize] };
                let second = k % 8 == 4;
                // Little-endian: the low half comes first in memory.
                if second == self.big_endian { v as u32 } else { (v >> 32) as u32 }
            }
        })
    }
}

/// The outcome of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The returned action value.
    pub ret: u32,
    /// Instructions executed.
    pub steps: usize,
}

/// Why a run could not finish (the verifier rejects such programs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimError {
    /// Instruction index.
    pub pc: usize,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}: {}", self.pc, self.message)
    }
}

/// Runs `prog` on `d`.
pub fn run(prog: &[Insn], d: &SeccompData) -> Result<Outcome, SimError> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEM_WORDS as usize];
    let mut pc = 0usize;
    let mut steps = 0usize;
    let err = |pc: usize, m: &str| SimError { pc, message: m.to_string() };
    loop {
        let i = *prog.get(pc).ok_or_else(|| err(pc, "ran past the end of the program"))?;
        steps += 1;
        let mut next = pc + 1;
        let src = |x: u32| if i.code & op::X != 0 { x } else { i.k };
        match op::class(i.code) {
            op::LD | op::LDX => {
                let v = match i.code & 0xe0 {
                    op::ABS if i.code & 0x18 == op::W => {
                        d.word(i.k).ok_or_else(|| err(pc, "load outside struct seccomp_data or unaligned"))?
                    }
                    op::IMM => i.k,
                    op::LEN => data::SIZE,
                    op::MEM => *mem.get(i.k as usize).ok_or_else(|| err(pc, "scratch slot out of range"))?,
                    _ => return Err(err(pc, "load mode seccomp does not accept")),
                };
                if op::class(i.code) == op::LD { a = v } else { x = v }
            }
            op::ST | op::STX => {
                let slot = mem.get_mut(i.k as usize).ok_or_else(|| err(pc, "scratch slot out of range"))?;
                *slot = if op::class(i.code) == op::ST { a } else { x };
            }
            op::ALU => match alu(i.code, a, src(x)) {
                Ok(Some(v)) => a = v,
                // The kernel ends the program with 0 (SECCOMP_RET_KILL_THREAD) on a
                // division by zero (bpf_convert_filter), it does not go on with A = 0.
                Ok(None) => return Ok(Outcome { ret: 0, steps }),
                Err(m) => return Err(err(pc, m)),
            },
            op::JMP => {
                next = if i.code & 0xf0 == op::JA {
                    pc + 1 + i.k as usize
                } else {
                    let taken = condition(i.code & 0xf0, a, src(x)).ok_or_else(|| err(pc, "jump seccomp does not accept"))?;
                    pc + 1 + usize::from(if taken { i.jt } else { i.jf })
                };
            }
            op::RET => {
                let ret = match i.code & 0x18 {
                    op::K => i.k,
                    op::A => a,
                    _ => return Err(err(pc, "return source seccomp does not accept")),
                };
                return Ok(Outcome { ret, steps });
            }
            _ => {
                a = match i.code & 0xf8 {
                    op::TAX => {
                        x = a;
                        a
                    }
                    op::TXA => x,
                    _ => return Err(err(pc, "misc operation seccomp does not accept")),
                };
            }
        }
        pc = next;
    }
}

/// `A <op> s` for an ALU instruction: `Ok(None)` on a division by zero (the kernel ends
/// the program with 0), `Err` for an operation seccomp does not accept.
pub(crate) fn alu(code: u16, a: u32, s: u32) -> Result<Option<u32>, &'static str> {
    Ok(Some(match code & 0xf0 {
        op::ADD => a.wrapping_add(s),
        op::SUB => a.wrapping_sub(s),
        op::MUL => a.wrapping_mul(s),
        op::DIV if s == 0 => return Ok(None),
        op::DIV => a / s,
        op::OR => a | s,
        op::AND => a & s,
        op::XOR => a ^ s,
        // A shift by X >= 32 shifts by X mod 32 in the kernel (x86 and arm64 shift
        // instructions), as checked on this machine by kernel_vs_sim_i386.
        op::LSH => a.wrapping_shl(s),
        op::RSH => a.wrapping_shr(s),
        op::NEG => a.wrapping_neg(),
        _ => return Err("ALU operation seccomp does not accept"),
    }))
}

/// Whether a conditional jump (`op::JEQ`, `op::JGT`, `op::JGE`, `op::JSET`) is taken.
pub(crate) fn condition(cond: u16, a: u32, s: u32) -> Option<bool> {
    Some(match cond {
        op::JEQ => a == s,
        op::JGT => a > s,
        op::JGE => a >= s,
        op::JSET => a & s != 0,
        _ => return None,
    })
}

/// Runs `prog` for `(arch, nr)` the way the kernel decides action-cache eligibility
/// (`seccomp_is_const_allow` in kernel/seccomp.c): only loads of `nr`/`arch`, JEQ/JGE/JGT/
/// JSET with constants, `and #k` and JA are followed. `None` when the path uses anything
/// else (an argument load): then the outcome may depend on the arguments. When `Some`, the
/// outcome holds for every argument value, and the kernel caches the number if it is ALLOW.
pub fn const_path(prog: &[Insn], arch: u32, nr: u32) -> Option<Outcome> {
    let mut reg = 0u32;
    let mut pc = 0usize;
    let mut steps = 0;
    while let Some(i) = prog.get(pc) {
        steps += 1;
        match i.code {
            c if c == op::LD | op::W | op::ABS => match i.k {
                data::NR => reg = nr,
                data::ARCH => reg = arch,
                _ => return None,
            },
            c if c == op::RET | op::K => return Some(Outcome { ret: i.k, steps }),
            c if c == op::JMP | op::JA => pc += i.k as usize,
            c if c & 0x0f == op::JMP | op::K && matches!(c & 0xf0, op::JEQ | op::JGE | op::JGT | op::JSET) => {
                let taken = condition(c & 0xf0, reg, i.k)?;
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            c if c == op::ALU | op::AND | op::K => reg &= i.k,
            _ => return None,
        }
        pc += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by comparing with the kernel (tests/kernel_vs_sim_i386.rs): a division by
    /// X = 0 kills (returns 0), a shift by X >= 32 shifts by X mod 32.
    #[test]
    fn alu_corner_cases_follow_the_kernel() {
        let prog = |alu: u16, x: u32| {
            [
                Insn::new(op::LDX | op::IMM, 0, 0, x),
                Insn::new(op::LD | op::IMM, 0, 0, 5),
                Insn::new(op::ALU | alu | op::X, 0, 0, 0),
                Insn::new(op::ALU | op::OR | op::K, 0, 0, 0x0005_0000),
                Insn::new(op::RET | op::A, 0, 0, 0),
            ]
        };
        let d = SeccompData::default();
        assert_eq!(run(&prog(op::DIV, 0), &d), Ok(Outcome { ret: 0, steps: 3 }));
        assert_eq!(run(&prog(op::DIV, 2), &d).unwrap().ret, 0x0005_0002);
        assert_eq!(run(&prog(op::LSH, 33), &d).unwrap().ret, 0x0005_000a);
        assert_eq!(run(&prog(op::RSH, 32), &d).unwrap().ret, 0x0005_0005);
    }

    #[test]
    fn argument_halves_follow_the_byte_order() {
        let mut d = SeccompData { args: [0, 0x1111_2222_3333_4444, 0, 0, 0, 0], ..Default::default() };
        assert_eq!(d.word(data::arg_lo(1, false)), Some(0x3333_4444));
        assert_eq!(d.word(24 + 4), Some(0x1111_2222));
        d.big_endian = true;
        assert_eq!(d.word(data::arg_lo(1, true)), Some(0x3333_4444));
        assert_eq!(d.word(24), Some(0x1111_2222));
        assert_eq!(d.word(64), None);
        assert_eq!(d.word(2), None);
    }
}
