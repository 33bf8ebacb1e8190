//! The bodies of rootemu's fuzz targets (issue #9), as plain functions of a byte slice.
//!
//! `fuzz/fuzz_targets/*.rs` hand them to libFuzzer (`cargo fuzz run <target>`), and
//! `tests/fuzz_replay.rs` runs every file of `fuzz/corpus/<target>/` (and of
//! `fuzz/regressions/<target>/`) through them on stable Rust. Each function panics when
//! an invariant breaks; returning means the input was handled correctly.
//!
//! - [`tables`]: arbitrary bytes as ABI table files and a policy, through the public
//!   loaders: `Ok`, or `Err` whose every diagnostic names a file and a line; never a panic.
//!   Inputs that load are compiled and verified.
//! - [`bpf`]: arbitrary bytes as a raw program (`export::from_raw`, what `inspect` decodes),
//!   disassembled, verified and simulated: no panic, no run past the end, no loop, and a
//!   verified program always runs to a `ret`.
//! - [`differential`]: a small random table set and policy, generated from the bytes and
//!   loaded through the real loaders, compiled with either layout and verified; the
//!   simulator's verdict on random `(arch, nr, args)` must equal `Policy::verdict` (and an
//!   independent evaluation of the generated rules); now and then the whole proof.

use arbitrary::Unstructured;
use rootemu_codegen::bpf::{Action, Insn, data, op};
use rootemu_codegen::compile::{self, Layout};
use rootemu_codegen::sim::{self, SeccompData};
use rootemu_codegen::{Errors, Policy, Tables, disasm, export, proof, verifier};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Real tables compiled in: little and big endian, 32 and 64 bit, a shared AUDIT_ARCH
/// (x86_64/x32) and a convention flag (mips64n32).
const BUILTIN: &[(&str, &str)] = &[
    ("tables/i386.yaml", include_str!("../../../tables/i386.yaml")),
    ("tables/mips64n32.yaml", include_str!("../../../tables/mips64n32.yaml")),
    ("tables/s390x.yaml", include_str!("../../../tables/s390x.yaml")),
    ("tables/x32.yaml", include_str!("../../../tables/x32.yaml")),
    ("tables/x86_64.yaml", include_str!("../../../tables/x86_64.yaml")),
];

/// The root-emulation policy, for seeds.
pub const ROOT_EMULATION: &str = include_str!("../../../tables/policy/root-emulation.yaml");

/// The built-in tables, loaded once.
pub fn builtin_tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| Tables::parse(BUILTIN.iter().map(|(p, t)| (Path::new(*p), *t))).expect("the built-in tables load"))
}

/// The built-in table texts, `(path, text)`, for seeds.
pub fn builtin_texts() -> &'static [(&'static str, &'static str)] {
    BUILTIN
}

/// Every diagnostic of a loader error must say where: a file and a line.
fn assert_located(what: &str, e: &Errors) {
    assert!(!e.is_empty(), "{what}: an Err with no diagnostic");
    for d in &e.0 {
        assert!(d.file.is_some() && d.line.is_some(), "{what}: a diagnostic without file and line: {d:?}\nall errors:\n{e}");
        assert!(!d.message.is_empty(), "{what}: an empty message: {d:?}");
    }
    let _ = e.to_string();
}

/// The program must pass the verifier and run to a `ret` on any input.
fn assert_runs(prog: &[Insn], d: &SeccompData) -> u32 {
    let o = sim::run(prog, d).unwrap_or_else(|e| panic!("a verified program fails in the simulator on {d:x?}: {e}"));
    assert!(o.steps >= 1 && o.steps <= prog.len(), "{} steps in a {}-instruction program", o.steps, prog.len());
    o.ret
}

