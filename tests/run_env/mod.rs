//! What the `rootemu run` tests share: the unprivileged test user, a copy of the binary
//! it can execute, roots to run in, and the checks that nothing was left behind.

// Each test file uses part of it.
#![allow(dead_code)]

use rootemu_tests::{need, rootemu_bin};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const USER: &str = "rootemu-test";
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

pub struct Env {
    /// World-readable directory holding the copied binary and test programs.
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

/// One-time setup; `None` means skipped (not root, or a tool is missing outside CI).
pub fn env() -> Option<&'static Env> {
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
    pub fn workdir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(self.uid), Some(self.gid)).unwrap();
        d
    }

    /// `cmd` as the test user in `cwd`, with a clean PATH.
    pub fn as_user<S: AsRef<std::ffi::OsStr>>(&self, cwd: &Path, cmd: &[S]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={USER}"), &format!("--regid={USER}"), "--init-groups", "--"])
            .args(cmd)
            .current_dir(cwd)
            .env("PATH", PATH)
            .env("HOME", cwd)
            .env_remove("ROOTEMU_DEBUG")
            .env_remove("APT_CONFIG")
            .stdin(Stdio::null());
        c
    }

    /// `rootemu run ARGS` as the test user.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, cwd: &Path, args: &[S]) -> Output {
        let mut full: Vec<&std::ffi::OsStr> = vec![self.bin.as_os_str(), "run".as_ref()];
        full.extend(args.iter().map(AsRef::as_ref));
        self.as_user(cwd, &full).output().unwrap()
    }

    /// `sh -c SCRIPT` as the test user (for redirections and traps around rootemu).
    pub fn sh(&self, cwd: &Path, script: &str) -> Output {
        self.as_user(cwd, &["sh", "-c", script]).env("ROOTEMU", &self.bin).output().unwrap()
    }
}

pub fn text(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small Debian-like root owned by the test user: the host's /usr is bound in
/// (`--bind /usr:/usr`) under merged-usr links; /dev, /proc, /sys, /tmp, resolv.conf,
/// passwd/group, /etc/apt with a trusted local repository (`file:/repo`, no packages)
/// and apt's state directories.
pub fn make_root(env: &Env, name: &str) -> PathBuf {
    let w = env.workdir(name);
    let r = w.join("root");
    for d in [
        "etc/apt/apt.conf.d",
        "usr",
        "dev",
        "proc",
        "sys",
        "tmp",
        "repo",
        "var/lib/dpkg",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    usr_links(&r);
    for f in ["passwd", "group"] {
        fs::copy(Path::new("/etc").join(f), r.join("etc").join(f)).unwrap();
    }
    fs::write(r.join("etc/resolv.conf"), "").unwrap();
    fs::write(r.join("etc/apt/sources.list"), "deb [trusted=yes] file:/repo ./\n").unwrap();
    fs::write(r.join("repo/Packages"), "").unwrap();
    fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let st = Command::new("chown").args(["-R", "-h", &format!("{}:{}", env.uid, env.gid)]).arg(&w).status().unwrap();
    assert!(st.success());
    r
}

/// The merged-usr links (`bin -> usr/bin`...) the host has, in `root`.
pub fn usr_links(root: &Path) {
    for d in ["bin", "lib", "lib64", "sbin"] {
        if fs::symlink_metadata(Path::new("/").join(d)).is_ok_and(|m| m.file_type().is_symlink()) {
            std::os::unix::fs::symlink(format!("usr/{d}"), root.join(d)).unwrap();
        }
    }
}

/// Every entry under `dir` with its type, mode, owner, size, link count, mtime, ctime and
/// link target (`find -printf`; not atime, which reading changes), sorted.
pub fn listing(dir: &Path) -> String {
    let o = Command::new("find").arg(dir).args(["-printf", "%P\t%y\t%m\t%U:%G\t%s\t%n\t%T@\t%C@\t%l\n"]).output().expect("find");
    assert!(o.status.success(), "find {}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
    let mut lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// The processes whose command line contains `token`. The launcher's supervisor and init
/// carry the root's path in their arguments; once init is gone the kernel has killed
/// everything else in its PID namespace.
pub fn processes_with(token: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        let cmdline = String::from_utf8_lossy(&fs::read(e.path().join("cmdline")).unwrap_or_default()).replace('\0', " ");
        if cmdline.contains(token) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// The lines of this process's mount table that mention `path`.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(p.as_ref())).map(String::from).collect()
}
