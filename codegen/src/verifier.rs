//! The verifier: the kernel's rules for a seccomp program (`bpf_check_classic`,
//! `seccomp_check_filter`, `check_load_and_stores`), plus known return actions.

use crate::bpf::{Action, Insn, MAX_INSNS, MEM_WORDS, data, op};
use crate::diag::{Diagnostic, Errors};

/// Checks `prog` as the kernel would before accepting it; every violation is reported.
pub fn verify(prog: &[Insn]) -> Result<(), Errors> {
    let mut errors = Errors::default();
    let bad = |errors: &mut Errors, pc: usize, m: String| errors.push(Diagnostic::bare(format!("program instruction {pc}: {m}")));
    if prog.is_empty() || prog.len() > MAX_INSNS {
        errors.push(Diagnostic::bare(format!("program has {} instructions; the kernel takes 1 to {MAX_INSNS}", prog.len())));
        return Err(errors);
    }
    let len = prog.len();
    for (pc, i) in prog.iter().enumerate() {
        let c = i.code;
        let ok = match c {
            _ if c == op::LD | op::W | op::ABS => {
                if i.k % 4 != 0 || i.k >= data::SIZE {
                    bad(&mut errors, pc, format!("ld [{}] is not an aligned 32-bit word inside struct seccomp_data", i.k));
                }
                true
            }
            _ if c == op::LD | op::W | op::LEN || c == op::LDX | op::W | op::LEN => true,
            _ if c == op::RET | op::K => {
                if Action::from_ret(i.k).is_none() {
                    bad(&mut errors, pc, format!("ret {:#x} is not a seccomp action", i.k));
                }
                true
            }
            _ if c == op::RET | op::A => true,
            _ if op::class(c) == op::ALU => {
                let alu = c & 0xf0;
                let known = matches!(alu, op::ADD | op::SUB | op::MUL | op::DIV | op::AND | op::OR | op::XOR | op::LSH | op::RSH)
                    && c & 0x07 == op::ALU
                    && c & !0xf8 == op::ALU;
                if alu == op::DIV && c & op::X == 0 && i.k == 0 {
                    bad(&mut errors, pc, "division by constant zero".into());
                }
                if matches!(alu, op::LSH | op::RSH) && c & op::X == 0 && i.k >= 32 {
                    bad(&mut errors, pc, format!("shift by {} (32 or more)", i.k));
                }
                known || c == op::ALU | op::NEG
            }
            _ if c == op::LD | op::IMM || c == op::LDX | op::IMM => true,
            _ if c == op::MISC | op::TAX || c == op::MISC | op::TXA => true,
            _ if c == op::LD | op::MEM || c == op::LDX | op::MEM || c == op::ST || c == op::STX => {
                if i.k >= MEM_WORDS {
                    bad(&mut errors, pc, format!("scratch slot {} (there are {MEM_WORDS})", i.k));
                }
                true
            }
            _ if c == op::JMP | op::JA => {
                if u64::from(i.k) >= (len - pc - 1) as u64 {
                    bad(&mut errors, pc, format!("ja +{} jumps past the end", i.k));
                }
                true
            }
            _ if op::class(c) == op::JMP && matches!(c & 0xf0, op::JEQ | op::JGE | op::JGT | op::JSET) && c & !0xf8 == op::JMP => {
                if pc + usize::from(i.jt) + 1 >= len || pc + usize::from(i.jf) + 1 >= len {
                    bad(&mut errors, pc, format!("conditional jump +{}/+{} goes past the end", i.jt, i.jf));
                }
                true
            }
            _ => false,
        };
        if !ok {
            bad(&mut errors, pc, format!("opcode {c:#06x} is not accepted by seccomp"));
        }
    }
    let last = prog[len - 1].code;
    if last != op::RET | op::K && last != op::RET | op::A {
        errors.push(Diagnostic::bare(format!("program instruction {}: the last instruction must be a return", len - 1)));
    }
    check_memory(prog, &mut errors);
    errors.into_result(())
}

/// Every scratch slot read is written on every path before (`check_load_and_stores`).
fn check_memory(prog: &[Insn], errors: &mut Errors) {
    let mut valid = vec![u16::MAX; prog.len()];
    valid[0] = 0;
    for (pc, i) in prog.iter().enumerate() {
        let mut m = valid[pc];
        let slot = 1u16.checked_shl(i.k).unwrap_or(0);
        let c = i.code;
        if c == op::ST || c == op::STX {
            m |= slot;
        } else if (c == op::LD | op::MEM || c == op::LDX | op::MEM) && m & slot == 0 {
            errors.push(Diagnostic::bare(format!("program instruction {pc}: reads scratch slot {} before any write", i.k)));
        }
        let mut flow = |to: usize| {
            if let Some(v) = valid.get_mut(to) {
                *v &= m;
            }
        };
        if c == op::JMP | op::JA {
            flow(pc + 1 + i.k as usize);
        } else if op::class(c) == op::JMP {
            flow(pc + 1 + usize::from(i.jt));
            flow(pc + 1 + usize::from(i.jf));
        } else if op::class(c) != op::RET {
            flow(pc + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret_allow() -> Insn {
        Insn::new(op::RET | op::K, 0, 0, Action::Allow.to_ret())
    }

    #[test]
    fn accepts_a_minimal_program() {
        verify(&[Insn::new(op::LD | op::W | op::ABS, 0, 0, 4), ret_allow()]).unwrap();
    }

    #[test]
    fn reports_every_kernel_rule_broken() {
        let prog = [
            Insn::new(op::LD | op::W | op::ABS, 0, 0, 6),    // unaligned
            Insn::new(op::LD | op::W | op::ABS, 0, 0, 64),   // outside
            Insn::new(op::LD | op::B | op::ABS, 0, 0, 0),    // byte load
            Insn::new(op::ALU | op::MOD | op::K, 0, 0, 3),   // MOD: not for seccomp
            Insn::new(op::JMP | op::JEQ | op::K, 200, 0, 1), // past the end
            Insn::new(op::LD | op::MEM, 0, 0, 2),            // slot never written
            Insn::new(op::RET | op::K, 0, 0, 0x7fff_0001),   // unknown action
            Insn::new(op::LD | op::IMM, 0, 0, 0),            // no return at the end
        ];
        let err = verify(&prog).unwrap_err().to_string();
        for needle in [
            "instruction 0: ld [6] is not an aligned",
            "instruction 1: ld [64]",
            "instruction 2: opcode 0x0030 is not accepted",
            "instruction 3: opcode 0x0094 is not accepted",
            "instruction 4: conditional jump +200/+0 goes past the end",
            "instruction 6: ret 0x7fff0001 is not a seccomp action",
            "instruction 7: the last instruction must be a return",
            "instruction 5: reads scratch slot 2 before any write",
        ] {
            assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
        }
    }
}