/// Arbitrary bytes as table files and a policy: NUL bytes separate the files; the last
/// part is the policy (when there are at least two). Each table file is named after its
/// `abi:` line, so that inputs derived from real tables can load.
pub fn tables(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts: Vec<&str> = text.split('\0').collect();
    let policy_text = if parts.len() > 1 { parts.pop() } else { None };
    let paths: Vec<PathBuf> = parts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let abi = t
                .lines()
                .find_map(|l| l.strip_prefix("abi:"))
                .map(|s| s.split('#').next().unwrap_or_default().trim())
                .filter(|s| !s.is_empty() && s.len() < 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
            PathBuf::from(format!("tables/{}.yaml", abi.map_or_else(|| format!("t{i}"), str::to_string)))
        })
        .collect();
    let loaded = Tables::parse(paths.iter().map(PathBuf::as_path).zip(parts.iter().copied()));
    let tables = match &loaded {
        Ok(t) => {
            assert_eq!(t.abis.len(), parts.len(), "every file is one ABI");
            for a in &t.abis {
                for (name, &n) in &a.syscalls {
                    assert!(n < a.nr_limit && a.nr(name) == Some(a.nr_base + n), "{}: {name} = {n}", a.name);
                }
                let _ = a.line_of(a.syscalls.keys().next().map_or("", String::as_str));
            }
            // An unknown name is an error with a suggestion, never a panic.
            let wrong: Vec<String> = t.abis.iter().map(|a| format!("{}x", a.name)).collect();
            assert!(t.select(&wrong).is_err() || wrong.is_empty());
            t
        }
        Err(e) => {
            assert_located("tables", e);
            builtin_tables()
        }
    };
    let Some(policy_text) = policy_text else { return };
    let policy = match Policy::parse(Path::new("policy.yaml"), policy_text, tables) {
        Ok(p) => p,
        Err(e) => return assert_located("policy", &e),
    };
    if loaded.is_err() || tables.abis.is_empty() {
        return;
    }
    // Inputs that load must compile (or be too long for the kernel), verify and prove.
    let prog = match compile::compile(tables, &policy) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.0.len() == 1 && e.0[0].message.contains("over the kernel's limit of 4096"), "compile: {e}");
            return;
        }
    };
    verifier::verify(&prog).unwrap_or_else(|e| panic!("the compiled program fails the verifier: {e}"));
    assert_eq!(disasm::disassemble(&prog, tables).lines().count(), prog.len());
    // The proof (65536 numbers per ABI) is left to `differential`, which runs it now and then.
}

/// Arbitrary bytes as a raw program: byte 0 picks the byte order (bit 0) and an input
/// seed; the rest is `struct sock_filter[]` as `inspect` decodes it from an ELF section.
pub fn bpf(data: &[u8]) {
    let Some((&flags, raw)) = data.split_first() else { return };
    let big = flags & 1 != 0;
    assert_eq!(export::from_raw(raw, big).is_some(), raw.len() % 8 == 0, "from_raw takes exactly the multiples of 8");
    let whole = raw.len() / 8 * 8;
    let prog = export::from_raw(&raw[..whole], big).expect("a multiple of 8");
    assert_eq!(export::raw(&prog, big), &raw[..whole], "raw -> program -> raw is the identity");
    let tables = builtin_tables();
    let listing = disasm::disassemble(&prog, tables);
    assert_eq!(listing.lines().count(), prog.len(), "one line per instruction");
    let verified = verifier::verify(&prog);
    if let Err(e) = &verified {
        assert!(!e.is_empty() && e.0.iter().all(|d| !d.message.is_empty()));
    }

    // Inputs: the tables' AUDIT_ARCH values and the program's own constants, so that
    // branches are taken, with arguments from the program's constants too.
    let mut arches: Vec<u32> = tables.audit_arches();
    let mut consts: Vec<u32> = prog.iter().map(|i| i.k).collect();
    consts.sort_unstable();
    consts.dedup();
    consts.truncate(32);
    arches.extend(consts.iter().copied().take(8));
    arches.push(u32::from(flags).wrapping_mul(0x0101_0101));
    let mut inputs = Vec::new();
    for (i, &arch) in arches.iter().enumerate() {
        for (j, &nr) in consts.iter().chain([0, u32::MAX].iter()).enumerate().take(12) {
            let pick = |n: usize| consts.get((i + j + n) % consts.len().max(1)).copied().unwrap_or(0);
            let args = std::array::from_fn(|a| u64::from(pick(a)) | (u64::from(pick(a + 3)) << 32) * u64::from(flags & 2 != 0));
            inputs.push(SeccompData { nr, arch, ip: u64::from(pick(7)), args, big_endian: big ^ (i % 2 == 1) });
        }
    }
    for d in &inputs {
        let run = sim::run(&prog, d);
        if let Ok(o) = &run {
            assert!(o.steps >= 1 && o.steps <= prog.len(), "{} steps in a {}-instruction program: a loop", o.steps, prog.len());
        }
        if verified.is_ok() {
            let ret = assert_runs(&prog, d);
            // A `ret #k` passed the verifier, so its value is a seccomp action.
            let last = prog.iter().filter(|i| i.code == op::RET | op::K).any(|i| i.k == ret);
            assert!(!last || Action::from_ret(ret).is_some(), "a verified ret {ret:#x} is no action");
            // A path that reads only nr/arch decides for every argument value.
            if let Some(c) = sim::const_path(&prog, d.arch, d.nr) {
                assert_eq!(c.ret, ret, "const_path disagrees with run on {d:x?}");
                assert_eq!(c.steps, run.as_ref().map_or(0, |o| o.steps), "const_path took another path on {d:x?}");
                let zero = SeccompData { args: [0; 6], ip: 0, ..*d };
                assert_eq!(assert_runs(&prog, &zero), ret, "const_path said the arguments do not matter on {d:x?}");
            }
        } else {
            let _ = sim::const_path(&prog, d.arch, d.nr);
        }
    }
}

