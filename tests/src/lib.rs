//! Helpers shared by rootemu's integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The bundled tables directory.
pub fn tables_dir() -> PathBuf {
    workspace().join("tables")
}

/// Copies the bundled tables (the top-level `*.yaml` and `shared/*.yaml`) to a fresh temp
/// dir named after `tag`, applying each edit `(file, from, to)` once (`file` relative to the
/// tables directory, e.g. `x86_64.yaml` or `shared/struct-layouts.yaml`): a table with a
/// deliberately wrong cell, for showing that an oracle catches it.
pub fn broken_tables(tag: &str, edits: &[(&str, &str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rootemu-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["", "shared"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        let Ok(entries) = std::fs::read_dir(tables_dir().join(sub)) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                let file = Path::new(sub).join(p.file_name().unwrap()).to_str().unwrap().to_string();
                let mut text = std::fs::read_to_string(&p).unwrap();
                for (f, from, to) in edits {
                    if *f == file {
                        assert!(text.contains(from), "{file} has no {from:?}");
                        text = text.replacen(from, to, 1);
                    }
                }
                std::fs::write(dir.join(&file), text).unwrap();
            }
        }
    }
    dir
}

/// True under CI (`CI=true`), where a missing tool is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `tool` is on PATH. Under CI a missing tool panics; elsewhere the test
/// prints why it is skipped and the caller returns early.
pub fn need(tool: &str, why: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(!in_ci(), "CI=true and `{tool}` is missing ({why}); .ci/run must install it");
        eprintln!("SKIPPED: `{tool}` not found ({why}); scripts/setup-deps installs it");
    }
    found
}

/// Same as [`need`] for a file or directory that a package provides.
pub fn need_path(path: &Path, why: &str) -> bool {
    let found = path.exists();
    if !found {
        assert!(!in_ci(), "CI=true and {} is missing ({why}); .ci/run must install it", path.display());
        eprintln!("SKIPPED: {} not found ({why}); scripts/setup-deps installs it", path.display());
    }
    found
}

/// The `rootemu` binary built for this test run.
pub fn rootemu_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    target.join(profile).join("rootemu")
}

/// One oracle's verdict on one table cell (ABI, syscall name, number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The oracle has the name with the table's number.
    Agree,
    /// The oracle differs or lacks the name, for the stated reason (e.g. a kernel release).
    Explained(String),
    /// The oracle differs and nothing explains it: a test failure.
    Disagree(String),
}

/// One oracle's verdicts on the table cells it could check, written to
/// `target/oracle-ledger/<oracle>.tsv` so `oracle-summary` can count cells per oracle.
pub struct Ledger {
    oracle: String,
    rows: Vec<(String, String, u64, Verdict)>,
}

impl Ledger {
    /// An empty ledger for the oracle named `oracle` (e.g. "headers", "libseccomp").
    pub fn new(oracle: &str) -> Ledger {
        Ledger { oracle: oracle.to_string(), rows: Vec::new() }
    }

    /// Records the oracle's verdict on the table cell `abi`/`name` = `nr`.
    pub fn record(&mut self, abi: &str, name: &str, nr: u64, verdict: Verdict) {
        self.rows.push((abi.to_string(), name.to_string(), nr, verdict));
    }

    /// Writes the ledger (replacing the previous run's) and returns its path.
    pub fn write(&self) -> PathBuf {
        let dir = ledger_dir();
        std::fs::create_dir_all(&dir).expect("create the oracle ledger directory");
        let mut text = String::new();
        for (abi, name, nr, v) in &self.rows {
            let v = match v {
                Verdict::Agree => "agree".to_string(),
                Verdict::Explained(why) => format!("explained: {why}"),
                Verdict::Disagree(why) => format!("disagree: {why}"),
            };
            text.push_str(&format!("{abi}\t{name}\t{nr}\t{}\n", v.replace(['\t', '\n'], " ")));
        }
        let path = dir.join(format!("{}.tsv", self.oracle));
        std::fs::write(&path, text).expect("write the oracle ledger");
        path
    }
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// Where oracle ledgers are written: `<target dir>/oracle-ledger`.
pub fn ledger_dir() -> PathBuf {
    target_dir().join("oracle-ledger")
}

/// Prints an oracle's markdown report and keeps it as `<target dir>/oracle-<oracle>-report.md`.
pub fn write_report(oracle: &str, report: &str) {
    eprintln!("{report}");
    let dir = target_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("oracle-{oracle}-report.md")), report);
}

