//! docs/errors.md against reality: every row of its table (one per error class) is run
//! here and its message and exit status must be what the doc says, so the doc cannot
//! drift. A row the test does not know, or a case the doc lacks, fails too.
//!
//! Table, policy and CLI rows run the `rootemu` binary (build it first: `cargo build -p
//! rootemu`, same CARGO_TARGET_DIR); macro rows are checked against the `.stderr` files
//! that tests/ui.rs compares with the compiler's output; `rootemu run` rows run as the
//! unprivileged user `rootemu-test` (the test must run as root, like run_unprivileged),
//! with a command that would create a marker file: it must never exist afterwards.

use rootemu_tests::{need, rootemu_bin, workspace};
use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const USER: &str = "rootemu-test";
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// One row of docs/errors.md.
#[derive(Debug)]
struct Row {
    id: String,
    message: String,
    exit: String,
}

/// The rows of the table in docs/errors.md: `| `id` | when | ``message`` | exit |`.
fn doc_rows() -> Vec<Row> {
    let doc = fs::read_to_string(workspace().join("docs/errors.md")).expect("docs/errors.md");
    let mut rows = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "docs/errors.md: a row needs 4 cells: {line}");
        let code = |c: &str| -> String {
            let inner =
                c.strip_prefix("``").and_then(|c| c.strip_suffix("``")).or_else(|| c.strip_prefix('`').and_then(|c| c.strip_suffix('`')));
            inner.unwrap_or_else(|| panic!("docs/errors.md: `{c}` is not a code span")).trim().to_string()
        };
        rows.push(Row { id: code(cells[0]), message: code(cells[2]), exit: cells[3].to_string() });
    }
    rows
}

/// The minimal table every table/policy case starts from (lines 1..16).
const TABLE: &str = "abi: x86_64
audit_arch: 0xc000003e
elf_machine: 62
bits: 64
endian: little
nr_base: 0
nr_limit: 1024
import:
  table: arch/x86/entry/syscalls/syscall_64.tbl
  tags: [common, 64]
syscalls:
  read: 0
  chown: 92
  setuid: 105
  setgid: 106
  mknod: 133
";

/// The minimal policy (lines 1..13).
const POLICY: &str = "policy: test
default: allow
unknown_abi: kill_process
constants:
  S_IFMT: 0o170000
  S_IFBLK: 0o060000
rules:
  - action: fake_success
    syscalls: [chown, setuid]
  - action: fake_success
    syscalls: [mknod]
    when_any:
      - [{arg: 1, mask: S_IFMT, eq: S_IFBLK}]
";

/// What a case produced: its output (stdout + stderr, the work directory shown as `DIR`)
/// and how it ended (`1`, `127`, `signal 15`, `compile error`).
struct Actual {
    output: String,
    exit: String,
}

fn actual(o: &Output, dir: &Path) -> Actual {
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let exit = match (o.status.code(), o.status.signal()) {
        (Some(c), _) => c.to_string(),
        (None, Some(s)) => format!("signal {s}"),
        _ => "?".into(),
    };
    Actual { output: text.replace(dir.to_str().unwrap(), "DIR"), exit }
}

/// A tables directory and policy under `dir/<id>`, each with one text replacement.
fn inputs(dir: &Path, id: &str, table: (&str, &str), policy: (&str, &str)) -> PathBuf {
    let d = dir.join(id);
    fs::create_dir_all(d.join("tables")).unwrap();
    let t = TABLE.replacen(table.0, table.1, 1);
    assert!(table.0.is_empty() || TABLE.contains(table.0), "{id}: `{}` not in the table", table.0);
    assert!(policy.0.is_empty() || POLICY.contains(policy.0), "{id}: `{}` not in the policy", policy.0);
    fs::write(d.join("tables/x86_64.yaml"), t).unwrap();
    fs::write(d.join("policy.yaml"), POLICY.replacen(policy.0, policy.1, 1)).unwrap();
    d
}

