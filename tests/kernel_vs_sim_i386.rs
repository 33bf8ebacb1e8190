//! The simulator against the kernel itself, for the i386 ABI: a static i686 program
//! (tests/programs/kvs_i386.c), whose calls reach the kernel as AUDIT_ARCH_I386, installs
//! the real root-emulation program (all ABIs, raw bytes as `rootemu filter export --format
//! raw` writes them) and issues a sample of i386 numbers with harmless arguments. Each
//! call's fate in the kernel (faked: returned 0 without running; or ran and failed) must be
//! what `sim::run` says. A mutated program must give disagreements, so the check can fail.

use rootemu_codegen::bpf::{Action, Insn, op};
use rootemu_codegen::sim::{self, SeccompData};
use rootemu_codegen::{Abi, Filter, Inputs, export};
use rootemu_tests::{need, tables_dir, workspace};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn filter() -> Filter {
    let tables = tables_dir();
    let policy = tables.join("policy/root-emulation.yaml");
    Filter::build(&Inputs { tables: &tables, policy: &policy, abis: &[] }).unwrap_or_else(|e| panic!("{e}"))
}

/// One call per line, `NR A0..A5`; `P` is a path that does not exist. Arguments make the
/// real call fail, so a 0 can only mean "faked".
fn cases(abi: &Abi) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |name: &str, args: &str| {
        let nr = abi.nr(name).unwrap_or_else(|| panic!("i386 has no {name}"));
        out.push(format!("{nr} {args}"));
    };
    const M1: &str = "4294967295"; // -1: EBADF as an fd, EINVAL as a size or a 32-bit id
    // Ownership: a missing path (ENOENT) or fd -1 (EBADF), 16-bit and 32-bit variants.
    for name in ["chown", "lchown", "chown32", "lchown32"] {
        add(name, "P 0 50 0 0 0");
    }
    for name in ["fchown", "fchown32"] {
        add(name, &format!("{M1} 0 50 0 0 0"));
    }
    add("fchownat", &format!("{M1} P 0 0 0 0"));
    // Identity: ids 0 and 50 as an unprivileged user (EPERM), id -1 (EINVAL).
    for name in ["setuid", "setgid", "setuid32", "setgid32"] {
        add(name, "0 0 0 0 0 0");
        add(name, "50 0 0 0 0 0");
    }
    add("setuid32", &format!("{M1} 0 0 0 0 0"));
    for name in ["setreuid", "setregid", "setreuid32", "setregid32"] {
        add(name, "0 0 0 0 0 0");
    }
    for name in ["setresuid", "setresgid", "setresuid32", "setresgid32"] {
        add(name, "0 0 0 0 0 0");
    }
    for name in ["setgroups", "setgroups32"] {
        add(name, &format!("{M1} 0 0 0 0 0"));
    }
    // setfs*id return the previous id (65534, never 0) when they run.
    for name in ["setfsuid", "setfsgid", "setfsuid32", "setfsgid32"] {
        add(name, "0 0 0 0 0 0");
    }
    add("capset", "0 0 0 0 0 0"); // NULL header: EFAULT
    // mknod/mknodat: every file type x dev zero/non-zero.
    for ty in [0o010000u32, 0o020000, 0o040000, 0o060000, 0o100000, 0o120000, 0o140000, 0] {
        for dev in [0u32, 0x0103] {
            let mode = ty | 0o644;
            add("mknod", &format!("P {mode} {dev} 0 0 0"));
            add("mknodat", &format!("{M1} P {mode} {dev} 0 0"));
        }
    }
    // Calls the policy leaves alone (bad fd), and numbers no table has (ENOSYS).
    for name in ["close", "fchmod", "fchdir", "dup", "fsync", "getppid", "chmod", "fchmodat"] {
        add(name, &format!("{M1} 0 0 0 0 0"));
    }
    for nr in [1000u32, 1023, 2000, u32::MAX] {
        out.push(format!("{nr} 0 0 0 0 0 0"));
    }
    out
}

