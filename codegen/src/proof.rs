//! The self-proof: the program's verdict equals the policy's meaning, computed straight from
//! the tables, for every ABI x every number x every relevant argument class; plus kernel
//! action-cache eligibility of every number allowed without looking at arguments.

use crate::bpf::{Action, Insn};
use crate::diag::{Diagnostic, Errors};
use crate::policy::Policy;
use crate::sim::{self, SeccompData};
use crate::table::Tables;
use std::collections::{BTreeSet, HashMap};

/// Numbers swept per ABI, from its base.
pub const SWEEP: u32 = 65536;
const HIGH_HALVES: [u64; 3] = [0, 0xdead_beef, 0o020644];
const MAX_REPORTED: usize = 12;
/// Most argument vectors the proof builds for one syscall (about 400 MB): the classes are
/// a product over the arguments, so conditions on five or six arguments would otherwise
/// exhaust memory (found by `cargo fuzz run differential`).
pub const MAX_ARG_CLASSES: usize = 1 << 23;

/// What the proof checked for one ABI, and the path lengths it saw.
#[derive(Clone, Debug, PartialEq)]
pub struct AbiProof {
    /// ABI name.
    pub abi: String,
    /// Distinct syscall numbers checked.
    pub numbers: usize,
    /// (number, arguments) cases simulated.
    pub cases: usize,
    /// Longest path (instructions executed) over all cases.
    pub worst_path: usize,
    /// Mean path over the ABI's syscalls (arguments zero).
    pub mean_path: f64,
    /// Numbers allowed without looking at arguments: all must be action-cache eligible.
    pub cacheable: usize,
}

/// The proof's report.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// Per ABI, in table order.
    pub abis: Vec<AbiProof>,
    /// Cases with an AUDIT_ARCH no table has.
    pub unknown_arch_cases: usize,
}

/// The policy's meaning for a raw `(arch, nr, args)`, from the tables alone.
struct Reference<'a> {
    names: HashMap<(u32, u32), &'a str>,
    arches: BTreeSet<u32>,
    policy: &'a Policy,
}

impl<'a> Reference<'a> {
    fn new(tables: &'a Tables, policy: &'a Policy) -> Self {
        let mut names = HashMap::new();
        for a in &tables.abis {
            for (name, n) in &a.syscalls {
                names.insert((a.audit_arch, a.nr_base + n), name.as_str());
            }
        }
        Reference { names, arches: tables.abis.iter().map(|a| a.audit_arch).collect(), policy }
    }

    fn name(&self, arch: u32, nr: u32) -> Option<&'a str> {
        self.names.get(&(arch, nr)).copied()
    }
}

/// Argument vectors that exercise every condition the policy puts on `syscall`; `Err`
/// with their number when there would be more than [`MAX_ARG_CLASSES`].
fn arg_classes(policy: &Policy, syscall: &str) -> Result<Vec<[u64; 6]>, usize> {
    let mut per_arg: Vec<(usize, BTreeSet<u32>)> = Vec::new();
    for rule in policy.rules_for(syscall) {
        for atom in rule.when_any.iter().flatten() {
            let i = atom.arg as usize;
            let set = match per_arg.iter_mut().find(|(a, _)| *a == i) {
                Some((_, s)) => s,
                None => {
                    per_arg.push((i, [0, 1, u32::MAX].into()));
                    &mut per_arg.last_mut().expect("just pushed").1
                }
            };
            let m = atom.mask;
            set.extend([atom.value, atom.value ^ (m & m.wrapping_neg()), atom.value | (!m & 0o777)]);
            if m.count_ones() <= 4 {
                let bits: Vec<u32> = (0..32).filter(|b| m & (1 << b) != 0).map(|b| 1 << b).collect();
                for subset in 0..1u32 << bits.len() {
                    let v: u32 = bits.iter().enumerate().filter(|(j, _)| subset & (1 << j) != 0).map(|(_, b)| b).sum();
                    set.extend([v, v | (!m & 0o644)]);
                }
            }
        }
    }
    let count = per_arg.iter().fold(HIGH_HALVES.len(), |n, (_, v)| n.saturating_mul(v.len()));
    if count > MAX_ARG_CLASSES {
        return Err(count);
    }
    let mut out = vec![[0u64; 6]];
    for (i, values) in &per_arg {
        out = out
            .iter()
            .flat_map(|base| {
                values.iter().map(move |v| {
                    let mut a = *base;
                    a[*i] = u64::from(*v);
                    a
                })
            })
            .collect();
    }
    Ok(out.into_iter().flat_map(|a| HIGH_HALVES.map(|hi| a.map(|v| v | (hi << 32)))).collect())
}