/// `rootemu ARGS` in `dir`.
fn cli(dir: &Path, args: &[&str]) -> Actual {
    let bin = rootemu_bin();
    assert!(bin.exists(), "{} missing: run `cargo build -p rootemu-cli` first (same CARGO_TARGET_DIR)", bin.display());
    actual(&Command::new(bin).args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap(), dir)
}

/// `rootemu ARGS` in `dir` with standard output on a terminal (a new pseudo-terminal).
fn on_terminal(dir: &Path, args: &[&str]) -> Actual {
    let (mut leader, mut follower) = (-1, -1);
    // SAFETY: openpty writes two new descriptors; no name, settings or size are asked for.
    let rc = unsafe { libc::openpty(&mut leader, &mut follower, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned here.
    let (leader, follower) = unsafe { (OwnedFd::from_raw_fd(leader), OwnedFd::from_raw_fd(follower)) };
    let out = Command::new(rootemu_bin()).args(args).current_dir(dir).stdin(Stdio::null()).stdout(follower).output().unwrap();
    drop(leader);
    actual(&out, dir)
}

/// `rootemu filter dump` over the inputs of one case.
fn dump(dir: &Path, id: &str, table: (&str, &str), policy: (&str, &str), extra: &[&str]) -> Actual {
    let d = inputs(dir, id, table, policy);
    let (t, p) = (d.join("tables"), d.join("policy.yaml"));
    let mut args = vec!["filter", "dump", "--tables", t.to_str().unwrap(), "--policy", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(dir, &args)
}

/// The first line of a `.stderr` file of tests/ui (what the compiler prints, per tests/ui.rs).
fn ui(file: &str) -> Actual {
    let text = fs::read_to_string(workspace().join("tests/ui").join(file)).unwrap();
    Actual { output: text.lines().next().unwrap_or_default().to_string(), exit: "compile error".into() }
}

/// The unprivileged side: a user, a world-readable directory with a copy of the binary.
struct RunEnv {
    dir: PathBuf,
    bin: PathBuf,
    uid: u32,
    gid: u32,
}

impl RunEnv {
    fn new(dir: &Path) -> Option<RunEnv> {
        if !need("setpriv", "drops to the unprivileged test user") {
            return None;
        }
        let (uid, gid) = rootemu_tests::test_user()?;
        let bin = dir.join("rootemu");
        fs::copy(rootemu_bin(), &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        Some(RunEnv { dir: dir.to_path_buf(), bin, uid, gid })
    }

    /// `cmd` as the test user.
    fn as_user(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={USER}"), &format!("--regid={USER}"), "--init-groups", "--"])
            .args(cmd)
            .current_dir(&self.dir)
            .env("PATH", PATH)
            .env("HOME", &self.dir)
            .env_remove("ROOTEMU_DEBUG")
            .stdin(Stdio::null());
        c
    }

    /// A directory owned by the test user.
    fn user_dir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(self.uid), Some(self.gid)).unwrap();
        d
    }

    /// `rootemu run ARGS -- CMD...` as the test user, where `touch MARKER` stands for a
    /// command that must not run; checks that the marker was not created.
    fn run(&self, id: &str, args: &[&str], cmd: &[&str], marker_must_not_exist: bool) -> Actual {
        let out = self.run_with(id, args, cmd, |_| {});
        if marker_must_not_exist {
            assert!(!self.marker(id).exists(), "{id}: the command ran: {}", out.output);
        }
        out
    }

    fn marker(&self, id: &str) -> PathBuf {
        self.dir.join(format!("marker-{id}"))
    }

    fn run_with(&self, id: &str, args: &[&str], cmd: &[&str], adjust: impl FnOnce(&mut Command)) -> Actual {
        let _ = fs::remove_file(self.marker(id));
        let marker = self.marker(id);
        let marker = marker.to_str().unwrap();
        let mut full = vec![self.bin.to_str().unwrap(), "run"];
        full.extend_from_slice(args);
        full.push("--");
        full.extend(cmd.iter().map(|c| if *c == "MARKER" { marker } else { c }));
        let mut c = self.as_user(&full);
        adjust(&mut c);
        actual(&c.output().unwrap(), &self.dir)
    }
}

/// A seccomp filter for the process that starts rootemu: `seccomp(2)` answers `seccomp`
/// (an errno), and `prctl(PR_SET_SECCOMP, ...)` answers `prctl` (0: allowed).
fn refusing_filter(seccomp: u16, prctl: u16) -> Vec<rootemu::SockFilter> {
    use rootemu_codegen::bpf::{Action, op};
    let i = |code: u16, jt: u8, jf: u8, k: u32| rootemu::SockFilter { code, jt, jf, k };
    let allow = Action::Allow.to_ret();
    let errno = |e: u16| if e == 0 { allow } else { Action::Errno(e).to_ret() };
    vec![
        i(op::LD | op::W | op::ABS, 0, 0, 4),
        i(op::JMP | op::JEQ | op::K, 1, 0, 0xc000_003e),
        i(op::RET | op::K, 0, 0, allow),
        i(op::LD | op::W | op::ABS, 0, 0, 0),
        i(op::JMP | op::JEQ | op::K, 0, 1, libc::SYS_seccomp as u32),
        i(op::RET | op::K, 0, 0, errno(seccomp)),
        i(op::JMP | op::JEQ | op::K, 0, 3, libc::SYS_prctl as u32),
        i(op::LD | op::W | op::ABS, 0, 0, 16),
        i(op::JMP | op::JEQ | op::K, 0, 1, libc::PR_SET_SECCOMP as u32),
        i(op::RET | op::K, 0, 0, errno(prctl)),
        i(op::RET | op::K, 0, 0, allow),
    ]
}

/// `rootemu run` started by a process whose own filter refuses seccomp.
fn run_refused(env: &RunEnv, id: &str, seccomp: u16, prctl: u16) -> Actual {
    let program = refusing_filter(seccomp, prctl);
    let out = env.run_with(id, &[], &["touch", "MARKER"], |c| {
        // SAFETY: after fork, before exec: prctl + seccomp on a program built beforehand.
        unsafe {
            c.pre_exec(move || {
                rootemu::install::install(&program, Default::default()).map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))
            });
        }
    });
    assert!(!env.marker(id).exists(), "{id}: the command ran without the filter: {}", out.output);
    out
}

