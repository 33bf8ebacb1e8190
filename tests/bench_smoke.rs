//! `rootemu-bench --quick --json` runs and reports every section with positive numbers.
//! No timing is asserted: only that the numbers exist and are positive.
//! Build the binaries first: `cargo build --workspace --bins` (same CARGO_TARGET_DIR).

use rootemu_tests::rootemu_bin;
use serde_json::Value;
use std::process::Command;

/// Every number under `v` (recursively), with its path.
fn numbers(v: &Value, path: &str, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Number(n) => out.push((path.to_string(), n.as_f64().unwrap())),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| numbers(x, &format!("{path}[{i}]"), out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| numbers(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

#[test]
fn quick_bench_reports_every_section() {
    let bin = rootemu_bin().with_file_name("rootemu-bench");
    assert!(bin.exists(), "{} missing: run `cargo build --workspace --bins` first (same CARGO_TARGET_DIR)", bin.display());
    let dir = std::env::temp_dir().join(format!("rootemu-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let md = dir.join("bench.md");
    let out = Command::new(&bin)
        .arg("--rootemu")
        .arg(rootemu_bin())
        .args(["--quick", "--rounds", "1", "--no-crate-build", "--json"])
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    assert!(out.status.success(), "rootemu-bench failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let sections = report["sections"].as_object().expect("sections");
    for name in ["syscalls", "workloads", "startup", "build"] {
        let s = sections.get(name).unwrap_or_else(|| panic!("section {name} missing"));
        // A section may only be skipped for a stated reason (e.g. workloads need root).
        if let Some(why) = s.get("skipped") {
            assert!(name == "workloads" || name == "startup", "{name} skipped: {why}");
            eprintln!("note: section {name} skipped: {why}");
            continue;
        }
        let mut nums = Vec::new();
        numbers(&s["data"], name, &mut nums);
        assert!(!nums.is_empty(), "section {name} has no numbers");
        // `returns` are syscall results (0, or -errno for fchown without a filter); the rest are measures.
        for (path, n) in nums.iter().filter(|(p, _)| !p.ends_with(".returns") && !p.ends_with(".nr")) {
            assert!(n.is_finite() && *n >= 0.0, "{path} = {n}");
        }
        let positive = nums
            .iter()
            .filter(|(p, n)| (p.contains("ns_per_call") || p.ends_with(".ms.min") || p.ends_with(".seconds.min")) && *n > 0.0)
            .count();
        let measured =
            nums.iter().filter(|(p, _)| p.contains("ns_per_call") || p.ends_with(".ms.min") || p.ends_with(".seconds.min")).count();
        assert_eq!(positive, measured, "section {name}: every measured time must be positive");
    }
    // The faked call is faked under rootemu (returns 0), and is EBADF without a filter.
    let calls = sections["syscalls"]["data"]["calls"].as_array().unwrap();
    let fchown = calls.iter().find(|c| c["syscall"] == "fchown").unwrap();
    let ret = |v: &str| fchown["variants"].as_array().unwrap().iter().find(|x| x["variant"] == v).unwrap()["returns"].as_i64().unwrap();
    assert_eq!(ret("rootemu"), 0);
    assert_eq!(ret("linear"), 0);
    assert_eq!(ret("none"), -(libc::EBADF as i64));
    assert!(report["goals"].as_array().unwrap().len() >= 4);
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("## Goals"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
