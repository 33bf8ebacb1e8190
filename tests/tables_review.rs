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
    assert_eq!(out.status.code(), Some(1), "differences: exit 1; {}", String::from_utf8_lossy(&out.stderr));
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
    assert_eq!(same.status.code(), Some(0), "no differences: exit 0");
    let _ = std::fs::remove_dir_all(&dir);
}

fn diff(args: &[&std::ffi::OsStr], cwd: &std::path::Path) -> (i32, String, String) {
    let o = Command::new(rootemu_bin()).args(["tables", "diff"]).args(args).current_dir(cwd).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Outside a tables checkout (no `tables/` in the working directory) the review is not
/// dropped: the bundled policy is reviewed. A policy that itself changed is never "not
/// touched". Exit status: 0 same, 1 differences (a changed policy included), 2 error.
#[test]
fn diff_reviews_outside_a_checkout_flags_changed_policies_and_has_an_exit_status() {
    let base = std::env::temp_dir().join(format!("rootemu-review2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (old, new) = (base.join("old"), base.join("new"));
    copy_tables(&old);
    copy_tables(&new);
    let f = new.join("x86_64.yaml");
    let text = std::fs::read_to_string(&f).unwrap().replace("\n  fchownat: 260\n", "\n  fchownat: 260\n  fchownat2: 999\n");
    std::fs::write(&f, text).unwrap();
    // Not in a checkout, and the policy directories of both sides removed: the bundled one.
    for d in [&old, &new] {
        std::fs::remove_dir_all(d.join("policy")).unwrap();
    }
    let (code, out, err) = diff(&[old.as_os_str(), new.as_os_str()], &base);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("policy root-emulation (bundled): REVIEW\n") && out.contains("fchownat2 (like fchownat)"), "{out}");
    // Same tables, but the new side's policy fakes one more call: REVIEW, exit 1.
    copy_tables(&old);
    copy_tables(&new);
    std::fs::write(&f, std::fs::read_to_string(old.join("x86_64.yaml")).unwrap()).unwrap();
    let p = new.join("policy/root-emulation.yaml");
    let text = std::fs::read_to_string(&p).unwrap().replace("      - capset\n", "      - capset\n      - chroot\n");
    std::fs::write(&p, text).unwrap();
    let (code, out, err) = diff(&[old.as_os_str(), new.as_os_str()], &base);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("no differences\npolicy root-emulation ("), "{out}");
    assert!(out.contains("root-emulation.yaml): REVIEW\n  names added to the policy: chroot\n  rules changed (3 -> 3 rules)\n"), "{out}");
    // An error (a side that does not load) is exit 2, not "differences".
    let (code, _, err) = diff(&[old.as_os_str(), base.join("nowhere").as_os_str()], &base);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("rootemu: ") && err.contains("cannot read tables directory"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
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
