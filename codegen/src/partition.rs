//! The program's paths over the whole `(AUDIT_ARCH, nr)` space.
//!
//! A seccomp program compares `arch` and `nr` only with constants (`jeq`, `jgt`, `jge`
//! against `#k`), so the space of all 2^64 pairs splits into rectangles of two intervals,
//! each taken by one path: running the path once stands for every pair in it. Where a path
//! does anything else with `arch` or `nr` (masks, arithmetic, `jset`, `ret a`) or reads an
//! argument, the rectangle is [`End::Concrete`]: its pairs must be simulated one by one.

use crate::bpf::{Insn, MEM_WORDS, data, op};
use crate::sim;

/// An inclusive interval of 32-bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Lowest value.
    pub lo: u32,
    /// Highest value.
    pub hi: u32,
}

impl Span {
    /// Every 32-bit value.
    pub const ALL: Span = Span { lo: 0, hi: u32::MAX };

    /// The span `[lo, hi]`, if not empty.
    fn new(lo: u64, hi: u64) -> Option<Span> {
        (lo <= hi && hi <= u64::from(u32::MAX)).then_some(Span { lo: lo as u32, hi: hi as u32 })
    }

    /// How many values it holds.
    pub fn count(self) -> u64 {
        u64::from(self.hi) - u64::from(self.lo) + 1
    }

    /// Whether `v` is in it.
    pub fn contains(self, v: u32) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// The parts where `v <cond> k` holds and where it does not (`cond` is `op::JEQ`,
    /// `op::JGT` or `op::JGE`; the false side of `jeq` may be two spans).
    fn split(self, cond: u16, k: u32) -> (Option<Span>, [Option<Span>; 2]) {
        let (lo, hi, k) = (u64::from(self.lo), u64::from(self.hi), u64::from(k));
        match cond {
            op::JEQ if self.contains(k as u32) => (Span::new(k, k), [Span::new(lo, k.wrapping_sub(1)), Span::new(k + 1, hi)]),
            op::JEQ => (None, [Some(self), None]),
            op::JGT => (Span::new(lo.max(k + 1), hi), [Span::new(lo, hi.min(k)), None]),
            _ => (Span::new(lo.max(k), hi), [k.checked_sub(1).and_then(|km1| Span::new(lo, hi.min(km1))), None]),
        }
    }
}

/// A rectangle of `(AUDIT_ARCH, nr)` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// AUDIT_ARCH values.
    pub arch: Span,
    /// Syscall numbers.
    pub nr: Span,
}

/// How the path of a region ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `ret #k` for every pair of the region and every argument value.
    Ret {
        /// The returned value.
        ret: u32,
        /// Instructions executed.
        steps: usize,
        /// Whether the path uses only what the kernel's action cache follows
        /// (`seccomp_is_const_allow`): then an ALLOW here is cached.
        cacheable: bool,
    },
    /// The outcome depends on more than the region: simulate each pair.
    Concrete,
}

/// One region and its path's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The pairs that take this path.
    pub region: Region,
    /// Where it ends.
    pub end: End,
}

/// What a register holds: a constant, or the `nr` / `arch` of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    K(u32),
    Nr,
    Arch,
}

#[derive(Clone, Copy)]
struct State {
    pc: usize,
    a: Val,
    x: Val,
    mem: [Val; MEM_WORDS as usize],
    region: Region,
    steps: usize,
    cacheable: bool,
}

/// Splits the `(AUDIT_ARCH, nr)` space by the paths of `prog`; `Err(limit)` when it would
/// take more than `limit` pieces (never for a compiled program: it tests `arch` first,
/// then `nr`, so its pieces number about twice its compares).
pub fn partition(prog: &[Insn], limit: usize) -> Result<Vec<Piece>, usize> {
    let start = State {
        pc: 0,
        a: Val::K(0),
        x: Val::K(0),
        mem: [Val::K(0); MEM_WORDS as usize],
        region: Region { arch: Span::ALL, nr: Span::ALL },
        steps: 0,
        cacheable: true,
    };
    let mut work = vec![start];
    let mut out = Vec::new();
    while let Some(mut s) = work.pop() {
        let end = loop {
            let Some(&i) = prog.get(s.pc) else { break End::Concrete };
            s.steps += 1;
            s.pc += 1;
            match step(&mut s, i, &mut work) {
                Step::Go => {}
                Step::End(e) => break e,
            }
        };
        out.push(Piece { region: s.region, end });
        if out.len() + work.len() > limit {
            return Err(limit);
        }
    }
    Ok(out)
}

