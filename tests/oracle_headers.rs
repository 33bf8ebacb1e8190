//! Oracle: every `__NR_*` of the Linux 6.1 uapi headers that Debian's cross toolchains ship
//! (`linux-libc-dev-*-cross`, plus the host's own) against our tables, both ways. The
//! headers are not read by our importer: a wrong cell in a table disagrees here.

use rootemu_codegen::Tables;
use rootemu_tests::{Ledger, Verdict, broken_tables, in_ci, tables_dir, write_report};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// (ABI, include dir, header, cpp flags). The flags select what the target compiler would.
const HEADERS: &[(&str, &str, &str, &[&str])] = &[
    ("x86_64", "/usr/include/x86_64-linux-gnu", "asm/unistd_64.h", &[]),
    ("i386", "/usr/include/x86_64-linux-gnu", "asm/unistd_32.h", &[]),
    ("x32", "/usr/include/x86_64-linux-gnu", "asm/unistd_x32.h", &["-D__X32_SYSCALL_BIT=0x40000000"]),
    ("aarch64", "/usr/aarch64-linux-gnu/include", "asm/unistd.h", &[]),
    ("arm", "/usr/arm-linux-gnueabihf/include", "asm/unistd.h", &["-D__ARM_EABI__", "-U__LP64__"]),
    ("ppc64le", "/usr/powerpc64le-linux-gnu/include", "asm/unistd.h", &["-D__powerpc64__"]),
    ("ppc64", "/usr/powerpc64-linux-gnu/include", "asm/unistd.h", &["-D__powerpc64__"]),
    ("ppc", "/usr/powerpc-linux-gnu/include", "asm/unistd.h", &["-U__LP64__"]),
    ("s390x", "/usr/s390x-linux-gnu/include", "asm/unistd.h", &["-D__s390x__"]),
    ("mips", "/usr/mips-linux-gnu/include", "asm/unistd.h", &["-D_MIPS_SIM=1", "-U__LP64__"]),
    ("mipsel", "/usr/mipsel-linux-gnu/include", "asm/unistd.h", &["-D_MIPS_SIM=1", "-U__LP64__"]),
    ("mips64", "/usr/mips64-linux-gnuabi64/include", "asm/unistd.h", &["-D_MIPS_SIM=3"]),
    ("mips64el", "/usr/mips64el-linux-gnuabi64/include", "asm/unistd.h", &["-D_MIPS_SIM=3"]),
    ("mips64n32el", "/usr/mips64el-linux-gnuabi64/include", "asm/unistd.h", &["-D_MIPS_SIM=2", "-U__LP64__"]),
    ("riscv64", "/usr/riscv64-linux-gnu/include", "asm/unistd.h", &[]),
    ("m68k", "/usr/m68k-linux-gnu/include", "asm/unistd.h", &["-U__LP64__"]),
    ("sh", "/usr/sh4-linux-gnu/include", "asm/unistd.h", &["-U__LP64__"]),
    ("alpha", "/usr/alpha-linux-gnu/include", "asm/unistd.h", &[]),
    ("parisc", "/usr/hppa-linux-gnu/include", "asm/unistd.h", &["-U__LP64__"]),
    ("sparc64", "/usr/sparc64-linux-gnu/include", "asm/unistd.h", &["-D__arch64__"]),
];

/// Names in our tables (Linux 7.3, s390 6.12) that the 6.1 headers cannot have, with the
/// release that added them.
fn newer_than_6_1(abi: &str, name: &str, n: u32) -> Option<&'static str> {
    // alpha numbers the common calls 110 higher.
    let common = if abi == "alpha" { n.checked_sub(110) } else { Some(n) };
    match (abi, name) {
        _ if common.is_some_and(|c| (451..500).contains(&c)) => Some("451-472: Linux 6.5 and later"),
        ("x86_64" | "x32", "uretprobe") => Some("Linux 6.11"),
        // Not in the 6.12 tree's tables, in the 7.3 tree's.
        ("x86_64" | "x32", "uprobe") | ("sparc64", "clone3") => Some("wired after Linux 6.12"),
        ("riscv64", "riscv_hwprobe") => Some("Linux 6.4"),
        // Wired on these ABIs after 6.1 (absent from the 6.1 tree's syscall table).
        ("s390x", "memfd_secret") | ("alpha", "clone3") | ("parisc", "cacheflush") => Some("wired after Linux 6.1"),
        // An oracle gap, not a table error: row 388 of 6.1's arch/sh syscall.tbl, missing
        // from the unistd_32.h of Debian's linux-libc-dev-sh4-cross.
        ("sh", "sync_file_range2") => Some("missing from the sh4 cross header"),
        _ => None,
    }
}