/// Syscall names the generated tables draw from (some shared with real policies).
const NAMES: &[&str] = &["chown", "fchown", "chown32", "setuid", "setgroups", "mknod", "mknodat", "read", "write", "close", "a", "b_2"];

/// One generated ABI: the model the reference semantics are computed from.
#[derive(Clone, Debug)]
struct GenAbi {
    name: String,
    elf_machine: u32,
    bits: u32,
    big: bool,
    n32: bool,
    le_bit: bool,
    nr_base: u32,
    nr_limit: u32,
    syscalls: BTreeMap<&'static str, u32>,
}

impl GenAbi {
    fn audit_arch(&self) -> u32 {
        let mut v = self.elf_machine;
        if self.bits == 64 {
            v |= 0x8000_0000;
        }
        if !self.big && self.le_bit {
            v |= 0x4000_0000;
        }
        if self.n32 {
            v |= 0x2000_0000;
        }
        v
    }

    fn yaml(&self) -> String {
        let mut s = format!(
            "abi: {}\naudit_arch: {:#x}\nelf_machine: {}\nbits: {}\nendian: {}\nconvention: {}\naudit_le_bit: {}\nnr_base: {}\nnr_limit: {}\nimport:\n  table: arch/fuzz/syscall.tbl\n  tags: [common]\nsyscalls:\n",
            self.name,
            self.audit_arch(),
            self.elf_machine,
            self.bits,
            if self.big { "big" } else { "little" },
            if self.n32 { "mips64_n32" } else { "none" },
            self.le_bit,
            self.nr_base,
            self.nr_limit
        );
        if self.syscalls.is_empty() {
            s.push_str("  {}\n");
        }
        for (n, v) in &self.syscalls {
            let _ = writeln!(s, "  {n}: {v}");
        }
        s
    }
}

/// One generated condition `(arg & mask) ==/!= value` and how the policy writes it.
#[derive(Clone, Debug)]
struct GenAtom {
    arg: u32,
    mask: Option<u32>,
    eq: bool,
    value: u32,
    /// Write mask / value through named constants.
    named: (bool, bool),
}

impl GenAtom {
    fn holds(&self, args: &[u64; 6]) -> bool {
        let v = (args[self.arg as usize] as u32) & self.mask.unwrap_or(u32::MAX);
        (v == self.value) == self.eq
    }
}

#[derive(Clone, Debug)]
struct GenRule {
    action: String,
    syscalls: Vec<&'static str>,
    when_any: Vec<Vec<GenAtom>>,
}

#[derive(Clone, Debug)]
struct GenPolicy {
    default: String,
    unknown_abi: String,
    rules: Vec<GenRule>,
}

impl GenPolicy {
    /// The meaning of the generated rules, evaluated without the loader.
    fn meaning(&self, name: Option<&str>, args: &[u64; 6]) -> Action {
        let rule = name.and_then(|n| {
            self.rules
                .iter()
                .find(|r| r.syscalls.contains(&n) && (r.when_any.is_empty() || r.when_any.iter().any(|c| c.iter().all(|a| a.holds(args)))))
        });
        Action::parse(rule.map_or(&self.default, |r| &r.action)).expect("generated actions parse")
    }

