//! Consistent mode's supervisor survives its own death: the handler is killed (SIGKILL) at
//! random moments and between receiving a call and answering it (the test hook
//! `ROOTEMU_TEST_STOP_BEFORE_ANSWER`), it is upgraded to another build mid-run, and the
//! environment fails under it (full disk, no user xattrs, a caller that dies, memory out
//! of reach). Each run is compared with an undisturbed one.

use rootemu_tests::{UserEnv, need, output_text};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn env() -> Option<&'static UserEnv> {
    static ENV: OnceLock<Option<UserEnv>> = OnceLock::new();
    ENV.get_or_init(|| UserEnv::new("resilience-tests")).as_ref()
}

/// One test at a time: they kill and stop processes of the same test user (a stopped
/// handler, a `chown` caller), which must be their own run's.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Chowns, chmods, device nodes, symlinks, FIFOs (10 per directory: their records share
/// the directory's xattr space) and ACLs, then every file's record as the build sees it
/// (stat through the supervisor), in `listing`.
const WORKLOAD: &str = r#"set -e
for i in $(seq 60); do
  d=dir$((i / 10)); mkdir -p $d
  touch f$i; chown $i:$((i + 1)) f$i; chmod 0$((i % 8))55 f$i
  mknod d$i c 1 $i; chown 0:$i d$i
  ln -s ../f$i $d/l$i; chown -h 7:$i $d/l$i
  mkfifo $d/p$i; chown $i $d/p$i
  [ $((i % 10)) = 0 ] && setfacl -m g:$((i + 1000)):r f$i
done
find . -path ./listing -prune -o -printf '%p %U:%G %m %y %Y\n' | sort > listing
for i in $(seq 10 10 60); do getfacl -cn f$i | grep -x "group:$((i + 1000)):r--" >> listing; done
"#;

/// `rootemu run --consistent --control SOCK -- sh -c WORKLOAD` in a fresh directory, as the
/// test user, in the background.
fn start(env: &UserEnv, name: &str, extra_env: &[(&str, &str)], bin: &Path) -> (Child, PathBuf, PathBuf) {
    start_in(env, name, &env.workdir(name), &[], WORKLOAD, extra_env, bin)
}

/// `rootemu run --consistent --control SOCK ARGS -- sh -c SCRIPT` in `cwd`, as the test
/// user, in the background.
fn start_in(
    env: &UserEnv,
    name: &str,
    cwd: &Path,
    args: &[&str],
    script: &str,
    extra_env: &[(&str, &str)],
    bin: &Path,
) -> (Child, PathBuf, PathBuf) {
    let (mut c, sock) = controlled(env, name, cwd, args, script, bin);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    (child, cwd.to_path_buf(), sock)
}

/// The command `rootemu run --consistent --control SOCK ARGS -- sh -c SCRIPT` in `cwd` as
/// the test user, and its fresh control socket's path.
fn controlled(env: &UserEnv, name: &str, cwd: &Path, args: &[&str], script: &str, bin: &Path) -> (Command, PathBuf) {
    let sock = env.workdir(&format!("{name}-control")).join("socket");
    let mut argv = vec![bin.to_str().unwrap(), "run", "--consistent", "--control", sock.to_str().unwrap()];
    argv.extend_from_slice(args);
    argv.extend(["--", "sh", "-c", script]);
    (env.as_user(cwd, &argv), sock)
}

/// The keeper's status (JSON), once its control socket answers.
fn status(env: &UserEnv, sock: &Path) -> Option<serde_json::Value> {
    // Bounded: a keeper still starting (its handler stopped at the test hook on the start-up
    // probe) answers only once the handler goes on.
    let args = ["timeout", "5", env.bin.to_str().unwrap(), "supervisor", "status", "--control", sock.to_str().unwrap()];
    let o = env.as_user(Path::new("/"), &args).output().ok()?;
    serde_json::from_slice(&o.stdout).ok()
}

/// The processes of user `uid` stopped by a signal (state `T`).
fn stopped_processes(uid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let owner = std::fs::metadata(e.path()).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok();
        if owner == Some(uid) && state(i64::from(pid)) == Some('T') {
            out.push(pid);
        }
    }
    out
}

fn state(pid: i64) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(") ").next()?.chars().next()
}