/// Every `__NR_*` (and arm's `__ARM_NR_*`) the header defines, evaluated; and the names
/// whose macro is just another syscall macro (aliases), with their target.
struct Headers {
    nr: BTreeMap<String, u64>,
    alias: BTreeMap<String, String>,
}

fn header_numbers(dir: &str, header: &str, flags: &[&str]) -> Headers {
    let out = Command::new("cpp")
        .args(["-dM", "-nostdinc", "-I", dir])
        .args(flags)
        .args(["-include", header, "/dev/null"])
        .output()
        .expect("cpp");
    assert!(out.status.success(), "cpp {header} in {dir}: {}", String::from_utf8_lossy(&out.stderr));
    let defs: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut out = BTreeMap::new();
    let mut alias = BTreeMap::new();
    for k in defs.keys() {
        let name = if let Some(n) = k.strip_prefix("__NR_") {
            n
        } else if let Some(n) = k.strip_prefix("__ARM_NR_") {
            n
        } else {
            continue;
        };
        if name == "syscalls" || name.ends_with("_syscalls") || name == "Linux" || name == "BASE" || name == "arch_specific_syscall" {
            continue;
        }
        if let Some(v) = eval(k, &defs, 0) {
            out.insert(name.to_string(), v);
        }
        let body = defs[k].trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace());
        if let Some(t) = body.strip_prefix("__NR_").or_else(|| body.strip_prefix("__ARM_NR_")) {
            if t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                alias.insert(name.to_string(), t.to_string());
            }
        }
    }
    Headers { nr: out, alias }
}

/// Evaluates a macro made of numbers, other macros, `+`, `-` and parentheses.
fn eval(name: &str, defs: &BTreeMap<String, String>, depth: u32) -> Option<u64> {
    let body = defs.get(name)?;
    if depth > 16 {
        return None;
    }
    let mut total: i64 = 0;
    let mut sign = 1;
    for tok in body.replace(['(', ')'], " ").replace('+', " + ").replace('-', " - ").split_whitespace() {
        match tok {
            "+" => sign = 1,
            "-" => sign = -1,
            t => {
                let numeric = t.starts_with(|c: char| c.is_ascii_digit());
                let t = if numeric { t.trim_end_matches(['U', 'L', 'u', 'l']) } else { t };
                let v = if let Some(h) = t.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()?
                } else if t.chars().all(|c| c.is_ascii_digit()) {
                    t.parse().ok()?
                } else {
                    eval(t, defs, depth + 1)? as i64
                };
                total += sign * v;
            }
        }
    }
    u64::try_from(total).ok()
}

#[derive(Default)]
struct Report {
    compared: usize,
    disagreements: Vec<String>,
    only_in_table: Vec<String>,
    /// Names the 6.1 headers define and the table does not, with the reason.
    only_in_headers: Vec<String>,
    /// Every table cell: (name, seccomp number, verdict).
    cells: Vec<(String, u64, Verdict)>,
}

/// Why a `__NR_*` of the 6.1 headers is not a name of our table. `None` fails the test:
/// the table would lack a syscall the kernel has.
fn header_only_reason(abi: &str, name: &str, alias_of: Option<&str>, table: &BTreeMap<String, u32>) -> Option<String> {
    if let Some(target) = alias_of.filter(|t| table.contains_key(*t)) {
        // `#define __NR_umount __NR_umount2`, `__NR_sync_file_range2 __NR_arm_sync_file_range`,
        // alpha's `__NR_getpid __NR_getxpid`: the number is compared under `target`.
        return Some(format!("alias of {target}"));
    }
    Some(match (abi, name) {
        ("arm", "SYSCALL_BASE" | "OABI_SYSCALL_BASE" | "SYSCALL_MASK") => "base/mask constant, no syscall".into(),
        _ if name.starts_with("unused") || name.starts_with("reserved") => "placeholder row (sys_ni_syscall)".into(),
        _ => return None,
    })
}

