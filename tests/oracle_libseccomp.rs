//! Oracle: every name of our tables against libseccomp's own syscall tables, through
//! `scmp_sys_resolver -a <arch> <name>` (Debian bookworm: libseccomp 2.5.4, tables of about
//! Linux 6.0). libseccomp's tables are maintained apart from the kernel's `.tbl` files and
//! from our importer, so a wrong cell of ours disagrees here.
//!
//! The resolver prints the number as the syscall instruction takes it, i.e. what seccomp
//! sees: our `nr_base + n` (x32 carries `__X32_SYSCALL_BIT`, mips o32/n64/n32 4000/5000/6000).
//! A negative answer is one of:
//! - `-1`: libseccomp 2.5.4 does not know the name (newer than its tables): listed, not a failure;
//! - `<= -10000` (`__PNR_<name>`): libseccomp believes the arch has no such call: listed;
//! - `-101 ..= -2xx` (`__PNR_socket`, `__PNR_shmat`, ...): a call libseccomp also reaches through
//!   socketcall/ipc multiplexing; it is then checked the other way, `scmp_sys_resolver -a <arch>
//!   <our number>` must print our name.
//!
//! Any other difference fails.

use rootemu_codegen::Tables;
use rootemu_tests::{Ledger, Verdict, broken_tables, need, par_map, tables_dir, write_report};
use std::collections::BTreeMap;
use std::process::Command;

/// Our ABI name -> libseccomp's arch name (`scmp_sys_resolver -a`). libseccomp 2.5.4 has no
/// sh, m68k, loongarch64, riscv32, sparc, alpha, ... (sh/m68k/loongarch64 came in 2.6).
const ARCHES: &[(&str, &str)] = &[
    ("x86_64", "x86_64"),
    ("x32", "x32"),
    ("i386", "x86"),
    ("aarch64", "aarch64"),
    ("arm", "arm"),
    ("ppc", "ppc"),
    ("ppc64", "ppc64"),
    ("ppc64le", "ppc64le"),
    ("s390", "s390"),
    ("s390x", "s390x"),
    ("mips", "mips"),
    ("mipsel", "mipsel"),
    ("mips64", "mips64"),
    ("mips64el", "mipsel64"),
    ("mips64n32", "mips64n32"),
    ("mips64n32el", "mipsel64n32"),
    ("riscv64", "riscv64"),
    ("parisc", "parisc"),
    ("parisc64", "parisc64"),
];