/// Builds tests/programs/kvs_i386.c with the i686 cross compiler, static.
fn build_program() -> Option<PathBuf> {
    if !need("i686-linux-gnu-gcc", "builds the static i386 program of tests/programs/kvs_i386.c") {
        return None;
    }
    let src = workspace().join("tests/programs/kvs_i386.c");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kvs_i386");
    let st = Command::new("i686-linux-gnu-gcc").args(["-static", "-O2", "-Wall", "-o"]).arg(&out).arg(&src).status().unwrap();
    assert!(st.success(), "i686-linux-gnu-gcc failed on {}", src.display());
    Some(out)
}

/// One call as the kernel answered it.
struct Answer {
    nr: u32,
    args: [u64; 6],
    ret: i64,
    errno: i64,
}

/// Installs `program` in the i386 child and issues `cases`.
fn kernel(prog: &Path, program: &[Insn], cases: &[String], tag: &str) -> Vec<Answer> {
    let (answers, status) = kernel_until_killed(prog, program, cases, tag);
    assert!(status.success(), "kvs_i386 ({tag}) failed: {status:?}");
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    answers
}

/// As [`kernel`], but the child may be killed by the filter: the answers before that, and
/// how the child ended.
fn kernel_until_killed(prog: &Path, program: &[Insn], cases: &[String], tag: &str) -> (Vec<Answer>, std::process::ExitStatus) {
    let raw = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kvs_i386_{tag}.raw"));
    std::fs::write(&raw, export::raw(program, false)).unwrap();
    let mut child = Command::new(prog).arg(&raw).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all((cases.join("\n") + "\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGSYS),
        "kvs_i386 ({tag}) failed: {:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Answer> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("KVS "))
        .map(|l| {
            let v: Vec<i64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
            Answer { nr: v[0] as u32, args: std::array::from_fn(|i| v[1 + i] as u64), ret: v[7], errno: v[8] }
        })
        .collect();
    (answers, out.status)
}

/// Compares the kernel's answers with the simulator on `program`: (faked, disagreements).
fn compare(answers: &[Answer], program: &[Insn], f: &Filter) -> (usize, Vec<String>) {
    let arch = f.tables.get("i386").unwrap().audit_arch;
    let mut faked = 0;
    let mut disagreements = Vec::new();
    for a in answers {
        // i386 arguments are 32 bits, zero-extended into struct seccomp_data.
        let d = SeccompData { nr: a.nr, arch, ip: 0, args: a.args, big_endian: false };
        let sim_faked = sim::run(program, &d).unwrap().ret == Action::Errno(0).to_ret();
        let kernel_faked = a.ret == 0;
        faked += usize::from(kernel_faked);
        if sim_faked != kernel_faked {
            let name = f.tables.lookup(arch, a.nr).map_or("?", |(_, n)| n);
            disagreements.push(format!(
                "i386 {name} (nr {}) args {:x?}: kernel ret {} errno {}, simulator faked={sim_faked}",
                a.nr, a.args, a.ret, a.errno
            ));
        }
    }
    (faked, disagreements)
}

#[test]
fn kernel_agrees_with_the_simulator_on_i386() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let Some(prog) = build_program() else { return };
    let f = filter();
    let i386 = f.tables.get("i386").unwrap();
    let cases = cases(i386);
    let answers = kernel(&prog, &f.program, &cases, "real");
    let (faked, disagreements) = compare(&answers, &f.program, &f);
    eprintln!(
        "kernel vs simulator (i386): {} cases compared, {faked} faked by the kernel, {} disagreements",
        answers.len(),
        disagreements.len()
    );
    assert!(answers.len() > 60 && faked > 30 && faked < answers.len() - 20, "too few cases of each kind");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));

    // A program that compares the wrong number for chown32 must be caught.
    let chown32 = i386.nr("chown32").unwrap();
    let mut mutated = f.program.clone();
    let mut changed = 0;
    for i in &mut mutated {
        if i.code == op::JMP | op::JEQ | op::K && i.k == chown32 {
            i.k = chown32 + 1000;
            changed += 1;
        }
    }
    assert!(changed > 0, "no `jeq #{chown32}` in the program");
    let answers = kernel(&prog, &mutated, &cases, "mutated");
    let (_, disagreements) = compare(&answers, &f.program, &f);
    eprintln!("mutated program (jeq #{chown32} -> #{}): {} disagreements", chown32 + 1000, disagreements.len());
    assert!(
        !disagreements.is_empty() && disagreements.iter().all(|d| d.contains("chown32")),
        "the mutation must show as chown32 disagreements only: {disagreements:#?}"
    );
}

