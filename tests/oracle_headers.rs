//! Oracle: every `__NR_*` of the Linux 6.1 uapi headers that Debian's cross toolchains ship
//! (`linux-libc-dev-*-cross`, plus the host's own) against our tables, both ways. The
//! headers are not read by our importer: a wrong cell in a table disagrees here.

use rootemu_codegen::Tables;
use rootemu_tests::{in_ci, tables_dir};
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

/// Names in our 6.12 tables that the 6.1 headers cannot have, with the release that added them.
fn newer_than_6_1(abi: &str, name: &str, n: u32) -> Option<&'static str> {
    // alpha numbers the common calls 110 higher.
    let common = if abi == "alpha" { n.checked_sub(110) } else { Some(n) };
    match (abi, name) {
        _ if common.is_some_and(|c| (451..500).contains(&c)) => Some("451-462: Linux 6.5-6.10"),
        ("x86_64" | "x32", "uretprobe") => Some("Linux 6.11"),
        ("riscv64", "riscv_hwprobe") => Some("Linux 6.4"),
        // Wired on these ABIs after 6.1 (absent from the 6.1 tree's syscall table).
        ("s390x", "memfd_secret") | ("alpha", "clone3") | ("parisc", "cacheflush") => Some("wired after Linux 6.1"),
        // An oracle gap, not a table error: row 388 of 6.1's arch/sh syscall.tbl, missing
        // from the unistd_32.h of Debian's linux-libc-dev-sh4-cross.
        ("sh", "sync_file_range2") => Some("missing from the sh4 cross header"),
        _ => None,
    }
}

/// Every `__NR_*` (and arm's `__ARM_NR_*`) the header defines, evaluated.
fn header_numbers(dir: &str, header: &str, flags: &[&str]) -> BTreeMap<String, u64> {
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
    }
    out
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

struct Report {
    compared: usize,
    disagreements: Vec<String>,
    only_in_table: Vec<String>,
    only_in_headers: usize,
}

fn check(tables: &Tables, abi: &str, headers: &BTreeMap<String, u64>) -> Report {
    let a = tables.get(abi).unwrap_or_else(|| panic!("no table {abi}"));
    let mut r = Report { compared: 0, disagreements: Vec::new(), only_in_table: Vec::new(), only_in_headers: 0 };
    for (name, n) in &a.syscalls {
        let ours = u64::from(a.nr_base + n);
        match headers.get(name) {
            Some(&h) => {
                r.compared += 1;
                if h != ours {
                    r.disagreements.push(format!("{abi} {name}: table {ours}, headers {h}"));
                }
            }
            None => match newer_than_6_1(abi, name, *n) {
                Some(why) => r.only_in_table.push(format!("{name} ({why})")),
                None => {
                    r.disagreements.push(format!("{abi} {name}: in the table ({ours}) but not in the 6.1 headers, and not newer than 6.1"))
                }
            },
        }
    }
    r.only_in_headers = headers.keys().filter(|k| !a.syscalls.contains_key(*k)).count();
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

#[test]
fn every_shared_cell_agrees_with_the_kernel_headers() {
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let mut summary = String::from(
        "| ABI | cells compared | disagreements | only in table (newer than 6.1) | only in headers |\n|---|---:|---:|---:|---:|\n",
    );
    let mut all_bad = Vec::new();
    let mut cells = 0;
    for (abi, dir, header, flags) in available() {
        let r = check(&tables, abi, &header_numbers(dir, header, flags));
        assert!(r.compared > 250, "{abi}: only {} names compared: header evaluation is broken", r.compared);
        cells += r.compared;
        summary.push_str(&format!(
            "| {abi} | {} | {} | {} | {} |\n",
            r.compared,
            r.disagreements.len(),
            r.only_in_table.len(),
            r.only_in_headers
        ));
        all_bad.extend(r.disagreements);
    }
    eprintln!("oracle, Linux 6.1 kernel headers: {cells} cells compared\n{summary}");
    assert!(all_bad.is_empty(), "{}", all_bad.join("\n"));
}

#[test]
fn a_wrong_cell_is_caught() {
    let Some((abi, dir, header, flags)) = available().into_iter().find(|e| e.0 == "aarch64") else { return };
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let dir_copy = std::env::temp_dir().join(format!("rootemu-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir_copy).unwrap();
    let text = std::fs::read_to_string(tables_dir().join("aarch64.yaml")).unwrap();
    assert!(text.contains("\n  fchownat: 54\n"));
    std::fs::write(dir_copy.join("aarch64.yaml"), text.replace("\n  fchownat: 54\n", "\n  fchownat: 999\n")).unwrap();
    let broken = Tables::load_dir(&dir_copy).unwrap();
    let headers = header_numbers(dir, header, flags);
    assert!(check(&tables, abi, &headers).disagreements.is_empty());
    let r = check(&broken, abi, &headers);
    assert_eq!(r.disagreements, ["aarch64 fchownat: table 999, headers 54"]);
    let _ = std::fs::remove_dir_all(dir_copy);
}
