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

/// One line per instruction, with symbolic operands and the syscall each number denotes.
pub fn disassemble(prog: &[Insn], tables: &Tables) -> String {
    let mut states: Vec<Option<State>> = vec![None; prog.len() + 1];
    states[0] = Some(State { a: Reg::Unknown, arches: None });
    let mut out = String::new();
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
            c if c == op::JMP | op::JA => format!("ja {}", target(i.k)),
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
                format!("{name} #{k}, {}, {}", target(u32::from(i.jt)), target(u32::from(i.jf)))
            }
            _ => format!("{{ code {:#06x}, jt {}, jf {}, k {:#x} }}", i.code, i.jt, i.jf, i.k),
        };
        let _ = write!(out, "{pc:4}: {text}");
        if !comment.is_empty() {
            let pad = 32usize.saturating_sub(text.len());
            let _ = write!(out, "{:pad$} ; {comment}", "");
        }
        out.push('\n');
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
    }
    out
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