/// `f` over `items` on up to `threads` threads taking items from one queue; the results in
/// the items' order.
pub fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    done.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The unprivileged user tests switch to (`setpriv --reuid`), created if missing; its
/// `(uid, gid)`. `None` (a skip) when not root; under CI that is a failure.
pub fn test_user() -> Option<(u32, u32)> {
    const USER: &str = "rootemu-test";
    // SAFETY: getter.
    if unsafe { libc::geteuid() } != 0 {
        assert!(!in_ci(), "CI=true: this test must run as root (it switches to {USER})");
        eprintln!("SKIPPED: needs root to switch to {USER}");
        return None;
    }
    if Command::new("id").arg(USER).output().map(|o| !o.status.success()).unwrap_or(true) {
        let st = Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]).status();
        assert!(st.is_ok_and(|s| s.success()), "useradd {USER} failed");
    }
    let id = |flag: &str| -> u32 {
        let o = Command::new("id").args([flag, USER]).output().expect("id");
        String::from_utf8_lossy(&o.stdout).trim().parse().expect("a numeric id")
    };
    Some((id("-u"), id("-g")))
}

/// A world-readable copy of the `rootemu` binary and work directories owned by the
/// unprivileged test user, for running `rootemu` as that user (`setpriv`).
pub struct UserEnv {
    /// World-readable directory holding the copied binary and test programs.
    pub dir: PathBuf,
    /// The copied `rootemu`.
    pub bin: PathBuf,
    /// The test user's uid.
    pub uid: u32,
    /// The test user's gid.
    pub gid: u32,
}

/// PATH for commands run as the test user.
pub const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

impl UserEnv {
    /// One per test binary (`tag` names its directory); `None` means skipped (not root,
    /// or `setpriv` missing outside CI).
    pub fn new(tag: &str) -> Option<UserEnv> {
        use std::os::unix::fs::PermissionsExt;
        if !need("setpriv", "drops to the unprivileged test user") {
            return None;
        }
        let (uid, gid) = test_user()?;
        let built = rootemu_bin();
        assert!(built.exists(), "{} missing: run `cargo build -p rootemu-cli` first (same CARGO_TARGET_DIR)", built.display());
        let prefix = format!("rootemu-{tag}-");
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().to_string();
                if name.strip_prefix(&prefix).is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("rootemu");
        std::fs::copy(&built, &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(UserEnv { dir, bin, uid, gid })
    }

    /// A fresh directory owned by the test user.
    pub fn workdir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(self.uid), Some(self.gid)).unwrap();
        d
    }

    /// `cmd` as the test user in `cwd`, with a clean PATH and stdin from /dev/null.
    pub fn as_user(&self, cwd: &Path, cmd: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={}", self.uid), &format!("--regid={}", self.gid), "--clear-groups", "--"])
            .args(cmd)
            .current_dir(cwd)
            .env("PATH", USER_PATH)
            .env("HOME", cwd)
            .stdin(std::process::Stdio::null());
        c
    }

    /// `rootemu run ARGS` as the test user.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> std::process::Output {
        let bin = self.bin.to_str().unwrap();
        let mut full = vec![bin, "run"];
        full.extend_from_slice(args);
        self.as_user(cwd, &full).output().unwrap()
    }
}

impl Drop for UserEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Status, stdout and stderr of a command, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