fn check(tables: &Tables, abi: &str, h: &Headers) -> Report {
    let headers = &h.nr;
    let a = tables.get(abi).unwrap_or_else(|| panic!("no table {abi}"));
    let mut r = Report::default();
    for (name, n) in &a.syscalls {
        let ours = u64::from(a.nr_base + n);
        let verdict = match headers.get(name) {
            Some(&h) => {
                r.compared += 1;
                if h != ours {
                    r.disagreements.push(format!("{abi} {name}: table {ours}, headers {h}"));
                    Verdict::Disagree(format!("headers {h}"))
                } else {
                    Verdict::Agree
                }
            }
            None => match newer_than_6_1(abi, name, *n) {
                Some(why) => {
                    r.only_in_table.push(format!("{name} ({why})"));
                    Verdict::Explained(format!("not in the 6.1 headers: {why}"))
                }
                None => {
                    r.disagreements.push(format!("{abi} {name}: in the table ({ours}) but not in the 6.1 headers, and not newer than 6.1"));
                    Verdict::Disagree("not in the 6.1 headers".into())
                }
            },
        };
        r.cells.push((name.clone(), ours, verdict));
    }
    for (name, nr) in headers.iter().filter(|(k, _)| !a.syscalls.contains_key(*k)) {
        match header_only_reason(abi, name, h.alias.get(name).map(String::as_str), &a.syscalls) {
            Some(why) => r.only_in_headers.push(format!("{name}={nr} ({why})")),
            None => r.disagreements.push(format!("{abi} {name}: in the 6.1 headers ({nr}) but not in the table, no known reason")),
        }
    }
    r
}

fn available() -> Vec<&'static (&'static str, &'static str, &'static str, &'static [&'static str])> {
    let found: Vec<_> = HEADERS.iter().filter(|(_, dir, h, _)| Path::new(dir).join(h).exists()).collect();
    if in_ci() {
        let missing: Vec<&str> = HEADERS.iter().filter(|e| !found.contains(e)).map(|e| e.0).collect();
        assert!(missing.is_empty(), "CI=true and headers are missing for {missing:?} (scripts/setup-deps installs them)");
    }
    found
}

/// Runs the oracle on `tables`: (markdown report, every disagreement, ledger of every cell).
fn run(tables: &Tables) -> (String, Vec<String>, Ledger) {
    let mut summary = String::from(
        "## Oracle 1: Linux 6.1 uapi headers (cpp -dM)\n\n\
         | ABI | cells compared | disagreements | only in table (newer than 6.1) | only in headers |\n|---|---:|---:|---:|---:|\n",
    );
    let mut details = String::from("\n### Only in our table (newer than the 6.1 headers)\n\n");
    let mut header_only = String::from("\n### Only in the 6.1 headers\n\n");
    let mut all_bad = Vec::new();
    let mut cells = 0;
    let mut ledger = Ledger::new("headers");
    for (abi, dir, header, flags) in available() {
        let r = check(tables, abi, &header_numbers(dir, header, flags));
        assert!(r.compared > 250, "{abi}: only {} names compared: header evaluation is broken", r.compared);
        cells += r.compared;
        summary.push_str(&format!(
            "| {abi} | {} | {} | {} | {} |\n",
            r.compared,
            r.disagreements.len(),
            r.only_in_table.len(),
            r.only_in_headers.len()
        ));
        details.push_str(&format!("- {abi}: {}\n", r.only_in_table.join(", ")));
        if !r.only_in_headers.is_empty() {
            header_only.push_str(&format!("- {abi}: {}\n", r.only_in_headers.join(", ")));
        }
        all_bad.extend(r.disagreements);
        for (name, nr, v) in r.cells {
            ledger.record(abi, &name, nr, v);
        }
    }
    summary.push_str(&format!("\n{cells} cells compared, {} disagreements\n", all_bad.len()));
    summary.push_str(&details);
    summary.push_str(&header_only);
    (summary, all_bad, ledger)
}

#[test]
fn every_shared_cell_agrees_with_the_kernel_headers() {
    let t0 = std::time::Instant::now();
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let (mut summary, bad, ledger) = run(&tables);
    ledger.write();
    summary.push_str(&format!("\n(in {:.1?})\n", t0.elapsed()));
    write_report("headers", &summary);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_wrong_cell_is_caught() {
    let needed = ["x86_64", "aarch64"];
    if !needed.iter().all(|abi| available().iter().any(|e| e.0 == *abi)) {
        return;
    }
    // The brief's 93 and 55 are taken (fchown on both ABIs) and the loader rejects a
    // duplicate number, so the wrong cells use 500, free on both.
    let edits = [("x86_64.yaml", "\n  chown: 92\n", "\n  chown: 500\n"), ("aarch64.yaml", "\n  fchownat: 54\n", "\n  fchownat: 500\n")];
    let dir = broken_tables("oracle-headers", &edits);
    let broken = Tables::load_dir(&dir).unwrap();
    let (_, bad, _) = run(&broken);
    assert_eq!(bad, ["x86_64 chown: table 500, headers 92", "aarch64 fchownat: table 500, headers 54"]);
    let _ = std::fs::remove_dir_all(dir);
}
