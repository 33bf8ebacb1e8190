//! The self-proof: the program's verdict equals the policy's meaning, computed straight from
//! the tables, for every AUDIT_ARCH x every syscall number x every relevant argument class;
//! plus kernel action-cache eligibility of every number allowed without looking at arguments.
//!
//! The program compares `arch` and `nr` only with constants, so [`partition`] splits the
//! 2^64 `(AUDIT_ARCH, nr)` pairs into rectangles that each take one path. A rectangle whose
//! path returns without reading an argument is proved at once: every table number in it
//! must mean that verdict (for every argument class when its rule looks at arguments), and
//! so must the policy's default when it holds a number no table names. A path that reads
//! an argument (or does anything else with `nr`) is simulated number by number, with every
//! argument class.

use crate::bpf::{Action, Insn};
use crate::diag::{Diagnostic, Errors};
use crate::partition::{self, End, Span};
use crate::policy::Policy;
use crate::sim::{self, SeccompData};
use crate::table::{Endian, Tables};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where a rectangle's path must be simulated number by number and is wider than this,
/// the numbers simulated are those of the ABIs' first `SWEEP` from each base, every table
/// number and the range boundaries (compiled programs never need it).
pub const SWEEP: u32 = 65536;
const HIGH_HALVES: [u64; 3] = [0, 0xdead_beef, 0o020644];
const MAX_REPORTED: usize = 12;
/// Most argument vectors the proof builds for one syscall (about 400 MB): the classes are
/// a product over the arguments, so conditions on five or six arguments would otherwise
/// exhaust memory (found by `cargo fuzz run differential`).
pub const MAX_ARG_CLASSES: usize = 1 << 23;
/// Most rectangles the proof splits the `(AUDIT_ARCH, nr)` space into.
pub const MAX_PIECES: usize = 1 << 20;

/// What the proof checked for one ABI, and the path lengths it saw.
#[derive(Clone, Debug, PartialEq)]
pub struct AbiProof {
    /// ABI name.
    pub abi: String,
    /// Syscall numbers proved under this ABI: each of the 2^32 numbers of an AUDIT_ARCH is
    /// counted under the ABI with the highest base at or below it (else the lowest base).
    pub numbers: u64,
    /// Intervals of those numbers that each take one path, proved by one run.
    pub intervals: usize,
    /// Runs: one per interval, plus each argument class checked against a path's verdict
    /// and each (number, arguments) case simulated one by one.
    pub cases: usize,
    /// Longest path (instructions executed) over all cases.
    pub worst_path: usize,
    /// Mean path over the ABI's syscalls (arguments zero).
    pub mean_path: f64,
    /// Numbers of the ABI's table range allowed without looking at arguments: each is
    /// action-cache eligible, or the proof fails.
    pub cacheable: usize,
}

/// The proof's report.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// Per ABI, in table order.
    pub abis: Vec<AbiProof>,
    /// Runs for AUDIT_ARCH values no table has (one per interval of them, each proved to
    /// get `unknown_abi` for every number, plus cases simulated one by one).
    pub unknown_arch_cases: usize,
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

/// The policy's meaning on one AUDIT_ARCH, from the tables alone.
struct ArchRef<'a> {
    /// Indexes (into `tables.abis`) of the ABIs with this AUDIT_ARCH, by base.
    abis: Vec<usize>,
    /// Every number a table of this AUDIT_ARCH names: what the policy says, and the ABI.
    named: BTreeMap<u32, (Expect<'a>, usize)>,
}

impl ArchRef<'_> {
    /// The ABI a number is proved under: the highest base at or below it, else the lowest.
    fn owner(&self, tables: &Tables, nr: u32) -> usize {
        self.abis.iter().rev().copied().find(|i| tables.abis[*i].nr_base <= nr).unwrap_or(self.abis[0])
    }

    /// `span` cut at the bases of this AUDIT_ARCH's ABIs, each part with its owner.
    fn parts(&self, tables: &Tables, span: Span) -> Vec<(Span, usize)> {
        let mut cuts: Vec<u32> = self.abis.iter().map(|i| tables.abis[*i].nr_base).filter(|b| *b > span.lo && *b <= span.hi).collect();
        cuts.dedup();
        let mut out = Vec::new();
        let mut lo = span.lo;
        for c in cuts {
            out.push(Span { lo, hi: c - 1 });
            lo = c;
        }
        out.push(Span { lo, hi: span.hi });
        out.into_iter().map(|s| (s, self.owner(tables, s.lo))).collect()
    }
}

