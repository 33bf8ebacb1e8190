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
