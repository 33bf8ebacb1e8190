//! `rootemu run` end to end, as an unprivileged user (`rootemu-test`, created if missing).
//!
//! The test process runs as root; every `rootemu` invocation drops to the test user with
//! `setpriv`. Each emulated call is also run with `--no-emulation` to show it really fails
//! there, so the tests can fail. Build the binary first: `cargo build -p rootemu-cli`.

use rootemu_tests::{need, need_path, rootemu_bin};
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const USER: &str = "rootemu-test";
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

struct Env {
    /// World-readable directory holding the copied binary and test programs.
    dir: PathBuf,
    bin: PathBuf,
    uid: u32,
    gid: u32,
}

/// One-time setup; `None` means skipped (not root, or a tool is missing outside CI).
fn env() -> Option<&'static Env> {
    static ENV: OnceLock<Option<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        if !need("setpriv", "drops to the unprivileged test user") {
            return None;
        }
        let (uid, gid) = rootemu_tests::test_user()?;
        let built = rootemu_bin();
        assert!(built.exists(), "{} missing: run `cargo build -p rootemu-cli` first (same CARGO_TARGET_DIR)", built.display());
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("rootemu-run-tests-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("rootemu");
        fs::copy(&built, &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        Some(Env { dir, bin, uid, gid })
    })
    .as_ref()
}

/// Removes the work directories of earlier runs whose process is gone.
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name.strip_prefix("rootemu-run-tests-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

impl Env {
    /// A fresh directory owned by the test user.
    fn workdir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(self.uid), Some(self.gid)).unwrap();
        d
    }

    /// `cmd` as the test user in `cwd`, with a clean PATH.
    fn as_user(&self, cwd: &Path, cmd: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={USER}"), &format!("--regid={USER}"), "--init-groups", "--"])
            .args(cmd)
            .current_dir(cwd)
            .env("PATH", PATH)
            .env("HOME", cwd)
            .env_remove("ROOTEMU_DEBUG")
            .stdin(Stdio::null());
        c
    }

    /// `rootemu run ARGS` as the test user.
    fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        let bin = self.bin.to_str().unwrap();
        let mut full = vec![bin, "run"];
        full.extend_from_slice(args);
        self.as_user(cwd, &full).output().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `sh -c SCRIPT` under rootemu with and without emulation.
fn sh_both(env: &Env, cwd: &Path, script: &str) -> (Output, Output) {
    (env.run(cwd, &["--", "sh", "-c", script]), env.run(cwd, &["--no-emulation", "--", "sh", "-c", script]))
}

#[test]
fn chown_to_an_unmapped_gid_is_faked() {
    let Some(env) = env() else { return };
    let w = env.workdir("chown");
    let (on, off) = sh_both(env, &w, "touch f && chown 0:50 f");
    assert_eq!(on.status.code(), Some(0), "{}", text(&on));
    assert_ne!(off.status.code(), Some(0), "chown 0:50 must fail without emulation: {}", text(&off));
}

#[test]
fn setuid_and_setgroups_are_faked() {
    let Some(env) = env() else { return };
    if !need("perl", "calls setgroups/setuid from a script") {
        return;
    }
    let w = env.workdir("setid");
    // $) = "0 50" is setgroups([50]) + setegid(0); POSIX::setuid(50) targets an unmapped uid.
    let script =
        r#"perl -e 'use POSIX; $! = 0; $) = "0 50"; die "setgroups: $!\n" if $!; POSIX::setuid(50) // die "setuid: $!\n"; print "done\n"'"#;
    let (on, off) = sh_both(env, &w, script);
    assert_eq!(on.status.code(), Some(0), "{}", text(&on));
    assert!(String::from_utf8_lossy(&on.stdout).contains("done"), "{}", text(&on));
    assert_ne!(off.status.code(), Some(0), "setgroups must fail without emulation: {}", text(&off));
    assert!(String::from_utf8_lossy(&off.stderr).contains("setgroups"), "{}", text(&off));
}

