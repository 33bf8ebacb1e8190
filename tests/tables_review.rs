//! `rootemu tables diff` flags the policies a table change touches, and `tables show`
//! prints the syscall x ABI matrix.

use rootemu_tests::{rootemu_bin, tables_dir};
use std::process::Command;

fn copy_tables(to: &std::path::Path) {
    std::fs::create_dir_all(to.join("policy")).unwrap();
    for sub in ["", "shared"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for e in std::fs::read_dir(tables_dir().join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                std::fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    std::fs::copy(tables_dir().join("policy/root-emulation.yaml"), to.join("policy/root-emulation.yaml")).unwrap();
}

#[test]
fn a_new_chown_like_syscall_flags_the_policy_for_review() {
    let dir = std::env::temp_dir().join(format!("rootemu-review-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tables(&dir);
    let f = dir.join("x86_64.yaml");
    let text = std::fs::read_to_string(&f).unwrap().replace("\n  fchownat: 260\n", "\n  fchownat: 260\n  fchownat2: 999\n");
    std::fs::write(&f, text).unwrap();
    let out = Command::new(rootemu_bin())
        .args(["tables", "diff"])
        .arg(tables_dir())
        .arg(&dir)
        .arg("--tables")
        .arg(tables_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("+ fchownat2 999"), "{stdout}");
    assert!(stdout.contains("policy root-emulation") && stdout.contains("REVIEW"), "{stdout}");
    assert!(stdout.contains("fchownat2 (like fchownat)"), "{stdout}");
    // The same tables on both sides touch nothing.
    let same = Command::new(rootemu_bin())
        .args(["tables", "diff"])
        .arg(tables_dir())
        .arg(tables_dir())
        .arg("--tables")
        .arg(tables_dir())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&same.stdout).contains("not touched"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn show_prints_numbers_per_abi_and_marks_absent_names() {
    let out = Command::new(rootemu_bin()).args(["tables", "show", "--abi", "aarch64", "--abi", "i386"]).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(s.starts_with("| syscall | aarch64 | i386 |"), "{s}");
    // aarch64 has no chown: no number, so no compare in the program.
    assert!(s.lines().any(|l| l.starts_with("| chown |") && l.contains("| - |")), "{s}");
    assert!(s.lines().any(|l| l.starts_with("| mknod* |")), "{s}");
}
