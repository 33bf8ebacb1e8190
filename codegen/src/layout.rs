//! Alternative program layouts, for comparison only (`rootemu bench`): the same policy as
//! [`crate::compile`] but laid out like Charliecloud's root-emulation filter — a linear
//! chain of AUDIT_ARCH compares with the host ABI last, then one `jeq` per faked number,
//! no binary search. Verified and proved like the real program, so a comparison is fair.

use crate::asm::{Asm, Label, Op, Target};
use crate::bpf::{Action, Insn, data, op};
use crate::diag::{Diagnostic, Errors};
use crate::policy::{Cmp, Policy};
use crate::proof::{self, Proof};
use crate::table::{Abi, Endian, Tables};
use crate::verifier;
use std::collections::BTreeMap;

/// A linear-layout program for `policy` over `tables`, verified and proved.
///
/// `host_last` names the ABI whose AUDIT_ARCH is compared last (the host's, as in
/// Charliecloud, so the host pays for every other compare); numbers are compared in
/// ascending order, one `jeq` each.
pub fn linear(tables: &Tables, policy: &Policy, host_last: &str) -> Result<(Vec<Insn>, Proof), Errors> {
    let host = tables.get(host_last).ok_or_else(|| Errors::from(Diagnostic::bare(format!("linear layout: unknown host ABI `{host_last}`"))))?;
    let mut arches = tables.audit_arches();
    arches.retain(|a| *a != host.audit_arch);
    arches.push(host.audit_arch);
    let mut l = Linear { asm: Asm::default(), rets: BTreeMap::new(), blocks: BTreeMap::new(), policy };
    let groups: Vec<Label> = arches.iter().map(|_| l.asm.label()).collect();
    let unknown = l.ret(policy.unknown_abi);
    l.asm.emit(Op::Ld(data::ARCH));
    for (arch, g) in arches.iter().zip(&groups) {
        l.asm.emit(Op::Jmp { cond: op::JEQ, k: *arch, jt: Target::To(*g), jf: Target::Next });
    }
    l.asm.emit(Op::Ja(unknown));
    for (arch, g) in arches.iter().zip(&groups) {
        l.asm.bind(*g);
        l.asm.emit(Op::Ld(data::NR));
        let mut abis: Vec<&Abi> = tables.abis.iter().filter(|a| a.audit_arch == *arch).collect();
        abis.sort_by_key(|a| std::cmp::Reverse(a.nr_base));
        let (lowest, higher) = abis.split_last().expect("an AUDIT_ARCH comes from an ABI");
        let labels: Vec<Label> = higher.iter().map(|_| l.asm.label()).collect();
        for (abi, lab) in higher.iter().zip(&labels) {
            l.asm.emit(Op::Jmp { cond: op::JGE, k: abi.nr_base, jt: Target::To(*lab), jf: Target::Next });
        }
        l.chain(lowest);
        for (abi, lab) in higher.iter().zip(&labels) {
            l.asm.bind(*lab);
            l.chain(abi);
        }
    }
    let blocks: Vec<((bool, &str), Label)> = std::mem::take(&mut l.blocks).into_iter().collect();
    for ((big, name), lab) in blocks {
        l.asm.bind(lab);
        l.arg_block(name, big);
    }
    let rets: Vec<(Action, Label)> = std::mem::take(&mut l.rets).into_iter().collect();
    for (a, lab) in rets {
        l.asm.bind(lab);
        l.asm.emit(Op::Ret(a.to_ret()));
    }
    let program = l.asm.assemble().map_err(Errors::from)?;
    verifier::verify(&program)?;
    let proof = proof::prove(&program, tables, policy)?;
    Ok((program, proof))
}

struct Linear<'a> {
    asm: Asm,
    rets: BTreeMap<Action, Label>,
    blocks: BTreeMap<(bool, &'a str), Label>,
    policy: &'a Policy,
}

impl<'a> Linear<'a> {
    fn ret(&mut self, a: Action) -> Label {
        if let Some(l) = self.rets.get(&a) {
            return *l;
        }
        let l = self.asm.label();
        self.rets.insert(a, l);
        l
    }

    /// One `jeq` per number the policy treats unlike the default, ascending, then the default.
    fn chain(&mut self, abi: &'a Abi) {
        let mut cases: Vec<(u32, Label)> = Vec::new();
        for (name, n) in &abi.syscalls {
            let rules: Vec<_> = self.policy.rules_for(name).collect();
            if rules.iter().all(|r| r.action == self.policy.default) {
                continue;
            }
            let target = if rules[0].when_any.is_empty() {
                self.ret(rules[0].action)
            } else {
                let key = (abi.endian == Endian::Big, name.as_str());
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
        for (nr, l) in cases {
            self.asm.emit(Op::Jmp { cond: op::JEQ, k: nr, jt: Target::To(l), jf: Target::Next });
        }
        self.asm.emit(Op::Ja(default));
    }

    /// The argument checks for one syscall, as in the real compiler.
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

/// `prog` with `ld [args[0]]` prepended: every path reads an argument, so no number is
/// action-cache eligible (the verdicts are unchanged: the load is overwritten before use).
/// Verified; not proved, since the proof requires cache eligibility of every allowed number.
pub fn uncacheable(prog: &[Insn]) -> Result<Vec<Insn>, Errors> {
    let mut out = Vec::with_capacity(prog.len() + 1);
    out.push(Insn::new(op::LD | op::W | op::ABS, 0, 0, data::ARGS));
    out.extend_from_slice(prog);
    verifier::verify(&out)?;
    Ok(out)
}

/// How many numbers of `abi` the kernel's action cache would let through without running
/// `prog` (numbers from the ABI's base over its table range, with `sim::const_path`).
pub fn cacheable_numbers(prog: &[Insn], abi: &Abi) -> usize {
    (abi.nr_base..abi.nr_base + abi.nr_limit)
        .filter(|nr| crate::sim::const_path(prog, abi.audit_arch, *nr).is_some_and(|o| o.ret == Action::Allow.to_ret()))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{self, SeccompData};

    fn inputs() -> (Tables, Policy) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables");
        let tables = Tables::load_dir(&dir).unwrap().select(&["x86_64".into(), "x32".into(), "i386".into()]).unwrap();
        let policy = Policy::load(&dir.join("policy/root-emulation.yaml"), &tables).unwrap();
        (tables, policy)
    }

    #[test]
    fn linear_layout_is_proved_and_checks_the_host_last() {
        let (tables, policy) = inputs();
        let (prog, proof) = linear(&tables, &policy, "x86_64").unwrap();
        assert!(proof.abis.iter().all(|a| a.cacheable > 0));
        // ld [arch]; jeq i386; jeq x86_64 (host last).
        let x86_64 = tables.get("x86_64").unwrap().audit_arch;
        assert_eq!(prog[2].k, x86_64);
        let fchown = SeccompData { nr: tables.get("x86_64").unwrap().nr("fchown").unwrap(), arch: x86_64, ..Default::default() };
        assert_eq!(sim::run(&prog, &fchown).unwrap().ret, Action::Errno(0).to_ret());
    }

    #[test]
    fn uncacheable_variant_has_no_cacheable_number() {
        let (tables, policy) = inputs();
        let (prog, _) = linear(&tables, &policy, "x86_64").unwrap();
        let u = uncacheable(&prog).unwrap();
        for abi in &tables.abis {
            assert!(cacheable_numbers(&prog, abi) > 0);
            assert_eq!(cacheable_numbers(&u, abi), 0);
        }
    }
}