#[test]
fn mknod_of_a_device_is_faked_and_a_fifo_is_real() {
    let Some(env) = env() else { return };
    let w = env.workdir("mknod");
    let out = env.run(&w, &["--", "sh", "-c", "mknod null c 1 3 && mknod fifo p"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(fs::symlink_metadata(w.join("fifo")).unwrap().file_type().is_fifo(), "the FIFO must really exist");
    let off = env.run(&w, &["--no-emulation", "--", "sh", "-c", "mknod null2 c 1 3"]);
    assert_ne!(off.status.code(), Some(0), "mknod c must fail without emulation: {}", text(&off));
}

fn fakeroot_calls(env: &Env, compiler: &str, extra: &[&str], name: &str) -> Option<PathBuf> {
    if !need(compiler, "builds tests/programs/fakeroot_calls.c") {
        return None;
    }
    let src = rootemu_tests::workspace().join("tests/programs/fakeroot_calls.c");
    let out = env.dir.join(name);
    let st = Command::new(compiler).args(extra).arg("-O2").arg("-o").arg(&out).arg(&src).status().unwrap();
    assert!(st.success(), "{compiler} failed on {}", src.display());
    Some(out)
}

fn check_fakeroot_calls(env: &Env, prog: &Path, abi: &str, calls: usize) {
    let w = env.workdir(&format!("calls-{abi}"));
    fs::write(w.join("f"), "").unwrap();
    std::os::unix::fs::chown(w.join("f"), Some(env.uid), Some(env.gid)).unwrap();
    let p = prog.to_str().unwrap();
    let on = env.run(&w, &["--", p, "f"]);
    let stdout = String::from_utf8_lossy(&on.stdout);
    assert_eq!(on.status.code(), Some(0), "{}", text(&on));
    assert!(stdout.contains(&format!("abi {abi}")), "{}", text(&on));
    assert_eq!(stdout.matches("ok ").count(), calls, "{}", text(&on));
    let off = env.run(&w, &["--no-emulation", "--", p, "f"]);
    assert_eq!(off.status.code(), Some(1), "{}", text(&off));
    assert_eq!(
        String::from_utf8_lossy(&off.stdout).matches("FAIL ").count(),
        calls,
        "every call must fail without emulation: {}",
        text(&off)
    );
}

#[test]
fn i386_static_program_calls_are_faked_in_kernel() {
    let Some(env) = env() else { return };
    let Some(prog) = fakeroot_calls(env, "i686-linux-gnu-gcc", &["-static"], "fakeroot_calls_i386") else { return };
    // chown, setgroups, setgid, setuid via glibc (the *32 calls), then 16-bit chown and setuid, chown32.
    check_fakeroot_calls(env, &prog, "i386", 7);
}

#[test]
fn x86_64_program_calls_are_faked() {
    let Some(env) = env() else { return };
    let Some(prog) = fakeroot_calls(env, "gcc", &[], "fakeroot_calls_x86_64") else { return };
    check_fakeroot_calls(env, &prog, "x86_64", 5);
}

#[test]
fn exit_status_passes_through() {
    let Some(env) = env() else { return };
    let w = env.workdir("exit");
    assert_eq!(env.run(&w, &["--", "sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(env.run(&w, &["--", "true"]).status.code(), Some(0));
    // Without --root rootemu becomes the command: the caller sees the signal itself.
    let o = env.run(&w, &["--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.signal(), Some(libc::SIGTERM), "{}", text(&o));
}

/// Without --root nothing is forked: the command runs as the process that started rootemu.
#[test]
fn without_root_the_command_replaces_rootemu() {
    let Some(env) = env() else { return };
    let w = env.workdir("noforks");
    let bin = env.bin.to_str().unwrap().to_string();
    // setpriv execs rootemu, which execs sh: one pid throughout.
    let child = env.as_user(&w, &[bin.as_str(), "run", "--", "sh", "-c", "echo $$"]).stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), pid.to_string(), "{}", text(&o));
}

/// A minimal root: the host's /usr bound in, merged-usr symlinks, passwd/group, /etc/apt.
fn make_root(env: &Env, name: &str) -> PathBuf {
    let w = env.workdir(name);
    let r = w.join("root");
    fs::create_dir_all(r.join("etc/apt")).unwrap();
    fs::create_dir_all(r.join("usr")).unwrap();
    for d in ["bin", "lib", "lib64", "sbin"] {
        if fs::symlink_metadata(Path::new("/").join(d)).is_ok_and(|m| m.file_type().is_symlink()) {
            std::os::unix::fs::symlink(format!("usr/{d}"), r.join(d)).unwrap();
        }
    }
    for f in ["passwd", "group"] {
        fs::copy(Path::new("/etc").join(f), r.join("etc").join(f)).unwrap();
    }
    let st = Command::new("chown").args(["-R", "-h", &format!("{}:{}", env.uid, env.gid)]).arg(&w).status().unwrap();
    assert!(st.success());
    r
}

#[test]
fn root_dir_gets_proc_dev_sys_tmp_and_the_apt_hook() {
    let Some(env) = env() else { return };
    let r = make_root(env, "rootdir");
    let root = r.to_str().unwrap();
    let script = "echo pid=$$; test -r /proc/1/status && echo proc-ok; echo x > /dev/null && echo null-ok; \
                  test -c /dev/urandom && echo urandom-ok; touch /sys/x 2>/dev/null || echo sys-ro; \
                  touch /tmp/x && echo tmp-ok; test \"$(pwd)\" = / && echo cwd-ok; \
                  cat /etc/apt/apt.conf.d/00rootemu-sandbox; touch /etc/owned && chown 0:50 /etc/owned && echo chown-ok";
    let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--", "sh", "-c", script]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for want in ["pid=2", "proc-ok", "null-ok", "urandom-ok", "sys-ro", "tmp-ok", "cwd-ok", "APT::Sandbox::User \"root\";", "chown-ok"] {
        assert!(out.contains(want), "missing {want:?}: {}", text(&o));
    }
    assert!(!r.join("etc/apt/apt.conf.d/00rootemu-sandbox").exists(), "the hook's mount point is removed afterwards");
    if need("apt-config", "shows apt's view of the hook") {
        let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--", "apt-config", "dump"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("APT::Sandbox::User \"root\";"), "{}", text(&o));
        let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--no-apt-hook", "--", "apt-config", "dump"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(!String::from_utf8_lossy(&o.stdout).contains("APT::Sandbox::User \"root\";"), "{}", text(&o));
    }
    // Exit status through pid 1 of the namespace.
    let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
}