struct Prover<'a> {
    prog: &'a [Insn],
    tables: &'a Tables,
    policy: &'a Policy,
    /// Per syscall whose rule looks at arguments: each argument class and its verdict.
    classes: HashMap<&'a str, Vec<([u64; 6], Action)>>,
    arches: BTreeMap<u32, ArchRef<'a>>,
    abis: Vec<AbiProof>,
    /// Sum and count of the path lengths of each ABI's syscalls.
    means: Vec<(usize, usize)>,
    unknown_arch_cases: usize,
    messages: Vec<String>,
    mismatches: usize,
}

/// Proves `prog` implements `policy` over `tables`; every disagreement is reported.
pub fn prove(prog: &[Insn], tables: &Tables, policy: &Policy) -> Result<Proof, Errors> {
    let mut classes: HashMap<&str, Vec<([u64; 6], Action)>> = HashMap::new();
    let mut too_many = Errors::default();
    for n in policy.names().into_iter().filter(|n| policy.looks_at_args(n)) {
        match arg_classes(policy, n) {
            Ok(c) => {
                classes.insert(n, c.into_iter().map(|a| (a, policy.verdict(Some(n), &a))).collect());
            }
            Err(count) => too_many.push(Diagnostic::bare(format!(
                "proof: the conditions on `{n}` need {count} argument combinations, over the {MAX_ARG_CLASSES} the proof checks: condition fewer arguments in one rule"
            ))),
        }
    }
    if !too_many.is_empty() {
        return Err(too_many);
    }
    let pieces = partition::partition(prog, MAX_PIECES).map_err(|n| {
        Diagnostic::bare(format!("proof: the program's paths split the (AUDIT_ARCH, nr) space into more than {n} intervals"))
    })?;
    let mut p = Prover::new(prog, tables, policy, classes);
    for piece in pieces {
        let (arch, nr) = (piece.region.arch, piece.region.nr);
        let known: Vec<u32> = p.arches.range(arch.lo..=arch.hi).map(|(a, _)| *a).collect();
        if (known.len() as u64) < arch.count() {
            p.unknown(arch, nr, &known, piece.end);
        }
        for a in known {
            p.known(a, nr, piece.end);
        }
    }
    let Prover { mut abis, means, unknown_arch_cases, messages, mismatches, .. } = p;
    for (a, (sum, n)) in abis.iter_mut().zip(means) {
        a.mean_path = sum as f64 / n.max(1) as f64;
    }
    let mut errors = Errors(messages.into_iter().map(|m| Diagnostic::bare(format!("proof: {m}"))).collect());
    if mismatches > errors.0.len() {
        errors.push(Diagnostic::bare(format!("proof: ... and {} more disagreements", mismatches - errors.0.len())));
    }
    errors.into_result(Proof { abis, unknown_arch_cases })
}

fn mismatch(abi: &str, name: Option<&str>, nr: u32, args: Option<&[u64; 6]>, got: u32, want: Action) -> String {
    let got = Action::from_ret(got).map_or(format!("{got:#x}"), |a| a.to_string());
    let args = args.map_or("any args".to_string(), |a| format!("args {a:x?}"));
    format!("ABI `{abi}`, {} (nr {nr:#x}), {args}: the program returns {got}, the policy says {want}", name.unwrap_or("no syscall"))
}

impl<'a> Prover<'a> {
    fn new(prog: &'a [Insn], tables: &'a Tables, policy: &'a Policy, classes: HashMap<&'a str, Vec<([u64; 6], Action)>>) -> Self {
        let listed: HashMap<&str, Expect> = policy
            .names()
            .into_iter()
            .map(|n| {
                (n, if policy.looks_at_args(n) { Expect::ByArgs(n) } else { Expect::Fixed(policy.verdict(Some(n), &[0; 6]), Some(n)) })
            })
            .collect();
        let mut arches: BTreeMap<u32, ArchRef> = BTreeMap::new();
        for (i, abi) in tables.abis.iter().enumerate() {
            let r = arches.entry(abi.audit_arch).or_insert_with(|| ArchRef { abis: Vec::new(), named: BTreeMap::new() });
            r.abis.push(i);
            for (name, n) in &abi.syscalls {
                let e = listed.get(name.as_str()).copied().unwrap_or(Expect::Fixed(policy.default, Some(name)));
                r.named.insert(abi.nr_base + n, (e, i));
            }
        }
        for r in arches.values_mut() {
            r.abis.sort_by_key(|i| tables.abis[*i].nr_base);
        }
        let abis = tables
            .abis
            .iter()
            .map(|a| AbiProof { abi: a.name.clone(), numbers: 0, intervals: 0, cases: 0, worst_path: 0, mean_path: 0.0, cacheable: 0 })
            .collect();
        Prover {
            prog,
            tables,
            policy,
            classes,
            arches,
            abis,
            means: vec![(0, 0); tables.abis.len()],
            unknown_arch_cases: 0,
            messages: Vec::new(),
            mismatches: 0,
        }
    }