    fn yaml(&self) -> String {
        let mut consts = String::new();
        let mut rules = String::new();
        let mut next = 0;
        let mut operand = |v: u32, named: bool, consts: &mut String| {
            if named {
                next += 1;
                let _ = writeln!(consts, "  C{next}: {v:#o}");
                format!("C{next}")
            } else if v % 2 == 0 {
                format!("{v:#x}")
            } else {
                v.to_string()
            }
        };
        for r in &self.rules {
            let _ = writeln!(rules, "  - action: {}\n    syscalls: [{}]", r.action, r.syscalls.join(", "));
            if !r.when_any.is_empty() {
                rules.push_str("    when_any:\n");
                for conj in &r.when_any {
                    let atoms: Vec<String> = conj
                        .iter()
                        .map(|a| {
                            let mask = a.mask.map(|m| format!(", mask: {}", operand(m, a.named.0, &mut consts))).unwrap_or_default();
                            let value = operand(a.value, a.named.1, &mut consts);
                            format!("{{arg: {}{mask}, {}: {value}}}", a.arg, if a.eq { "eq" } else { "ne" })
                        })
                        .collect();
                    let _ = writeln!(rules, "      - [{}]", atoms.join(", "));
                }
            }
        }
        let mut s = format!("policy: fuzz\ndefault: {}\nunknown_abi: {}\n", self.default, self.unknown_abi);
        if !consts.is_empty() {
            s.push_str("constants:\n");
            s.push_str(&consts);
        }
        s.push_str("rules:\n");
        if self.rules.is_empty() {
            s.push_str("  []\n");
        }
        s.push_str(&rules);
        s
    }
}

fn gen_action(u: &mut Unstructured) -> arbitrary::Result<String> {
    Ok(match u.int_in_range(0..=8u8)? {
        0 => "allow".into(),
        1 => "fake_success".into(),
        2 => format!("errno {}", u.int_in_range(0..=4095u16)?),
        3 => "kill_process".into(),
        4 => "kill_thread".into(),
        5 => "trap".into(),
        6 => "log".into(),
        7 => format!("trace {}", u.arbitrary::<u16>()?),
        _ => "errno 1".into(),
    })
}

/// True once in `n` (never when the data has run out, unlike `ratio`, which then says yes).
fn rare(u: &mut Unstructured, n: u32) -> bool {
    u.int_in_range(0..=n - 1).is_ok_and(|v| v == n - 1)
}

/// A value from a small set of interesting ones, or an arbitrary one.
fn gen_u32(u: &mut Unstructured, interesting: &[u32]) -> arbitrary::Result<u32> {
    if !interesting.is_empty() && u.ratio(3, 4)? { Ok(*u.choose(interesting)?) } else { u.arbitrary() }
}

