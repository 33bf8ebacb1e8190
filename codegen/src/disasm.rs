//! The symbolic disassembler: `ld [arch]`, `jeq #AUDIT_ARCH_S390X`, `jeq #92 ; chown`, `ret ERRNO(0)`.

use crate::bpf::{Action, Insn, data, op};
use crate::table::{Endian, Tables};
use std::collections::BTreeSet;
use std::fmt::Write;

/// What the accumulator holds, as far as the listing can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Unknown,
    Arch,
    Nr,
    Arg(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    a: Reg,
    /// AUDIT_ARCH values possible here; `None`: any.
    arches: Option<BTreeSet<u32>>,
}

impl State {
    fn merge(&mut self, other: &State) {
        if self.a != other.a {
            self.a = Reg::Unknown;
        }
        self.arches = match (self.arches.take(), &other.arches) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
    }
}

/// The symbolic name of an AUDIT_ARCH value: `AUDIT_ARCH_` + the ABI with the lowest base.
pub fn arch_name(tables: &Tables, arch: u32) -> Option<String> {
    tables.abis.iter().filter(|a| a.audit_arch == arch).min_by_key(|a| a.nr_base).map(|a| format!("AUDIT_ARCH_{}", a.name.to_uppercase()))
}

/// One decoded instruction: its text with the jump targets apart, and what the disassembler
/// knew when it reached it.
struct Line {
    /// Mnemonic and operand, e.g. `jeq #92`.
    op: String,
    /// Jump targets (instruction indexes): jt then jf, or the one of `ja`.
    targets: Vec<usize>,
    /// The syscall a number denotes, e.g. `chown`.
    comment: String,
    state: State,
    /// The AUDIT_ARCH when only one is possible here.
    single_arch: Option<u32>,
    /// `Some(big-endian?)` when every possible AUDIT_ARCH has the same byte order.
    endian: Option<bool>,
}

fn analyse(prog: &[Insn], tables: &Tables) -> Vec<Line> {
    let mut states: Vec<Option<State>> = vec![None; prog.len() + 1];
    states[0] = Some(State { a: Reg::Unknown, arches: None });
    let mut out = Vec::with_capacity(prog.len());
    for (pc, i) in prog.iter().enumerate() {
        let st = states[pc].clone().unwrap_or(State { a: Reg::Unknown, arches: None });
        let single_arch = st.arches.as_ref().filter(|s| s.len() == 1).and_then(|s| s.first().copied());
        let endian = st.arches.as_ref().and_then(|set| {
            let e: BTreeSet<bool> =
                set.iter().filter_map(|a| tables.abis.iter().find(|x| x.audit_arch == *a)).map(|x| x.endian == Endian::Big).collect();
            (e.len() == 1).then(|| *e.first().expect("one"))
        });
        let mut next = st.clone();
        let mut comment = String::new();
        let mut targets = Vec::new();
        let target = |off: u32| pc + 1 + off as usize;
        let text = match i.code {
            c if c == op::LD | op::W | op::ABS => {
                next.a = match i.k {
                    data::NR => Reg::Nr,
                    data::ARCH => Reg::Arch,
                    k => Reg::Arg(k),
                };
                format!("ld [{}]", field_name(i.k, endian))
            }
            c if c == op::ALU | op::AND | op::K => format!("and #{:#o}", i.k),
            c if c == op::RET | op::K => format!("ret {}", Action::from_ret(i.k).map_or(format!("{:#x}", i.k), |a| a.to_string())),
            c if c == op::JMP | op::JA => {
                targets.push(target(i.k));
                "ja".to_string()
            }
            c if op::class(c) == op::JMP && c & op::X == 0 && matches!(c & 0xf0, op::JEQ | op::JGE | op::JGT | op::JSET) => {
                let name = match c & 0xf0 {
                    op::JEQ => "jeq",
                    op::JGE => "jge",
                    op::JGT => "jgt",
                    _ => "jset",
                };
                let k = match st.a {
                    Reg::Arch => arch_name(tables, i.k).unwrap_or_else(|| format!("{:#x}", i.k)),
                    Reg::Nr => {
                        if let Some(arch) = single_arch {
                            comment = nr_comment(tables, arch, i.k, c & 0xf0 == op::JEQ);
                        }
                        if i.k < 0x10000 { i.k.to_string() } else { format!("{:#x}", i.k) }
                    }
                    _ if i.k == 0 => "0".into(),
                    _ => format!("{:#o}", i.k),
                };
                targets.extend([target(u32::from(i.jt)), target(u32::from(i.jf))]);
                format!("{name} #{k}")
            }
            _ => format!("{{ code {:#06x}, jt {}, jf {}, k {:#x} }}", i.code, i.jt, i.jf, i.k),
        };
        // Propagate the state along each edge, refining the arch set on `jeq #arch`.
        let mut flow = |to: usize, s: State| {
            if let Some(slot) = states.get_mut(to) {
                match slot {
                    Some(old) => old.merge(&s),
                    None => *slot = Some(s),
                }
            }
        };
        match op::class(i.code) {
            op::RET => {}
            op::JMP if i.code == op::JMP | op::JA => flow(target(i.k), next),
            op::JMP => {
                let (mut t, mut f) = (next.clone(), next);
                if st.a == Reg::Arch && i.code & 0xf0 == op::JEQ {
                    t.arches = Some([i.k].into());
                    // An open set stays open: values outside the tables remain possible.
                    if let Some(s) = f.arches.as_mut() {
                        s.remove(&i.k);
                    }
                }
                flow(target(u32::from(i.jt)), t);
                flow(target(u32::from(i.jf)), f);
            }
            _ => flow(pc + 1, next),
        }
        out.push(Line { op: text, targets, comment, state: st, single_arch, endian });
    }
    out
}

