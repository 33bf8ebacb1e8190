//! What scripts read from the CLI: `--format json` of `filter stats`, `filter sim`,
//! `tables show|diff|check` and `inspect` (the same facts as the text), `inspect`'s exit
//! statuses, the `--abi` order of `tables show`, and numbers written as in C.

use rootemu_tests::{broken_tables, rootemu_bin, tables_dir};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn rootemu(args: &[&str]) -> Output {
    Command::new(rootemu_bin()).args(args).output().expect("run rootemu")
}

/// `rootemu ARGS --format json`: the object and the exit status.
fn json(args: &[&str]) -> (Value, i32) {
    let o = rootemu(&[args, &["--format", "json"]].concat());
    let text = String::from_utf8_lossy(&o.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"));
    (v, o.status.code().expect("an exit status"))
}

fn text(args: &[&str]) -> String {
    let o = rootemu(args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn filter_stats_json_has_the_text_rows() {
    let (v, code) = json(&["filter", "stats"]);
    assert_eq!(code, 0);
    let abis = v["abis"].as_array().unwrap();
    let lines = text(&["filter", "stats"]);
    assert_eq!(abis.len(), lines.lines().count() - 3, "one object per ABI row");
    assert!(lines.starts_with(&format!("program: {} instructions", v["instructions"])));
    let x86 = abis.iter().find(|a| a["abi"] == "x86_64").unwrap();
    assert_eq!(x86["audit_arch"], 0xc000003e_u32);
    let row = lines.lines().find(|l| l.starts_with("x86_64 ")).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    let want = format!("x86_64 0xc000003e {} {} {} ", x86["syscalls"], x86["policy_names"], x86["worst_path"]);
    assert!(row.starts_with(&want), "{row} vs {want}");
}

#[test]
fn filter_sim_reads_c_octal_and_says_so_in_json() {
    // A character device (S_IFCHR = 0o020000) is faked; a regular file (0o100000) is not.
    let sim =
        |mode: &str| json(&["filter", "sim", "--as", "s390x", "--syscall", "mknod", "--arg", &format!("1={mode}"), "--arg", "2=0x103"]);
    for mode in ["020644", "0o20644", "8612"] {
        let (v, code) = sim(mode);
        assert_eq!(code, 0);
        assert_eq!(v["action"], "ERRNO(0)", "{mode}: {v}");
        assert_eq!(v["args"][1], 0o20644, "{mode}");
        assert_eq!((v["syscall"].as_str(), v["abi"].as_str()), (Some("mknod"), Some("s390x")));
    }
    assert_eq!(sim("0100644").0["action"], "ALLOW");
    let o = rootemu(&["filter", "sim", "--as", "s390x", "--syscall", "mknod", "--arg", "1=020648"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`020648` is ambiguous"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn tables_show_keeps_the_abi_order_in_text_and_json() {
    let args = ["tables", "show", "--abi", "s390x", "--abi", "aarch64", "--abi", "i386"];
    assert!(text(&args).starts_with("| syscall | s390x | aarch64 | i386 |\n"), "{}", text(&args));
    let (v, code) = json(&args);
    assert_eq!(code, 0);
    assert_eq!(v["abis"], serde_json::json!(["s390x", "aarch64", "i386"]));
    let chown = v["syscalls"].as_array().unwrap().iter().find(|s| s["name"] == "chown").unwrap();
    assert_eq!(chown["numbers"], serde_json::json!({ "s390x": 212, "aarch64": null, "i386": 182 }));
    assert_eq!(chown["looks_at_args"], false);
}

#[test]
fn tables_check_and_diff_in_json() {
    let good = tables_dir();
    let (v, code) = json(&["tables", "check", "--tables", good.to_str().unwrap()]);
    assert_eq!((code, &v["ok"]), (0, &Value::Bool(true)));
    assert_eq!(
        v["abis"].as_u64(),
        Some(std::fs::read_dir(&good).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml")).count()
            as u64)
    );

    // Two errors: a duplicate number and a key typo; each with its file and line.
    let bad = broken_tables(
        "cli-json",
        &[("x86_64.yaml", "\n  setgid: 106\n", "\n  setgid: 105\n"), ("aarch64.yaml", "\nabi: aarch64\n", "\nabi: aarch64\nbitz: 64\n")],
    );
    let (v, code) = json(&["tables", "check", "--tables", bad.to_str().unwrap()]);
    assert_eq!((code, &v["ok"]), (1, &Value::Bool(false)));
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{v}");
    for (file, what) in [("x86_64.yaml", "already used by `setuid`"), ("aarch64.yaml", "unknown field `bitz`")] {
        let e = errors.iter().find(|e| e["file"].as_str().is_some_and(|f| f.ends_with(file))).unwrap_or_else(|| panic!("{file}: {v}"));
        assert!(e["line"].as_u64().is_some_and(|l| l > 0) && e["message"].as_str().unwrap().contains(what), "{e}");
    }

    // chown renumbered on x86_64: the diff says so, and the root-emulation policy needs review.
    let moved = broken_tables("cli-json-diff", &[("x86_64.yaml", "\n  chown: 92\n", "\n  chown: 600\n")]);
    std::fs::create_dir_all(moved.join("policy")).unwrap();
    std::fs::copy(good.join("policy/root-emulation.yaml"), moved.join("policy/root-emulation.yaml")).unwrap();
    let (v, code) = json(&["tables", "diff", good.to_str().unwrap(), moved.to_str().unwrap(), "--tables", moved.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&bad);
    let _ = std::fs::remove_dir_all(&moved);
    assert_eq!(code, 1, "tables diff exits 1 when the sides differ");
    assert_eq!(v["abis"][0]["abi"], "x86_64");
    assert_eq!(v["abis"][0]["renumbered"], serde_json::json!([{ "name": "chown", "old": 92, "new": 600 }]));
    assert_eq!(v["policies"][0]["policy"], "root-emulation");
    assert_eq!(v["policies"][0]["review"], true);
    assert_eq!(v["policies"][0]["changed"], serde_json::json!(["chown"]));
}

#[test]
fn inspect_has_one_exit_status_per_outcome() {
    let dir = std::env::temp_dir().join(format!("rootemu-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "not an ELF file\n").unwrap();
    let bin = rootemu_bin();
    let cases: [(&Path, i32, &str); 4] =
        [(&bin, 0, "match"), (Path::new("/bin/true"), 2, "none"), (&notes, 3, "error"), (&dir.join("missing"), 3, "error")];
    for (path, want, status) in cases {
        let (v, code) = json(&["inspect", path.to_str().unwrap()]);
        assert_eq!((code, v["status"].as_str()), (want, Some(status)), "{}: {v}", path.display());
        assert_eq!(rootemu(&["inspect", path.to_str().unwrap()]).status.code(), Some(want), "{} (text)", path.display());
    }
    let (v, _) = json(&["inspect", bin.to_str().unwrap()]);
    assert_eq!(v["filters"][0]["matches"], true);
    assert_eq!(v["filters"][0]["abis"], serde_json::json!(["i386", "x32", "x86_64"]));
    // Checked against tables where chown moved: the program differs (exit 1).
    let moved = broken_tables("cli-json-inspect", &[("x86_64.yaml", "\n  chown: 92\n", "\n  chown: 600\n")]);
    std::fs::create_dir_all(moved.join("policy")).unwrap();
    std::fs::copy(tables_dir().join("policy/root-emulation.yaml"), moved.join("policy/root-emulation.yaml")).unwrap();
    let (v, code) = json(&["inspect", bin.to_str().unwrap(), "--tables", moved.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&moved);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((code, v["status"].as_str()), (1, Some("differs")), "{v}");
    assert!(v["filters"][0]["differs_at"].as_u64().is_some(), "{v}");
}
