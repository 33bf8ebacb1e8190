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