fn gen_abis(u: &mut Unstructured) -> arbitrary::Result<Vec<GenAbi>> {
    let count = u.int_in_range(1..=4usize)?;
    let mut abis: Vec<GenAbi> = Vec::new();
    for i in 0..count {
        let mut abi = GenAbi {
            name: format!("abi{i}"),
            elf_machine: gen_u32(u, &[3, 8, 22, 40, 62, 183, 0x1fff_ffff])?,
            bits: if u.arbitrary()? { 64 } else { 32 },
            big: u.arbitrary()?,
            n32: u.ratio(1, 4)?,
            le_bit: !u.ratio(1, 5)?,
            nr_base: 0,
            // 0 now and then: an ABI with no numbers, which the loader must refuse.
            nr_limit: if rare(u, 64) { 0 } else { u.int_in_range(1..=1024)? },
            syscalls: BTreeMap::new(),
        };
        // Share an earlier ABI's AUDIT_ARCH (x32 under x86_64, o32/n32/n64 on mips).
        if !abis.is_empty() && u.ratio(1, 2)? {
            let o = u.choose(&abis)?.clone();
            (abi.elf_machine, abi.bits, abi.big, abi.n32, abi.le_bit) = (o.elf_machine, o.bits, o.big, o.n32, o.le_bit);
        }
        if let Some(o) = abis.iter().find(|o| o.audit_arch() == abi.audit_arch()) {
            // The same AUDIT_ARCH by chance (no LE bit): the same facts, byte order included.
            (abi.elf_machine, abi.bits, abi.big, abi.n32, abi.le_bit) = (o.elf_machine, o.bits, o.big, o.n32, o.le_bit);
        }
        // Disjoint number ranges under one AUDIT_ARCH, all below 2^31.
        let taken: Vec<(u64, u64)> = abis
            .iter()
            .filter(|o| o.audit_arch() == abi.audit_arch())
            .map(|o| (u64::from(o.nr_base), u64::from(o.nr_base) + u64::from(o.nr_limit)))
            .collect();
        let limit = u64::from(abi.nr_limit);
        let want = u64::from(gen_u32(u, &[0, 512, 1024, 4000, 5000, 6000, 0x4000_0000, 0x7fff_fc00])?) % (1 << 31);
        let fits = |b: u64| b + limit <= 1 << 31 && taken.iter().all(|&(s, e)| b + limit <= s || e <= b);
        let base = std::iter::once(want).chain(taken.iter().map(|t| t.1)).chain([0]).find(|&b| fits(b));
        let Some(base) = base else { continue };
        abi.nr_base = base as u32;
        let mut used = BTreeSet::new();
        for name in NAMES {
            if abi.nr_limit > 0 && u.ratio(1, 2)? {
                let n = u.int_in_range(0..=abi.nr_limit - 1)?;
                if used.insert(n) {
                    abi.syscalls.insert(*name, n);
                }
            }
        }
        abis.push(abi);
    }
    if abis.iter().all(|a| a.syscalls.is_empty()) {
        // An empty range [b, b) overlaps nothing, so growing it to [b, b + 1) is safe only
        // when every range is empty.
        let i = abis.iter().position(|a| a.nr_limit > 0).unwrap_or(0);
        abis[i].nr_limit = abis[i].nr_limit.max(1);
        abis[i].syscalls.insert("chown", 0);
    }
    Ok(abis)
}

fn gen_policy(u: &mut Unstructured, names: &[&'static str]) -> arbitrary::Result<GenPolicy> {
    let mut rules = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let mut syscalls: Vec<&'static str> = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let n = *u.choose(names)?;
            if !syscalls.contains(&n) {
                syscalls.push(n);
            }
        }
        let mut when_any = Vec::new();
        if u.ratio(2, 3)? {
            for _ in 0..u.int_in_range(1..=3)? {
                let mut conj = Vec::new();
                for _ in 0..u.int_in_range(0..=3)? {
                    let mask = if u.ratio(2, 3)? { Some(gen_u32(u, &[0o170000, 0xff, 1, 0x8000_0000, 0])?) } else { None };
                    let value = gen_u32(u, &[0, 1, 0o020000, 0o060000, 0o010000, u32::MAX])? & mask.unwrap_or(u32::MAX);
                    conj.push(GenAtom {
                        arg: u.int_in_range(0..=5)?,
                        mask,
                        eq: u.arbitrary()?,
                        value,
                        named: (u.arbitrary()?, u.arbitrary()?),
                    });
                }
                when_any.push(conj);
            }
        }
        rules.push(GenRule { action: gen_action(u)?, syscalls, when_any });
    }
    Ok(GenPolicy { default: gen_action(u)?, unknown_abi: gen_action(u)?, rules })
}

