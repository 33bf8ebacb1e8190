//! Every subcommand that writes to standard output reports a failed write as one line
//! and exit status 1 (issue #18, defect 11): standard output on a full disk
//! (`/dev/full`), and on a pipe whose reader is gone (as under `| head -c1`). Before,
//! `print!` panicked with a backtrace and exit status 101.

use rootemu_tests::{rootemu_bin, tables_dir};
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

/// Standard output whose reader has already gone: every write fails with EPIPE.
fn readerless_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors; both are owned here.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

#[test]
fn write_errors_are_one_line_never_a_panic() {
    let bin = rootemu_bin();
    assert!(bin.exists(), "{} missing: run `cargo build -p rootemu-cli` first (same CARGO_TARGET_DIR)", bin.display());
    let tables = tables_dir().to_str().unwrap().to_string();
    let policy = tables_dir().join("policy/root-emulation.yaml").to_str().unwrap().to_string();
    let own = bin.to_str().unwrap().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["filter", "dump", "--abi", "x86_64"],
        vec!["filter", "stats", "--abi", "x86_64"],
        vec!["filter", "sim", "--abi", "x86_64", "--as", "x86_64", "--syscall", "chown"],
        vec!["filter", "export", "--abi", "x86_64", "--format", "json"],
        vec!["filter", "export", "--abi", "x86_64", "--format", "raw"],
        vec!["tables", "show", "--abi", "x86_64"],
        vec!["tables", "check", "--tables", &tables],
        vec!["tables", "diff", &tables, &tables, "--tables", &tables, "--policy", &policy],
        vec!["inspect", &own],
        vec!["selfcheck"],
    ];
    // SIGPIPE at its default would end the process silently; rootemu (as Rust ignores it)
    // sees EPIPE and must report it.
    let mut failures = Vec::new();
    for args in &cases {
        for (sink, errno) in [("/dev/full", "ENOSPC (No space left on device)"), ("a pipe without reader", "EPIPE (Broken pipe)")] {
            let out =
                if sink == "/dev/full" { Stdio::from(File::options().write(true).open("/dev/full").unwrap()) } else { readerless_pipe() };
            let o = Command::new(&bin).args(args).stdin(Stdio::null()).stdout(out).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            let want = format!("rootemu: cannot write to standard output: {errno}\n");
            if o.status.code() != Some(1) || err != want {
                failures.push(format!("rootemu {} > {sink}: {:?}, stderr:\n{err}", args.join(" "), o.status));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