/// What one disturbed run measured.
#[derive(Default, Debug)]
struct Storm {
    kills_at_hook: u64,
    /// `kills_at_hook` when the last status was read.
    kills_at_hook_polled: u64,
    kills_anywhere: u64,
    latencies_us: Vec<u64>,
    replayed: u64,
    gone: u64,
}

/// Runs the workload while killing the handler: every time it stops at the hook, and at
/// random moments in between. Returns the listing and what happened.
fn storm(env: &UserEnv, name: &str, every: u64) -> (String, Storm) {
    let (child, w, sock) = start(env, name, &[("ROOTEMU_TEST_STOP_BEFORE_ANSWER", &every.to_string())], &env.bin);
    disturb(env, name, every, child, &w, &sock)
}

/// Kills the handler of a run started with the hook every `every` calls, as [`storm`] says.
fn disturb(env: &UserEnv, name: &str, every: u64, mut child: Child, w: &Path, sock: &Path) -> (String, Storm) {
    let sock = sock.to_path_buf();
    let mut s = Storm::default();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ every;
    let mut last: Option<serde_json::Value> = None;
    let t0 = Instant::now();
    let mut polled = t0 - Duration::from_secs(1);
    let mut killed = std::collections::HashSet::new();
    while child.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(600), "{name}: the build hangs");
        // A handler stopped at the hook (between receiving a call and answering it): the
        // test user's only stopped process, found without asking the keeper.
        for pid in stopped_processes(env.uid) {
            // SAFETY: signalling the test user's handler process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // A killed process shows as stopped until the keeper reaps it: count it once.
            if killed.insert(pid) {
                s.kills_at_hook += 1;
            }
        }
        // Now and then, the keeper's status: the handler's pid, killed at a random moment.
        if polled.elapsed() >= Duration::from_millis(40) {
            polled = Instant::now();
            if let Some(st) = status(env, &sock) {
                let pid = st["handler_pid"].as_i64().unwrap_or(0);
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if pid > 0 && state(pid) != Some('T') && seed % 3 == 0 {
                    std::thread::sleep(Duration::from_micros(seed % 3000));
                    // SAFETY: as above.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    if killed.insert(pid as i32) {
                        s.kills_anywhere += 1;
                    }
                }
                last = Some(st);
                s.kills_at_hook_polled = s.kills_at_hook;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{name}: {}", output_text(&o));
    no_process_left(env, &sock);
    if let Some(st) = last {
        s.latencies_us = st["takeover_latencies_us"].as_array().unwrap().iter().filter_map(|v| v.as_u64()).collect();
        s.replayed = st["replayed"].as_u64().unwrap_or(0);
        s.gone = st["gone"].as_u64().unwrap_or(0);
    }
    (std::fs::read_to_string(w.join("listing")).unwrap(), s)
}

fn undisturbed(env: &UserEnv) -> &'static str {
    static LISTING: OnceLock<String> = OnceLock::new();
    LISTING.get_or_init(|| {
        let (child, w, _) = start(env, "calm", &[], &env.bin);
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "undisturbed run: {}", output_text(&o));
        std::fs::read_to_string(w.join("listing")).unwrap()
    })
}

