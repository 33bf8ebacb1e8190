//! The assembler: labels, forward jumps, trampolines past the 8-bit conditional offsets.

use crate::bpf::{Insn, MAX_INSNS, op};
use crate::diag::Diagnostic;

/// A jump target, bound to the instruction that follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where a conditional jump goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The next instruction.
    Next,
    /// A label.
    To(Label),
}

/// One instruction with symbolic targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `ld [k]`: 32-bit load from `struct seccomp_data`.
    Ld(u32),
    /// `and #k`.
    And(u32),
    /// Conditional jump (`op::JEQ`, `op::JGE`, `op::JGT`, `op::JSET`) against `#k`.
    Jmp { cond: u16, k: u32, jt: Target, jf: Target },
    /// `ja label`.
    Ja(Label),
    /// `ret #k`.
    Ret(u32),
}

#[derive(Clone, Copy, Debug)]
enum Item {
    Bind(Label),
    Op(Op),
}

/// A program under construction.
#[derive(Default)]
pub(crate) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    /// A new, unbound label.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `l` to the next instruction emitted.
    pub(crate) fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    /// Appends an instruction.
    pub(crate) fn emit(&mut self, op: Op) {
        self.items.push(Item::Op(op));
    }

    /// Resolves labels, inserting trampolines where a conditional jump reaches past 255.
    pub(crate) fn assemble(mut self) -> Result<Vec<Insn>, Diagnostic> {
        self.resolve_next();
        while let Some((at, branch, target)) = self.first_far_jump()? {
            let tramp = self.trampoline(at, target);
            if let Item::Op(Op::Jmp { jt, jf, .. }) = &mut self.items[at] {
                *if branch { jt } else { jf } = Target::To(tramp);
            }
            if self.ops() > MAX_INSNS {
                break;
            }
        }
        let n = self.ops();
        if n > MAX_INSNS {
            return Err(Diagnostic::bare(format!(
                "the program has {n} instructions, over the kernel's limit of {MAX_INSNS} (BPF_MAXINSNS): cover fewer ABIs or syscalls"
            )));
        }
        let pos = self.positions()?;
        let mut out = Vec::with_capacity(n);
        for item in &self.items {
            let Item::Op(o) = *item else { continue };
            let here = out.len();
            let off = |l: Label| pos[l.0] - here - 1;
            out.push(match o {
                Op::Ld(k) => Insn::new(op::LD | op::W | op::ABS, 0, 0, k),
                Op::And(k) => Insn::new(op::ALU | op::AND | op::K, 0, 0, k),
                Op::Ret(k) => Insn::new(op::RET | op::K, 0, 0, k),
                Op::Ja(l) => Insn::new(op::JMP | op::JA, 0, 0, off(l) as u32),
                Op::Jmp { cond, k, jt, jf } => {
                    let t = |t: Target| match t {
                        Target::To(l) => off(l) as u8,
                        Target::Next => unreachable!("resolved above"),
                    };
                    Insn::new(op::JMP | cond | op::K, t(jt), t(jf), k)
                }
            });
        }
        Ok(out)
    }

    fn ops(&self) -> usize {
        self.items.iter().filter(|i| matches!(i, Item::Op(_))).count()
    }

    /// Rewrites every `Target::Next` into a label bound right after its jump.
    fn resolve_next(&mut self) {
        let mut items = Vec::with_capacity(self.items.len());
        for item in std::mem::take(&mut self.items) {
            let mut after = None;
            let item = match item {
                Item::Op(Op::Jmp { cond, k, jt, jf }) => {
                    let mut fix = |t: Target| match t {
                        Target::Next => Target::To(*after.get_or_insert_with(|| self.label())),
                        t => t,
                    };
                    let (jt, jf) = (fix(jt), fix(jf));
                    Item::Op(Op::Jmp { cond, k, jt, jf })
                }
                other => other,
            };
            items.push(item);
            items.extend(after.map(Item::Bind));
        }
        self.items = items;
    }

    /// Instruction index of every label.
    fn positions(&self) -> Result<Vec<usize>, Diagnostic> {
        let mut pos = vec![usize::MAX; self.labels];
        let mut n = 0;
        for item in &self.items {
            match item {
                Item::Bind(l) => pos[l.0] = n,
                Item::Op(_) => n += 1,
            }
        }
        if let Some(l) = pos.iter().position(|p| *p >= n) {
            return Err(Diagnostic::bare(format!("assembler: label {l} is unbound or bound past the last instruction")));
        }
        Ok(pos)
    }

    /// The first conditional jump whose offset exceeds 255: (item index, true branch?, target).
    fn first_far_jump(&self) -> Result<Option<(usize, bool, Label)>, Diagnostic> {
        let pos = self.positions()?;
        let mut n = 0;
        for (i, item) in self.items.iter().enumerate() {
            let Item::Op(o) = item else { continue };
            let check = |l: Label| -> Result<bool, Diagnostic> {
                if pos[l.0] <= n {
                    return Err(Diagnostic::bare(format!("assembler: backward jump at instruction {n}")));
                }
                Ok(pos[l.0] - n - 1 > 255)
            };
            match *o {
                Op::Jmp { jt: Target::To(t), jf: Target::To(f), .. } => {
                    if check(t)? {
                        return Ok(Some((i, true, t)));
                    }
                    if check(f)? {
                        return Ok(Some((i, false, f)));
                    }
                }
                Op::Ja(l) => {
                    check(l)?;
                }
                _ => {}
            }
            n += 1;
        }
        Ok(None)
    }

    /// A label within reach of the jump at item `at` that leads to `target`: an existing
    /// `ret` of the same value or `ja target` in range, else a new one right after the jump.
    fn trampoline(&mut self, at: usize, target: Label) -> Label {
        let target_op = self.op_at_label(target);
        let mut seen = 0;
        for j in at + 1..self.items.len() {
            let Item::Op(o) = self.items[j] else { continue };
            if seen > 255 {
                break;
            }
            let same = match (o, target_op) {
                (Op::Ret(a), Some(Op::Ret(b))) => a == b,
                (Op::Ja(l), _) => l == target,
                _ => false,
            };
            if same {
                let l = self.label();
                self.items.insert(j, Item::Bind(l));
                return l;
            }
            seen += 1;
        }
        let l = self.label();
        let op = match target_op {
            Some(Op::Ret(k)) => Op::Ret(k),
            _ => Op::Ja(target),
        };
        self.items.splice(at + 1..at + 1, [Item::Bind(l), Item::Op(op)]);
        l
    }

    fn op_at_label(&self, l: Label) -> Option<Op> {
        let start = self.items.iter().position(|i| matches!(i, Item::Bind(b) if *b == l))?;
        self.items[start..].iter().find_map(|i| match i {
            Item::Op(o) => Some(*o),
            Item::Bind(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `jeq` chains whose targets sit more than 255 instructions ahead.
    fn far_program(n: usize) -> Asm {
        let mut a = Asm::default();
        let far = a.label();
        let end = a.label();
        a.emit(Op::Ld(0));
        for k in 0..n as u32 {
            a.emit(Op::Jmp { cond: op::JEQ, k, jt: Target::To(far), jf: Target::Next });
        }
        a.emit(Op::Ja(end));
        a.bind(far);
        a.emit(Op::Ld(4));
        a.bind(end);
        a.emit(Op::Ret(7));
        a
    }

    #[test]
    fn long_conditional_jumps_get_trampolines() {
        let prog = far_program(600).assemble().unwrap();
        assert!(prog.len() > 603, "trampolines were added: {}", prog.len());
        // Every jeq k must reach `ld [4]` (the far label) when taken.
        for (i, insn) in prog.iter().enumerate() {
            if insn.code == op::JMP | op::JEQ {
                let mut pc = i + 1 + insn.jt as usize;
                while prog[pc].code == op::JMP | op::JA {
                    pc += 1 + prog[pc].k as usize;
                }
                assert_eq!(prog[pc], Insn::new(op::LD | op::W | op::ABS, 0, 0, 4), "jeq at {i}");
            }
        }
    }

    #[test]
    fn far_returns_are_copied_not_jumped_to() {
        let mut a = Asm::default();
        let ret = a.label();
        a.emit(Op::Ld(0));
        a.emit(Op::Jmp { cond: op::JEQ, k: 1, jt: Target::To(ret), jf: Target::Next });
        for _ in 0..300 {
            a.emit(Op::Ld(4));
        }
        a.bind(ret);
        a.emit(Op::Ret(5));
        let prog = a.assemble().unwrap();
        assert_eq!(prog[1].jt, 0);
        assert_eq!(prog[2], Insn::new(op::RET | op::K, 0, 0, 5));
        assert_eq!(prog[1].jf, 1);
    }

    #[test]
    fn over_4096_instructions_is_an_error() {
        let err = far_program(5000).assemble().unwrap_err();
        assert!(err.message.contains("over the kernel's limit of 4096"), "{err}");
    }
}