/// SIGTERM sent to rootemu reaches the command (through init with --root).
#[test]
fn sigterm_to_rootemu_is_forwarded() {
    let Some(env) = env() else { return };
    let r = make_root(env, "sigterm");
    let root = r.to_str().unwrap().to_string();
    let bin = env.bin.to_str().unwrap().to_string();
    for with_root in [false, true] {
        let mut args = vec![bin.as_str(), "run"];
        if with_root {
            args.extend(["--root", root.as_str(), "--bind", "/usr:/usr"]);
        }
        // The marker shows the command runs, so rootemu's handlers are installed by then.
        let marker = if with_root { "/started" } else { "started" };
        let script = format!("touch {marker} && exec sleep 30");
        args.extend(["--", "sh", "-c", &script]);
        // setpriv execs rootemu, so the child's pid is rootemu's.
        let mut child = env.as_user(&r, &args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let _ = fs::remove_file(r.join("started"));
        let start = Instant::now();
        while !r.join("started").exists() {
            assert!(start.elapsed() < Duration::from_secs(20), "the command never started (root: {with_root})");
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "rootemu did not exit after SIGTERM (root: {with_root})");
            std::thread::sleep(Duration::from_millis(20));
        };
        // With --root rootemu forwards it and exits 128+15; without, the command is rootemu's pid.
        if with_root {
            assert_eq!(status.code(), Some(143), "root: {with_root}");
        } else {
            assert_eq!(status.signal(), Some(libc::SIGTERM), "root: {with_root}");
        }
    }
}

