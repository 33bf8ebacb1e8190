//! `rootemu run --root` under load and under SIGKILL, as the unprivileged test user (issue
//! #18): 200 sequential and 20 concurrent runs on one root, each running apt; 100 runs
//! killed 0-20 ms after they start. Afterwards no process, no mount and no file of theirs
//! is left, and the root is as it was (`find -printf` listing with all metadata but atime).
//!
//! The root is the small one of `run_env::make_root`: the host's /usr bound in, and a
//! trusted local apt repository, so `apt-get update` runs apt's fetch method (which drops
//! to `_apt` unless rootemu's configuration says otherwise) without a network.

mod run_env;

use rootemu_tests::need;
use run_env::{env, listing, make_root, mounts_under, processes_with, stdout, text};
use std::fs;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Each load run: apt sees the configuration, fetches from the local repository into state
/// directories on the run's own /tmp, and still sees the configuration at the end, when
/// concurrent runs on the same root have come and gone.
const APT_RUN: &str = "set -e; mkdir -p /tmp/l/partial /tmp/c/archives/partial; \
    apt-config dump | grep -q 'APT::Sandbox::User \"root\"'; \
    apt-get -qq -o Dir::State::Lists=/tmp/l -o Dir::Cache=/tmp/c update; \
    apt-config dump | grep -q 'APT::Sandbox::User \"root\"'; echo ok";

/// Waits up to 2 s for the processes carrying `token` to be gone; those still there.
fn leftovers(token: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let left = processes_with(token);
        if left.is_empty() || start.elapsed() > Duration::from_secs(2) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn load_200_sequential_and_20_concurrent_runs_on_one_root() {
    let Some(env) = env() else { return };
    if !need("apt-get", "the load runs install nothing but run apt's fetch method") || !need("find", "lists the root") {
        return;
    }
    let r = make_root(env, "load");
    let token = r.to_str().unwrap();
    let (files, mounts) = (listing(&r), mounts_under(&r));
    let args = ["--root", token, "--bind", "/usr:/usr", "--", "sh", "-c", APT_RUN];
    let t = Instant::now();
    for i in 0..200 {
        let o = env.run(&r, &args);
        assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "ok\n"), "sequential run {i}: {}", text(&o));
    }
    let sequential = t.elapsed();
    let t = Instant::now();
    let mut full = vec![env.bin.to_str().unwrap(), "run"];
    full.extend(args);
    let children: Vec<Child> =
        (0..20).map(|_| env.as_user(&r, &full).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "ok\n"), "concurrent run {i}: {}", text(&o));
    }
    let concurrent = t.elapsed();
    eprintln!("200 sequential runs in {:.1} s, 20 concurrent in {:.2} s", sequential.as_secs_f64(), concurrent.as_secs_f64());
    assert_eq!(leftovers(token), Vec::<String>::new(), "processes left behind");
    assert_eq!(mounts_under(&r), mounts, "mounts left behind");
    assert_eq!(listing(&r), files, "the root changed");
}

#[test]
fn sigkill_during_start_up_leaves_nothing_running() {
    let Some(env) = env() else { return };
    if !need("find", "lists the root") {
        return;
    }
    let r = make_root(env, "kill");
    let token = r.to_str().unwrap();
    // The commands that got to run leave a marker here (outside the root).
    let markers = r.parent().unwrap().join("markers");
    fs::create_dir_all(r.join("opt/markers")).unwrap();
    fs::create_dir(&markers).unwrap();
    for d in [r.join("opt"), r.join("opt/markers"), markers.clone()] {
        std::os::unix::fs::chown(d, Some(env.uid), Some(env.gid)).unwrap();
    }
    let (files, mounts) = (listing(&r), mounts_under(&r));
    let bind = format!("{}:/opt/markers", markers.display());
    let t = Instant::now();
    for i in 0..100u64 {
        let n = i.to_string();
        let cmd = [env.bin.to_str().unwrap(), "run", "--root", token, "--bind", "/usr:/usr", "--bind", &bind, "--"];
        let script = ["sh", "-c", "touch /opt/markers/$1; sleep 5; true", token, &n];
        let mut child = env.as_user(&r, &[&cmd[..], &script[..]].concat()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(200 * i));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let started = fs::read_dir(&markers).unwrap().count();
    eprintln!("100 runs killed 0-20 ms after start in {:.1} s; {started} commands had started", t.elapsed().as_secs_f64());
    assert_eq!(leftovers(token), Vec::<String>::new(), "processes left running after SIGKILL of rootemu");
    assert_eq!(mounts_under(&r), mounts, "mounts left behind");
    assert_eq!(listing(&r), files, "the root changed");
}
