//! `rootemu filter export --format oci`: the policy as an OCI runtime spec `linux.seccomp`
//! section. Validated against the runtime spec's own JSON schema (Debian's
//! golang-github-opencontainers-specs-dev), then given to a real runtime: rootless runc
//! runs a busybox container with it, where chown to an unmapped id and mknod of a device
//! must succeed (and fail without it), while a FIFO is still really made.

use rootemu_tests::{need, need_path, rootemu_bin, test_user};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCHEMA_DIR: &str = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema";
/// The ABIs an x86_64 kernel delivers (runc 1.1 also rejects architectures it does not
/// know, e.g. SCMP_ARCH_PARISC, so the runc test names its own).
const HOST_ABIS: [&str; 3] = ["x86_64", "x32", "i386"];

fn rootemu(args: &[&str]) -> Output {
    Command::new(rootemu_bin()).args(args).output().expect("run rootemu")
}

fn export(abis: &[&str]) -> Value {
    let mut args = vec!["filter", "export", "--format", "oci"];
    for a in abis {
        args.extend(["--abi", a]);
    }
    let o = rootemu(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("the export is JSON")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rootemu-oci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A complete config.json (as `runc spec --rootless` writes it) around `seccomp`.
fn config(seccomp: Option<&Value>, script: &str, ids: (u32, u32)) -> Value {
    let mut c = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", script],
            "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": true,
            "capabilities": {"bounding": ["CAP_CHOWN", "CAP_MKNOD"], "effective": ["CAP_CHOWN", "CAP_MKNOD"], "permitted": ["CAP_CHOWN", "CAP_MKNOD"]}
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "oci",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=1777"]}
        ],
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": ids.0, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": ids.1, "size": 1}],
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]
        }
    });
    if let Some(s) = seccomp {
        c["linux"]["seccomp"] = s.clone();
    }
    c
}