/// What the policy says for one number of one AUDIT_ARCH.
#[derive(Clone, Copy)]
enum Expect<'a> {
    /// The same action whatever the arguments.
    Fixed(Action, Option<&'a str>),
    /// Depends on the arguments of this syscall.
    ByArgs(&'a str),
}

/// Proves `prog` implements `policy` over `tables`; every disagreement is reported.
pub fn prove(prog: &[Insn], tables: &Tables, policy: &Policy) -> Result<Proof, Errors> {
    let reference = Reference::new(tables, policy);
    let mut classes: HashMap<&str, Vec<[u64; 6]>> = HashMap::new();
    let mut too_many = Errors::default();
    for n in policy.names().into_iter().filter(|n| policy.looks_at_args(n)) {
        match arg_classes(policy, n) {
            Ok(c) => {
                classes.insert(n, c);
            }
            Err(count) => too_many.push(Diagnostic::bare(format!(
                "proof: the conditions on `{n}` need {count} argument combinations, over the {MAX_ARG_CLASSES} the proof checks: condition fewer arguments in one rule"
            ))),
        }
    }
    if !too_many.is_empty() {
        return Err(too_many);
    }
    // ABIs are independent: prove them on all cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(tables.abis.len().max(1));
    let chunk = tables.abis.len().div_ceil(threads.max(1)).max(1);
    let results: Vec<(Vec<AbiProof>, Vec<String>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = tables
            .abis
            .chunks(chunk)
            .map(|abis| {
                let (reference, classes) = (&reference, &classes);
                s.spawn(move || {
                    let mut msgs = Vec::new();
                    let mut count = 0;
                    let proofs = abis
                        .iter()
                        .map(|abi| {
                            prove_abi(prog, tables, abi, reference, classes, &mut |m| {
                                count += 1;
                                if msgs.len() < MAX_REPORTED {
                                    msgs.push(m);
                                }
                            })
                        })
                        .collect();
                    (proofs, msgs, count)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("proof thread")).collect()
    });
    let mut errors = Errors::default();
    let mut mismatches = 0;
    let mut abis = Vec::new();
    for (proofs, msgs, count) in results {
        abis.extend(proofs);
        mismatches += count;
        errors.0.extend(msgs.into_iter().map(|m| Diagnostic::bare(format!("proof: {m}"))));
    }
    let unknown_arch_cases = prove_unknown_arches(prog, tables, &reference, &mut |m| {
        mismatches += 1;
        errors.push(Diagnostic::bare(format!("proof: {m}")));
    });
    errors.0.truncate(MAX_REPORTED);
    if mismatches > errors.0.len() {
        errors.push(Diagnostic::bare(format!("proof: ... and {} more disagreements", mismatches - errors.0.len())));
    }
    errors.into_result(Proof { abis, unknown_arch_cases })
}

fn mismatch(abi: &crate::table::Abi, name: Option<&str>, nr: u32, args: Option<&[u64; 6]>, got: u32, want: Action) -> String {
    let got = Action::from_ret(got).map_or(format!("{got:#x}"), |a| a.to_string());
    let args = args.map_or("any args".to_string(), |a| format!("args {a:x?}"));
    format!("ABI `{}`, {} (nr {nr:#x}), {args}: the program returns {got}, the policy says {want}", abi.name, name.unwrap_or("no syscall"))
}

fn prove_abi(
    prog: &[Insn],
    tables: &Tables,
    abi: &crate::table::Abi,
    reference: &Reference,
    classes: &HashMap<&str, Vec<[u64; 6]>>,
    report: &mut dyn FnMut(String),
) -> AbiProof {
    let policy = reference.policy;
    // The policy's meaning for every number any ABI of this AUDIT_ARCH names.
    let mut expect: HashMap<u32, Expect> = HashMap::new();
    for other in tables.abis.iter().filter(|o| o.audit_arch == abi.audit_arch) {
        for (name, n) in &other.syscalls {
            let nr = other.nr_base + n;
            let name = reference.name(abi.audit_arch, nr).unwrap_or(name);
            let e = if policy.looks_at_args(name) {
                Expect::ByArgs(name)
            } else {
                Expect::Fixed(policy.verdict(Some(name), &[0; 6]), Some(name))
            };
            expect.insert(nr, e);
        }
    }
    let mut numbers: Vec<u32> = (abi.nr_base..abi.nr_base.saturating_add(SWEEP)).collect();
    numbers.extend(expect.keys());
    for other in tables.abis.iter().filter(|o| o.audit_arch == abi.audit_arch) {
        let (lo, hi) = (other.nr_base, other.nr_base + other.nr_limit);
        numbers.extend([lo.wrapping_sub(1), lo, hi.wrapping_sub(1), hi]);
    }
    numbers.extend([0, 0x7fff_ffff, 0x8000_0000, u32::MAX]);
    numbers.sort_unstable();
    numbers.dedup();
    let big_endian = abi.endian == crate::Endian::Big;
    let plain_args = [[0u64; 6], [u64::MAX; 6]];
    let mut p = AbiProof { abi: abi.name.clone(), numbers: numbers.len(), cases: 0, worst_path: 0, mean_path: 0.0, cacheable: 0 };
    for &nr in &numbers {
        let e = expect.get(&nr).copied().unwrap_or(Expect::Fixed(policy.default, None));
        // A path that reads only nr/arch gives the same outcome for every argument value:
        // one run stands for all of them, and it is the kernel's action-cache decision too.
        if let Expect::Fixed(want, name) = e {
            if let Some(o) = sim::const_path(prog, abi.audit_arch, nr) {
                p.cases += 1;
                p.worst_path = p.worst_path.max(o.steps);
                if o.ret != want.to_ret() {
                    report(mismatch(abi, name, nr, None, o.ret, want));
                } else if want == Action::Allow {
                    p.cacheable += 1;
                }
                continue;
            }
            if want == Action::Allow {
                report(format!(
                    "ABI `{}`, {} (nr {nr:#x}) is allowed without looking at arguments, but the kernel's action cache could not skip the filter for it",
                    abi.name,
                    name.unwrap_or("no syscall")
                ));
            }
        }
        let (args, name): (&[[u64; 6]], Option<&str>) = match e {
            Expect::Fixed(_, name) => (&plain_args, name),
            Expect::ByArgs(name) => (&classes[name], Some(name)),
        };
        for a in args {
            let want = match e {
                Expect::Fixed(action, _) => action,
                Expect::ByArgs(name) => policy.verdict(Some(name), a),
            };
            p.cases += 1;
            let d = SeccompData { nr, arch: abi.audit_arch, ip: 0, args: *a, big_endian };
            match sim::run(prog, &d) {
                Ok(o) => {
                    p.worst_path = p.worst_path.max(o.steps);
                    if o.ret != want.to_ret() {
                        report(mismatch(abi, name, nr, Some(a), o.ret, want));
                    }
                }
                Err(err) => report(format!("ABI `{}`, nr {nr:#x}: the program fails: {err}", abi.name)),
            }
        }
    }
    let steps: Vec<usize> = abi
        .syscalls
        .values()
        .filter_map(|n| sim::run(prog, &SeccompData { nr: abi.nr_base + n, arch: abi.audit_arch, big_endian, ..Default::default() }).ok())
        .map(|o| o.steps)
        .collect();
    p.mean_path = steps.iter().sum::<usize>() as f64 / steps.len().max(1) as f64;
    p
}

/// AUDIT_ARCH values no table has (neighbours of the known ones) must get `unknown_abi`.
fn prove_unknown_arches(prog: &[Insn], tables: &Tables, reference: &Reference, report: &mut dyn FnMut(String)) -> usize {
    let mut arches: BTreeSet<u32> = [0, u32::MAX].into();
    for a in &reference.arches {
        arches.extend([a ^ 0x4000_0000, a ^ 0x8000_0000, a ^ 0x2000_0000, a.wrapping_add(1)]);
    }
    let mut numbers: BTreeSet<u32> = [0, 1, 0x4000_0000, u32::MAX].into();
    for abi in &tables.abis {
        numbers.extend(reference.policy.names().iter().filter_map(|n| abi.nr(n)));
    }
    let mut cases = 0;
    for arch in arches.iter().filter(|a| !reference.arches.contains(a)) {
        for &nr in &numbers {
            for big_endian in [false, true] {
                cases += 1;
                let want = reference.policy.unknown_abi.to_ret();
                let got = sim::run(prog, &SeccompData { nr, arch: *arch, big_endian, ..Default::default() }).map(|o| o.ret);
                if got != Ok(want) {
                    report(format!(
                        "unknown AUDIT_ARCH {arch:#x}, nr {nr:#x}: the program returns {got:x?}, the policy says {}",
                        reference.policy.unknown_abi
                    ));
                }
            }
        }
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Found by `cargo fuzz run differential`: AUDIT_ARCH 0xffffffff (+1 overflowed)
    /// panicked the proof.
    #[test]
    fn extreme_audit_arch_proves_without_panic() {
        let top = crate::table::tests::X86_64
            .replace("abi: x86_64", "abi: top")
            .replace("audit_arch: 0xc000003e", "audit_arch: 0xffffffff")
            .replace("elf_machine: 62", "elf_machine: 536870911\nconvention: mips64_n32");
        let big = crate::table::tests::X86_64
            .replace("abi: x86_64", "abi: big")
            .replace("audit_arch: 0xc000003e", "audit_arch: 0x8000003e")
            .replace("endian: little", "endian: big");
        let tables = Tables::parse([(Path::new("top.yaml"), top.as_str()), (Path::new("big.yaml"), big.as_str())]).unwrap();
        let policy =
            Policy::parse(Path::new("p.yaml"), crate::policy::tests::POLICY.replace("mknod]", "chown]").as_str(), &tables).unwrap();
        let prog = crate::compile::compile(&tables, &policy).unwrap();
        let proof = prove(&prog, &tables, &policy).unwrap();
        assert_eq!(proof.abis.len(), 2);
    }

    /// Found by `cargo fuzz run differential`: conditions on five arguments made the proof
    /// build billions of argument vectors and abort out of memory; now a clear error.
    #[test]
    fn too_many_argument_combinations_is_an_error_not_an_abort() {
        let tables = crate::policy::tests::tables();
        let atoms = |n: u32| (0..n).map(|a| format!("{{arg: {a}, mask: 0xf, eq: 1}}")).collect::<Vec<_>>().join(", ");
        let policy = |n: u32| {
            let text = format!(
                "policy: p\ndefault: allow\nunknown_abi: trap\nrules:\n  - action: fake_success\n    syscalls: [chown]\n    when_any:\n      - [{}]\n",
                atoms(n)
            );
            Policy::parse(Path::new("p.yaml"), &text, &tables).unwrap()
        };
        let four = policy(4);
        prove(&crate::compile::compile(&tables, &four).unwrap(), &tables, &four).unwrap();
        let five = policy(5);
        let err = prove(&crate::compile::compile(&tables, &five).unwrap(), &tables, &five).unwrap_err();
        assert_eq!(
            err.to_string(),
            "proof: the conditions on `chown` need 136306272 argument combinations, over the 8388608 the proof checks: condition fewer arguments in one rule"
        );
    }
}
