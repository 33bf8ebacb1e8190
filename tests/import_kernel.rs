//! Imports the real kernel trees (Debian's linux-source-7.3, -6.12 and -6.1): the shipped
//! tables must be exactly what the importer writes from 7.3 (the newest Debian has),
//! importing is deterministic, s390's 31-bit ABI (gone in 7.x) is kept from 6.12, a tree
//! that renumbers a syscall is refused, 6.12 and 6.1 (asm-generic unistd.h era) import
//! for every ABI with no renumbering, and a few numbers known independently of our tables
//! (libseccomp 2.5.4's `scmp_sys_resolver`, the kernel headers) come out right. Also
//! drives `rootemu tables import/check/diff`.
//!
//! Trees: `$ROOTEMU_KERNEL_7_3` / `_6_12` / `_6_1`, or what `scripts/kernel-sources`
//! fetched and extracted (only the files the importer reads). Missing trees skip the
//! test, or fail it under CI=true.

use rootemu_codegen::Tables;
use rootemu_codegen::import::{ImportOptions, diff, import_tree};
use rootemu_tests::{in_ci, rootemu_bin, tables_dir, workspace};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest kernel Debian ships, which the tables are imported from.
const NEWEST: &str = "7.3";
const NEWEST_RELEASE: &str = "7.3.4";

/// The kernel tree for `version` (`7.3`, `6.12` or `6.1`), or `None` (skip) outside CI.
fn kernel(version: &str) -> Option<PathBuf> {
    let var = format!("ROOTEMU_KERNEL_{}", version.replace('.', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return Some(PathBuf::from(p));
    }
    // Extracts from /usr/src or a cached download if needed; never downloads here.
    let o = Command::new(workspace().join("scripts/kernel-sources"))
        .args(["--no-download", version])
        .output()
        .expect("scripts/kernel-sources runs");
    if o.status.success() {
        return Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    }
    let why = String::from_utf8_lossy(&o.stderr);
    assert!(!in_ci(), "CI=true and linux-source-{version} is missing: run scripts/kernel-sources {version} (or set {var}): {why}");
    eprintln!("SKIPPED: linux-source-{version} not available (scripts/kernel-sources {version} fetches it, or set {var}): {why}");
    None
}

/// A fresh, empty directory under the temp dir.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rootemu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    v.sort();
    v
}