/// Errors of `config` against the runtime spec's schema (empty: valid).
fn schema_errors(config: &Value) -> String {
    let dir = scratch("schema");
    let file = dir.join("config.json");
    std::fs::write(&file, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let script = "import json, sys, pathlib, jsonschema\n\
        d = pathlib.Path(sys.argv[1]); schema = json.loads((d / 'config-schema.json').read_text())\n\
        resolver = jsonschema.RefResolver(base_uri=d.as_uri() + '/', referrer=schema)\n\
        v = jsonschema.Draft4Validator(schema, resolver=resolver)\n\
        print('\\n'.join(e.message + ' at ' + '/'.join(map(str, e.absolute_path)) for e in v.iter_errors(json.load(open(sys.argv[2])))))\n";
    let o = Command::new("/usr/bin/python3").args(["-c", script, SCHEMA_DIR, file.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "the schema check itself failed: {}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(dir);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn have_schema_tools() -> bool {
    need_path(Path::new(SCHEMA_DIR), "the OCI runtime spec schema (golang-github-opencontainers-specs-dev)")
        && need_path(Path::new("/usr/lib/python3/dist-packages/jsonschema"), "python3-jsonschema validates the export")
}

#[test]
fn export_validates_against_the_oci_runtime_spec_schema() {
    if !have_schema_tools() {
        return;
    }
    let all = export(&[]);
    let arches = all["architectures"].as_array().unwrap();
    assert_eq!(arches.len(), 19, "{arches:?}");
    assert_eq!(all["defaultAction"], "SCMP_ACT_ALLOW");
    let errors = schema_errors(&config(Some(&all), "true", (1000, 1000)));
    assert!(errors.is_empty(), "{errors}");
    // The validator does reject what the spec forbids.
    let mut bad = all.clone();
    bad["syscalls"][0]["args"] = json!([{"index": 1, "value": 1, "op": "SCMP_CMP_BOGUS"}]);
    bad["architectures"][0] = json!("SCMP_ARCH_ALPHA");
    let errors = schema_errors(&config(Some(&bad), "true", (1000, 1000)));
    assert!(errors.contains("SCMP_CMP_BOGUS") && errors.contains("SCMP_ARCH_ALPHA"), "{errors}");
}

#[test]
fn export_says_the_policy_by_name_per_rule() {
    let f = export(&HOST_ABIS);
    assert_eq!(f["architectures"], json!(["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"]));
    let rules = f["syscalls"].as_array().unwrap();
    let first = &rules[0];
    assert_eq!((&first["action"], &first["errnoRet"]), (&json!("SCMP_ACT_ERRNO"), &json!(0)));
    let names: Vec<&str> = first["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    for n in ["chown", "chown32", "fchownat", "setuid32", "setgroups", "capset"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    // mknodat: a block device, or a char device with dev != 0 (two alternatives = two rules).
    let mknodat: Vec<&Value> = rules.iter().filter(|r| r["names"] == json!(["mknodat"])).collect();
    assert_eq!(mknodat.len(), 2);
    assert_eq!(mknodat[0]["args"], json!([{"index": 2, "op": "SCMP_CMP_MASKED_EQ", "value": 0o170000, "valueTwo": 0o060000}]));
    assert_eq!(mknodat[1]["args"][1], json!({"index": 3, "op": "SCMP_CMP_NE", "value": 0}));
    // An ABI OCI cannot name is refused when asked for, and left out (with a note) otherwise.
    let o = rootemu(&["filter", "export", "--format", "oci", "--abi", "alpha"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "rootemu: no OCI architecture (oci_arch) for ABI alpha: OCI cannot name it\n");
    let o = rootemu(&["filter", "export", "--format", "oci"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("OCI has no architecture for alpha, arc,"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_policy_whose_rule_order_matters_is_refused() {
    let dir = scratch("policy");
    let policy = dir.join("p.yaml");
    std::fs::write(
        &policy,
        "policy: ordered\ndefault: allow\nunknown_abi: kill_process\nrules:\n  - action: fake_success\n    syscalls: [chown]\n    when_any: [[{arg: 1, eq: 0}]]\n  - action: kill_process\n    syscalls: [chown]\n",
    )
    .unwrap();
    let tables = rootemu_tests::tables_dir();
    let o = rootemu(&[
        "filter",
        "export",
        "--format",
        "oci",
        "--abi",
        "x86_64",
        "--tables",
        tables.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("p.yaml:8: `chown` has rules with different actions"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `script` in a rootless runc container as the test user; (status, output).
fn runc(seccomp: Option<&Value>, script: &str, ids: (u32, u32), name: &str) -> (bool, String) {
    let b = scratch(name);
    let rootfs = b.join("rootfs");
    for d in ["bin", "proc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "touch", "chown", "mknod", "mkfifo", "stat", "test", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&config(seccomp, script, ids)).unwrap()).unwrap();
    let st = Command::new("chown").args(["-R", &format!("{}:{}", ids.0, ids.1)]).arg(&b).status().unwrap();
    assert!(st.success());
    let o = Command::new("setpriv")
        .args([&format!("--reuid={}", ids.0), &format!("--regid={}", ids.1), "--clear-groups", "--"])
        .args(["runc", "--root"])
        .arg(b.join("state"))
        .args(["run", "--no-pivot", "--bundle"])
        .arg(&b)
        .arg(format!("rootemu-{name}-{}", std::process::id()))
        .env("XDG_RUNTIME_DIR", &b)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&b);
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn rootless_runc_runs_a_container_under_the_export() {
    let Some(ids) = test_user() else { return };
    if !need("runc", "runs the exported profile")
        || !need("setpriv", "drops to the test user")
        || !need_path(Path::new("/bin/busybox"), "the container's tools (busybox-static)")
    {
        return;
    }
    let script = "cd /tmp && touch f && chown 1:2 f && echo chown-ok; stat -c owner=%u:%g f; mknod null c 1 3 && echo mknod-ok; \
                  test -e null || echo no-node; mkfifo p && test -p p && echo fifo-ok";
    let seccomp = export(&HOST_ABIS);
    let (ok, out) = runc(Some(&seccomp), script, ids, "emu");
    assert!(ok, "{out}");
    for want in ["chown-ok", "owner=0:0", "mknod-ok", "no-node", "fifo-ok"] {
        assert!(out.contains(want), "missing {want}: {out}");
    }
    // The same container without the section: chown and mknod fail.
    let (_, out) = runc(None, script, ids, "plain");
    assert!(!out.contains("chown-ok") && !out.contains("mknod-ok") && out.contains("fifo-ok"), "{out}");
}