/// A minimal root for --root: merged-usr symlinks (the host's /usr is bound in) and the
/// directories rootemu mounts on (`with_mount_points`).
fn make_root(env: &RunEnv, name: &str, with_mount_points: bool) -> PathBuf {
    let r = env.user_dir(name);
    fs::create_dir_all(r.join("usr")).unwrap();
    if with_mount_points {
        for d in ["dev", "proc", "sys", "tmp"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
    }
    for d in ["bin", "lib", "lib64", "sbin"] {
        if fs::symlink_metadata(Path::new("/").join(d)).is_ok_and(|m| m.file_type().is_symlink())
            && fs::symlink_metadata(r.join(d)).is_err()
        {
            std::os::unix::fs::symlink(format!("usr/{d}"), r.join(d)).unwrap();
        }
    }
    let st = Command::new("chown").args(["-R", "-h", &format!("{}:{}", env.uid, env.gid)]).arg(&r).status().unwrap();
    assert!(st.success());
    r
}

/// Runs the case of row `id`; `None`: skipped here (not root, or a tool is missing).
fn case(id: &str, dir: &Path, env: Option<&RunEnv>) -> Option<Actual> {
    let none = ("", "");
    Some(match id {
        "table-yaml" => dump(dir, id, ("bits: 64", "bits: [64"), none, &[]),
        "table-unknown-field" => dump(dir, id, ("syscalls:", "sycalls:"), none, &[]),
        "table-duplicate-key" => dump(dir, id, ("  mknod: 133", "  mknod: 133\n  chown: 93"), none, &[]),
        "table-duplicate-number" => dump(dir, id, ("setgid: 106", "setgid: 105"), none, &[]),
        "table-number-out-of-range" => dump(dir, id, ("setgid: 106", "setgid: 4000"), none, &[]),
        "table-audit-arch" => dump(dir, id, ("0xc000003e", "0x4000003e"), none, &[]),
        "table-file-name" => dump(dir, id, ("abi: x86_64", "abi: x86-64"), none, &[]),
        "yaml-too-deep" => dump(dir, id, ("bits: 64", &format!("bits: {}", "[".repeat(100_000))), none, &[]),
        "input-special-file" => {
            let d = inputs(dir, id, none, none);
            let fifo = d.join("policy.fifo");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid path; mkfifo creates only it.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            cli(dir, &["filter", "dump", "--tables", d.join("tables").to_str().unwrap(), "--policy", fifo.to_str().unwrap()])
        }
        "input-too-large" => {
            let d = inputs(dir, id, none, none);
            fs::write(d.join("policy.yaml"), format!("{POLICY}{}", "#".repeat((1 << 20) + 1 - POLICY.len()))).unwrap();
            cli(
                dir,
                &["filter", "dump", "--tables", d.join("tables").to_str().unwrap(), "--policy", d.join("policy.yaml").to_str().unwrap()],
            )
        }
        "table-renumbered" => {
            let source = "syscalls:\n";
            let d = inputs(
                dir,
                id,
                (source, "source:\n  kernel: 6.12.117\n  file: arch/x86/entry/syscalls/syscall_64.tbl\n  tags: [common, 64]\nsyscalls:\n"),
                none,
            );
            let linux = d.join("linux");
            fs::create_dir_all(linux.join("arch/x86/entry/syscalls")).unwrap();
            fs::write(linux.join("Makefile"), "VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n").unwrap();
            let tbl = "0\tcommon\tread\tsys_read\n106\tcommon\tsetuid\tsys_setuid\n";
            fs::write(linux.join("arch/x86/entry/syscalls/syscall_64.tbl"), tbl).unwrap();
            let t = d.join("tables");
            let out = cli(dir, &["tables", "import", "--kernel", linux.to_str().unwrap(), "--tables", t.to_str().unwrap()]);
            // Only the first line is the row's message; the hint follows.
            Actual { output: out.output.lines().next().unwrap_or_default().to_string(), exit: out.exit }
        }
        "tables-dir-missing" => {
            let p = dir.join("tables-dir-missing-policy.yaml");
            fs::write(&p, POLICY).unwrap();
            cli(dir, &["filter", "dump", "--tables", dir.join("no-such-dir").to_str().unwrap(), "--policy", p.to_str().unwrap()])
        }
        "policy-unknown-syscall" => dump(dir, id, none, ("[chown, setuid]", "[chown, setiud]"), &[]),
        "policy-unknown-action" => dump(dir, id, none, ("default: allow", "default: alow"), &[]),
        "policy-unknown-constant" => dump(dir, id, none, ("mask: S_IFMT", "mask: S_IFMTT"), &[]),
        "policy-argument-index" => dump(dir, id, none, ("arg: 1", "arg: 7"), &[]),
        "policy-value-outside-mask" => dump(dir, id, none, ("eq: S_IFBLK", "eq: 0o060644"), &[]),
        "policy-missing" => {
            let d = inputs(dir, id, none, none);
            let t = d.join("tables");
            cli(dir, &["filter", "dump", "--tables", t.to_str().unwrap(), "--policy", d.join("no-such-policy.yaml").to_str().unwrap()])
        }
        "abi-unknown" => dump(dir, id, none, none, &["--abi", "x86-64"]),
        "policy-too-many-argument-combinations" => {
            let five = (0..5).map(|a| format!("{{arg: {a}, mask: 0xf, eq: 1}}")).collect::<Vec<_>>().join(", ");
            dump(dir, id, none, ("[{arg: 1, mask: S_IFMT, eq: S_IFBLK}]", &format!("[{five}]")), &[])
        }
        "program-too-long" => {
            let fx = workspace().join("tests/ui/fixtures");
            let (t, p) = (fx.join("too-long"), fx.join("too-long-policy.yaml"));
            cli(dir, &["filter", "dump", "--tables", t.to_str().unwrap(), "--policy", p.to_str().unwrap()])
        }
        "macro-table-error" => ui("dup_number.stderr"),
        "macro-unknown-syscall" => ui("unknown_syscall.stderr"),
        "macro-unknown-argument" => ui("unknown_argument.stderr"),
        "cli-usage" => cli(dir, &["filter", "dump", "--frobnicate"]),
        "cli-run-no-separator" => cli(dir, &["run", "id"]),
        "cli-sim-abi" | "cli-sim-syscall" | "cli-sim-argument" | "cli-sim-number" => {
            let d = inputs(dir, id, none, none);
            let (t, p) = (d.join("tables"), d.join("policy.yaml"));
            let mut args = vec!["filter", "sim", "--tables", t.to_str().unwrap(), "--policy", p.to_str().unwrap()];
            args.extend(match id {
                "cli-sim-abi" => ["--as", "x86-64", "--syscall", "chown"].as_slice(),
                "cli-sim-syscall" => &["--as", "x86_64", "--syscall", "chwon"],
                "cli-sim-argument" => &["--as", "x86_64", "--syscall", "mknod", "--arg", "9=1"],
                _ => &["--as", "x86_64", "--syscall", "mknod", "--arg", "1=0189"],
            });
            cli(dir, &args)
        }
        "export-raw-terminal" => on_terminal(dir, &["filter", "export", "--format", "raw"]),
        "cli-bind" => cli(dir, &["run", "--bind", "/usr", "--", "true"]),
        "cli-write-error" => {
            let full = fs::File::options().write(true).open("/dev/full").unwrap();
            let o = Command::new(rootemu_bin()).args(["filter", "dump", "--abi", "x86_64"]).stdout(full).output().unwrap();
            actual(&o, dir)
        }
        "export-byte-orders" => cli(dir, &["filter", "export", "--format", "oci", "--abi", "x86_64", "--abi", "ppc64"]),
        "export-rule-order" => {
            let d = inputs(dir, id, ("nr_base: 0", "oci_arch: SCMP_ARCH_X86_64\nnr_base: 0"), none);
            let (t, p) = (d.join("tables"), d.join("policy.yaml"));
            fs::write(&p, fs::read_to_string(&p).unwrap() + "  - action: kill_process\n    syscalls: [chown]\n").unwrap();
            cli(
                dir,
                &[
                    "filter",
                    "export",
                    "--format",
                    "oci",
                    "--tables",
                    t.to_str().unwrap(),
                    "--policy",
                    p.to_str().unwrap(),
                    "--abi",
                    "x86_64",
                ],
            )
        }
        "inspect-not-elf" => {
            fs::write(dir.join("notes.txt"), "not an ELF file\n").unwrap();
            cli(dir, &["inspect", dir.join("notes.txt").to_str().unwrap()])
        }
        "inspect-unreadable" => cli(dir, &["inspect", dir.join("no-such-binary").to_str().unwrap()]),
        _ if id.starts_with("run-") => {
            let env = env?;
            match id {
                "run-userns-disabled" => {
                    if !need("unshare", "creates the outer namespace whose user.max_user_namespaces is set to 0") {
                        return None;
                    }
                    let script = format!(
                        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} run -- touch {}",
                        env.bin.display(),
                        env.marker(id).display()
                    );
                    let o = env.as_user(&["unshare", "--user", "--map-root-user", "--fork", "sh", "-c", &script]).output().unwrap();
                    assert!(!env.marker(id).exists(), "{id}: the command ran");
                    actual(&o, &env.dir)
                }
                "run-root-missing" => env.run(id, &["--root", "/nonexistent/rootemu-root"], &["touch", "MARKER"], true),
                "run-root-not-a-directory" => {
                    fs::write(env.dir.join("a-file"), "").unwrap();
                    env.run(id, &["--root", env.dir.join("a-file").to_str().unwrap()], &["touch", "MARKER"], true)
                }
                "run-root-unreadable" => {
                    let private = env.dir.join("private");
                    fs::create_dir_all(private.join("root")).unwrap();
                    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
                    env.run(id, &["--root", private.join("root").to_str().unwrap()], &["touch", "MARKER"], true)
                }
                "run-bind-source-missing" => env.run(id, &["--bind", "/nonexistent/rootemu-src:/mnt"], &["touch", "MARKER"], true),
                "run-records-missing" => {
                    env.run(id, &["--consistent", "--records", "/nonexistent/rootemu-records"], &["touch", "MARKER"], true)
                }
                "run-seccomp-refused" => run_refused(env, id, libc::EINVAL as u16, 0),
                "run-seccomp-unavailable" => run_refused(env, id, libc::ENOSYS as u16, libc::EINVAL as u16),
                "run-command-not-found" => env.run(id, &[], &["rootemu-no-such-command"], false),
                "run-not-executable" => {
                    let script = env.dir.join("script.sh");
                    fs::write(&script, "#!/bin/sh\ntouch \"$1\"\n").unwrap();
                    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
                    env.run(id, &[], &[script.to_str().unwrap(), "MARKER"], true)
                }
                "run-killed-by-signal" => env.run(id, &[], &["sh", "-c", "kill -TERM $$"], false),
                "run-killed-by-signal-root" => {
                    let r = make_root(env, "rootfs", true);
                    env.run(id, &["--root", r.to_str().unwrap(), "--bind", "/usr:/usr"], &["sh", "-c", "kill -TERM $$"], false)
                }
                "run-usage" => env.run(id, &["--frobnicate"], &["touch", "MARKER"], true),
                "run-bind-destination-missing" => {
                    let r = make_root(env, "rootfs", true);
                    env.run(id, &["--root", r.to_str().unwrap(), "--bind", "/usr:/missing"], &["touch", "MARKER"], true)
                }
                "run-bind-destination-missing-host" => {
                    let dst = format!("/usr:{}", env.dir.join("missing").display());
                    env.run(id, &["--bind", &dst], &["touch", "MARKER"], true)
                }
                "run-bind-sources-over-limit" => {
                    let mut script = String::from("ulimit -n 40; exec \"$0\" run");
                    for i in 0..50 {
                        let src = env.user_dir(&format!("srcs/{i}"));
                        script.push_str(&format!(" --bind {}:/tmp", src.display()));
                    }
                    script.push_str(&format!(" -- touch {}", env.marker(id).display()));
                    let o = env.as_user(&["sh", "-c", &script, env.bin.to_str().unwrap()]).output().unwrap();
                    assert!(!env.marker(id).exists(), "{id}: the command ran");
                    actual(&o, &env.dir)
                }
                "run-bind-destination-loop" => {
                    let r = make_root(env, "rootfs", true);
                    if fs::symlink_metadata(r.join("loop")).is_err() {
                        std::os::unix::fs::symlink("/loop", r.join("loop")).unwrap();
                    }
                    env.run(id, &["--root", r.to_str().unwrap(), "--bind", "/usr:/loop/x"], &["touch", "MARKER"], true)
                }
                "run-bind-kind-mismatch" => {
                    let r = make_root(env, "rootfs", true);
                    fs::write(env.dir.join("a-file"), "").unwrap();
                    let bind = format!("{}:/usr", env.dir.join("a-file").display());
                    env.run(id, &["--root", r.to_str().unwrap(), "--bind", &bind], &["touch", "MARKER"], true)
                }
                "run-userns-unmapped" => {
                    if !need("unshare", "creates a user namespace without an id map") {
                        return None;
                    }
                    let o = env
                        .as_user(&["unshare", "--user", env.bin.to_str().unwrap(), "run", "--", "touch", env.marker(id).to_str().unwrap()])
                        .output()
                        .unwrap();
                    assert!(!env.marker(id).exists(), "{id}: the command ran");
                    actual(&o, &env.dir)
                }
                "run-path-quoted" => {
                    let forged = env.dir.join("x\nrootemu: forged");
                    env.run(id, &["--root", forged.to_str().unwrap()], &["touch", "MARKER"], true)
                }
                "run-missing-mount-points" => {
                    let r = make_root(env, "bare", false);
                    env.run(id, &["--root", r.to_str().unwrap(), "--bind", "/usr:/usr"], &["true"], false)
                }
                "run-apt-without-dev" => {
                    let r = make_root(env, "apt-without-dev", false);
                    fs::create_dir_all(r.join("etc/apt")).unwrap();
                    env.run(id, &["--root", r.to_str().unwrap(), "--bind", "/usr:/usr"], &["true"], false)
                }
                "run-as-real-root" => {
                    let o = Command::new(&env.bin).args(["run", "--", "true"]).stdin(Stdio::null()).output().unwrap();
                    actual(&o, &env.dir)
                }
                _ => panic!("docs/errors.md: no case for row `{id}`"),
            }
        }
        _ => panic!("docs/errors.md: no case for row `{id}`"),
    })
}

