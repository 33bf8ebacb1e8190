//! `rootemu filter export --format oci|docker|raw` as the runtimes that read them take it.
//!
//! - Formats: the OCI object is validated against the runtime spec's JSON schema (Debian's
//!   golang-github-opencontainers-specs-dev) with no field beyond the spec's; the Docker
//!   profile field by field against the Go types that decode it (moby 20.10
//!   `profiles/seccomp`, containers/common 0.50 `pkg/seccomp`, used by podman and CRI-O, and
//!   the spec's `LinuxSeccomp`, which containerd decodes a Kubernetes `Localhost` profile
//!   into).
//! - Runtimes, rootless, as the unprivileged test user, with the default export (no
//!   `--abi`): runc 1.1, crun 1.8, podman 4.3 with runc and with crun, and bubblewrap with
//!   the raw program. In each container chown to an unmapped id and mknod of a device
//!   succeed (faked) while a FIFO is really made; without the profile chown and mknod fail.
//!   crun refuses this VM's hybrid cgroup layout (cgroup v1 controllers plus a cgroup2
//!   hierarchy with a controller at /sys/fs/cgroup/unified); it runs in a mount namespace
//!   where a tmpfs hides that hierarchy, with `--cgroup-manager=disabled` (podman:
//!   `--cgroups=disabled`). podman runs with `--rootfs`, vfs storage and file events
//!   under a scratch HOME, and its rootless pause process is ended afterwards.

use rootemu_tests::{need, need_path, rootemu_bin, test_user};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCHEMA_DIR: &str = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema";
/// The container's job: emulated calls, and one the kernel really does.
const SCRIPT: &str = "cd /tmp && touch f && chown 1:2 f && echo chown-ok; stat -c owner=%u:%g f; mknod null c 1 3 && echo mknod-ok; \
                      test -e null || echo no-node; mkfifo p && test -p p && echo fifo-ok";
const APPLETS: [&str; 8] = ["sh", "touch", "chown", "mknod", "mkfifo", "stat", "test", "echo"];

fn rootemu(args: &[&str]) -> Output {
    Command::new(rootemu_bin()).args(args).output().expect("run rootemu")
}