enum Step {
    Go,
    End(End),
}

/// Executes `i` (the pc already points past it); a split pushes the other side on `work`.
fn step(s: &mut State, i: Insn, work: &mut Vec<State>) -> Step {
    let code = i.code;
    // Everything but `ld [nr|arch]`, `ret #k`, `ja`, `and #k` and `j* #k` leaves the
    // kernel's action-cache emulation.
    let follows_cache = code == op::LD | op::W | op::ABS
        || code == op::RET | op::K
        || code == op::JMP | op::JA
        || code == op::ALU | op::AND | op::K
        || (op::class(code) == op::JMP && code & op::X == 0);
    s.cacheable &= follows_cache;
    match op::class(code) {
        op::LD | op::LDX => {
            let v = match code & 0xe0 {
                op::ABS if code & 0x18 == op::W => match i.k {
                    data::NR => Val::Nr,
                    data::ARCH => Val::Arch,
                    _ => return Step::End(End::Concrete),
                },
                op::IMM => Val::K(i.k),
                op::LEN => Val::K(data::SIZE),
                op::MEM if i.k < MEM_WORDS => s.mem[i.k as usize],
                _ => return Step::End(End::Concrete),
            };
            if op::class(code) == op::LD { s.a = v } else { s.x = v }
        }
        op::ST | op::STX => {
            let Some(slot) = s.mem.get_mut(i.k as usize) else { return Step::End(End::Concrete) };
            *slot = if op::class(code) == op::ST { s.a } else { s.x };
        }
        op::ALU => {
            let src = if code & op::X != 0 { s.x } else { Val::K(i.k) };
            let (Val::K(a), Val::K(b)) = (s.a, src) else { return Step::End(End::Concrete) };
            match sim::alu(code, a, b) {
                Ok(Some(v)) => s.a = Val::K(v),
                Ok(None) => return Step::End(End::Ret { ret: 0, steps: s.steps, cacheable: false }),
                Err(_) => return Step::End(End::Concrete),
            }
        }
        op::JMP if code == op::JMP | op::JA => s.pc += i.k as usize,
        op::JMP => {
            let cond = code & 0xf0;
            let src = if code & op::X != 0 { s.x } else { Val::K(i.k) };
            let (t, f) = (s.pc + usize::from(i.jt), s.pc + usize::from(i.jf));
            match (s.a, src) {
                (Val::K(a), Val::K(b)) => match sim::condition(cond, a, b) {
                    Some(taken) => s.pc = if taken { t } else { f },
                    None => return Step::End(End::Concrete),
                },
                (sym @ (Val::Nr | Val::Arch), Val::K(k)) if matches!(cond, op::JEQ | op::JGT | op::JGE) => {
                    let span = if sym == Val::Nr { s.region.nr } else { s.region.arch };
                    let (yes, no) = span.split(cond, k);
                    let mut sides = no.into_iter().flatten().map(|sp| (sp, f)).chain(yes.map(|sp| (sp, t)));
                    let Some((first, pc)) = sides.next() else { unreachable!("a split covers its span") };
                    for (sp, pc) in sides {
                        let mut other = *s;
                        other.pc = pc;
                        other.set(sym, sp);
                        work.push(other);
                    }
                    s.pc = pc;
                    s.set(sym, first);
                }
                _ => return Step::End(End::Concrete),
            }
        }
        op::RET => {
            let ret = match (code & 0x18, s.a) {
                (op::K, _) => i.k,
                (op::A, Val::K(v)) => v,
                _ => return Step::End(End::Concrete),
            };
            return Step::End(End::Ret { ret, steps: s.steps, cacheable: s.cacheable });
        }
        _ => match code & 0xf8 {
            op::TAX => s.x = s.a,
            op::TXA => s.a = s.x,
            _ => return Step::End(End::Concrete),
        },
    }
    Step::Go
}

