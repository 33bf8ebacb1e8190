//! The compiler, verifier, simulator and proof on small fixture tables with the shipped policy.

use rootemu_codegen::Insn;
use rootemu_codegen::bpf::{Action, data, op};
use rootemu_codegen::sim::{self, SeccompData};
use rootemu_codegen::{Filter, Inputs, Policy, Tables, proof};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tables")
}

/// The shipped policy (a link to `tables/policy/`, copied into the packaged crate).
fn policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/root-emulation.yaml")
}

fn build(abis: &[String]) -> Filter {
    let (t, p) = (fixtures(), policy_path());
    Filter::build(&Inputs { tables: &t, policy: &p, abis }).unwrap_or_else(|e| panic!("{e}"))
}

fn run(f: &Filter, abi: &str, syscall: &str, args: [u64; 6]) -> Action {
    let a = f.tables.get(abi).unwrap();
    let d =
        SeccompData { nr: a.nr(syscall).unwrap(), arch: a.audit_arch, ip: 0, args, big_endian: a.endian == rootemu_codegen::Endian::Big };
    Action::from_ret(sim::run(&f.program, &d).unwrap().ret).unwrap()
}

const FAKED: Action = Action::Errno(0);

#[test]
fn root_emulation_fakes_the_right_numbers_per_abi() {
    let f = build(&[]);
    assert_eq!(run(&f, "x86_64", "chown", [0; 6]), FAKED);
    assert_eq!(run(&f, "x86_64", "getppid", [0; 6]), Action::Allow);
    assert_eq!(run(&f, "x32", "chown", [0; 6]), FAKED);
    assert_eq!(run(&f, "x32", "rt_sigaction", [0; 6]), Action::Allow);
    assert_eq!(run(&f, "i386", "chown32", [0; 6]), FAKED);
    assert_eq!(run(&f, "i386", "chown", [0; 6]), FAKED);
    assert_eq!(run(&f, "i386", "getppid", [0; 6]), Action::Allow);
    // x86_64's chown number (92) on i386 is `chown`'s neighbour... not a policy name there.
    let i386 = f.tables.get("i386").unwrap();
    let d = SeccompData { nr: 92, arch: i386.audit_arch, ..Default::default() };
    assert_eq!(sim::run(&f.program, &d).unwrap().ret, Action::Allow.to_ret());
    // An AUDIT_ARCH outside the tables gets the policy's explicit action.
    let d = SeccompData { nr: 92, arch: 0xc00000b7, ..Default::default() };
    assert_eq!(sim::run(&f.program, &d).unwrap().ret, Action::KillProcess.to_ret());
    // A tracer's nr -1 goes through.
    let d = SeccompData { nr: u32::MAX, arch: 0xc000003e, ..Default::default() };
    assert_eq!(sim::run(&f.program, &d).unwrap().ret, Action::Allow.to_ret());
}

#[test]
fn s390x_reads_the_low_half_of_big_endian_arguments() {
    let f = build(&[]);
    for hi in [0u64, 0xdead_beef, 0xffff_ffff, 0o020644] {
        let h = hi << 32;
        assert_eq!(run(&f, "s390x", "mknod", [0, h | 0o020644, h | 0x0103, 0, 0, 0]), FAKED, "char 1:3, high half {hi:#x}");
        assert_eq!(run(&f, "s390x", "mknod", [0, h | 0o060600, h, 0, 0, 0]), FAKED, "block 0:0");
        assert_eq!(run(&f, "s390x", "mknod", [0, h | 0o010644, h | 1, 0, 0, 0]), Action::Allow, "FIFO");
        assert_eq!(run(&f, "s390x", "mknod", [0, h | 0o020000, h, 0, 0, 0]), Action::Allow, "whiteout char 0:0");
        assert_eq!(run(&f, "s390x", "mknodat", [0, 0, h | 0o020644, h | 0x0103, 0, 0]), FAKED);
        assert_eq!(run(&f, "s390x", "mknodat", [0, 0, h | 0o140644, h | 1, 0, 0]), Action::Allow, "socket");
    }
    // The listing names the big-endian low half explicitly.
    assert!(f.listing().contains("ld [args[1].lo]"), "{}", f.listing());
}