impl Line {
    /// `op, jt, jf ; comment` (or `ja target`) with the targets written as given, the
    /// comment aligned.
    fn render(&self, targets: &[String]) -> String {
        let text = match targets {
            [] => self.op.clone(),
            [t] => format!("{} {t}", self.op),
            _ => format!("{}, {}", self.op, targets.join(", ")),
        };
        if self.comment.is_empty() {
            return text;
        }
        let pad = 40usize.saturating_sub(text.len());
        format!("{text}{:pad$} ; {}", "", self.comment)
    }
}

/// One line per instruction, numbered, with absolute jump targets and symbolic operands:
/// what the kernel's error messages (`instruction N`) refer to.
pub fn disassemble(prog: &[Insn], tables: &Tables) -> String {
    let mut out = String::new();
    for (pc, l) in analyse(prog, tables).into_iter().enumerate() {
        let targets: Vec<String> = l.targets.iter().map(usize::to_string).collect();
        let _ = writeln!(out, "{pc:4}: {}", l.render(&targets));
    }
    out
}

/// The listing a reviewer diffs: no instruction numbers, and each jump target a label named
/// for what is there (`x86_64:` the branch of an AUDIT_ARCH, `x32:` its numbers from the
/// base, `mknod_le:` an argument block, `ret_errno_0:` a return, `x86_64_nr_ge_133:` and
/// `arch_ge_i386:` binary-search halves, `not_sparc:` what follows a failed AUDIT_ARCH
/// compare, `to_<label>:` a trampoline, `<label>_N` the N-th other target after a named
/// one), so that a renumbered syscall changes only its own lines. `next` is the following
/// instruction.
pub fn labelled(prog: &[Insn], tables: &Tables) -> String {
    let lines = analyse(prog, tables);
    let names = label_names(prog, tables, &lines);
    let mut out = String::new();
    for (pc, l) in lines.iter().enumerate() {
        if let Some(name) = &names[pc] {
            let _ = writeln!(out, "{name}:");
        }
        let label = |t: usize| if t == pc + 1 { "next".to_string() } else { names[t].clone().unwrap_or_else(|| t.to_string()) };
        let targets: Vec<String> = l.targets.iter().map(|t| label(*t)).collect();
        let _ = writeln!(out, "    {}", l.render(&targets));
    }
    out
}

