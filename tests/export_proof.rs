//! The export proof: a seccomp profile written by `rootemu filter export --format oci` (or
//! `docker`) is compiled back to BPF by libseccomp, as runc compiles it
//! (`tests/programs/profile_to_bpf.py`, Debian's python3-seccomp, libseccomp 2.5.4), and
//! that program's verdicts are compared with the policy's by the same proof that checks
//! our own programs (`rootemu_codegen::proof`): every number of every exported ABI (a
//! 65536-number sweep from each base plus the tables' numbers and range edges) with every
//! argument class the policy's conditions distinguish (high halves included), and AUDIT_ARCH
//! values no listed ABI has. The one expected difference is the last: an architecture the
//! profile does not list gets libseccomp's bad-architecture action (SCMP_ACT_KILL_THREAD)
//! instead of the policy's `unknown_abi` (the export says so on stderr), so the reference
//! policy here has `unknown_abi: kill_thread`. Deliberately wrong profiles must be caught.

use rootemu_codegen::proof::{self, Proof};
use rootemu_codegen::{Action, Endian, Errors, Filter, Inputs, Tables, export};
use rootemu_tests::{in_ci, rootemu_bin, tables_dir, workspace, write_report};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

/// Whether Debian's python3 can import libseccomp's bindings (python3-seccomp); under CI a
/// failure, elsewhere a skip.
fn have_libseccomp() -> bool {
    let found = Command::new("/usr/bin/python3").args(["-c", "import seccomp"]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(!in_ci(), "CI=true and python3-seccomp is missing (it compiles the exported profiles); .ci/run must install it");
        eprintln!("SKIPPED: python3-seccomp not found (it compiles the exported profiles)");
    }
    found
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rootemu-export-proof-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `rootemu filter export --format <format> [--abi A]...`: the profile.
fn export_profile(format: &str, abis: &[&str]) -> Value {
    let mut cmd = Command::new(rootemu_bin());
    cmd.args(["filter", "export", "--format", format]);
    for a in abis {
        cmd.args(["--abi", a]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The program libseccomp builds from `profile`, as runc would (libseccomp writes it in
/// the byte order of the filter's architectures).
fn compile(profile: &Value, big_endian: bool, name: &str) -> Vec<rootemu_codegen::Insn> {
    let dir = scratch(name);
    let (json, bpf) = (dir.join("profile.json"), dir.join("profile.bpf"));
    std::fs::write(&json, serde_json::to_vec_pretty(profile).unwrap()).unwrap();
    let o =
        Command::new("/usr/bin/python3").arg(workspace().join("tests/programs/profile_to_bpf.py")).args([&json, &bpf]).output().unwrap();
    assert!(o.status.success(), "libseccomp refused the profile: {}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&bpf).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    export::from_raw(&bytes, big_endian).expect("whole instructions")
}

/// The bundled tables and policy over the ABIs whose `oci_arch` the profile lists.
fn reference(profile: &Value) -> Filter {
    let all = Tables::load_dir(&tables_dir()).unwrap();
    let listed: Vec<&str> = profile["architectures"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let abis: Vec<String> =
        all.abis.iter().filter(|a| a.oci_arch.as_deref().is_some_and(|o| listed.contains(&o))).map(|a| a.name.clone()).collect();
    assert_eq!(abis.len(), listed.len(), "every listed architecture is one of our ABIs: {listed:?}");
    let policy = tables_dir().join("policy/root-emulation.yaml");
    Filter::build(&Inputs { tables: &tables_dir(), policy: &policy, abis: &abis }).unwrap()
}

/// libseccomp's program for `profile` against the policy over the profile's ABIs.
fn prove_profile(profile: &Value, name: &str) -> Result<Proof, Errors> {
    let f = reference(profile);
    let mut policy = f.policy.clone();
    // What runtimes do with an architecture the profile does not list (the export's note).
    policy.unknown_abi = Action::KillThread;
    let big_endian = f.tables.abis.iter().any(|a| a.endian == Endian::Big);
    proof::prove(&compile(profile, big_endian, name), &f.tables, &policy)
}

fn summary(what: &str, p: &Proof) -> String {
    let numbers: u64 = p.abis.iter().map(|a| a.numbers).sum();
    let cases: usize = p.abis.iter().map(|a| a.cases).sum();
    let abis: Vec<&str> = p.abis.iter().map(|a| a.abi.as_str()).collect();
    format!("| {what} | {} ({}) | {numbers} | {cases} | {} | 0 |\n", abis.len(), abis.join(", "), p.unknown_arch_cases)
}

/// Our ABIs of one byte order that OCI can name.
fn oci_abis(endian: Endian) -> Vec<String> {
    let t = Tables::load_dir(&tables_dir()).unwrap();
    t.abis.iter().filter(|a| a.endian == endian && a.oci_arch.is_some()).map(|a| a.name.clone()).collect()
}

#[test]
fn libseccomp_compiles_the_exports_to_the_policys_verdicts() {
    if !have_libseccomp() {
        return;
    }
    let mut report = String::from(
        "# Export proof: libseccomp's program for the exported profile vs the policy\n\n| export | ABIs | numbers | (number, args) cases | unknown-arch cases | disagreements |\n|---|---|---|---|---|---|\n",
    );
    let default = export_profile("oci", &[]);
    let p = prove_profile(&default, "default").unwrap_or_else(|e| panic!("default export:\n{e}"));
    assert_eq!(p.abis.len(), 3, "this x86_64 machine's kernel delivers x86_64, x32 and i386");
    report.push_str(&summary("`--format oci` (default: this machine)", &p));
    let docker = export_profile("docker", &[]);
    let p = prove_profile(&docker, "docker").unwrap_or_else(|e| panic!("docker export:\n{e}"));
    report.push_str(&summary("`--format docker` (default)", &p));
    let little = oci_abis(Endian::Little);
    let names: Vec<&str> = little.iter().map(String::as_str).collect();
    let p = prove_profile(&export_profile("oci", &names), "little").unwrap_or_else(|e| panic!("little-endian export:\n{e}"));
    assert_eq!(p.abis.len(), little.len());
    report.push_str(&summary("`--format oci`, every little-endian ABI with an oci_arch, in one profile", &p));
    // libseccomp 2.5.4 writes a program for the other byte order with the copies of
    // `ret` it inlines for jumps over 255 instructions left unswapped (seen building
    // big-endian filters on this little-endian machine): big-endian profiles are
    // compiled one ABI at a time, where no jump is that long.
    for abi in oci_abis(Endian::Big) {
        let p = prove_profile(&export_profile("oci", &[&abi]), &abi).unwrap_or_else(|e| panic!("`--abi {abi}` export:\n{e}"));
        report.push_str(&summary(&format!("`--format oci --abi {abi}`"), &p));
    }
    write_report("export-proof", &report);
}

/// The profile with every `mknodat` entry replaced by `entries`.
fn with_mknodat(profile: &Value, entries: &[Value]) -> Value {
    let mut p = profile.clone();
    let rules = p["syscalls"].as_array_mut().unwrap();
    rules.retain(|r| r["names"] != json!(["mknodat"]));
    rules.extend(entries.iter().cloned());
    p
}

#[test]
fn the_export_proof_catches_wrong_profiles() {
    if !have_libseccomp() {
        return;
    }
    let good = export_profile("oci", &[]);
    let fake = |args: Value| json!({"names": ["mknodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0, "args": args});
    let block = fake(json!([{"index": 2, "op": "SCMP_CMP_MASKED_EQ", "value": 0o170000, "valueTwo": 0o060000}]));
    let char_mode = json!({"index": 2, "op": "SCMP_CMP_MASKED_EQ", "value": 0o170000, "valueTwo": 0o020000});
    // 1. The device test over 64 bits (SCMP_CMP_NE, the earlier export): the kernel and the
    //    policy see dev 0xdeadbeef00000000 as 0, the profile as a device.
    let ne64 = with_mknodat(&good, &[block.clone(), fake(json!([char_mode, {"index": 3, "op": "SCMP_CMP_NE", "value": 0}]))]);
    let err = prove_profile(&ne64, "ne64").unwrap_err().to_string();
    assert!(err.contains("mknodat") && err.contains("dead") && err.contains("ERRNO(0), the policy says ALLOW"), "{err}");
    // 2. Two conditions on one argument: runc makes them alternatives, so a FIFO is faked.
    let split = fake(json!([
        {"index": 2, "op": "SCMP_CMP_MASKED_EQ", "value": 0o100000, "valueTwo": 0},
        {"index": 2, "op": "SCMP_CMP_MASKED_EQ", "value": 0o070000, "valueTwo": 0o060000}
    ]));
    let bits: Vec<Value> = good["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["names"] == json!(["mknodat"]) && r["args"].as_array().unwrap().len() == 2)
        .cloned()
        .collect();
    let mut entries = vec![split];
    entries.extend(bits);
    let err = prove_profile(&with_mknodat(&good, &entries), "split").unwrap_err().to_string();
    assert!(err.contains("mknodat") && err.contains("the program returns ERRNO(0), the policy says ALLOW"), "{err}");
    // 3. A name left out: i386's chown32 runs unemulated.
    let mut no32 = good.clone();
    let names = no32["syscalls"][0]["names"].as_array_mut().unwrap();
    names.retain(|n| n != "chown32");
    let err = prove_profile(&no32, "no32").unwrap_err().to_string();
    assert!(err.contains("ABI `i386`, chown32") && err.contains("the program returns ALLOW, the policy says ERRNO(0)"), "{err}");
}