#[test]
fn command_not_found_exits_127() {
    let Some(env) = env() else { return };
    let w = env.workdir("notfound");
    let o = env.run(&w, &["--", "rootemu-no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rootemu-no-such-command: command not found"), "{}", text(&o));
}

#[test]
fn missing_root_dir_fails_closed() {
    let Some(env) = env() else { return };
    let w = env.workdir("noroot");
    let o = env.run(&w, &["--root", "/nonexistent/rootemu-root", "--", "touch", w.join("marker").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rootemu: --root /nonexistent/rootemu-root: ENOENT"), "{}", text(&o));
    assert!(!w.join("marker").exists(), "the command must not run");
}

#[test]
fn disabled_user_namespaces_fail_closed() {
    let Some(env) = env() else { return };
    if !need("unshare", "creates the outer namespace whose user.max_user_namespaces is set to 0") {
        return;
    }
    let w = env.workdir("nouserns");
    let script = format!("echo 0 > /proc/sys/user/max_user_namespaces && exec {} run -- touch marker", env.bin.display());
    let o = env.as_user(&w, &["unshare", "--user", "--map-root-user", "--fork", "sh", "-c", &script]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("rootemu: creating the user namespace (unshare CLONE_NEWUSER) failed: ENOSPC")
            && err.contains("user namespaces are disabled (sysctl user.max_user_namespaces = 0)"),
        "{}",
        text(&o)
    );
    assert!(!w.join("marker").exists(), "the command must not run");
}

#[test]
fn real_debian_package_extracts_with_ownership() {
    let Some(env) = env() else { return };
    if !need("dpkg-deb", "unpacks the .deb")
        || !need("tar", "extracts with --same-owner")
        || !need("unshare", "the plain-namespace baseline")
    {
        return;
    }
    let w = env.workdir("deb");
    let cached = fs::read_dir("/var/cache/apt/archives").ok().and_then(|d| {
        d.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("base-files_")))
    });
    let deb = match cached {
        Some(p) => p,
        None => {
            if !need("apt-get", "downloads base-files") {
                return;
            }
            let st = Command::new("apt-get").args(["download", "-q", "base-files"]).current_dir(&env.dir).status().unwrap();
            let found =
                fs::read_dir(&env.dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.to_string_lossy().ends_with(".deb"));
            match found {
                Some(p) if st.success() => p,
                _ => {
                    assert!(!rootemu_tests::in_ci(), "CI=true and `apt-get download base-files` failed");
                    eprintln!("SKIPPED: apt-get download base-files failed (no network?)");
                    return;
                }
            }
        }
    };
    if !need_path(&deb, "the base-files package") {
        return;
    }
    let tar = w.join("data.tar");
    let o = Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&deb).output().unwrap();
    assert!(o.status.success());
    fs::write(&tar, &o.stdout).unwrap();
    fs::set_permissions(&tar, fs::Permissions::from_mode(0o644)).unwrap();
    let listing = Command::new("tar").arg("-tvf").arg(&tar).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l.contains("root/staff")), "base-files should have a root:staff entry:\n{listing}");

    for d in ["emu", "plain"] {
        fs::create_dir(w.join(d)).unwrap();
        std::os::unix::fs::chown(w.join(d), Some(env.uid), Some(env.gid)).unwrap();
    }
    let o = env.run(&w, &["--", "tar", "--same-owner", "-xpf", "data.tar", "-C", "emu"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(w.join("emu/etc/debian_version").exists());
    let o = env
        .as_user(&w, &["unshare", "--user", "--map-root-user", "tar", "--same-owner", "-xpf", "data.tar", "-C", "plain"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "plain unshare -r must fail on root:staff: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Cannot change ownership"), "{}", text(&o));
}