/// `rootemu filter export --format <format> [--abi A]...`: (profile, stderr).
fn export_with(format: &str, abis: &[&str]) -> (Value, String) {
    let mut args = vec!["filter", "export", "--format", format];
    for a in abis {
        args.extend(["--abi", a]);
    }
    let o = rootemu(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (serde_json::from_slice(&o.stdout).expect("the export is JSON"), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn export(format: &str) -> Value {
    export_with(format, &[]).0
}

/// A fresh directory, unique per call (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("rootemu-oci-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A complete config.json (as `runc spec --rootless` writes it) around `seccomp`, running
/// `script`.
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

/// Errors of `config` against the runtime spec's schema (empty: valid). `strict`: the
/// seccomp object, its entries and their arguments may have no field the spec lacks.
fn schema_errors(config: &Value, strict: bool) -> String {
    let dir = scratch("schema");
    let file = dir.join("config.json");
    std::fs::write(&file, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let script = "import json, sys, pathlib, jsonschema\n\
        d = pathlib.Path(sys.argv[1]); schema = json.loads((d / 'config-schema.json').read_text())\n\
        store = {}\n\
        if sys.argv[3] == 'strict':\n\
        \x20   linux = json.loads((d / 'config-linux.json').read_text())\n\
        \x20   linux['linux']['properties']['seccomp']['additionalProperties'] = False\n\
        \x20   defs = json.loads((d / 'defs-linux.json').read_text())\n\
        \x20   for k in ('Syscall', 'SyscallArg'): defs['definitions'][k]['additionalProperties'] = False\n\
        \x20   store = {(d / 'config-linux.json').as_uri(): linux, (d / 'defs-linux.json').as_uri(): defs}\n\
        resolver = jsonschema.RefResolver(base_uri=d.as_uri() + '/', referrer=schema, store=store)\n\
        v = jsonschema.Draft4Validator(schema, resolver=resolver)\n\
        print('\\n'.join(e.message + ' at ' + '/'.join(map(str, e.absolute_path)) for e in v.iter_errors(json.load(open(sys.argv[2])))))\n";
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script, SCHEMA_DIR, file.to_str().unwrap(), if strict { "strict" } else { "lax" }])
        .output()
        .unwrap();
    assert!(o.status.success(), "the schema check itself failed: {}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(dir);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn have_schema_tools() -> bool {
    need_path(Path::new(SCHEMA_DIR), "the OCI runtime spec schema (golang-github-opencontainers-specs-dev)")
        && need_path(Path::new("/usr/lib/python3/dist-packages/jsonschema"), "python3-jsonschema validates the export")
}

#[test]
fn the_oci_export_validates_against_the_runtime_spec_schema() {
    if !have_schema_tools() {
        return;
    }
    let oci = export("oci");
    assert_eq!(oci["defaultAction"], "SCMP_ACT_ALLOW");
    let errors = schema_errors(&config(Some(&oci), SCRIPT, (1000, 1000)), true);
    assert!(errors.is_empty(), "{errors}");
    // Every byte order's ABIs the spec can name, as --abi exports them.
    for abis in [&["aarch64", "arm", "ppc64le", "mipsel", "riscv64"][..], &["s390x", "ppc64", "mips64n32", "parisc64"]] {
        let (p, _) = export_with("oci", abis);
        let errors = schema_errors(&config(Some(&p), SCRIPT, (1000, 1000)), true);
        assert!(errors.is_empty(), "{abis:?}: {errors}");
    }
    // The validator does reject what the spec forbids, and the strict one extra fields.
    let mut bad = oci.clone();
    bad["syscalls"][0]["args"] = json!([{"index": 1, "value": 1, "op": "SCMP_CMP_BOGUS"}]);
    bad["architectures"][0] = json!("SCMP_ARCH_ALPHA");
    bad["syscalls"][1]["comment"] = json!("not in the spec");
    let errors = schema_errors(&config(Some(&bad), SCRIPT, (1000, 1000)), true);
    assert!(
        errors.contains("SCMP_CMP_BOGUS") && errors.contains("SCMP_ARCH_ALPHA") && errors.contains("'comment' was unexpected"),
        "{errors}"
    );
}

/// The fields each decoder of a Docker seccomp profile knows, per object, from its Go
/// types: moby 20.10 `profiles/seccomp/seccomp.go` (`Seccomp`, `Syscall`, and
/// `specs.LinuxSeccompArg`), containers/common 0.50 `pkg/seccomp/types.go` (podman, CRI-O)
/// and runtime-spec `specs-go/config.go` `LinuxSeccomp` (containerd decodes a Kubernetes
/// Localhost profile into it). Go's decoder ignores other fields silently.
const DECODERS: [(&str, [&[&str]; 3]); 3] = [
    (
        "moby 20.10",
        [
            &["defaultAction", "architectures", "archMap", "syscalls"],
            &["name", "names", "action", "errnoRet", "args", "comment", "includes", "excludes"],
            &["index", "value", "valueTwo", "op"],
        ],
    ),
    (
        "containers/common 0.50",
        [
            &[
                "defaultAction",
                "defaultErrnoRet",
                "defaultErrno",
                "architectures",
                "archMap",
                "syscalls",
                "flags",
                "listenerPath",
                "listenerMetadata",
            ],
            &["name", "names", "action", "args", "comment", "includes", "excludes", "errnoRet", "errno"],
            &["index", "value", "valueTwo", "op"],
        ],
    ),
    (
        "runtime-spec LinuxSeccomp (containerd)",
        [
            &["defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath", "listenerMetadata", "syscalls"],
            &["names", "action", "errnoRet", "args"],
            &["index", "value", "valueTwo", "op"],
        ],
    ),
];

/// Fields of `profile` that `decoder` does not know: `level/field` per miss.
fn unknown_fields(profile: &Value, known: &[&[&str]; 3]) -> Vec<String> {
    let mut miss = Vec::new();
    let mut check = |v: &Value, level: usize, at: &str| {
        for k in v.as_object().unwrap().keys() {
            if !known[level].contains(&k.as_str()) {
                miss.push(format!("{at}/{k}"));
            }
        }
    };
    check(profile, 0, "");
    for s in profile["syscalls"].as_array().unwrap() {
        check(s, 1, "syscalls[]");
        for a in s["args"].as_array().into_iter().flatten() {
            check(a, 2, "syscalls[]/args[]");
        }
    }
    miss.sort();
    miss.dedup();
    miss
}

#[test]
fn the_docker_profile_is_read_field_by_field_by_docker_podman_and_kubernetes_runtimes() {
    let docker = export("docker");
    let oci = export("oci");
    for (decoder, known) in &DECODERS {
        let miss = unknown_fields(&docker, known);
        // containerd ignores the comments, which only people read.
        let expected: Vec<String> = if decoder.starts_with("runtime-spec") { vec!["syscalls[]/comment".to_string()] } else { vec![] };
        assert_eq!(miss, expected, "{decoder} does not know these fields of the Docker profile");
        assert!(unknown_fields(&oci, known).is_empty(), "{decoder}: the OCI object");
    }
    // The same rules: the Docker profile is the OCI object plus comments naming the rule.
    let mut stripped = docker.clone();
    for s in stripped["syscalls"].as_array_mut().unwrap() {
        let c = s.as_object_mut().unwrap().remove("comment").expect("a comment per entry");
        assert!(c.as_str().unwrap().starts_with("rootemu policy `root-emulation`, tables/policy/root-emulation.yaml:"), "{c}");
    }
    assert_eq!(stripped, oci);
    // Kubernetes' name for the format is an alias.
    assert_eq!(export("kubernetes"), docker);
    // Values have the decoders' types: unsigned numbers where Go has uint/uint64, known
    // action and operator names.
    for s in docker["syscalls"].as_array().unwrap() {
        assert!(s["errnoRet"].as_u64().is_some() && s["action"] == "SCMP_ACT_ERRNO", "{s}");
        for a in s["args"].as_array().into_iter().flatten() {
            assert!(a["index"].as_u64().is_some_and(|i| i < 6) && a["value"].as_u64().is_some() && a["valueTwo"].as_u64().is_some(), "{a}");
            assert_eq!(a["op"], "SCMP_CMP_MASKED_EQ");
        }
    }
    if have_schema_tools() {
        let errors = schema_errors(&config(Some(&docker), SCRIPT, (1000, 1000)), false);
        assert!(errors.is_empty(), "containerd reads the Docker profile as a LinuxSeccomp: {errors}");
    }
}

#[test]
fn the_default_export_is_this_machines_abis_in_one_byte_order() {
    let (oci, notes) = export_with("oci", &[]);
    // x86_64's table says an x86_64 kernel delivers x86_64, x32 and i386 (rust_arches).
    assert_eq!(oci["architectures"], json!(["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"]));
    assert_eq!(
        notes,
        "rootemu: note: an architecture the profile does not list gets the runtime's bad-architecture action (SCMP_ACT_KILL_THREAD in runc and crun), not the policy's unknown_abi (KILL_PROCESS): profiles cannot set it\n"
    );
    // A mix of byte orders is refused, and says why.
    let o = rootemu(&["filter", "export", "--format", "oci", "--abi", "x86_64", "--abi", "ppc64", "--abi", "i386"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "rootemu: ABIs of both byte orders (little-endian: i386, x86_64; big-endian: ppc64): libseccomp builds a filter for one byte order and runtimes fail on a mix (`seccomp adding architecture: Numerical argument out of domain`): export each byte order separately\n"
    );
    // An ABI OCI cannot name is refused when asked for.
    let o = rootemu(&["filter", "export", "--format", "docker", "--abi", "alpha"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "rootemu: no OCI architecture (oci_arch) for ABI alpha: OCI cannot name it\n");
    // A name older runtimes reject (table field oci_arch_portable) is listed when asked
    // for by name, with a note.
    let (p, notes) = export_with("oci", &["riscv64", "aarch64"]);
    assert_eq!(p["architectures"], json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_RISCV64"]));
    assert!(notes.contains("note: SCMP_ARCH_RISCV64 (riscv64): older runtimes (runc 1.1) reject this architecture name\n"), "{notes}");
}

/// A riscv64 machine's default export, from tables where riscv64 is this machine's ABI: the
/// name runc 1.1 rejects is left out with a note (the runtime still filters its native
/// architecture), and riscv32, which OCI cannot name, too.
#[test]
fn names_older_runtimes_reject_are_left_out_of_the_default_by_table_data() {
    let tables = rootemu_tests::broken_tables(
        "oci-host",
        &[
            ("x86_64.yaml", "rust_arches: [x86, x86_64]", "rust_arches: []"),
            ("x32.yaml", "rust_arches: [x86, x86_64]", "rust_arches: []"),
            ("i386.yaml", "rust_arches: [x86, x86_64]", "rust_arches: []"),
            ("riscv64.yaml", "rust_arches: [riscv32, riscv64]", "rust_arches: [x86_64]"),
            ("riscv32.yaml", "rust_arches: [riscv32, riscv64]", "rust_arches: [x86_64]"),
            ("mips64el.yaml", "rust_arches: [mips, mips32r6, mips64, mips64r6]", "rust_arches: [x86_64]"),
            ("mips64.yaml", "rust_arches: [mips, mips32r6, mips64, mips64r6]", "rust_arches: [x86_64]"),
            // A binary runs on the kernel of the ABI it runs as (validated): no native target either.
            ("x86_64.yaml", "rust_native: [x86_64]", "rust_native: []"),
            ("x32.yaml", "rust_native: [x86_64]", "rust_native: []"),
            ("i386.yaml", "rust_native: [x86]", "rust_native: []"),
            ("riscv64.yaml", "rust_native: [riscv64]", "rust_native: []"),
            ("riscv32.yaml", "rust_native: [riscv32]", "rust_native: []"),
            ("mips64el.yaml", "rust_native: [mips64, mips64r6]", "rust_native: []"),
            ("mips64.yaml", "rust_native: [mips64, mips64r6]", "rust_native: []"),
        ],
    );
    let policy = rootemu_tests::tables_dir().join("policy/root-emulation.yaml");
    let (t, p) = (tables.to_str().unwrap(), policy.to_str().unwrap());
    let o = rootemu(&["filter", "export", "--format", "oci", "--tables", t, "--policy", p]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Little-endian only (this machine's byte order): mips64 is left out silently.
    assert_eq!(v["architectures"], json!(["SCMP_ARCH_MIPSEL64"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("note: left out ABI riscv32: OCI has no architecture name for it\n"), "{err}");
    assert!(
        err.contains(
            "note: left out ABI riscv64 (SCMP_ARCH_RISCV64): older runtimes (runc 1.1) reject the name; `--abi riscv64` lists it\n"
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(tables);
    // Tables that do not name this machine's target_arch: the export asks for --abi.
    let none = rootemu_tests::broken_tables(
        "oci-none",
        &[
            ("x86_64.yaml", "rust_arches: [x86, x86_64]", "rust_arches: []"),
            ("x32.yaml", "rust_arches: [x86, x86_64]", "rust_arches: []"),
            ("i386.yaml", "rust_arches: [x86, x86_64]", "rust_arches: []"),
            ("x86_64.yaml", "rust_native: [x86_64]", "rust_native: []"),
            ("x32.yaml", "rust_native: [x86_64]", "rust_native: []"),
            ("i386.yaml", "rust_native: [x86]", "rust_native: []"),
        ],
    );
    let t = none.to_str().unwrap();
    let o = rootemu(&["filter", "export", "--format", "oci", "--tables", t, "--policy", p]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "rootemu: no ABI table lists this machine's target_arch `x86_64` in rust_arches: name the ABIs with --abi\n"
    );
    let o = rootemu(&["filter", "export", "--format", "oci", "--tables", t, "--policy", p, "--abi", "x86_64"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(none);
}

#[test]
fn the_export_says_the_policy_by_name_with_32_bit_argument_tests() {
    let f = export("oci");
    let rules = f["syscalls"].as_array().unwrap();
    let first = &rules[0];
    assert_eq!((&first["action"], &first["errnoRet"]), (&json!("SCMP_ACT_ERRNO"), &json!(0)));
    let names: Vec<&str> = first["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    for n in ["chown", "chown32", "fchownat", "setuid32", "setgroups", "capset"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    // mknodat: a block device, or a char device whose dev has some bit of its low 32 set
    // (one entry per bit: libseccomp's SCMP_CMP_NE would compare all 64).
    let mknodat: Vec<&Value> = rules.iter().filter(|r| r["names"] == json!(["mknodat"])).collect();
    assert_eq!(mknodat.len(), 33);
    let mode = |file_type: u32| json!({"index": 2, "op": "SCMP_CMP_MASKED_EQ", "value": 0o170000, "valueTwo": file_type});
    assert!(mknodat.iter().any(|r| r["args"] == json!([mode(0o060000)])));
    for bit in 0..32 {
        let dev = json!({"index": 3, "op": "SCMP_CMP_MASKED_EQ", "value": 1u64 << bit, "valueTwo": 1u64 << bit});
        assert!(mknodat.iter().any(|r| r["args"] == json!([mode(0o020000), dev])), "bit {bit}");
    }
    assert!(!f.to_string().contains("SCMP_CMP_NE"));
}

fn policy_export(name: &str, policy: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("rootemu-oci-policy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.yaml");
    std::fs::write(&file, policy).unwrap();
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
        file.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(dir);
    o
}

#[test]
fn policies_oci_cannot_say_are_refused_and_masked_ne_is_exact() {
    let head = "policy: p\ndefault: allow\nunknown_abi: kill_thread\nrules:\n";
    let o = policy_export(
        "ordered",
        &format!(
            "{head}  - action: fake_success\n    syscalls: [chown]\n    when_any: [[{{arg: 1, eq: 0}}]]\n  - action: kill_process\n    syscalls: [chown]\n"
        ),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("p.yaml:8: `chown` has rules with different actions"), "{err}");
    let o = policy_export("trace", &format!("{head}  - action: trace 7\n    syscalls: [chown]\n"));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("p.yaml:5: `TRACE(7)` has no OCI form"));
    // Three `ne` tests in one conjunction: 32^3 entries.
    let o = policy_export(
        "many",
        &format!(
            "{head}  - action: errno 1\n    syscalls: [chown]\n    when_any: [[{{arg: 0, ne: 0}}, {{arg: 1, ne: 0}}, {{arg: 2, ne: 0}}]]\n"
        ),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.ends_with("p.yaml:5: the conditions become 32768 OCI entries (a `ne` is one per bit of its mask), over the 1024 exported: use masked `eq` tests\n"), "{err}");
    // A masked `ne` and an `eq` on the same argument: one entry per bit of the ne's mask
    // that can differ, each a single test of that argument; no note for kill_thread.
    let o = policy_export(
        "masked",
        &format!(
            "{head}  - action: errno 1\n    syscalls: [chown]\n    when_any: [[{{arg: 1, mask: 0xf0, eq: 0x30}}, {{arg: 1, mask: 0xff, ne: 0x35}}]]\n"
        ),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let args: Vec<&Value> = v["syscalls"].as_array().unwrap().iter().map(|r| &r["args"]).collect();
    // Bits 4..7 are the eq's, where 0x35 agrees with it: only bits 0..3 can differ.
    let want: Vec<Value> = [(0xf1, 0x30), (0xf2, 0x32), (0xf4, 0x30), (0xf8, 0x38)]
        .iter()
        .map(|(m, v)| json!([{"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": m, "valueTwo": v}]))
        .collect();
    let got: Vec<Value> = args.into_iter().cloned().collect();
    assert_eq!(got.len(), want.len(), "{got:?}");
    for w in &want {
        assert!(got.contains(w), "missing {w}: {got:?}");
    }
}

/// A bundle directory with a busybox rootfs (plus `extra` as /bin/<its name>, and
/// `config.json` when given), owned by the test user.
fn bundle(name: &str, config: Option<&Value>, extra: Option<&Path>, ids: (u32, u32)) -> PathBuf {
    let b = scratch(name);
    let rootfs = b.join("rootfs");
    for d in ["bin", "proc", "tmp", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    if let Some(e) = extra {
        std::fs::copy(e, rootfs.join("bin").join(e.file_name().unwrap())).unwrap();
    }
    if let Some(c) = config {
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(c).unwrap()).unwrap();
    }
    let st = Command::new("chown").args(["-R", &format!("{}:{}", ids.0, ids.1)]).arg(&b).status().unwrap();
    assert!(st.success());
    b
}

/// `argv` as the test user; when `hide_cgroup2`, in a mount namespace where a tmpfs
/// covers the hybrid layout's cgroup2 hierarchy (crun refuses the hybrid layout).
fn as_user(ids: (u32, u32), hide_cgroup2: bool, argv: &[&str], env: &[(&str, &Path)]) -> (bool, String) {
    let mut cmd = Command::new("unshare");
    let hide =
        if hide_cgroup2 { "if mountpoint -q /sys/fs/cgroup/unified; then mount -t tmpfs none /sys/fs/cgroup/unified; fi; " } else { "" };
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &format!("{hide}exec \"$@\""), "-"]);
    cmd.args(["setpriv", &format!("--reuid={}", ids.0), &format!("--regid={}", ids.1), "--clear-groups", "--"]).args(argv);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// The container did the emulated calls and the real one.
fn assert_emulated(runtime: &str, (ok, out): &(bool, String)) {
    assert!(ok, "{runtime}: {out}");
    for want in ["chown-ok", "owner=0:0", "mknod-ok", "no-node", "fifo-ok"] {
        assert!(out.contains(want), "{runtime}: missing {want}: {out}");
    }
}

/// Without the profile mknod fails and chown is not faked: it fails (one id mapped) or
/// really changes the owner (a subordinate id range mapped, as useradd gives new users
/// when /etc/subuid exists); the FIFO is made.
fn assert_plain(runtime: &str, (_, out): &(bool, String)) {
    let chown_real = !out.contains("chown-ok") || out.contains("owner=1:2");
    assert!(chown_real && !out.contains("mknod-ok") && out.contains("fifo-ok"), "{runtime}: {out}");
}

/// An OCI runtime (`runc` or `crun`) runs the bundle rootless.
fn oci_runtime(runtime: &str, seccomp: Option<&Value>, ids: (u32, u32), name: &str) -> (bool, String) {
    run_bundle(runtime, &config(seccomp, SCRIPT, ids), None, ids, name)
}

/// An OCI runtime (`runc` or `crun`) runs `config` rootless.
fn run_bundle(runtime: &str, config: &Value, extra: Option<&Path>, ids: (u32, u32), name: &str) -> (bool, String) {
    let b = bundle(name, Some(config), extra, ids);
    let id = format!("rootemu-{name}-{}", std::process::id());
    let (state, bundle_dir) = (b.join("state"), b.to_str().unwrap().to_string());
    let out = match runtime {
        "runc" => as_user(
            ids,
            false,
            &["runc", "--root", state.to_str().unwrap(), "run", "--bundle", &bundle_dir, &id],
            &[("XDG_RUNTIME_DIR", &b)],
        ),
        _ => as_user(
            ids,
            true,
            &["crun", "--cgroup-manager=disabled", "--root", state.to_str().unwrap(), "run", "--bundle", &bundle_dir, &id],
            &[("XDG_RUNTIME_DIR", &b)],
        ),
    };
    let _ = std::fs::remove_dir_all(&b);
    out
}

fn have(tools: &[(&str, &str)]) -> Option<(u32, u32)> {
    let ids = test_user()?;
    let ok = tools.iter().all(|(t, why)| need(t, why))
        && need("setpriv", "drops to the test user")
        && need_path(Path::new("/bin/busybox"), "the container's tools (busybox-static)");
    ok.then_some(ids)
}

#[test]
fn rootless_runc_runs_a_container_under_the_default_export() {
    let Some(ids) = have(&[("runc", "runs the exported profile")]) else { return };
    assert_emulated("runc", &oci_runtime("runc", Some(&export("oci")), ids, "runc-emu"));
    assert_plain("runc", &oci_runtime("runc", None, ids, "runc-plain"));
    // containerd puts a Kubernetes Localhost profile into the spec as it decodes it: the
    // Docker profile as the linux.seccomp object.
    assert_emulated("runc, Docker profile as containerd passes it", &oci_runtime("runc", Some(&export("docker")), ids, "runc-docker"));
}

#[test]
fn rootless_crun_runs_a_container_under_the_default_export() {
    let Some(ids) = have(&[("crun", "runs the exported profile"), ("unshare", "hides the hybrid cgroup2 hierarchy from crun")]) else {
        return;
    };
    assert_emulated("crun", &oci_runtime("crun", Some(&export("oci")), ids, "crun-emu"));
    assert_plain("crun", &oci_runtime("crun", None, ids, "crun-plain"));
}

/// A profile for x86_64 alone: i386 calls (`int $0x80` from an x86_64 process) come from an
/// architecture it does not list. runc and crun kill the calling thread (libseccomp's
/// default bad-architecture action), not the process as the policy's `unknown_abi` says,
/// which the export notes; with the default export (i386 listed) the call runs.
#[test]
fn unlisted_architectures_get_the_runtimes_kill_thread() {
    let Some(ids) = have(&[
        ("runc", "runs the exported profile"),
        ("crun", "runs the exported profile"),
        ("cc", "builds the test program (static, with threads)"),
        ("unshare", "hides the hybrid cgroup2 hierarchy from crun"),
    ]) else {
        return;
    };
    let dir = scratch("i386-thread");
    let prog = dir.join("i386_thread");
    let src = rootemu_tests::workspace().join("tests/programs/i386_syscall_thread.c");
    let o = Command::new("cc").args(["-static", "-pthread", "-O1", "-o"]).arg(&prog).arg(&src).output().unwrap();
    assert!(o.status.success(), "cc: {}", String::from_utf8_lossy(&o.stderr));
    let (x86_64, notes) = export_with("oci", &["x86_64"]);
    assert!(notes.contains("(SCMP_ACT_KILL_THREAD in runc and crun), not the policy's unknown_abi (KILL_PROCESS)"), "{notes}");
    let script = "/bin/i386_thread; echo status=$?";
    for runtime in ["runc", "crun"] {
        let (ok, out) = run_bundle(runtime, &config(Some(&x86_64), script, ids), Some(&prog), ids, &format!("{runtime}-thread"));
        assert!(ok && out.contains("main thread alive\nstatus=0") && !out.contains("i386 getpid"), "{runtime}: {out}");
        let (ok, out) = run_bundle(runtime, &config(Some(&export("oci")), script, ids), Some(&prog), ids, &format!("{runtime}-listed"));
        assert!(ok && out.contains("i386 getpid returned") && out.contains("main thread alive"), "{runtime}: {out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `podman run --rootfs` with `runtime`, as the test user; `profile`: the
/// `--security-opt seccomp=` file (none: podman's own default profile).
fn podman(runtime: &str, profile: Option<&Value>, ids: (u32, u32), name: &str) -> (bool, String) {
    let b = bundle(name, None, None, ids);
    let home = b.join("home");
    // podman refuses a run root over 50 characters.
    let run = PathBuf::from(format!("/tmp/rootemu-podman-{}-{}", std::process::id(), name.len() + 100 * runtime.len()));
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    let seccomp = b.join("seccomp.json");
    let mut argv: Vec<String> =
        ["podman", "--storage-driver=vfs", "--events-backend=file", "--cgroup-manager=cgroupfs"].map(String::from).to_vec();
    argv.extend(["--root".into(), home.join("storage").display().to_string(), "--runroot".into(), run.join("s").display().to_string()]);
    argv.extend(["run", "--rm", "--network=none", "--tmpfs", "/tmp", "--runtime", runtime].map(String::from));
    if runtime == "crun" {
        argv.push("--cgroups=disabled".into());
    }
    if let Some(p) = profile {
        std::fs::write(&seccomp, serde_json::to_vec_pretty(p).unwrap()).unwrap();
        argv.extend(["--security-opt".into(), format!("seccomp={}", seccomp.display())]);
    }
    argv.extend(["--rootfs".into(), b.join("rootfs").display().to_string(), "/bin/sh".into(), "-c".into(), SCRIPT.into()]);
    for d in [&b, &run] {
        let st = Command::new("chown").args(["-R", &format!("{}:{}", ids.0, ids.1)]).arg(d).status().unwrap();
        assert!(st.success());
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (config, data) = (home.join("config"), home.join("data"));
    let env = [("HOME", home.as_path()), ("XDG_RUNTIME_DIR", &run), ("XDG_CONFIG_HOME", &config), ("XDG_DATA_HOME", &data)];
    let out = as_user(ids, runtime == "crun", &argv, &env);
    // Rootless podman leaves a pause process holding its user namespace: end ours.
    if let Ok(pid) = std::fs::read_to_string(run.join("libpod/tmp/pause.pid")) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    let _ = std::fs::remove_dir_all(&b);
    let _ = std::fs::remove_dir_all(&run);
    out
}

#[test]
fn rootless_podman_runs_a_container_under_the_default_docker_profile() {
    let Some(ids) = have(&[
        ("podman", "runs the exported profile"),
        ("runc", "podman's runtime"),
        ("crun", "podman's runtime"),
        ("conmon", "podman's container monitor"),
        ("unshare", "hides the hybrid cgroup2 hierarchy from crun"),
    ]) else {
        return;
    };
    let profile = export("docker");
    for runtime in ["runc", "crun"] {
        let what = format!("podman --runtime {runtime}");
        assert_emulated(&what, &podman(runtime, Some(&profile), ids, &format!("podman-{runtime}-emu")));
        assert_plain(&what, &podman(runtime, None, ids, &format!("podman-{runtime}-plain")));
    }
    // The OCI object is a profile podman takes too.
    assert_emulated("podman, OCI export", &podman("runc", Some(&export("oci")), ids, "podman-oci"));
}

#[test]
fn bubblewrap_runs_a_command_under_the_raw_export() {
    let Some(ids) = have(&[("bwrap", "runs the raw export")]) else { return };
    let dir = scratch("bwrap");
    let raw = dir.join("filter.bpf");
    let o = rootemu(&["filter", "export", "--format", "raw", "-o", raw.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = Command::new("chown").args(["-R", &format!("{}:{}", ids.0, ids.1)]).arg(&dir).status().unwrap();
    assert!(st.success());
    let bwrap = |seccomp: bool| {
        let fd = if seccomp { format!("--seccomp 3 3<{}", raw.display()) } else { String::new() };
        let line = format!(
            "bwrap --unshare-user --uid 0 --gid 0 --ro-bind / / --tmpfs /tmp --proc /proc --dev /dev {fd} -- /bin/sh -c '{SCRIPT}'"
        );
        as_user(ids, false, &["sh", "-c", &line], &[])
    };
    assert_emulated("bwrap", &bwrap(true));
    assert_plain("bwrap", &bwrap(false));
    let _ = std::fs::remove_dir_all(dir);
}