impl State {
    fn set(&mut self, sym: Val, span: Span) {
        if sym == Val::Nr { self.region.nr = span } else { self.region.arch = span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::Action;

    fn ld(k: u32) -> Insn {
        Insn::new(op::LD | op::W | op::ABS, 0, 0, k)
    }
    fn jmp(cond: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn::new(op::JMP | cond | op::K, jt, jf, k)
    }
    fn ret(a: Action) -> Insn {
        Insn::new(op::RET | op::K, 0, 0, a.to_ret())
    }

    /// Every pair is in exactly one piece, and each piece's outcome is what the simulator
    /// gives at its corners.
    #[test]
    fn pieces_cover_the_space_once_and_agree_with_the_simulator() {
        let prog = [
            ld(data::ARCH),
            jmp(op::JEQ, 0xc000_003e, 1, 0),
            ret(Action::KillProcess),
            ld(data::NR),
            jmp(op::JGE, 0x4000_0000, 3, 0),
            jmp(op::JEQ, 92, 4, 0),
            ret(Action::Allow),
            ret(Action::Allow),
            jmp(op::JEQ, 0x4000_005c, 1, 0),
            ret(Action::Allow),
            ret(Action::Errno(0)),
        ];
        let pieces = partition(&prog, 100).unwrap();
        let total: u128 = pieces.iter().map(|p| u128::from(p.region.arch.count()) * u128::from(p.region.nr.count())).sum();
        assert_eq!(total, 1 << 64);
        for p in &pieces {
            let End::Ret { ret, .. } = p.end else { panic!("{p:?}") };
            for arch in [p.region.arch.lo, p.region.arch.hi] {
                for nr in [p.region.nr.lo, p.region.nr.hi] {
                    let d = sim::SeccompData { arch, nr, ..Default::default() };
                    assert_eq!(sim::run(&prog, &d).unwrap().ret, ret, "{p:?}");
                }
            }
        }
        // x86_64: [0, 91], 92, [93, 0x3fffffff], then x32's 0x4000005c and the rest.
        let at = |arch: u32, nr: u32| pieces.iter().find(|p| p.region.arch.contains(arch) && p.region.nr.contains(nr)).unwrap().end;
        assert!(matches!(at(0xc000_003e, 0x4000_005c), End::Ret { ret, .. } if ret == Action::Errno(0).to_ret()));
        assert!(matches!(at(0xc000_003e, u32::MAX), End::Ret { ret, .. } if ret == Action::Allow.to_ret()));
        assert_eq!(pieces.len(), 2 + 3 + 3, "2 unknown arch spans; x86_64: 3 nr spans below 0x40000000 and 3 above");
        assert!(matches!(at(0xc000_003e, 92), End::Ret { ret, .. } if ret == Action::Errno(0).to_ret()));
        assert!(matches!(at(0xc000_003e, 93), End::Ret { ret, cacheable: true, .. } if ret == Action::Allow.to_ret()));
    }

    #[test]
    fn argument_loads_and_masks_of_nr_need_concrete_runs() {
        let prog =
            [ld(data::NR), Insn::new(op::ALU | op::AND | op::K, 0, 0, 0xff), jmp(op::JEQ, 1, 0, 1), ret(Action::Trap), ret(Action::Allow)];
        assert_eq!(partition(&prog, 10).unwrap()[0].end, End::Concrete);
        let prog = [ld(data::ARGS), jmp(op::JEQ, 1, 0, 1), ret(Action::Trap), ret(Action::Allow)];
        assert_eq!(partition(&prog, 10).unwrap()[0].end, End::Concrete);
        // `ld #k` then `ret`: the same for every pair, but not what the action cache follows.
        let prog = [Insn::new(op::LD | op::IMM, 0, 0, 7), Insn::new(op::RET | op::A, 0, 0, 0)];
        assert_eq!(partition(&prog, 10).unwrap()[0].end, End::Ret { ret: 7, steps: 2, cacheable: false });
    }

    #[test]
    fn too_many_pieces_is_reported() {
        let mut prog = vec![ld(data::NR)];
        prog.extend((0..50).map(|k| jmp(op::JEQ, k, 0, 0)));
        prog.push(ret(Action::Allow));
        assert_eq!(partition(&prog, 20), Err(20));
    }
}