fn resolver(arch: &str, arg: &str) -> String {
    let out = Command::new("scmp_sys_resolver").args(["-a", arch, arg]).output().expect("scmp_sys_resolver");
    assert!(out.status.success(), "scmp_sys_resolver -a {arch} {arg}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// libseccomp's number for `name` on `arch`.
fn resolve(arch: &str, name: &str) -> i64 {
    let s = resolver(arch, name);
    s.parse().unwrap_or_else(|_| panic!("scmp_sys_resolver -a {arch} {name}: unexpected output {s:?}"))
}

/// libseccomp's answer for one of our cells: (number for the name, name for our number if
/// the number is a multiplexing pseudo number).
fn answer(arch: &str, name: &str, ours: i64) -> (i64, Option<String>) {
    let v = resolve(arch, name);
    let back = (-10000 < v && v < -1).then(|| resolver(arch, &ours.to_string()));
    (v, back)
}

/// libseccomp's answer for every (our ABI, name) pair asked, resolved in parallel.
fn resolve_all(jobs: &[(&str, &str, String, i64)]) -> BTreeMap<(String, String), (i64, Option<String>)> {
    let threads = std::thread::available_parallelism().map_or(8, |n| n.get() * 2).min(64);
    let answers = par_map(jobs, threads, |(_, arch, name, ours)| answer(arch, name, *ours));
    jobs.iter().zip(answers).map(|((abi, _, name, _), v)| ((abi.to_string(), name.clone()), v)).collect()
}

#[derive(Default)]
struct Report {
    compared: usize,
    disagreements: Vec<String>,
    /// Names libseccomp 2.5.4 does not know (-1: newer than its tables).
    unknown: Vec<String>,
    /// Names libseccomp 2.5.4 says this arch lacks (`__PNR_*`, <= -10000).
    not_on_arch: Vec<String>,
    /// Multiplexed calls (socketcall/ipc pseudo numbers) confirmed by reverse resolution.
    multiplexed: usize,
    /// Every table cell: (name, seccomp number, verdict).
    cells: Vec<(String, u64, Verdict)>,
}

/// Compares the given ABIs of `tables` with libseccomp.
fn check(tables: &Tables, abis: &[(&str, &str)]) -> BTreeMap<String, Report> {
    let mut jobs = Vec::new();
    for (abi, arch) in abis {
        let a = tables.get(abi).unwrap_or_else(|| panic!("no table {abi}"));
        jobs.extend(a.syscalls.iter().map(|(name, n)| (*abi, *arch, name.clone(), i64::from(a.nr_base) + i64::from(*n))));
    }
    let answers = resolve_all(&jobs);
    let mut reports = BTreeMap::new();
    for (abi, _) in abis {
        let a = tables.get(abi).unwrap();
        let r: &mut Report = reports.entry(abi.to_string()).or_default();
        for (name, n) in &a.syscalls {
            let ours = i64::from(a.nr_base) + i64::from(*n);
            let (theirs, back) = &answers[&(abi.to_string(), name.clone())];
            let theirs = *theirs;
            let verdict = if theirs == -1 {
                r.unknown.push(format!("{name}={ours}"));
                Verdict::Explained("unknown to libseccomp 2.5.4 (newer than its tables)".into())
            } else if theirs <= -10000 {
                r.not_on_arch.push(format!("{name}={ours}"));
                Verdict::Explained("libseccomp 2.5.4: not on this arch".into())
            } else if let Some(back) = back {
                r.compared += 1;
                r.multiplexed += 1;
                if back != name {
                    r.disagreements
                        .push(format!("{abi} {name}: table {ours}, libseccomp names {ours} `{back}` ({name} is pseudo {theirs})"));
                    Verdict::Disagree(format!("libseccomp names {ours} `{back}`"))
                } else {
                    Verdict::Agree
                }
            } else {
                r.compared += 1;
                if theirs != ours {
                    r.disagreements.push(format!("{abi} {name}: table {ours}, libseccomp {theirs}"));
                    Verdict::Disagree(format!("libseccomp {theirs}"))
                } else {
                    Verdict::Agree
                }
            };
            r.cells.push((name.clone(), u64::from(a.nr_base + n), verdict));
        }
    }
    reports
}

#[test]
fn the_resolver_speaks_seccomp_numbers() {
    if !need("scmp_sys_resolver", "libseccomp oracle (Debian package seccomp)") {
        return;
    }
    // Known cells, as the syscall instruction takes them.
    assert_eq!(resolve("x86_64", "chown"), 92);
    assert_eq!(resolve("x32", "chown"), 0x4000_0000 + 92);
    assert_eq!(resolve("mips", "chown"), 4202);
    assert_eq!(resolve("mips64", "chown"), 5090);
    assert_eq!(resolve("mips64n32", "chown"), 6090);
    assert_eq!(resolve("arm", "set_tls"), 0x0f_0005);
    assert!(resolve("x86_64", "no_such_syscall_rootemu") < 0);
}

#[test]
fn every_name_agrees_with_libseccomp() {
    if !need("scmp_sys_resolver", "libseccomp oracle (Debian package seccomp)") {
        return;
    }
    let t0 = std::time::Instant::now();
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let reports = check(&tables, ARCHES);
    let mut summary = String::from(
        "## Oracle 2: libseccomp 2.5.4 (scmp_sys_resolver)\n\n\
         | ABI | libseccomp arch | cells compared | of which multiplexed (checked by number) | disagreements | unknown to libseccomp 2.5.4 | libseccomp: not on this arch |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut details = String::from("\n### Names libseccomp 2.5.4 does not know (name=our seccomp number)\n\n");
    let mut not_on_arch = String::from("\n### Names libseccomp 2.5.4 says the arch lacks (`__PNR_*`)\n\n");
    let (mut cells, mut bad, mut ledger) = (0, Vec::new(), Ledger::new("libseccomp"));
    for (abi, arch) in ARCHES {
        let r = &reports[*abi];
        for (name, nr, v) in &r.cells {
            ledger.record(abi, name, *nr, v.clone());
        }
        assert!(r.compared > 250, "{abi}: only {} names resolved: is scmp_sys_resolver working?", r.compared);
        cells += r.compared;
        summary.push_str(&format!(
            "| {abi} | {arch} | {} | {} | {} | {} | {} |\n",
            r.compared,
            r.multiplexed,
            r.disagreements.len(),
            r.unknown.len(),
            r.not_on_arch.len()
        ));
        details.push_str(&format!("- {abi}: {}\n", r.unknown.join(", ")));
        if !r.not_on_arch.is_empty() {
            not_on_arch.push_str(&format!("- {abi}: {}\n", r.not_on_arch.join(", ")));
        }
        bad.extend(r.disagreements.iter().cloned());
    }
    summary.push_str(&format!("\n{cells} cells compared, {} disagreements, in {:.1?}\n", bad.len(), t0.elapsed()));
    summary.push_str(&details);
    summary.push_str(&not_on_arch);
    ledger.write();
    write_report("libseccomp", &summary);
    assert!(bad.is_empty(), "disagreements with libseccomp:\n{}", bad.join("\n"));
}

#[test]
fn a_wrong_cell_is_caught() {
    if !need("scmp_sys_resolver", "libseccomp oracle (Debian package seccomp)") {
        return;
    }
    // 93 and 55 are taken (fchown, fchown): the loader rejects a duplicate number, so the
    // wrong cells use 500, free on both ABIs.
    let dir = broken_tables(
        "oracle-libseccomp",
        &[("x86_64.yaml", "\n  chown: 92\n", "\n  chown: 500\n"), ("aarch64.yaml", "\n  fchownat: 54\n", "\n  fchownat: 500\n")],
    );
    let broken = Tables::load_dir(&dir).unwrap();
    let reports = check(&broken, &[("x86_64", "x86_64"), ("aarch64", "aarch64"), ("x32", "x32")]);
    let bad: Vec<String> = reports.values().flat_map(|r| r.disagreements.iter().cloned()).collect();
    assert_eq!(bad, ["aarch64 fchownat: table 500, libseccomp 54", "x86_64 chown: table 500, libseccomp 92"]);
    let _ = std::fs::remove_dir_all(dir);
}