/// Every class the doc must have a row for.
const IDS: &[&str] = &[
    "table-yaml",
    "table-unknown-field",
    "table-duplicate-key",
    "table-duplicate-number",
    "table-number-out-of-range",
    "table-audit-arch",
    "table-file-name",
    "yaml-too-deep",
    "tables-dir-missing",
    "policy-unknown-syscall",
    "policy-unknown-action",
    "policy-unknown-constant",
    "policy-argument-index",
    "policy-value-outside-mask",
    "input-special-file",
    "input-too-large",
    "table-renumbered",
    "policy-missing",
    "abi-unknown",
    "policy-too-many-argument-combinations",
    "program-too-long",
    "macro-table-error",
    "macro-unknown-syscall",
    "macro-unknown-argument",
    "cli-usage",
    "cli-run-no-separator",
    "cli-sim-abi",
    "cli-sim-syscall",
    "cli-sim-argument",
    "cli-sim-number",
    "export-raw-terminal",
    "cli-bind",
    "cli-write-error",
    "export-byte-orders",
    "export-rule-order",
    "inspect-not-elf",
    "inspect-unreadable",
    "run-userns-disabled",
    "run-root-missing",
    "run-root-not-a-directory",
    "run-root-unreadable",
    "run-bind-source-missing",
    "run-records-missing",
    "run-seccomp-refused",
    "run-seccomp-unavailable",
    "run-command-not-found",
    "run-not-executable",
    "run-killed-by-signal",
    "run-killed-by-signal-root",
    "run-usage",
    "run-bind-destination-missing",
    "run-bind-destination-missing-host",
    "run-bind-sources-over-limit",
    "run-bind-destination-loop",
    "run-bind-kind-mismatch",
    "run-userns-unmapped",
    "run-path-quoted",
    "run-missing-mount-points",
    "run-apt-without-dev",
    "run-as-real-root",
];