fn import(k: &Path, tables: &Path, out: &Path) -> rootemu_codegen::import::ImportReport {
    import_tree(k, tables, out, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shipped_tables_are_the_newest_import_byte_for_byte_and_deterministic() {
    let Some(k) = kernel(NEWEST) else { return };
    let (a, b) = (scratch("impnew-a"), scratch("impnew-b"));
    let report = import(&k, &tables_dir(), &a);
    assert_eq!(report.kernel, NEWEST_RELEASE);
    import(&k, &tables_dir(), &b);
    let (fa, fb, shipped) = (yaml_files(&a), yaml_files(&b), yaml_files(&tables_dir()));
    assert_eq!(fa, fb, "importing twice differs");
    assert_eq!(fa.len(), shipped.len(), "ABI files: imported {:?}", fa.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((na, ta), (ns, ts)) in fa.iter().zip(&shipped) {
        assert_eq!(na, ns);
        assert!(ta == ts, "tables/{ns} is not what `rootemu tables import` writes from {NEWEST_RELEASE}: re-run the import");
    }
    // Re-importing into the output itself (headers read from generated files) is stable too.
    import(&k, &a, &a);
    assert_eq!(yaml_files(&a), fb);
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}

/// Linux 7.x dropped s390's 31-bit compat ABI (its table has only `common` rows): the
/// import says so and keeps s390 exactly as 6.12 gives it, never the 64-bit numbers.
#[test]
fn the_newest_tree_keeps_s390_from_6_12_with_a_clear_message() {
    let (Some(k7), Some(k612)) = (kernel(NEWEST), kernel("6.12")) else { return };
    let (old, new) = (scratch("s390-612"), scratch("s390-new"));
    import(&k612, &tables_dir(), &old);
    let report = import(&k7, &old, &new);
    let s390 = report.abis.iter().find(|a| a.abi == "s390").unwrap();
    assert_eq!(s390.kept.as_ref().map(|k| k.from.as_str()), Some("6.12.117"));
    assert!(report.abis.iter().filter(|a| a.abi != "s390").all(|a| a.kept.is_none()), "{report}");
    let text = report.to_string();
    let msg = format!(
        "s390: not in Linux {NEWEST_RELEASE}: arch/s390/kernel/syscalls/syscall.tbl has no rows tagged `32` (its tags: `common`) and arch/s390/kernel/syscalls/Makefile generates no unistd_32.h; numbers kept from Linux 6.12.117\n"
    );
    assert!(text.contains(&msg), "{text}");
    let (from_612, kept) =
        (std::fs::read_to_string(old.join("s390.yaml")).unwrap(), std::fs::read_to_string(new.join("s390.yaml")).unwrap());
    let note =
        format!("  not_in: {NEWEST_RELEASE}            # Linux {NEWEST_RELEASE} no longer has this ABI: numbers kept from 6.12.117\n");
    assert_eq!(kept, from_612.replacen("\nsyscalls:", &format!("\n{note}syscalls:"), 1));
    let t = Tables::load_dir(&new).unwrap();
    let (s390, s390x) = (t.get("s390").unwrap(), t.get("s390x").unwrap());
    assert_eq!(s390.kernel(), "6.12.117");
    assert_eq!((s390.nr("chown32"), s390.nr("chown"), s390.nr("lchown")), (Some(212), Some(182), Some(16)));
    assert_eq!((s390x.kernel(), s390x.nr("chown"), s390x.nr("setxattrat")), (NEWEST_RELEASE, Some(212), Some(463)));
    let _ = std::fs::remove_dir_all(old);
    let _ = std::fs::remove_dir_all(new);
}

/// A copy of the cached `version` tree (only the importer's files) with one file edited.
fn edited_tree(version: &str, tag: &str, file: &str, from: &str, to: &str) -> Option<PathBuf> {
    let k = kernel(version)?;
    let d = scratch(tag);
    let st = Command::new("cp").arg("-a").arg(&k).arg(d.join("tree")).status().unwrap();
    assert!(st.success());
    let f = d.join("tree").join(file);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&f, text.replacen(from, to, 1)).unwrap();
    Some(d.join("tree"))
}

#[test]
fn a_tree_whose_table_renumbers_a_syscall_is_refused() {
    let Some(tree) =
        edited_tree(NEWEST, "renumber", "arch/x86/entry/syscalls/syscall_64.tbl", "\n92\tcommon\tchown", "\n999\tcommon\tchown")
    else {
        return;
    };
    let out = scratch("renumber-out");
    let err = import_tree(&tree, &tables_dir(), &out, &ImportOptions::default()).unwrap_err();
    let shipped = std::fs::read_to_string(tables_dir().join("x86_64.yaml")).unwrap();
    let line = shipped.lines().position(|l| l == "  chown: 92").unwrap() + 1;
    let tbl_line = std::fs::read_to_string(tree.join("arch/x86/entry/syscalls/syscall_64.tbl"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("999\t"))
        .unwrap()
        + 1;
    let expect = format!(
        "{}:{line}: ABI `x86_64`: syscall `chown` is 92 in Linux {NEWEST_RELEASE} (this file) but 999 in Linux {NEWEST_RELEASE} ({}:{tbl_line}); Linux never renumbers a syscall, so the import is refused unless the renumbering of `x86_64:chown` is explicitly accepted",
        tables_dir().join("x86_64.yaml").display(),
        tree.join("arch/x86/entry/syscalls/syscall_64.tbl").display()
    );
    // x32 reads the same row: refused there too, and nothing is written.
    assert_eq!(err.0.len(), 2, "{err}");
    assert_eq!(err.0[1].to_string(), expect, "{err}");
    assert!(err.0[0].to_string().contains("ABI `x32`: syscall `chown` is 92 in Linux"), "{err}");
    assert!(yaml_files(&out).is_empty());
    // The CLI: exit 1, the same lines, and how to accept it.
    let tables = tables_dir();
    let (code, _, stderr) = rootemu(&[
        "tables",
        "import",
        "--kernel",
        tree.to_str().unwrap(),
        "--tables",
        tables.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("rootemu: {expect}\n")), "{stderr}");
    assert!(stderr.ends_with("pass --allow-renumber ABI:NAME\n"), "{stderr}");
    let (code, stdout, stderr) = rootemu(&[
        "tables",
        "import",
        "--kernel",
        tree.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--allow-renumber",
        "x86_64:chown",
        "--allow-renumber",
        "x32:chown",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(Tables::load_dir(&out).unwrap().get("x86_64").unwrap().nr("chown"), Some(999));
    let _ = std::fs::remove_dir_all(tree.parent().unwrap());
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn kernel_6_12_imports_every_abi_and_the_newest_only_adds() {
    let Some(k) = kernel("6.12") else { return };
    let out = scratch("imp612");
    let report = import(&k, &tables_dir(), &out);
    assert_eq!(report.kernel, "6.12.117");
    assert!(report.abis.iter().all(|a| a.kept.is_none()), "6.12 still has every ABI: {report}");
    let t = Tables::load_dir(&out).unwrap();
    check_facts(&t, "6.12");
    let shipped = Tables::load_dir(&tables_dir()).unwrap();
    // s390 is shipped as 6.12 gives it; between 6.12 and the newest, numbers are only added.
    let s390 = std::fs::read_to_string(out.join("s390.yaml")).unwrap();
    let shipped_s390 = std::fs::read_to_string(tables_dir().join("s390.yaml")).unwrap();
    assert_eq!(shipped_s390.lines().filter(|l| !l.starts_with("  not_in:")).collect::<Vec<_>>(), s390.lines().collect::<Vec<_>>());
    let d = diff(&t, &shipped);
    assert!(d.added_abis.is_empty() && d.removed_abis.is_empty(), "{d}");
    for a in &d.abis {
        assert!(a.removed.is_empty() && a.renumbered.is_empty(), "{d}");
    }
    let _ = std::fs::remove_dir_all(out);
}

/// (ABI, syscall, the number seccomp sees), cross-checked with libseccomp 2.5.4
/// `scmp_sys_resolver` and the kernel headers; `None` = the ABI has no such call.
const FACTS: &[(&str, &str, Option<u32>)] = &[
    ("x86_64", "chown", Some(92)),
    ("i386", "chown32", Some(212)),
    ("i386", "chown", Some(182)),
    ("aarch64", "fchownat", Some(54)),
    ("aarch64", "chown", None),
    ("ppc64", "chown", Some(181)),
    ("ppc64le", "chown", Some(181)),
    ("s390x", "chown", Some(212)),
    ("s390x", "chown32", None),
    ("s390", "chown32", Some(212)),
    ("x32", "rt_sigaction", Some(0x4000_0000 + 512)),
    ("x32", "read", Some(0x4000_0000)),
    ("mips", "chown", Some(4202)),
    ("mipsel", "chown", Some(4202)),
    ("mips64", "set_mempolicy_home_node", Some(5450)),
    ("mips64n32el", "read", Some(6000)),
    ("arm", "set_tls", Some(0x0f0005)),
    ("arm", "cacheflush", Some(0x0f0002)),
    ("arm", "chown32", Some(212)),
    ("riscv64", "riscv_flush_icache", Some(259)),
];

fn check_facts(t: &Tables, kernel: &str) {
    for (abi, name, nr) in FACTS {
        let a = t.get(abi).unwrap_or_else(|| panic!("{kernel}: no ABI {abi}"));
        assert_eq!(a.nr(name), *nr, "{kernel}: {abi} {name}");
    }
}

#[test]
fn kernel_6_1_imports_every_abi_from_asm_generic_unistd_h() {
    let Some(k) = kernel("6.1") else { return };
    let out = scratch("imp61");
    let report = import(&k, &tables_dir(), &out);
    assert_eq!(report.kernel, "6.1.192");
    let shipped = Tables::load_dir(&tables_dir()).unwrap();
    assert_eq!(report.abis.len(), shipped.abis.len());
    let t = Tables::load_dir(&out).unwrap_or_else(|e| panic!("{e}"));
    check_facts(&t, "6.1");
    let aarch64 = t.get("aarch64").unwrap();
    assert_eq!(aarch64.source.as_ref().unwrap().file, "include/uapi/asm-generic/unistd.h");
    assert_eq!(aarch64.nr("cachestat"), None, "cachestat is 6.5+");
    // 32-bit asm-generic names (__SC_3264 / __NR3264_*): fcntl64 on 32-bit, fcntl on 64-bit.
    assert_eq!(t.get("riscv32").unwrap().nr("fcntl64"), Some(25));
    assert_eq!(t.get("riscv32").unwrap().nr("fcntl"), None);
    assert_eq!(aarch64.nr("fcntl"), Some(25));
    // __ARCH_WANT_SYNC_FILE_RANGE2 (6.1) and the uapi rename (6.12) agree.
    assert_eq!(t.get("csky").unwrap().nr("sync_file_range2"), Some(84));
    assert_eq!(shipped.get("csky").unwrap().nr("sync_file_range2"), Some(84));
    // Between 6.1 and the newest, numbers are only added, never moved or dropped.
    let d = diff(&t, &shipped);
    assert!(d.added_abis.is_empty() && d.removed_abis.is_empty(), "{d}");
    for a in &d.abis {
        assert!(a.removed.is_empty() && a.renumbered.is_empty(), "{d}");
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn shipped_tables_hold_independently_known_numbers() {
    let t = Tables::load_dir(&tables_dir()).unwrap_or_else(|e| panic!("{e}"));
    check_facts(&t, "tables/");
    for a in &t.abis {
        let want = if a.name == "s390" { "6.12.117" } else { NEWEST_RELEASE };
        assert_eq!(a.kernel(), want, "{}", a.name);
    }
    let x = t.get("x86_64").unwrap();
    assert!(x.unimplemented.contains(&"afs_syscall".to_string()));
    assert_eq!(x.nr("cachestat"), Some(451));
}

fn rootemu(args: &[&str]) -> (i32, String, String) {
    let bin = rootemu_bin();
    assert!(bin.exists(), "{} is missing: run `cargo build -p rootemu-cli` (same CARGO_TARGET_DIR) first", bin.display());
    let o = Command::new(bin).args(args).current_dir(workspace()).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn cli_check_accepts_shipped_tables_and_points_at_a_duplicate_number() {
    let (code, out, err) = rootemu(&["tables", "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("37 ABIs") && out.ends_with("ok\n"), "{out}");
    let bad = scratch("cli-bad");
    for (name, text) in yaml_files(&tables_dir()) {
        // x86_64: make `write` collide with `read`.
        let text = if name == "x86_64.yaml" { text.replace("\n  write: 1\n", "\n  write: 0\n") } else { text };
        std::fs::write(bad.join(name), text).unwrap();
    }
    let line = std::fs::read_to_string(bad.join("x86_64.yaml")).unwrap().lines().position(|l| l == "  write: 0").unwrap() + 1;
    let (code, out, err) = rootemu(&["tables", "check", "--tables", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let expect =
        format!("{}:{line}: ABI `x86_64`: syscall `write` has number 0, already used by `read`", bad.join("x86_64.yaml").display());
    assert!(err.lines().any(|l| l == expect), "{err}");
    let _ = std::fs::remove_dir_all(bad);
}

#[test]
fn cli_import_and_diff_6_1_against_6_12_and_the_newest() {
    let (Some(k61), Some(k612)) = (kernel("6.1"), kernel("6.12")) else { return };
    let out = scratch("cli-import");
    let (code, stdout, err) = rootemu(&["tables", "import", "--kernel", k612.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.starts_with("kernel 6.12.117: 37 ABIs\n"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["x86_64", "375", "17", "arch/x86/entry/syscalls/syscall_64.tbl", "[common,", "64]"]),
        "{stdout}"
    );
    let lib = scratch("cli-import-lib");
    import(&k612, &tables_dir(), &lib);
    assert_eq!(yaml_files(&out), yaml_files(&lib));
    // Kernel tree against kernel tree, and kernel tree against a tables directory; exit 1: they differ.
    let (code, d, err) = rootemu(&["tables", "diff", k61.to_str().unwrap(), k612.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let (code, d2, err) = rootemu(&["tables", "diff", k61.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(d, d2);
    // cachestat (451, Linux 6.5), fchmodat2 (452, 6.6), mseal (462, 6.10) are new everywhere;
    // x86_64 gained uretprobe (335, 6.11); lookup_dcookie lost its entry point (6.10).
    assert!(
        d.contains("ABI x86_64 (6.1.192 -> 6.12.117): 13 added, 0 removed, 0 renumbered, 1 now unimplemented, 0 now implemented\n"),
        "{d}"
    );
    for l in ["  + uretprobe 335\n  + cachestat 451\n  + fchmodat2 452\n", "  + mseal 462\n  ! lookup_dcookie now unimplemented\n"] {
        assert!(d.contains(l), "{d}");
    }
    assert!(!d.contains(" removed, 1") && !d.contains("~ "), "{d}");
    // None of the new calls is a policy name or looks like one.
    assert!(d.ends_with("policy root-emulation (tables/policy/root-emulation.yaml): not touched\n"), "{d}");
    let (code, same, _) = rootemu(&["tables", "diff", "tables", "tables"]);
    assert_eq!(
        (code, same.as_str()),
        (
            0,
            "no differences\npolicy consistent (tables/policy/consistent.yaml): not touched\npolicy root-emulation (tables/policy/root-emulation.yaml): not touched\n"
        )
    );
    // 6.12 -> the shipped newest: the calls docs/tables.md reviews, s390 unchanged (kept).
    let (code, d, err) = rootemu(&["tables", "diff", out.to_str().unwrap(), "tables"]);
    assert_eq!(code, 1, "{err}");
    assert!(d.contains(&format!("ABI x86_64 (6.12.117 -> {NEWEST_RELEASE}): 11 added, 0 removed, 0 renumbered")), "{d}");
    for l in ["  + uprobe 336\n", "  + setxattrat 463\n", "  + file_setattr 469\n", "  + fchroot 472\n"] {
        assert!(d.contains(l), "{d}");
    }
    assert!(!d.contains("ABI s390 ") && !d.contains("~ "), "{d}");
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(lib);
}
