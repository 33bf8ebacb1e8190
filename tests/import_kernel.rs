//! Imports the real kernel trees (Debian's linux-source-6.12 and -6.1): the shipped
//! tables must be exactly what the importer writes from 6.12, importing is
//! deterministic, 6.1 (asm-generic unistd.h era) imports for every ABI, and a few
//! numbers known independently of our tables (libseccomp 2.5.4's `scmp_sys_resolver`,
//! the kernel headers) come out right. Also drives `rootemu tables import/check/diff`.
//!
//! Trees: `$ROOTEMU_KERNEL_6_12` / `$ROOTEMU_KERNEL_6_1`, or extracted (only the files
//! needed) from `/usr/src/linux-source-6.{12,1}.tar.xz` into `<target>/kernel-cache/`.

use rootemu_codegen::Tables;
use rootemu_codegen::import::{diff, import_tree};
use rootemu_tests::{need_path, rootemu_bin, tables_dir, workspace};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Files the importer reads, as `tar --wildcards` patterns under the top directory.
const PATTERNS: &[&str] = &[
    "Makefile",
    "scripts/syscall.tbl",
    "scripts/Makefile.asm-headers",
    "arch/*/kernel/Makefile.syscalls",
    "arch/*/kernel/syscalls/*.tbl",
    "arch/*/entry/syscalls/*.tbl",
    "arch/*/tools/syscall*.tbl",
    "arch/*/include/uapi/asm/unistd.h",
    "include/uapi/asm-generic/unistd.h",
];

static EXTRACT: Mutex<()> = Mutex::new(());

/// The kernel tree for `version` (`6.12` or `6.1`), or `None` (skip) outside CI.
fn kernel(version: &str) -> Option<PathBuf> {
    let var = format!("ROOTEMU_KERNEL_{}", version.replace('.', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return Some(PathBuf::from(p));
    }
    let tarball = PathBuf::from(format!("/usr/src/linux-source-{version}.tar.xz"));
    if !need_path(&tarball, &format!("Debian's linux-source-{version}, or set {var}")) {
        return None;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let cache = target.join("kernel-cache").join(version);
    let top = format!("linux-source-{version}");
    let tree = cache.join(&top);
    let _guard = EXTRACT.lock().unwrap_or_else(|e| e.into_inner());
    if cache.join(".complete").exists() {
        return Some(tree);
    }
    // Extract next to the cache and rename: concurrent test binaries never see half a tree.
    let tmp = target.join("kernel-cache").join(format!(".{version}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let o = Command::new("tar")
        .arg("-xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&tmp)
        .arg("--wildcards")
        .args(PATTERNS.iter().map(|p| format!("{top}/{p}")))
        .output()
        .expect("tar runs");
    // Older trees lack some files (scripts/syscall.tbl before 6.11): tar then fails
    // with "Not found in archive" for those patterns only.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let only_missing = stderr.lines().all(|l| l.contains("Not found in archive") || l.contains("Exiting with failure status"));
    assert!(o.status.success() || only_missing, "tar failed extracting {}: {stderr}", tarball.display());
    assert!(tmp.join(&top).join("Makefile").is_file(), "{} has no {top}/Makefile", tarball.display());
    std::fs::write(tmp.join(".complete"), "").unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    if std::fs::rename(&tmp, &cache).is_err() {
        let _ = std::fs::remove_dir_all(&tmp); // another process won the race
    }
    Some(tree)
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

#[test]
fn shipped_tables_are_the_6_12_import_byte_for_byte_and_deterministic() {
    let Some(k) = kernel("6.12") else { return };
    let (a, b) = (scratch("imp612a"), scratch("imp612b"));
    let report = import_tree(&k, &tables_dir(), &a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.kernel, "6.12.117");
    import_tree(&k, &tables_dir(), &b).unwrap_or_else(|e| panic!("{e}"));
    let (fa, fb, shipped) = (yaml_files(&a), yaml_files(&b), yaml_files(&tables_dir()));
    assert_eq!(fa, fb, "importing twice differs");
    assert_eq!(fa.len(), shipped.len(), "ABI files: imported {:?}", fa.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((na, ta), (ns, ts)) in fa.iter().zip(&shipped) {
        assert_eq!(na, ns);
        assert!(ta == ts, "tables/{ns} is not what `rootemu tables import` writes from 6.12.117: re-run the import");
    }
    // Re-importing into the output itself (headers read from generated files) is stable too.
    import_tree(&k, &a, &a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(yaml_files(&a), fb);
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
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
    let report = import_tree(&k, &tables_dir(), &out).unwrap_or_else(|e| panic!("{e}"));
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
    // Between 6.1 and 6.12 numbers are only added, never moved or dropped.
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
        assert_eq!(a.kernel(), "6.12.117", "{}", a.name);
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
fn cli_import_and_diff_6_1_against_6_12() {
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
    assert_eq!(yaml_files(&out), yaml_files(&tables_dir()));
    // Kernel tree against kernel tree, and kernel tree against a tables directory.
    let (code, d, err) = rootemu(&["tables", "diff", k61.to_str().unwrap(), k612.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, d2, err) = rootemu(&["tables", "diff", k61.to_str().unwrap(), "tables"]);
    assert_eq!(code, 0, "{err}");
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
    let (code, same, _) = rootemu(&["tables", "diff", "tables", out.to_str().unwrap()]);
    assert_eq!((code, same.as_str()), (0, "no differences\npolicy root-emulation (tables/policy/root-emulation.yaml): not touched\n"));
    let _ = std::fs::remove_dir_all(out);
}