#[test]
fn every_documented_error_is_real() {
    let rows = doc_rows();
    let documented: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let known: BTreeSet<&str> = IDS.iter().copied().collect();
    assert_eq!(documented.len(), rows.len(), "docs/errors.md: an id is used twice");
    assert_eq!(documented, known, "docs/errors.md rows vs the cases of this test");

    let dir = std::env::temp_dir().join(format!("rootemu-error-messages-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let env = RunEnv::new(&dir);
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in &rows {
        let Some(got) = case(&row.id, &dir, env.as_ref()) else { continue };
        checked += 1;
        // `(none)`: no message from rootemu; a message ending in `...` is a prefix.
        let found = match row.message.as_str() {
            "(none)" => !got.output.contains("rootemu:"),
            // clap indents its `tip:` lines.
            m => match m.strip_suffix("...") {
                Some(prefix) => got.output.lines().any(|l| l.trim_start().starts_with(prefix.trim_end())),
                None => got.output.lines().any(|l| l.trim_start() == m),
            },
        };
        if !found || got.exit != row.exit {
            failures.push(format!(
                "row `{}`: the doc says exit {} and\n    {}\n  but it exits {} with:\n{}",
                row.id,
                row.exit,
                row.message,
                got.exit,
                got.output.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
            ));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    eprintln!("docs/errors.md: {checked} of {} rows checked, {} wrong", rows.len(), failures.len());
    assert!(failures.is_empty(), "docs/errors.md disagrees with rootemu:\n{}", failures.join("\n"));
}
