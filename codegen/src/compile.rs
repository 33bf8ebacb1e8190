//! The compiler: tables and a policy in, a BPF program out (one AUDIT_ARCH branch per ABI).

use crate::asm::{Asm, Label, Op, Target};
use crate::bpf::{Action, Insn, data, op};
use crate::diag::{Diagnostic, Errors};
use crate::policy::{Cmp, Policy};
use crate::table::{Abi, Endian, Tables};
use std::collections::BTreeMap;

/// Compiles `policy` over every ABI of `tables` into a seccomp program.
///
/// Layout: `ld [arch]`, one `jeq` per AUDIT_ARCH, `ret <unknown_abi>`; per AUDIT_ARCH
/// `ld [nr]`, `jge` on the number bases when ABIs share it (x32 under x86_64), then a
/// binary search over the numbers the policy names; argument checks in shared blocks.
/// Only numbers an ABI has are compared: a name it lacks produces no instruction.
pub fn compile(tables: &Tables, policy: &Policy) -> Result<Vec<Insn>, Errors> {
    compile_with(tables, policy, &Layout::Search)
}

/// How AUDIT_ARCH values and numbers are dispatched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Binary search over AUDIT_ARCH values and over numbers (rootemu's layout).
    Search,
    /// Charliecloud's layout, for comparison: a chain of AUDIT_ARCH compares with this
    /// ABI's last, then one `jeq` per number in ascending order.
    Linear {
        /// The ABI whose AUDIT_ARCH is compared last (the host's).
        host_last: String,
    },
}

/// Compiles with the given layout; the argument blocks and returns are the same.
pub fn compile_with(tables: &Tables, policy: &Policy, layout: &Layout) -> Result<Vec<Insn>, Errors> {
    let names = policy.names().into_iter().collect();
    let mut c = Compiler { asm: Asm::default(), rets: BTreeMap::new(), blocks: BTreeMap::new(), policy, names, linear: false };
    c.program(tables, layout)?;
    c.asm.assemble().map_err(Errors::from)
}

struct Compiler<'a> {
    asm: Asm,
    rets: BTreeMap<Action, Label>,
    blocks: BTreeMap<(bool, &'a str), Label>,
    policy: &'a Policy,
    /// Every syscall name the policy mentions.
    names: Vec<&'a str>,
    linear: bool,
}

impl<'a> Compiler<'a> {
    fn program(&mut self, tables: &'a Tables, layout: &Layout) -> Result<(), Errors> {
        let mut arches = tables.audit_arches();
        if let Layout::Linear { host_last } = layout {
            let host = tables.get(host_last).ok_or_else(|| Diagnostic::bare(crate::table::unknown_abi_message(host_last, tables)))?;
            arches.retain(|a| *a != host.audit_arch);
            arches.push(host.audit_arch);
            self.linear = true;
        }
        let groups: Vec<Label> = arches.iter().map(|_| self.asm.label()).collect();
        let mut cases: Vec<(u32, Label)> = arches.iter().copied().zip(groups.iter().copied()).collect();
        if !self.linear {
            cases.sort_by_key(|c| c.0);
        }
        let unknown = self.ret(self.policy.unknown_abi);
        self.asm.emit(Op::Ld(data::ARCH));
        self.dispatch_on(&cases, unknown);
        for (arch, l) in arches.iter().zip(&groups) {
            self.asm.bind(*l);
            self.asm.emit(Op::Ld(data::NR));
            // Highest base first: `jge base` selects the ABI; the lowest takes the rest.
            let mut abis: Vec<&Abi> = tables.abis.iter().filter(|a| a.audit_arch == *arch).collect();
            abis.sort_by_key(|a| std::cmp::Reverse(a.nr_base));
            let (lowest, higher) = abis.split_last().expect("an AUDIT_ARCH comes from an ABI");
            let labels: Vec<Label> = higher.iter().map(|_| self.asm.label()).collect();
            for (abi, l) in higher.iter().zip(&labels) {
                self.asm.emit(Op::Jmp { cond: op::JGE, k: abi.nr_base, jt: Target::To(*l), jf: Target::Next });
            }
            self.dispatch(lowest);
            for (abi, l) in higher.iter().zip(&labels) {
                self.asm.bind(*l);
                self.dispatch(abi);
            }
        }
        let blocks: Vec<((bool, &str), Label)> = std::mem::take(&mut self.blocks).into_iter().collect();
        for ((big, name), l) in blocks {
            self.asm.bind(l);
            self.arg_block(name, big);
        }
        let rets: Vec<(Action, Label)> = std::mem::take(&mut self.rets).into_iter().collect();
        for (a, l) in rets {
            self.asm.bind(l);
            self.asm.emit(Op::Ret(a.to_ret()));
        }
        Ok(())
    }