#[test]
fn proof_covers_every_abi_and_the_cache() {
    let f = build(&[]);
    let names: Vec<&str> = f.proof.abis.iter().map(|a| a.abi.as_str()).collect();
    assert_eq!(names, ["i386", "s390x", "x32", "x86_64"]);
    // Every 32-bit number of each AUDIT_ARCH is proved, under exactly one ABI (x32 and
    // x86_64 share theirs).
    let numbers = |abi: &str| f.proof.abis.iter().find(|a| a.abi == abi).unwrap().numbers;
    assert_eq!(numbers("i386"), 1 << 32);
    assert_eq!(numbers("s390x"), 1 << 32);
    assert_eq!(numbers("x32") + numbers("x86_64"), 1 << 32);
    for a in &f.proof.abis {
        // Everything of the table range but the faked and argument-dependent numbers is cacheable.
        let limit = f.tables.get(&a.abi).unwrap().nr_limit as usize;
        assert!(a.cacheable + 40 >= limit && a.cacheable < limit, "{a:?}");
        assert!(a.intervals < 200, "a few intervals per compare, not one per number: {a:?}");
    }
    assert!(f.proof.unknown_arch_cases > 0);
}

/// The proof covers every number, not only those near a table: a program that differs
/// from the policy at one number no table names, or for one AUDIT_ARCH far from every
/// known one, is caught wherever that number or AUDIT_ARCH lies.
#[test]
fn proof_catches_a_wrong_verdict_at_one_number_no_table_names() {
    let f = build(&[]);
    let x86_64 = f.tables.get("x86_64").unwrap().audit_arch;
    // `if arch == A && nr == N { ret ERRNO(0) }` in front of the real program.
    let patched = |arch: u32, nr: u32| {
        let mut p = vec![
            Insn::new(op::LD | op::W | op::ABS, 0, 0, data::ARCH),
            Insn::new(op::JMP | op::JEQ | op::K, 0, 3, arch),
            Insn::new(op::LD | op::W | op::ABS, 0, 0, data::NR),
            Insn::new(op::JMP | op::JEQ | op::K, 0, 1, nr),
            Insn::new(op::RET | op::K, 0, 0, Action::Errno(0).to_ret()),
        ];
        p.extend(&f.program);
        p
    };
    for nr in [600u32, 0x0012_3456, 0x3fff_ffff] {
        let err = proof::prove(&patched(x86_64, nr), &f.tables, &f.policy).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("proof: ABI `x86_64`, no syscall (nr {nr:#x}), any args: the program returns ERRNO(0), the policy says ALLOW")
        );
    }
    let err = proof::prove(&patched(0x0000_1234, 7), &f.tables, &f.policy).unwrap_err().to_string();
    assert_eq!(
        err,
        "proof: unknown AUDIT_ARCH 0x1234 (and any up to 0x1234 no table has), nr 0x7..=0x7: the program returns ERRNO(0), the policy says KILL_PROCESS"
    );
    // Unchanged, the program proves.
    proof::prove(&f.program, &f.tables, &f.policy).unwrap();
}

#[test]
fn proof_catches_a_wrong_number_and_a_wrong_argument_half() {
    let f = build(&[]);
    // x86_64 chown (92) compared as 91.
    let mut bad = f.program.clone();
    let at = bad.iter().position(|i| i.code == op::JMP | op::JEQ && i.k == 92).unwrap();
    bad[at].k = 91;
    let err = proof::prove(&bad, &f.tables, &f.policy).unwrap_err().to_string();
    assert!(err.contains("chown (nr 0x5c)") && err.contains("the program returns ALLOW, the policy says ERRNO(0)"), "{err}");
    // The big-endian block reading the high half (offset 24 instead of 28).
    let mut bad = f.program.clone();
    for i in bad.iter_mut().filter(|i| i.code == op::LD | op::W | op::ABS && i.k == 28) {
        i.k = 24;
    }
    let err = proof::prove(&bad, &f.tables, &f.policy).unwrap_err().to_string();
    assert!(err.contains("ABI `s390x`, mknod"), "{err}");
}

#[test]
fn subset_of_abis_and_unknown_abi() {
    let f = build(&["x86_64".into()]);
    assert_eq!(f.tables.abis.len(), 1);
    let (t, p) = (fixtures(), policy_path());
    let err = Filter::build(&Inputs { tables: &t, policy: &p, abis: &["x86-64".into()] }).unwrap_err();
    assert_eq!(err.to_string(), "unknown ABI `x86-64` (did you mean `x86_64`?)");
}