/// Builds a random table set and policy from `data`, compiles and verifies the program,
/// then checks the simulator against the policy's meaning on random inputs.
pub fn differential(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(abis) = gen_abis(&mut u) else { return };
    let names: Vec<&'static str> = NAMES.iter().copied().filter(|n| abis.iter().any(|a| a.syscalls.contains_key(n))).collect();
    let Ok(policy_model) = gen_policy(&mut u, &names) else { return };
    let texts: Vec<(PathBuf, String)> = abis.iter().map(|a| (PathBuf::from(format!("fuzz/{}.yaml", a.name)), a.yaml())).collect();
    let loaded = Tables::parse(texts.iter().map(|(p, t)| (p.as_path(), t.as_str())));
    if abis.iter().any(|a| a.nr_limit == 0) {
        let e = loaded.err().expect("an ABI with nr_limit 0 must be refused");
        assert!(e.0.iter().all(|d| d.message.ends_with("nr_limit must be at least 1")), "{e}");
        return;
    }
    let tables =
        loaded.unwrap_or_else(|e| panic!("generated tables do not load: {e}\n{}", texts.iter().map(|t| t.1.as_str()).collect::<String>()));
    let policy_text = policy_model.yaml();
    let policy = Policy::parse(Path::new("fuzz/policy.yaml"), &policy_text, &tables)
        .unwrap_or_else(|e| panic!("the generated policy does not load: {e}\n{policy_text}"));
    let layout = match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 => Layout::Linear { host_last: u.choose(&abis).map_or("abi0".into(), |a| a.name.clone()) },
        _ => Layout::Search,
    };
    let prog = compile::compile_with(&tables, &policy, &layout).unwrap_or_else(|e| panic!("compile: {e}\n{policy_text}"));
    verifier::verify(&prog).unwrap_or_else(|e| panic!("the compiled program fails the verifier: {e}"));
    // Now and then the whole proof too, for one ABI (it sweeps 65536 numbers per ABI: too
    // slow to run on every input, 25 s for four ABIs under ASan) and conditions on at most
    // two arguments (its argument classes are a product over the arguments: with five or
    // six it takes seconds and gigabytes).
    let args: BTreeSet<u32> = policy_model.rules.iter().flat_map(|r| r.when_any.iter().flatten().map(|a| a.arg)).collect();
    if tables.abis.len() == 1 && args.len() <= 2 && rare(&mut u, 256) {
        proof::prove(&prog, &tables, &policy).unwrap_or_else(|e| panic!("the proof fails: {e}\n{policy_text}"));
    }

    let arches: Vec<u32> = abis.iter().map(GenAbi::audit_arch).collect();
    let mut interesting: Vec<u32> = vec![0, 1, u32::MAX, 0o020000, 0o060000, 0o020644, 0o060600, 0o010644];
    for r in &policy_model.rules {
        for a in r.when_any.iter().flatten() {
            let m = a.mask.unwrap_or(u32::MAX);
            interesting.extend([a.value, a.value ^ (m & m.wrapping_neg()), a.value | !m]);
        }
    }
    let queries = u.int_in_range(8..=64).unwrap_or(8);
    for _ in 0..queries {
        let Ok(q) = gen_query(&mut u, &abis, &arches, &interesting) else { break };
        let (arch, nr, args) = q;
        let known = abis.iter().filter(|a| a.audit_arch() == arch);
        let owner = known.clone().find(|a| nr.checked_sub(a.nr_base).is_some_and(|n| n < a.nr_limit));
        let name = known.clone().find_map(|a| a.syscalls.iter().find(|(_, n)| a.nr_base.checked_add(**n) == Some(nr)).map(|(s, _)| *s));
        let want = if known.clone().next().is_none() {
            Action::parse(&policy_model.unknown_abi).expect("generated")
        } else {
            let model = policy_model.meaning(name, &args);
            let verdict = policy.verdict(name, &args);
            assert_eq!(verdict, model, "Policy::verdict vs the generated rules for {name:?} {args:x?}\n{policy_text}");
            verdict
        };
        // The kernel lays seccomp_data out in the ABI's byte order.
        let big = owner.or_else(|| known.clone().next()).map_or(nr % 2 == 1, |a| a.big);
        let d = SeccompData { nr, arch, ip: 0, args, big_endian: big };
        let got = assert_runs(&prog, &d);
        if got != want.to_ret() {
            let listing = disasm::disassemble(&prog, &tables);
            panic!(
                "arch {arch:#x} nr {nr:#x} ({name:?}) args {args:x?}: the program returns {got:#x}, the policy says {want} ({:#x})\nlayout {layout:?}\n{}\n{policy_text}\n{listing}",
                want.to_ret(),
                texts.iter().map(|t| t.1.as_str()).collect::<String>()
            );
        }
        // A path that reads only nr/arch: the policy's meaning must not depend on the arguments.
        if let Some(c) = sim::const_path(&prog, arch, nr) {
            assert_eq!(c.ret, got, "const_path vs run on {d:x?}");
            if known.clone().next().is_some() {
                assert_eq!(policy.verdict(name, &[0; 6]), want, "{name:?}: the program ignores arguments the policy looks at");
            }
        }
    }
}