/// No process of the run whose control socket is `sock` is left (the keeper and its
/// handler end right after the command: a moment is given). Other tests of this binary
/// run the same binary as the same user at the same time: the socket tells them apart.
fn no_process_left(env: &UserEnv, sock: &Path) {
    let t0 = Instant::now();
    loop {
        let o = Command::new("pgrep").args(["-u", &env.uid.to_string(), "-f", sock.to_str().unwrap()]).output().unwrap();
        if o.stdout.is_empty() {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(3), "processes of the run left: {}", String::from_utf8_lossy(&o.stdout));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 100+ SIGKILLs of the handler across two runs, most of them between receiving a call and
/// answering it: every run ends with the same records as an undisturbed one, nothing
/// hangs, no answer is lost or sent twice.
#[test]
fn killing_the_handler_loses_nothing_and_hangs_nothing() {
    let _serial = serial();
    let Some(env) = env() else { return };
    if !need("setfacl", "sets ACLs (package acl)") {
        return;
    }
    let want = undisturbed(env);
    let (mut total, mut at_hook, mut lat) = (0, 0, Vec::new());
    for (run, every) in [7u64, 23].iter().enumerate() {
        let (listing, s) = storm(env, &format!("storm{run}"), *every);
        assert_eq!(listing, want, "run {run} (hook every {every}): the records differ from an undisturbed run; {s:?}");
        assert_eq!(s.gone, 0, "run {run}: an answer reached no waiting caller (lost or sent twice); {s:?}");
        // Calls in flight at a kill were answered by the next handler (the counts are read
        // while the run goes on, so a takeover under way may not show yet).
        assert!(s.kills_at_hook_polled < 2 || s.replayed > 0, "run {run}: no call in flight was replayed; {s:?}");
        total += s.kills_at_hook + s.kills_anywhere;
        at_hook += s.kills_at_hook;
        lat.extend(s.latencies_us);
    }
    lat.sort_unstable();
    eprintln!(
        "resilience: {total} kills ({at_hook} between receive and answer), 0 differences, 0 lost or double answers; takeover latency median {} us, worst {} us",
        lat.get(lat.len() / 2).copied().unwrap_or(0),
        lat.last().copied().unwrap_or(0)
    );
    assert!(total >= 100, "only {total} kills");
}

/// The handler replaced by another build of rootemu mid-run (the static release binary
/// of `scripts/build`, when the suite has built it): the build completes, same records.
#[test]
fn upgrading_the_handler_mid_run_changes_nothing() {
    let _serial = serial();
    let Some(env) = env() else { return };
    let dist = std::env::var_os("ROOTEMU").map(PathBuf::from).unwrap_or_else(|| rootemu_tests::workspace().join("target/dist/rootemu"));
    if !rootemu_tests::need_path(&dist, "the static release build (scripts/build) to upgrade to") {
        return;
    }
    let other = env.dir.join("rootemu-other");
    std::fs::copy(&dist, &other).unwrap();
    let want = undisturbed(env);
    let (child, w, sock) = start(env, "upgrade", &[], &env.bin);
    let (mut upgrades, mut refused) = (Vec::new(), None);
    while upgrades.len() < 3 && child_running(&child) {
        std::thread::sleep(Duration::from_millis(300));
        let o = env
            .as_user(
                Path::new("/"),
                &[env.bin.to_str().unwrap(), "supervisor", "upgrade", "--control", sock.to_str().unwrap(), other.to_str().unwrap()],
            )
            .output()
            .unwrap();
        let answer = format!("{}{}", String::from_utf8_lossy(&o.stdout).trim(), String::from_utf8_lossy(&o.stderr).trim());
        if o.status.success() {
            upgrades.push(answer);
        } else {
            refused = Some(answer);
        }
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        !upgrades.is_empty(),
        "no upgrade happened before the build ended; the last answer: {refused:?} (a handler of {} refuses a program \
         other than its own build's: is it stale? scripts/build makes it)",
        dist.display()
    );
    assert!(upgrades.iter().all(|u| u.starts_with("ok ")), "{upgrades:?}");
    assert_eq!(std::fs::read_to_string(w.join("listing")).unwrap(), want);
    eprintln!("upgrades: {upgrades:?}");
}

/// Whether the child has not exited yet (an exited, unreaped child is a zombie, `Z`).
fn child_running(c: &Child) -> bool {
    state(i64::from(c.id())).is_some_and(|s| s != 'Z')
}

/// A file system of its own, mounted by the test (root), owned by the test user.
struct Mounted(PathBuf);

impl Mounted {
    fn new(env: &UserEnv, name: &str, mount: &[&str]) -> Mounted {
        let dir = env.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount").args(mount).arg(&dir).status().unwrap();
        assert!(st.success(), "mount {mount:?}");
        std::os::unix::fs::chown(&dir, Some(env.uid), Some(env.gid)).unwrap();
        Mounted(dir)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn consistent(env: &UserEnv, cwd: &Path, script: &str, extra: &[(&str, &str)]) -> std::process::Output {
    let mut c = env.as_user(cwd, &[env.bin.to_str().unwrap(), "run", "--consistent", "--", "sh", "-c", script]);
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A file system without user xattrs (ramfs) and a full one (a tiny ext4 whose inodes
/// have no room for xattrs): the call fails with the file system's errno, rootemu says why
/// once, and nothing is half-written (the file keeps its old owner).
#[test]
fn a_full_disk_or_no_user_xattrs_is_a_clear_error() {
    let _serial = serial();
    let Some(env) = env() else { return };
    let ramfs = Mounted::new(env, "ramfs", &["-t", "ramfs", "ramfs"]);
    let o = consistent(env, &ramfs.0, "touch f; chown 0:50 f; echo rc=$?; stat -c %u:%g f", &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(out, "rc=1\n0:0\n", "{}", output_text(&o));
    assert!(err.contains("does not keep user xattrs") && err.contains("EOPNOTSUPP"), "{}", output_text(&o));

    if !need("mkfs.ext4", "makes a tiny file system (package e2fsprogs)") {
        return;
    }
    let img = env.dir.join("full.img");
    let run = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    run(Command::new("truncate").arg("-s").arg("4M").arg(&img));
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-I", "128", "-N", "64", "-m", "0"]).arg(&img));
    let full = Mounted::new(env, "full", &["-o", "loop", img.to_str().unwrap()]);
    let o = consistent(
        env,
        &full.0,
        "for i in 1 2 3 4; do touch f$i; done; dd if=/dev/zero of=fill bs=64k 2>/dev/null; \
         while dd if=/dev/zero of=fill bs=1024 count=1 oflag=append conv=notrunc 2>/dev/null; do :; done; \
         chown 0:50 f1; echo rc=$?; stat -c %u:%g f1",
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "rc=1\n0:0\n", "{}", output_text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("file system is full"), "{}", output_text(&o));
}

/// The handler dies right after the kernel handed it a call, before it could journal it
/// (the test hook `ROOTEMU_TEST_DIE_AFTER_RECEIVE`, every 29th call): the kernel never
/// hands that call out again, so only the receive buffer in the journal's page saves it;
/// the build completes with the records of an undisturbed run.
#[test]
fn a_handler_killed_right_after_receiving_loses_nothing() {
    let _serial = serial();
    let Some(env) = env() else { return };
    if !need("setfacl", "sets ACLs (package acl)") {
        return;
    }
    let want = undisturbed(env);
    let (mut child, w, sock) = start(env, "die-after-receive", &[("ROOTEMU_TEST_DIE_AFTER_RECEIVE", "29")], &env.bin);
    let t0 = Instant::now();
    let mut last = None;
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("the build hangs: a call the dead handler received was lost; {last:?}");
        }
        if let Some(st) = status(env, &sock) {
            last = Some(st);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", output_text(&o));
    assert_eq!(std::fs::read_to_string(w.join("listing")).unwrap(), want);
    let st = last.expect("the keeper answered status");
    assert!(st["takeovers"].as_u64().unwrap_or(0) >= 10, "the handler died too rarely: {st}");
    no_process_left(env, &sock);
}

/// Ctrl-C of the whole run (SIGINT to its process group) while a call waits for a
/// handler that does not answer (stopped at the test hook): the waiting caller still dies
/// (a default-fatal signal; `WAIT_KILLABLE_RECV`), the run ends as `unshare -r` would
/// (status 130 or death by SIGINT), and no process of it is left, the stopped handler
/// included.
#[test]
fn ctrl_c_ends_a_run_whose_handler_does_not_answer() {
    let _serial = serial();
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let Some(env) = env() else { return };
    let (mut c, sock) = controlled(env, "ctrl-c", &env.workdir("ctrl-c"), &[], WORKLOAD, &env.bin);
    let mut child =
        c.env("ROOTEMU_TEST_STOP_BEFORE_ANSWER", "40").process_group(0).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    let stopped = loop {
        let o = Command::new("pgrep").args(["-r", "T", "-u", &env.uid.to_string(), "-f", sock.to_str().unwrap()]).output().unwrap();
        if let Some(pid) = String::from_utf8_lossy(&o.stdout).lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
            break pid;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its handler stopped");
        assert!(t0.elapsed() < Duration::from_secs(60), "the handler never stopped at the hook");
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: signalling the process group of the run we started.
    assert_eq!(unsafe { libc::killpg(child.id() as i32, libc::SIGINT) }, 0);
    let t1 = Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t1.elapsed() < Duration::from_secs(10), "the run does not end after SIGINT (handler {stopped} stopped)");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(st.code() == Some(130) || st.signal() == Some(libc::SIGINT), "{st:?}");
    eprintln!("ctrl-c: handler {stopped} stopped at the hook; the run ended {} ms after SIGINT: {st:?}", t1.elapsed().as_millis());
    no_process_left(env, &sock);
}

/// The caller dies while its call is being handled (the handler stops at the hook before
/// every call; the test kills the `chown 0:50 f` caller there, then lets the handler go
/// on): the dead call changes nothing, its answer reaches nobody, later calls are served.
#[test]
fn a_caller_that_dies_mid_call_changes_nothing() {
    let _serial = serial();
    let Some(env) = env() else { return };
    let script = "touch f g; chown 0:50 f; chown 0:60 g; stat -c %u:%g f g";
    let (mut c, sock) = controlled(env, "caller-dies", &env.workdir("caller-dies"), &[], script, &env.bin);
    let mut child = c.env("ROOTEMU_TEST_STOP_BEFORE_ANSWER", "1").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (t0, mut killed, mut gone) = (Instant::now(), false, 0);
    while child.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(60), "hangs");
        // The handler stops (SIGSTOP, test hook) before answering each call; it is found as
        // the test user's stopped process, since the keeper answers `status` only once
        // its handler got past the start-up probe.
        for pid in stopped_processes(env.uid) {
            if !killed {
                let o = Command::new("pgrep").args(["-u", &env.uid.to_string(), "-f", "^chown 0:50 f$"]).output().unwrap();
                if let Some(caller) = String::from_utf8_lossy(&o.stdout).lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: signalling the test user's process.
                    unsafe { libc::kill(caller, libc::SIGKILL) };
                    killed = true;
                    while state(i64::from(caller)).is_some_and(|s| s != 'Z') {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        if killed {
            if let Some(st) = status(env, &sock) {
                gone = st["gone"].as_u64().unwrap_or(0);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let o = child.wait_with_output().unwrap();
    assert!(killed, "the caller was never caught waiting: {}", output_text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0:0\n0:60\n", "{}", output_text(&o));
    assert!(gone >= 1, "the dead caller's answer must reach nobody (gone = {gone})");
}

/// The handler cannot reach the caller's memory (ptrace rules, an LSM; simulated for
/// fchownat by the test hook `ROOTEMU_TEST_UNREACHABLE`): the call fails with that errno
/// and rootemu says so once.
#[test]
fn a_caller_out_of_reach_is_a_clear_error() {
    let _serial = serial();
    let Some(env) = env() else { return };
    let w = env.workdir("unreachable");
    let o = consistent(env, &w, "touch f; chown 0:50 f; echo rc=$?; chown 0:51 f; echo rc=$?", &[("ROOTEMU_TEST_UNREACHABLE", "fchownat")]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "rc=1\nrc=1\n", "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot reach pid") && err.contains("fchownat") && err.contains("EPERM"), "{}", output_text(&o));
    assert_eq!(err.matches("cannot reach pid").count(), 1, "once: {}", output_text(&o));
}

/// `rootemu run --consistent --records RECORDS -- sh -c SCRIPT` in `cwd`: its stdout; it
/// must succeed.
fn with_records(env: &UserEnv, cwd: &Path, records: &Path, script: &str) -> String {
    let bin = env.bin.to_str().unwrap();
    let o =
        env.as_user(cwd, &[bin, "run", "--consistent", "--records", records.to_str().unwrap(), "--", "sh", "-c", script]).output().unwrap();
    assert!(o.status.success(), "{script}: {}", output_text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `rootemu export DIR --records RECORDS` as the test user, listed by `tar -tvf` as
/// `path uid/gid mode-string` lines.
fn export_listing(env: &UserEnv, dir: &Path, records: Option<&Path>) -> String {
    let out = env.workdir("export-out").join("layer.tar");
    let mut argv = vec![env.bin.to_str().unwrap(), "export", dir.to_str().unwrap(), "-q", "-o", out.to_str().unwrap()];
    if let Some(r) = records {
        argv.extend(["--records", r.to_str().unwrap()]);
    }
    let o = env.as_user(Path::new("/"), &argv).output().unwrap();
    assert!(o.status.success(), "export: {}", output_text(&o));
    let t = Command::new("tar").arg("-tvf").arg(&out).output().unwrap();
    String::from_utf8_lossy(&t.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.iter().position(|x| x.contains(':') && x.len() == 5).map_or("", |i| f[i + 1]);
            format!("{path} {} {}", f[1], f[0])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A file system without user xattrs (ramfs): with `--records DIR` consistent mode keeps
/// the records there, a later run sees them, the export gives them; the store cannot be
/// used by two runs at once.
#[test]
fn records_on_a_file_system_without_user_xattrs_live_in_the_store() {
    let _serial = serial();
    let Some(env) = env() else { return };
    let ramfs = Mounted::new(env, "ramfs-store", &["-t", "ramfs", "ramfs"]);
    let records = env.workdir("ramfs-records");
    let out = with_records(
        env,
        &ramfs.0,
        &records,
        "set -e; touch f; chown 0:50 f; mknod -m 600 n c 1 3; ln -s f s; chown -h 7:8 s; mkfifo p; chown 9:9 p; \
         mkdir d; chown 4:5 d; chmod 2775 d; stat -c '%n %u:%g %F %a %t:%T' f n s p d",
    );
    let want = "f 0:50 regular empty file 644 0:0\nn 0:0 character special file 600 1:3\ns 7:8 symbolic link 777 0:0\n\
                p 9:9 fifo 644 0:0\nd 4:5 directory 2775 0:0\n";
    assert_eq!(out, want);
    // The command keeps the open-file limit it was started with (the keeper raises its own).
    let limit = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let plain = limit(env.as_user(&ramfs.0, &["sh", "-c", "ulimit -Sn"]).output().unwrap());
    assert_eq!(with_records(env, &ramfs.0, &records, "ulimit -Sn"), plain);
    // A later run reads them back, and a chown back to root removes one.
    let again = with_records(env, &ramfs.0, &records, "stat -c '%n %u:%g %F %a %t:%T' f n s p d; chown 0:0 f");
    assert_eq!(again, want);
    let listing = export_listing(env, &ramfs.0, Some(&records));
    for line in ["f 0/0 -rw-r--r--", "n 0/0 crw-------", "s 7/8 lrwxrwxrwx", "p 9/9 prw-r--r--", "d 4/5 drwxrwsr-x"] {
        assert!(listing.lines().any(|l| l.trim_end_matches('/') == line), "{line} not in the export:\n{listing}");
    }
    assert!(!export_listing(env, &ramfs.0, None).contains("9/9"), "without the store the export has no records");
    // One run at a time.
    let bin = env.bin.to_str().unwrap();
    let mut first =
        env.as_user(&ramfs.0, &[bin, "run", "--consistent", "--records", records.to_str().unwrap(), "--", "sleep", "3"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let o = env.as_user(&ramfs.0, &[bin, "run", "--consistent", "--records", records.to_str().unwrap(), "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", output_text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        format!("rootemu: --records {}: in use by a running `rootemu run --consistent`", records.display())
    );
    assert!(first.wait().unwrap().success());
}

/// A file system that reuses a freed inode at once and keeps no birth time (ext2 with
/// 128-byte inodes), FIFOs recorded in the store: during a run, a deleted file's inode is
/// held, so a new FIFO cannot take it (and its record); after the run, a new FIFO that
/// does take the inode is not the recorded one (its times and name differ) and shows its
/// real owner, in a later run and in the export.
#[test]
fn a_stored_record_never_follows_its_file_onto_a_reused_inode() {
    let _serial = serial();
    let Some(env) = env() else { return };
    if !need("mkfs.ext2", "makes a file system without birth times (package e2fsprogs)") {
        return;
    }
    let img = env.dir.join("ext2.img");
    let run = |c: &mut Command| assert!(c.output().unwrap().status.success(), "{c:?}");
    run(Command::new("truncate").arg("-s").arg("8M").arg(&img));
    run(Command::new("mkfs.ext2").args(["-q", "-F", "-I", "128"]).arg(&img));
    let fs = Mounted::new(env, "ext2", &["-o", "loop", img.to_str().unwrap()]);
    std::fs::remove_dir(fs.0.join("lost+found")).unwrap(); // root's, unreadable for the export
    let records = env.workdir("ext2-records");
    let ino_owner = |s: &str| -> Vec<(u64, String)> {
        s.lines().map(|l| l.split_once(' ').map(|(i, o)| (i.parse().unwrap(), o.to_string())).unwrap()).collect()
    };
    // In a run.
    let out = ino_owner(&with_records(
        env,
        &fs.0,
        &records,
        "set -e; mkfifo p; chown 5:6 p; stat -c '%i %u:%g' p; rm p; mkfifo q; stat -c '%i %u:%g' q; rm q",
    ));
    assert_eq!(out[0].1, "5:6");
    assert_eq!(out[1].1, "0:0", "the new FIFO took the deleted one's record: {out:?}");
    // Across runs.
    let r = ino_owner(&with_records(env, &fs.0, &records, "set -e; mkfifo keep r; chown 5:6 keep r; stat -c '%i %u:%g' r"));
    assert_eq!(r[0].1, "5:6");
    let o = env.as_user(&fs.0, &["sh", "-c", "rm r; mkfifo t; stat -c %i t"]).output().unwrap();
    let reused: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert_eq!(reused, r[0].0, "ext2 did not hand the freed inode to the next file: the test shows nothing");
    let later = with_records(env, &fs.0, &records, "stat -c '%n %u:%g' keep t");
    assert_eq!(later, "keep 5:6\nt 0:0\n");
    let listing = export_listing(env, &fs.0, Some(&records));
    assert!(listing.contains("keep 5/6 p") && listing.contains("t 0/0 p"), "{listing}");
}

/// The handler killed again and again (at the hook, every 7th call, and at random moments)
/// while it records into the store (ramfs, `--records`): the run ends with the records of
/// an undisturbed one, and a later run reads the same from the store.
#[test]
fn killing_the_handler_while_it_writes_the_store_loses_nothing() {
    let _serial = serial();
    let Some(env) = env() else { return };
    let workload: String = WORKLOAD.lines().filter(|l| !l.contains("facl")).map(|l| format!("{l}\n")).collect();
    let relist = "find . -path ./listing -prune -o -printf '%p %U:%G %m %y %Y\\n' | sort";
    let mut listings = Vec::new();
    for (name, hook) in [("store-calm", None), ("store-storm", Some(7u64))] {
        let fs = Mounted::new(env, name, &["-t", "ramfs", "ramfs"]);
        let records = env.workdir(&format!("{name}-records"));
        let args = ["--records", records.to_str().unwrap()];
        let every = hook.map(|n| n.to_string()).unwrap_or_default();
        let extra: Vec<(&str, &str)> = hook.iter().map(|_| ("ROOTEMU_TEST_STOP_BEFORE_ANSWER", every.as_str())).collect();
        let (child, w, sock) = start_in(env, name, &fs.0, &args, &workload, &extra, &env.bin);
        let (listing, s) = match hook {
            Some(n) => disturb(env, name, n, child, &w, &sock),
            None => {
                let o = child.wait_with_output().unwrap();
                assert!(o.status.success(), "{}", output_text(&o));
                (std::fs::read_to_string(w.join("listing")).unwrap(), Storm::default())
            }
        };
        if hook.is_some() {
            assert!(s.kills_at_hook + s.kills_anywhere >= 20, "only {s:?}");
            assert_eq!(s.gone, 0, "{s:?}");
            eprintln!("store storm: {} kills; {s:?}", s.kills_at_hook + s.kills_anywhere);
        }
        let reread = with_records(env, &fs.0, &records, relist);
        assert_eq!(reread, listing, "{name}: a later run reads other records from the store");
        listings.push(listing);
    }
    assert!(listings[0].contains("./f7 7:8 755 f f"), "{}", listings[0]);
    assert_eq!(listings[1], listings[0], "the disturbed run's records differ");
}

/// The store writes nothing outside its directory: a symlink planted as its temporary file
/// is replaced, not followed; a symlink as the store itself is refused with one line.
#[test]
fn the_store_never_writes_through_a_symlink() {
    let _serial = serial();
    let Some(env) = env() else { return };
    let w = env.workdir("store-symlinks");
    let records = env.workdir("store-symlinks-records");
    let victim = w.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, records.join("rootemu-records.new")).unwrap();
    with_records(env, &w, &records, "true");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!records.join("rootemu-records.new").exists());
    std::fs::remove_file(records.join("rootemu-records")).unwrap();
    std::os::unix::fs::symlink(&victim, records.join("rootemu-records")).unwrap();
    let bin = env.bin.to_str().unwrap();
    let o = env.as_user(&w, &[bin, "run", "--consistent", "--records", records.to_str().unwrap(), "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.lines().count() == 1 && err.contains("ELOOP"), "{}", output_text(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}