/// A synthetic ABI with `n` syscalls, all faked, and mknod conditions: long jumps everywhere.
fn synthetic(n: u32, abis: u32) -> (Tables, Policy) {
    let mut files = Vec::new();
    for a in 0..abis {
        let mut t = format!(
            "abi: synth{a}\naudit_arch: {:#x}\nelf_machine: {}\nbits: 64\nendian: {}\nnr_base: 0\nnr_limit: 65536\nimport:\n  table: x.tbl\n  tags: [common]\nsyscalls:\n  mknod: 0\n",
            0x8000_0000u32 | if a % 2 == 0 { 0x4000_0000 } else { 0 } | (100 + a),
            100 + a,
            if a % 2 == 0 { "little" } else { "big" }
        );
        for i in 1..n {
            t.push_str(&format!("  call{i}: {}\n", i * 3));
        }
        files.push((PathBuf::from(format!("synth{a}.yaml")), t));
    }
    let tables = Tables::parse(files.iter().map(|(p, t)| (p.as_path(), t.as_str()))).unwrap();
    let mut policy = String::from(
        "policy: big\ndefault: allow\nunknown_abi: errno 38\nrules:\n  - action: errno 1\n    syscalls: [mknod]\n    when_any: [[{arg: 1, mask: 0o170000, eq: 0o020000}]]\n  - action: fake_success\n    syscalls:\n",
    );
    for i in (1..n).filter(|i| i % 2 == 0) {
        policy.push_str(&format!("      - call{i}\n"));
    }
    let policy = Policy::parse(Path::new("big.yaml"), &policy, &tables).unwrap();
    (tables, policy)
}

#[test]
fn large_policies_need_trampolines_and_still_prove() {
    let (tables, policy) = synthetic(700, 2);
    let f = Filter::from_parts(tables, policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(f.program.len() > 700, "{}", f.program.len());
    assert!(f.program.iter().any(|i| i.code == op::JMP | op::JA), "long jumps go through `ja` trampolines");
}

#[test]
fn over_4096_instructions_fails_with_a_clear_error() {
    let (tables, policy) = synthetic(2200, 4);
    let err = Filter::from_parts(tables, policy).unwrap_err().to_string();
    assert!(err.contains("over the kernel's limit of 4096"), "{err}");
}

/// The reviewed listing names jump targets, so a change to one ABI's table changes only
/// that ABI's lines: no later line moves (the numbered listing shifts every later target).
#[test]
fn a_table_change_changes_only_its_own_lines_of_the_listing() {
    let edited = |from: &str, to: &str| {
        let dir = std::env::temp_dir().join(format!("rootemu-codegen-listing-{}-{}", std::process::id(), to.len()));
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(fixtures()).unwrap() {
            let p = e.unwrap().path();
            let mut text = std::fs::read_to_string(&p).unwrap();
            if p.ends_with("x86_64.yaml") {
                assert!(text.contains(from));
                text = text.replace(from, to);
            }
            std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
        }
        let p = policy_path();
        let f = Filter::build(&Inputs { tables: &dir, policy: &p, abis: &[] }).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        f
    };
    // Lines of `b` that `a` lacks (as a multiset).
    let new_lines = |a: &str, b: &str| {
        let mut pool: Vec<&str> = a.lines().collect();
        b.lines()
            .filter(|l| match pool.iter().position(|x| x == l) {
                Some(i) => {
                    pool.swap_remove(i);
                    false
                }
                None => true,
            })
            .count()
    };
    let numbered = |f: &Filter| rootemu_codegen::disasm::disassemble(&f.program, &f.tables);
    let f = build(&[]);
    // chown renumbered: its compare, nothing else.
    let moved = edited("  chown: 92\n", "  chown: 90\n");
    assert_eq!(new_lines(&f.listing(), &moved.listing()), 1, "{}", moved.listing());
    assert!(moved.listing().contains("    jeq #90, ret_errno_0, next               ; x86_64 chown\n"), "{}", moved.listing());
    // A name the policy lists added to x86_64: a few lines of x86_64's search, where the
    // numbered listing renumbers every target after it.
    let added = edited("  chown: 92\n", "  chown: 92\n  chown32: 500\n");
    let labelled = new_lines(&f.listing(), &added.listing());
    assert!((1..=6).contains(&labelled), "{labelled} new lines:\n{}", added.listing());
    assert!(new_lines(&numbered(&f), &numbered(&added)) > 3 * labelled, "the numbered listing shifts");
}