    /// Jumps to the label of the case equal to the accumulator, else to `default`.
    fn dispatch_on(&mut self, cases: &[(u32, Label)], default: Label) {
        if !self.linear {
            return self.tree(cases, default);
        }
        for (k, l) in cases {
            self.asm.emit(Op::Jmp { cond: op::JEQ, k: *k, jt: Target::To(*l), jf: Target::Next });
        }
        self.asm.emit(Op::Ja(default));
    }

    fn ret(&mut self, a: Action) -> Label {
        if let Some(l) = self.rets.get(&a) {
            return *l;
        }
        let l = self.asm.label();
        self.rets.insert(a, l);
        l
    }

    /// Binary search over the numbers of `abi` that the policy treats unlike the default.
    fn dispatch(&mut self, abi: &'a Abi) {
        let mut cases: Vec<(u32, Label)> = Vec::new();
        for i in 0..self.names.len() {
            let name = self.names[i];
            let Some(n) = abi.syscalls.get(name) else { continue };
            let rules: Vec<_> = self.policy.rules_for(name).collect();
            if rules.iter().all(|r| r.action == self.policy.default) {
                continue;
            }
            let target = if rules[0].when_any.is_empty() {
                self.ret(rules[0].action)
            } else {
                let key = (abi.endian == Endian::Big, name);
                match self.blocks.get(&key) {
                    Some(l) => *l,
                    None => {
                        let l = self.asm.label();
                        self.blocks.insert(key, l);
                        l
                    }
                }
            };
            cases.push((abi.nr_base + n, target));
        }
        cases.sort_by_key(|c| c.0);
        let default = self.ret(self.policy.default);
        self.dispatch_on(&cases, default);
    }

    fn tree(&mut self, cases: &[(u32, Label)], default: Label) {
        if cases.len() <= 4 {
            for (i, (nr, l)) in cases.iter().enumerate() {
                let jf = if i + 1 == cases.len() { Target::To(default) } else { Target::Next };
                self.asm.emit(Op::Jmp { cond: op::JEQ, k: *nr, jt: Target::To(*l), jf });
            }
            if cases.is_empty() {
                self.asm.emit(Op::Ja(default));
            }
            return;
        }
        let mid = cases.len() / 2;
        let right = self.asm.label();
        self.asm.emit(Op::Jmp { cond: op::JGE, k: cases[mid].0, jt: Target::To(right), jf: Target::Next });
        self.tree(&cases[..mid], default);
        self.asm.bind(right);
        self.tree(&cases[mid..], default);
    }

    /// The argument checks for one syscall, in one byte order; ends in a return on every path.
    fn arg_block(&mut self, name: &str, big_endian: bool) {
        let policy = self.policy;
        for rule in policy.rules_for(name) {
            if rule.when_any.is_empty() {
                self.asm.emit(Op::Ret(rule.action.to_ret()));
                return;
            }
            let rule_fails = self.asm.label();
            for (i, all) in rule.when_any.iter().enumerate() {
                let alt_fails = if i + 1 == rule.when_any.len() { rule_fails } else { self.asm.label() };
                for atom in all {
                    self.asm.emit(Op::Ld(data::arg_lo(atom.arg, big_endian)));
                    if atom.mask != u32::MAX {
                        self.asm.emit(Op::And(atom.mask));
                    }
                    let (jt, jf) = match atom.cmp {
                        Cmp::Eq => (Target::Next, Target::To(alt_fails)),
                        Cmp::Ne => (Target::To(alt_fails), Target::Next),
                    };
                    self.asm.emit(Op::Jmp { cond: op::JEQ, k: atom.value, jt, jf });
                }
                self.asm.emit(Op::Ret(rule.action.to_ret()));
                if alt_fails != rule_fails {
                    self.asm.bind(alt_fails);
                }
            }
            self.asm.bind(rule_fails);
        }
        self.asm.emit(Op::Ret(policy.default.to_ret()));
    }
}