fn gen_query(u: &mut Unstructured, abis: &[GenAbi], arches: &[u32], interesting: &[u32]) -> arbitrary::Result<(u32, u32, [u64; 6])> {
    let arch = match u.int_in_range(0..=7u8)? {
        0 => u.arbitrary()?,
        1 => *u.choose(arches)? ^ *u.choose(&[0x4000_0000, 0x8000_0000, 0x2000_0000, 1])?,
        _ => *u.choose(arches)?,
    };
    let group: Vec<&GenAbi> = abis.iter().filter(|a| a.audit_arch() == arch).collect();
    let nr = match (u.int_in_range(0..=7u8)?, group.is_empty()) {
        (0, _) | (_, true) => gen_u32(u, &[0, 1, 512, 0x4000_0000, u32::MAX])?,
        (1, false) => {
            let a = u.choose(&group)?;
            let end = a.nr_base + a.nr_limit;
            *u.choose(&[a.nr_base.wrapping_sub(1), a.nr_base, end.wrapping_sub(1), end])?
        }
        (2, false) => {
            let a = u.choose(&group)?;
            a.nr_base + u.int_in_range(0..=a.nr_limit.saturating_sub(1))?
        }
        _ => {
            let a = u.choose(&group)?;
            match a.syscalls.values().copied().collect::<Vec<_>>().as_slice() {
                [] => a.nr_base,
                ns => a.nr_base + *u.choose(ns)?,
            }
        }
    };
    let mut args = [0u64; 6];
    for a in &mut args {
        let lo = gen_u32(u, interesting)?;
        let hi: u32 = if u.ratio(1, 3)? { u.arbitrary()? } else { 0 };
        *a = u64::from(lo) | u64::from(hi) << 32;
    }
    Ok((arch, nr, args))
}

/// A small program (x86_64 only, chown faked) as `bpf` input: byte order byte + raw bytes.
pub fn seed_program(big: bool) -> Vec<u8> {
    let prog = [
        Insn::new(op::LD | op::W | op::ABS, 0, 0, data::ARCH),
        Insn::new(op::JMP | op::JEQ | op::K, 0, 3, 0xc000_003e),
        Insn::new(op::LD | op::W | op::ABS, 0, 0, data::NR),
        Insn::new(op::JMP | op::JEQ | op::K, 0, 1, 92),
        Insn::new(op::RET | op::K, 0, 0, Action::Errno(0).to_ret()),
        Insn::new(op::RET | op::K, 0, 0, Action::Allow.to_ret()),
    ];
    let mut out = vec![u8::from(big)];
    out.extend(export::raw(&prog, big));
    out
}

/// Seed inputs of a target (`tables`, `bpf`, `differential`): written to the corpus to
/// start fuzzing, and replayed by the test whatever the corpus holds.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let join = |parts: &[&str]| parts.join("\0").into_bytes();
    match target {
        "tables" => {
            let mut out: Vec<Vec<u8>> = BUILTIN.iter().map(|(_, t)| t.as_bytes().to_vec()).collect();
            let all: Vec<&str> = BUILTIN.iter().map(|(_, t)| *t).chain([ROOT_EMULATION]).collect();
            out.push(join(&all));
            out.push(join(&[BUILTIN[4].1, ROOT_EMULATION]));
            out.push(join(&[
                BUILTIN[0].1,
                "policy: p\ndefault: allow\nunknown_abi: kill_process\nrules:\n  - action: errno 1\n    syscalls: [chown32]\n",
            ]));
            out.push(join(&["", ROOT_EMULATION]));
            out
        }
        "bpf" => {
            let tables = builtin_tables();
            let policy = Policy::parse(Path::new("root-emulation.yaml"), ROOT_EMULATION, tables).expect("the bundled policy loads");
            let prog = compile::compile(tables, &policy).expect("the bundled policy compiles");
            let mut out = vec![seed_program(false), seed_program(true)];
            for flags in [0u8, 1, 2, 3] {
                let mut v = vec![flags];
                v.extend(export::raw(&prog, flags & 1 != 0));
                out.push(v);
            }
            out
        }
        "differential" => {
            let mut out = vec![Vec::new(), vec![0xff; 64], (0..=255u8).collect(), (0..=255u8).rev().collect()];
            out.push((0..512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect());
            out
        }
        _ => Vec::new(),
    }
}
