//! `rootemu run` end to end, as an unprivileged user (`rootemu-test`, created if missing).
//!
//! The test process runs as root; every `rootemu` invocation drops to the test user with
//! `setpriv`. Each emulated call is also run with `--no-emulation` to show it really fails
//! there, so the tests can fail. Build the binary first: `cargo build -p rootemu-cli`.

mod run_env;

use rootemu_tests::{need, need_path};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use run_env::{Env, env, listing, make_root, stdout, text};

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

#[test]
fn root_dir_gets_proc_dev_sys_tmp_and_the_apt_configuration() {
    let Some(env) = env() else { return };
    let r = make_root(env, "rootdir");
    let root = r.to_str().unwrap();
    let before = listing(&r);
    let script = "echo pid=$$; test -r /proc/1/status && echo proc-ok; echo x > /dev/null && echo null-ok; \
                  test -c /dev/urandom && echo urandom-ok; touch /sys/x 2>/dev/null || echo sys-ro; \
                  touch /tmp/x && echo tmp-ok; test \"$(pwd)\" = / && echo cwd-ok; \
                  echo resolv-$(grep -c . /etc/resolv.conf); cat \"$APT_CONFIG\"; touch /tmp/owned && chown 0:50 /tmp/owned && echo chown-ok";
    let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--", "sh", "-c", script]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for want in ["pid=2", "proc-ok", "null-ok", "urandom-ok", "sys-ro", "tmp-ok", "cwd-ok", "APT::Sandbox::User \"root\";", "chown-ok"] {
        assert!(out.contains(want), "missing {want:?}: {}", text(&o));
    }
    // The host's resolv.conf (non-empty here) is on the root's empty one.
    if fs::read_to_string("/etc/resolv.conf").is_ok_and(|t| !t.trim().is_empty()) {
        assert!(!out.contains("resolv-0"), "{}", text(&o));
    }
    assert_eq!(listing(&r), before, "the root must be left as found");
    if need("apt-config", "shows apt's view of the configuration") {
        let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--", "apt-config", "dump"]);
        assert!(stdout(&o).contains("APT::Sandbox::User \"root\";"), "{}", text(&o));
        let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--no-apt-hook", "--", "apt-config", "dump"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(!stdout(&o).contains("APT::Sandbox::User \"root\";"), "{}", text(&o));
    }
    // Exit status through pid 1 of the namespace.
    let o = env.run(&r, &["--root", root, "--bind", "/usr:/usr", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
}

/// Starts `sh -c 'PREFIX exec rootemu run [--root R --bind /usr:/usr] -- sh -c "touch
/// started && exec sleep 30"'` as the test user in `r` and returns once the command runs
/// (so rootemu's handlers are installed). The shell execs rootemu: the child's pid is
/// rootemu's.
fn start_sleeper(env: &Env, r: &Path, prefix: &str, with_root: bool) -> Child {
    let _ = fs::remove_file(r.join("started"));
    let (opts, marker) = if with_root { ("--root . --bind /usr:/usr", "/started") } else { ("", "started") };
    let script = format!("{prefix} exec \"$ROOTEMU\" run {opts} -- sh -c 'touch {marker} && exec sleep 30'");
    let child =
        env.as_user(r, &["sh", "-c", &script]).env("ROOTEMU", &env.bin).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while !r.join("started").exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "the command never started (root: {with_root})");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// How `child` ended, waiting at most 10 s.
fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "rootemu did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM sent to rootemu reaches the command (through init with --root).
#[test]
fn sigterm_to_rootemu_is_forwarded() {
    let Some(env) = env() else { return };
    let r = make_root(env, "sigterm");
    for with_root in [false, true] {
        let mut child = start_sleeper(env, &r, "", with_root);
        signal(&child, libc::SIGTERM);
        let status = wait_exit(&mut child);
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
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
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
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
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

/// Defects 1 and 2 of issue #18: the command's ignored and blocked signals are the
/// caller's, exactly as under `unshare -r` (SIGPIPE at its default, not ignored as the
/// Rust runtime leaves it; signals the caller ignored still ignored).
#[test]
fn signal_state_is_the_callers_as_under_unshare() {
    let Some(env) = env() else { return };
    if !need("unshare", "the reference for the signal state") || !need("bash", "runs a pipefail pipeline") {
        return;
    }
    let r = make_root(env, "sigstate");
    let show = "grep -E '^Sig(Blk|Ign)' /proc/self/status";
    for trap in ["", "trap '' HUP INT QUIT PIPE TERM USR1;"] {
        let reference = env.sh(&r, &format!("{trap} exec unshare -r sh -c \"{show}\""));
        assert!(stdout(&reference).contains("SigIgn"), "{}", text(&reference));
        for opts in ["", "--root . --bind /usr:/usr"] {
            let o = env.sh(&r, &format!("{trap} exec \"$ROOTEMU\" run {opts} -- sh -c \"{show}\""));
            assert_eq!(stdout(&o), stdout(&reference), "caller `{trap}`, rootemu run {opts}: {}", text(&o));
        }
    }
    for opts in [&[][..], &["--root", ".", "--bind", "/usr:/usr"][..]] {
        let mut args = opts.to_vec();
        args.extend(["--", "bash", "-o", "pipefail", "-c", "yes | head -c1 >/dev/null; echo $?"]);
        let o = env.run(&r, &args);
        assert_eq!(stdout(&o).trim(), "141", "yes must die of SIGPIPE: {}", text(&o));
    }
}

/// Defect 2: `nohup rootemu run ...` keeps running when SIGHUP arrives, as
/// `nohup unshare -r ...` does.
#[test]
fn signals_the_caller_ignored_stay_ignored() {
    let Some(env) = env() else { return };
    let r = make_root(env, "sighup");
    for with_root in [false, true] {
        let mut child = start_sleeper(env, &r, "trap '' HUP;", with_root);
        signal(&child, libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "SIGHUP, ignored by the caller, ended the run (root: {with_root})");
        signal(&child, libc::SIGTERM);
        let status = wait_exit(&mut child);
        assert!(status.code() == Some(143) || status.signal() == Some(libc::SIGTERM), "root: {with_root}: {status:?}");
    }
}

/// Defect 9: pid 1 of the namespace does not bounce a signal the command sends it back
/// to the command.
#[test]
fn a_signal_to_pid_1_does_not_reach_the_command() {
    let Some(env) = env() else { return };
    let r = make_root(env, "killinit");
    let o = env.run(&r, &["--root", ".", "--bind", "/usr:/usr", "--", "sh", "-c", "kill -HUP 1; kill -TERM 1; sleep 0.3; echo alive"]);
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "alive"), "{}", text(&o));
}

/// Defect 9: closed standard descriptors reach the command closed, as under `unshare -r`
/// (the Rust runtime reopens them on /dev/null before main).
#[test]
fn closed_stdio_stays_closed_as_under_unshare() {
    let Some(env) = env() else { return };
    if !need("unshare", "the reference") {
        return;
    }
    let r = make_root(env, "closedfds");
    let show = r#"for f in 0 1 2; do if [ -e /proc/$$/fd/$f ]; then echo "$f open" >&2; else echo "$f closed" >&2; fi; done"#;
    let reference = env.sh(&r, &format!("exec 0<&- 1>&-; exec unshare -r sh -c '{show}'"));
    assert_eq!(String::from_utf8_lossy(&reference.stderr), "0 closed\n1 closed\n2 open\n", "{}", text(&reference));
    for opts in ["", "--root . --bind /usr:/usr"] {
        let o = env.sh(&r, &format!("exec 0<&- 1>&-; exec \"$ROOTEMU\" run {opts} -- sh -c '{show}'"));
        assert_eq!(o.stderr, reference.stderr, "rootemu run {opts}: {}", text(&o));
    }
}

/// Defect 9: inside --root, `tty` names the terminal on standard input, as outside.
#[test]
fn the_terminal_keeps_its_name_inside_the_root() {
    let Some(env) = env() else { return };
    if !need("script", "runs rootemu on a pseudo-terminal") {
        return;
    }
    let r = make_root(env, "tty");
    let o = env.sh(&r, "script -qec 'tty; \"$ROOTEMU\" run --root . --bind /usr:/usr -- tty' /dev/null");
    let out = stdout(&o).replace('\r', "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text(&o));
    assert!(lines[0].starts_with("/dev/pts/"), "{}", text(&o));
    assert_eq!(lines[1], lines[0], "tty inside the root: {}", text(&o));
}

/// Defect 6: nothing is created or bound outside the root, whatever its symlinks or the
/// `--bind` destinations say; as the test user and as real root.
#[test]
fn nothing_is_written_outside_the_root() {
    let Some(env) = env() else { return };
    let r = make_root(env, "escape");
    let w = r.parent().unwrap().to_path_buf();
    for d in ["fake-etc/apt", "host/sub", "src", "root/opt", "root/escaped"] {
        fs::create_dir_all(w.join(d)).unwrap();
    }
    fs::write(w.join("src/file-from-src"), "").unwrap();
    fs::remove_dir_all(r.join("etc")).unwrap();
    // Without /tmp (a fresh tmpfs would take mount points) the host path of `host` is missing
    // inside the root.
    fs::remove_dir(r.join("tmp")).unwrap();
    // Absolute links to host paths: inside the root they name <root>/<that path>.
    std::os::unix::fs::symlink(w.join("fake-etc"), r.join("etc")).unwrap();
    std::os::unix::fs::symlink(w.join("host"), r.join("opt/link")).unwrap();
    let st = Command::new("chown").args(["-R", "-h", &format!("{}:{}", env.uid, env.gid)]).arg(&w).status().unwrap();
    assert!(st.success());
    let before = listing(&w);
    let src = w.join("src");
    let bind = |dst: &str| format!("{}:{dst}", src.display());
    let show = "test -e /escaped/file-from-src && echo bound-inside";
    for as_root in [false, true] {
        let run = |args: &[&str]| -> Output {
            if as_root {
                Command::new(&env.bin).arg("run").args(args).current_dir(&r).stdin(Stdio::null()).output().unwrap()
            } else {
                env.run(&r, args)
            }
        };
        let o = run(&["--root", ".", "--bind", "/usr:/usr", "--", "true"]);
        assert_eq!(o.status.code(), Some(0), "root {as_root}: {}", text(&o));
        // `/../escaped` is `/escaped` inside the root, as the kernel resolves it there.
        let o = run(&["--root", ".", "--bind", "/usr:/usr", "--bind", &bind("/../escaped"), "--", "sh", "-c", show]);
        assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "bound-inside"), "root {as_root}: {}", text(&o));
        // /opt/link/sub is <root>/<w>/host/sub inside the root: missing, so refused.
        let o = run(&["--root", ".", "--bind", "/usr:/usr", "--bind", &bind("/opt/link/sub"), "--", "true"]);
        assert_eq!(o.status.code(), Some(125), "root {as_root}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("/opt/link/sub does not exist in --root ."), "{}", text(&o));
        assert_eq!(listing(&w), before, "root {as_root}: something changed next to or in the root");
    }
    // The issue's case as real root: DIR/etc -> /etc. Inside the root that link loops, so
    // there is no /etc there: the host's /etc/apt is not touched.
    let r2 = w.join("etc-is-host-etc");
    fs::create_dir_all(r2.join("usr")).unwrap();
    run_env::usr_links(&r2);
    std::os::unix::fs::symlink("/etc", r2.join("etc")).unwrap();
    let host_apt = listing(Path::new("/etc/apt"));
    let o = Command::new(&env.bin).args(["run", "--root"]).arg(&r2).args(["--bind", "/usr:/usr", "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(listing(Path::new("/etc/apt")), host_apt, "the host's /etc/apt changed");
}

/// Defect 7: the root is left byte for byte and metadata for metadata as it was, with
/// every feature in use, with failing binds, and when it lacks the usual mount points;
/// without --root a missing bind destination is refused, not created on the host.
#[test]
fn the_root_is_left_as_found() {
    let Some(env) = env() else { return };
    let r = make_root(env, "asfound");
    let w = r.parent().unwrap().to_path_buf();
    for d in ["src", "root/opt/a", "bare/usr"] {
        fs::create_dir_all(w.join(d)).unwrap();
    }
    run_env::usr_links(&w.join("bare"));
    fs::write(w.join("src/f"), "x").unwrap();
    let st = Command::new("chown").args(["-R", "-h", &format!("{}:{}", env.uid, env.gid)]).arg(&w).status().unwrap();
    assert!(st.success());
    let src = w.join("src").to_str().unwrap().to_string();
    let before = listing(&w);
    let full = [
        "--root",
        "root",
        "--bind",
        "/usr:/usr",
        "--bind",
        &format!("{src}:/opt/a"),
        "--bind",
        &format!("{src}:/tmp/made/on/tmpfs"),
        "--bind",
        "/dev/null:/dev/extra/null",
        "--",
        "sh",
        "-c",
        "cat /opt/a/f /tmp/made/on/tmpfs/f && test -c /dev/extra/null && apt-config dump | grep -q Sandbox::User && echo ok",
    ];
    let o = env.run(&w, &full);
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "xxok"), "{}", text(&o));
    let failing = ["--root", "root", "--bind", "/usr:/usr", "--bind", &format!("{src}:/opt/missing/dir"), "--", "true"];
    let o = env.run(&w, &failing);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    // A root without dev, proc, sys, tmp or /etc: a note, and still nothing created.
    let o = env.run(&w, &["--root", "bare", "--bind", "/usr:/usr", "--", "/usr/bin/true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rootemu: note: bare has no dev, proc, sys, tmp: not mounted"), "{}", text(&o));
    // Without --root the destination is on the host: it must exist too.
    let o = env.run(&w, &["--bind", &format!("{src}:{}", w.join("host-missing/dir").display()), "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert_eq!(listing(&w), before, "the directories given to rootemu changed");
}

/// Defect 8: arguments and --bind values that are not UTF-8 pass through unchanged.
#[test]
fn non_utf8_arguments_and_binds_pass_through() {
    let Some(env) = env() else { return };
    let w = env.workdir("nonutf8");
    let (src, dst) = (w.join(OsStr::from_bytes(b"src-\xff")), w.join(OsStr::from_bytes(b"dst-\xfe")));
    for d in [&src, &dst] {
        fs::create_dir(d).unwrap();
        std::os::unix::fs::chown(d, Some(env.uid), Some(env.gid)).unwrap();
    }
    fs::write(src.join("f"), "from-src").unwrap();
    let mut bind = src.as_os_str().to_owned();
    bind.push(":");
    bind.push(&dst);
    let arg = OsStr::from_bytes(b"a\xffb");
    let args = [
        OsStr::new("--bind"),
        &bind,
        OsStr::new("--"),
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new("printf %s \"$1\"; cat \"$2\"/f"),
        OsStr::new("sh"),
        arg,
        dst.as_os_str(),
    ];
    let o = env.run(&w, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(o.stdout, b"a\xffbfrom-src", "{}", text(&o));
}

/// Defect 10: the real-root note only for real root (not inside `unshare -r` or a nested
/// run); an unmapped uid is named as the cause; a newline in a path cannot forge a line;
/// setup failures exit 125.
#[test]
fn messages_say_what_is_true() {
    let Some(env) = env() else { return };
    if !need("unshare", "creates the outer namespaces") {
        return;
    }
    let w = env.workdir("messages");
    let bin = env.bin.to_str().unwrap();
    for o in
        [env.as_user(&w, &["unshare", "-r", bin, "run", "--", "true"]).output().unwrap(), env.run(&w, &["--", bin, "run", "--", "true"])]
    {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(o.stderr.is_empty(), "uid 0 of a user namespace is not real root: {}", text(&o));
    }
    let o = Command::new(bin).args(["run", "--", "true"]).stdin(Stdio::null()).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("rootemu: note: running as real root"), "{}", text(&o));

    let o = env.as_user(&w, &["unshare", "--user", bin, "run", "--", "true"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(err.contains("has no mapping in its user namespace") && !err.contains("chroot"), "{}", text(&o));

    let forged = w.join("x\nrootemu: forged");
    let o = env.run(&w, &[OsStr::new("--root"), forged.as_os_str(), OsStr::new("--"), OsStr::new("true")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert_eq!(err.lines().count(), 1, "{}", text(&o));
    assert!(err.contains("\\nrootemu: forged\": ENOENT"), "{}", text(&o));
}

/// `--root /`: the host's tree, with fresh /proc, /dev and /tmp; the host's devices and
/// `--bind` sources are the host's, not what the fresh mounts cover them with.
#[test]
fn the_host_root_can_be_the_root() {
    let Some(env) = env() else { return };
    let w = env.workdir("hostroot");
    fs::write(w.join("from-host"), "").unwrap();
    let bind = format!("{}:/tmp/host-dir", w.display());
    let script = "echo $$; test -c /dev/null && touch /tmp/rootemu-hostroot-test && ls -A /tmp /tmp/host-dir";
    let o = env.run(&w, &["--root", "/", "--bind", &bind, "--", "sh", "-c", script]);
    let want = "2\n/tmp:\nhost-dir\nrootemu-hostroot-test\n\n/tmp/host-dir:\nfrom-host\n";
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), want), "{}", text(&o));
    assert!(!Path::new("/tmp/rootemu-hostroot-test").exists(), "the command's /tmp is its own");
}

/// Many distinct `--bind` sources are held open while binding: rootemu raises its soft
/// open-file limit, and the command gets the caller's back.
#[test]
fn many_bind_sources_keep_the_callers_open_file_limit() {
    let Some(env) = env() else { return };
    let w = env.workdir("nofile");
    let mut binds = String::new();
    for i in 0..300 {
        for d in [format!("src/{i}"), format!("dst/{i}")] {
            fs::create_dir_all(w.join(d)).unwrap();
        }
        binds.push_str(&format!(" --bind src/{i}:{}/dst/{i}", w.display()));
    }
    let st = Command::new("chown").args(["-R", &format!("{}:{}", env.uid, env.gid)]).arg(&w).status().unwrap();
    assert!(st.success());
    let o = env.sh(&w, &format!("ulimit -Sn 256; exec \"$ROOTEMU\" run{binds} -- sh -c 'ulimit -Sn; ls dst/299 | wc -l'"));
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "256\n0\n"), "{}", text(&o));
    let o = env.sh(&w, &format!("ulimit -n 100; exec \"$ROOTEMU\" run{binds} -- true"));
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("rootemu: --bind: more distinct sources than the open-file limit allows"),
        "{}",
        text(&o)
    );
}