    fn report(&mut self, m: String) {
        self.mismatches += 1;
        if self.messages.len() < MAX_REPORTED {
            self.messages.push(m);
        }
    }

    /// The numbers `span` holds of an AUDIT_ARCH with no table: they must all get `unknown_abi`.
    fn unknown(&mut self, arch: Span, nr: Span, known: &[u32], end: End) {
        let want = self.policy.unknown_abi;
        let first_unknown = (arch.lo..=arch.hi).find(|a| !known.contains(a)).expect("the span holds an unknown value");
        match end {
            End::Ret { ret, .. } => {
                self.unknown_arch_cases += 1;
                if ret != want.to_ret() {
                    let got = Action::from_ret(ret).map_or(format!("{ret:#x}"), |a| a.to_string());
                    self.report(format!(
                        "unknown AUDIT_ARCH {first_unknown:#x} (and any up to {:#x} no table has), nr {:#x}..={:#x}: the program returns {got}, the policy says {want}",
                        arch.hi, nr.lo, nr.hi
                    ));
                }
            }
            End::Concrete => {
                // Neighbours of the known values, as a wrong mask or bit would produce.
                let mut values: BTreeSet<u32> = [0, u32::MAX, first_unknown].into();
                for a in self.arches.keys() {
                    values.extend([a ^ 0x4000_0000, a ^ 0x8000_0000, a ^ 0x2000_0000, a.wrapping_add(1)]);
                }
                let mut numbers: BTreeSet<u32> = [0, 1, 0x4000_0000, u32::MAX, nr.lo].into();
                for abi in &self.tables.abis {
                    numbers.extend(self.policy.names().iter().filter_map(|n| abi.nr(n)));
                }
                let values: Vec<u32> = values.into_iter().filter(|a| arch.contains(*a) && !self.arches.contains_key(a)).collect();
                for a in values {
                    for &n in numbers.iter().filter(|n| nr.contains(**n)) {
                        for big_endian in [false, true] {
                            self.unknown_arch_cases += 1;
                            let got = sim::run(self.prog, &SeccompData { nr: n, arch: a, big_endian, ..Default::default() }).map(|o| o.ret);
                            if got != Ok(want.to_ret()) {
                                self.report(format!(
                                    "unknown AUDIT_ARCH {a:#x}, nr {n:#x}: the program returns {got:x?}, the policy says {want}"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    /// The numbers `span` holds of a known AUDIT_ARCH.
    fn known(&mut self, arch: u32, span: Span, end: End) {
        let parts = self.arches[&arch].parts(self.tables, span);
        for (sub, owner) in parts {
            self.abis[owner].numbers += sub.count();
            match end {
                End::Ret { ret, steps, cacheable } => self.whole(arch, sub, owner, ret, steps, cacheable),
                End::Concrete => {
                    for nr in self.concrete_numbers(arch, sub) {
                        self.point(arch, owner, nr);
                    }
                }
            }
        }
    }

    /// An interval whose path returns `ret` for every number and argument in it.
    fn whole(&mut self, arch: u32, sub: Span, owner: usize, ret: u32, steps: usize, cacheable: bool) {
        let policy = self.policy;
        let abi = &self.tables.abis[owner];
        let p = &mut self.abis[owner];
        p.intervals += 1;
        p.cases += 1;
        p.worst_path = p.worst_path.max(steps);
        if cacheable && ret == Action::Allow.to_ret() {
            let range = abi.nr_range();
            let (lo, hi) = (u64::from(sub.lo).max(range.start), (u64::from(sub.hi) + 1).min(range.end));
            p.cacheable += hi.saturating_sub(lo) as usize;
        }
        let named: Vec<(u32, Expect, usize)> = self.arches[&arch].named.range(sub.lo..=sub.hi).map(|(n, (e, i))| (*n, *e, *i)).collect();
        let mut messages = Vec::new();
        let not_cacheable = |name: Option<&str>, nr: u32, abi: &str, messages: &mut Vec<String>| {
            messages.push(format!(
                "ABI `{abi}`, {} (nr {nr:#x}) is allowed without looking at arguments, but the kernel's action cache could not skip the filter for it",
                name.unwrap_or("no syscall")
            ))
        };
        for &(nr, e, i) in &named {
            self.means[i].0 += steps;
            self.means[i].1 += 1;
            let abi = self.tables.abis[i].name.as_str();
            match e {
                Expect::Fixed(want, name) => {
                    self.abis[i].cases += 1;
                    if ret != want.to_ret() {
                        messages.push(mismatch(abi, name, nr, None, ret, want));
                    } else if want == Action::Allow && !cacheable {
                        not_cacheable(name, nr, abi, &mut messages);
                    }
                }
                Expect::ByArgs(name) => {
                    for (a, want) in &self.classes[name] {
                        self.abis[i].cases += 1;
                        if ret != want.to_ret() {
                            messages.push(mismatch(abi, Some(name), nr, Some(a), ret, *want));
                        }
                    }
                }
            }
        }
        if sub.count() > named.len() as u64 {
            let nr = (sub.lo..=sub.hi).find(|n| named.binary_search_by_key(n, |(k, _, _)| *k).is_err()).expect("an unnamed number");
            let (want, abi) = (policy.default, abi.name.as_str());
            if ret != want.to_ret() {
                messages.push(mismatch(abi, None, nr, None, ret, want));
            } else if want == Action::Allow && !cacheable {
                not_cacheable(None, nr, abi, &mut messages);
            }
        }
        for m in messages {
            self.report(m);
        }
    }

    /// The numbers of `sub` simulated one by one: all of them when few, else the first
    /// [`SWEEP`] from each base, the table numbers and the range boundaries.
    fn concrete_numbers(&self, arch: u32, sub: Span) -> Vec<u32> {
        if sub.count() <= u64::from(SWEEP) {
            return (sub.lo..=sub.hi).collect();
        }
        let r = &self.arches[&arch];
        let mut set: BTreeSet<u32> = r.named.range(sub.lo..=sub.hi).map(|(n, _)| *n).collect();
        for abi in r.abis.iter().map(|i| &self.tables.abis[*i]) {
            let (lo, hi) = (abi.nr_base.max(sub.lo), abi.nr_base.saturating_add(SWEEP - 1).min(sub.hi));
            set.extend(lo..=hi);
            let end = abi.nr_base + abi.nr_limit;
            set.extend([abi.nr_base.wrapping_sub(1), abi.nr_base, end.wrapping_sub(1), end]);
        }
        set.extend([0, 0x7fff_ffff, 0x8000_0000, u32::MAX]);
        set.into_iter().filter(|n| sub.contains(*n)).collect()
    }

    /// One number whose path depends on more than the interval: simulated with each
    /// argument class (two plain vectors when the policy ignores its arguments).
    fn point(&mut self, arch: u32, owner: usize, nr: u32) {
        let (e, abi_index) = self.arches[&arch].named.get(&nr).copied().unwrap_or((Expect::Fixed(self.policy.default, None), owner));
        let abi = &self.tables.abis[abi_index];
        let big_endian = abi.endian == Endian::Big;
        let data = |args: [u64; 6]| SeccompData { nr, arch, ip: 0, args, big_endian };
        let prog = self.prog;
        if self.arches[&arch].named.contains_key(&nr) {
            if let Ok(o) = sim::run(prog, &data([0; 6])) {
                self.means[abi_index].0 += o.steps;
                self.means[abi_index].1 += 1;
            }
        }
        let mut messages = Vec::new();
        let mut cases = 0;
        let mut worst = 0;
        // A path that reads only nr/arch gives the same outcome for every argument value:
        // one run stands for all of them, and it is the kernel's action-cache decision too.
        if let Expect::Fixed(want, name) = e {
            if let Some(o) = sim::const_path(prog, arch, nr) {
                let p = &mut self.abis[abi_index];
                p.cases += 1;
                p.worst_path = p.worst_path.max(o.steps);
                if o.ret != want.to_ret() {
                    self.report(mismatch(&abi.name, name, nr, None, o.ret, want));
                } else if want == Action::Allow && abi.nr_range().contains(&u64::from(nr)) {
                    p.cacheable += 1;
                }
                return;
            }
            if want == Action::Allow {
                messages.push(format!(
                    "ABI `{}`, {} (nr {nr:#x}) is allowed without looking at arguments, but the kernel's action cache could not skip the filter for it",
                    abi.name,
                    name.unwrap_or("no syscall")
                ));
            }
        }
        let plain: [([u64; 6], Action); 2];
        let (args, name): (&[([u64; 6], Action)], Option<&str>) = match e {
            Expect::Fixed(want, name) => {
                plain = [([0; 6], want), ([u64::MAX; 6], want)];
                (&plain, name)
            }
            Expect::ByArgs(name) => (&self.classes[name], Some(name)),
        };
        for &(a, want) in args {
            cases += 1;
            match sim::run(prog, &data(a)) {
                Ok(o) => {
                    worst = worst.max(o.steps);
                    if o.ret != want.to_ret() {
                        messages.push(mismatch(&abi.name, name, nr, Some(&a), o.ret, want));
                    }
                }
                Err(err) => messages.push(format!("ABI `{}`, nr {nr:#x}: the program fails: {err}", abi.name)),
            }
        }
        let p = &mut self.abis[abi_index];
        p.cases += cases;
        p.worst_path = p.worst_path.max(worst);
        for m in messages {
            self.report(m);
        }
    }
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