/// `ld [nr]; jeq getppid`, then `A = K0 <alu> args[0]`, returned as ERRNO(A & 0xfff):
/// the ALU corner cases the compiler never emits but `filter sim`/`inspect` may meet.
fn alu_program(getppid: u32, alu: u16, k0: u32) -> Vec<Insn> {
    vec![
        Insn::new(op::LD | op::W | op::ABS, 0, 0, 0),
        Insn::new(op::JMP | op::JEQ | op::K, 1, 0, getppid),
        Insn::new(op::RET | op::K, 0, 0, Action::Allow.to_ret()),
        Insn::new(op::LD | op::W | op::ABS, 0, 0, 16),
        Insn::new(op::MISC | op::TAX, 0, 0, 0),
        Insn::new(op::LD | op::IMM, 0, 0, k0),
        Insn::new(op::ALU | alu | op::X, 0, 0, 0),
        Insn::new(op::ALU | op::AND | op::K, 0, 0, 0xfff),
        Insn::new(op::ALU | op::OR | op::K, 0, 0, 0x0005_0000),
        Insn::new(op::RET | op::A, 0, 0, 0),
    ]
}

/// Division by X = 0 and shifts by X >= 32: the kernel's full action (errno, or killed)
/// must be the simulator's.
#[test]
fn kernel_agrees_with_the_simulator_on_alu_corner_cases() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let Some(prog) = build_program() else { return };
    let f = filter();
    let i386 = f.tables.get("i386").unwrap();
    let getppid = i386.nr("getppid").unwrap();
    let mut shifts: Vec<u32> = (0..=40).collect();
    shifts.extend([63, 64, 255, 0x7fff_ffff, u32::MAX]);
    let mut divisors: Vec<u32> = (1..=10).collect();
    divisors.extend([7777, u32::MAX, 0]); // 0 last: it kills the child
    let runs = [("lsh", op::LSH, 5, &shifts), ("rsh", op::RSH, 0xabcd_1234, &shifts), ("div", op::DIV, 1000, &divisors)];
    let (mut compared, mut disagreements) = (0, Vec::new());
    for (tag, alu, k0, values) in runs {
        let program = alu_program(getppid, alu, k0);
        rootemu_codegen::verifier::verify(&program).unwrap();
        let cases: Vec<String> = values.iter().map(|v| format!("{getppid} {v} 0 0 0 0 0")).collect();
        let (answers, status) = kernel_until_killed(&prog, &program, &cases, tag);
        for (i, v) in values.iter().enumerate() {
            let d = SeccompData { nr: getppid, arch: i386.audit_arch, ip: 0, args: [u64::from(*v), 0, 0, 0, 0, 0], big_endian: false };
            let sim = Action::from_ret(sim::run(&program, &d).unwrap().ret);
            let kernel = match answers.get(i) {
                Some(a) if a.ret < 0 => Some(Action::Errno(a.errno as u16)),
                Some(a) if a.ret == 0 => Some(Action::Errno(0)),
                Some(_) => Some(Action::Allow),
                None if i == answers.len() && status.signal() == Some(libc::SIGSYS) => Some(Action::KillThread),
                None => None,
            };
            compared += 1;
            if kernel != sim {
                disagreements.push(format!("{tag} {k0:#x} by args[0] = {v}: kernel {kernel:?}, simulator {sim:?}"));
            }
        }
    }
    eprintln!("kernel vs simulator (i386 ALU corner cases): {compared} cases compared, {} disagreements", disagreements.len());
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