/// A name for each instruction some jump reaches (other than by falling through).
fn label_names(prog: &[Insn], tables: &Tables, lines: &[Line]) -> Vec<Option<String>> {
    let abi_of = |arch: u32| {
        tables.abis.iter().filter(|a| a.audit_arch == arch).min_by_key(|a| a.nr_base).map_or(format!("arch_{arch:#x}"), |a| a.name.clone())
    };
    // (from, is the true edge) for every jump into each instruction.
    let mut incoming: Vec<Vec<(usize, bool)>> = vec![Vec::new(); prog.len()];
    for (pc, l) in lines.iter().enumerate() {
        for (n, t) in l.targets.iter().enumerate() {
            if *t != pc + 1 && *t < prog.len() {
                incoming[*t].push((pc, n == 0 && l.op != "ja"));
            }
        }
    }
    let mut names: Vec<Option<String>> = vec![None; prog.len()];
    let mut used: BTreeSet<String> = BTreeSet::new();
    let take = |base: String, used: &mut BTreeSet<String>| {
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    };
    // What is there, or how it is reached.
    for t in (0..prog.len()).filter(|t| !incoming[*t].is_empty()) {
        let (i, l) = (prog[t], &lines[t]);
        let by_jump = |cond: u16, reg: Reg| {
            incoming[t]
                .iter()
                .find(|(from, taken)| *taken && prog[*from].code & 0xf0 == cond && lines[*from].state.a == reg)
                .map(|(f, _)| *f)
        };
        let base = if i.code == op::RET | op::K {
            let action = Action::from_ret(i.k).map_or(format!("{:#x}", i.k), |a| a.to_string());
            Some(format!("ret_{}", action.to_lowercase().replace(['(', ')'], "_").trim_end_matches('_')))
        } else if i.code == op::JMP | op::JA {
            None
        } else if let (Some(arch), true) = (l.single_arch, i.code == op::LD | op::W | op::ABS && i.k == data::NR) {
            Some(abi_of(arch))
        } else if let Some(from) = by_jump(op::JGE, Reg::Nr) {
            let (k, arch) = (prog[from].k, lines[from].single_arch);
            let group = arch.map(|a| tables.abis.iter().filter(|x| x.audit_arch == a).collect::<Vec<_>>()).unwrap_or_default();
            match group.iter().find(|a| a.nr_base == k && k != 0) {
                Some(a) => Some(a.name.clone()),
                None => Some(format!("{}_nr_ge_{k}", arch.map_or("any".into(), abi_of))),
            }
        } else if let Some(from) = by_jump(op::JGE, Reg::Arch) {
            Some(format!("arch_ge_{}", abi_of(prog[from].k)))
        } else if let Some((from, _)) =
            incoming[t].iter().find(|(from, taken)| !*taken && prog[*from].code & 0xf0 == op::JEQ && lines[*from].state.a == Reg::Arch)
        {
            Some(format!("not_{}", abi_of(prog[*from].k)))
        } else if let Some(from) = by_jump(op::JEQ, Reg::Nr).filter(|_| i.code == op::LD | op::W | op::ABS) {
            let name =
                lines[from].single_arch.and_then(|a| tables.lookup(a, prog[from].k)).map_or("args".to_string(), |(_, n)| n.to_string());
            Some(format!(
                "{name}_{}",
                match l.endian {
                    Some(true) => "be",
                    Some(false) => "le",
                    None => "any",
                }
            ))
        } else {
            None
        };
        names[t] = base.map(|b| take(b, &mut used));
    }
    // The rest, by the named block they are in; then trampolines, by where they lead.
    let mut block = "start".to_string();
    let mut count = 0;
    for t in 0..prog.len() {
        match &names[t] {
            Some(n) => (block, count) = (n.clone(), 0),
            None if !incoming[t].is_empty() && prog[t].code != op::JMP | op::JA => {
                count += 1;
                names[t] = Some(take(format!("{block}_{count}"), &mut used));
            }
            None => {}
        }
    }
    for t in (0..prog.len()).rev() {
        if names[t].is_none() && !incoming[t].is_empty() {
            let to = lines[t].targets[0];
            let base = names.get(to).cloned().flatten().map_or(format!("to_{to}"), |n| format!("to_{n}"));
            names[t] = Some(take(base, &mut used));
        }
    }
    names
}

fn field_name(k: u32, big_endian: Option<bool>) -> String {
    match k {
        data::NR => "nr".into(),
        data::ARCH => "arch".into(),
        _ if k < data::SIZE && k % 4 == 0 => {
            let (field, base) = if k < data::ARGS {
                ("ip".to_string(), data::IP)
            } else {
                (format!("args[{}]", (k - data::ARGS) / 8), data::ARGS + (k - data::ARGS) / 8 * 8)
            };
            let second = k - base == 4;
            match big_endian {
                Some(be) => format!("{field}.{}", if second == be { "lo" } else { "hi" }),
                None => format!("{field}+{}", k - base),
            }
        }
        _ => k.to_string(),
    }
}

fn nr_comment(tables: &Tables, arch: u32, k: u32, exact: bool) -> String {
    let group: Vec<_> = tables.abis.iter().filter(|a| a.audit_arch == arch).collect();
    if !exact {
        return group.iter().find(|a| a.nr_base == k && k != 0).map_or(String::new(), |a| format!("{} numbers from here", a.name));
    }
    match tables.lookup(arch, k) {
        Some((abi, name)) if group.len() > 1 => format!("{} {name}", abi.name),
        Some((_, name)) => name.to_string(),
        None => "not a syscall in the tables".into(),
    }
}
