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
        let mut pos = self.positions()?;
        let mut ops = self.items.iter().filter(|i| matches!(i, Item::Op(_))).count();
        // Scan from (item index, instructions before it); a trampoline only lengthens the
        // jumps that span it, which lie at most 256 instructions before it.
        let mut from = (0, 0);
        while let Some((at, n, branch, target)) = self.first_far_jump(&pos, from)? {
            let (tramp, added) = self.trampoline(at, n, target, &mut pos);
            if let Item::Op(Op::Jmp { jt, jf, .. }) = &mut self.items[at] {
                *if branch { jt } else { jf } = Target::To(tramp);
            }
            from = (at, n);
            if added {
                ops += 1;
                let (mut i, mut back) = (at, 0);
                while i > 0 && back < 257 {
                    i -= 1;
                    back += usize::from(matches!(self.items[i], Item::Op(_)));
                }
                from = (i, n - back);
            }
            if ops > MAX_INSNS {
                break;
            }
        }
        if ops > MAX_INSNS {
            return Err(Diagnostic::bare(format!(
                "the program has {ops} instructions, over the kernel's limit of {MAX_INSNS} (BPF_MAXINSNS): cover fewer ABIs or syscalls"
            )));
        }
        let mut out = Vec::with_capacity(ops);
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

    /// The first conditional jump at or after item `from.0` (`from.1` instructions precede
    /// it) whose offset exceeds 255: (item index, its instruction index, true branch?, target).
    fn first_far_jump(&self, pos: &[usize], from: (usize, usize)) -> Result<Option<(usize, usize, bool, Label)>, Diagnostic> {
        let (start, mut n) = from;
        let far = |l: Label, n: usize| -> Result<bool, Diagnostic> {
            if pos[l.0] <= n {
                return Err(Diagnostic::bare(format!("assembler: backward jump at instruction {n}")));
            }
            Ok(pos[l.0] - n - 1 > 255)
        };
        for i in start..self.items.len() {
            let Item::Op(o) = self.items[i] else { continue };
            match o {
                Op::Jmp { jt: Target::To(t), jf: Target::To(f), .. } => {
                    if far(t, n)? {
                        return Ok(Some((i, n, true, t)));
                    }
                    if far(f, n)? {
                        return Ok(Some((i, n, false, f)));
                    }
                }
                Op::Ja(l) => {
                    far(l, n)?;
                }
                _ => {}
            }
            n += 1;
        }
        Ok(None)
    }

    /// A label within reach of the jump at item `at` (instruction `n`) that leads to
    /// `target`: an existing `ret` of the same value or `ja target` in range, else a new
    /// one right after the jump (then `true`: an instruction was added). Keeps `pos` current.
    fn trampoline(&mut self, at: usize, n: usize, target: Label, pos: &mut Vec<usize>) -> (Label, bool) {
        let target_op = self.op_at(at, n, pos[target.0]);
        let mut seen = 0;
        for j in at + 1..self.items.len() {
            let Item::Op(o) = self.items[j] else { continue };
            if seen > 255 {
                break;
            }
            let same = match (o, target_op) {
                (Op::Ret(a), Op::Ret(b)) => a == b,
                (Op::Ja(l), _) => l == target,
                _ => false,
            };
            if same {
                let l = self.label();
                self.items.insert(j, Item::Bind(l));
                pos.push(n + 1 + seen);
                return (l, false);
            }
            seen += 1;
        }
        let l = self.label();
        let op = match target_op {
            Op::Ret(k) => Op::Ret(k),
            _ => Op::Ja(target),
        };
        self.items.splice(at + 1..at + 1, [Item::Bind(l), Item::Op(op)]);
        for p in pos.iter_mut().filter(|p| **p > n) {
            *p += 1;
        }
        pos.push(n + 1);
        (l, true)
    }

    /// The instruction with index `want`, found from item `at` (instruction `n`) onwards.
    fn op_at(&self, at: usize, n: usize, want: usize) -> Op {
        let mut i = n;
        for item in &self.items[at..] {
            if let Item::Op(o) = item {
                if i == want {
                    return *o;
                }
                i += 1;
            }
        }
        unreachable!("labels are bound to instructions")
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
