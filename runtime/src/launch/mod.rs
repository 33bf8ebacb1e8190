//! The user-namespace launcher behind `rootemu run`.
//!
//! Without a root directory, no process is forked: like `unshare -r`, the calling process
//! creates the user namespace (the invoking uid/gid mapped to 0), with binds a private
//! mount namespace, installs the seccomp filter LAST (then self-tests it) and `execvp`s
//! the command. Its exit status, or the signal that killed it, is the caller's to see.
//!
//! With a root directory, three processes (`process.rs` has the pipes between them):
//! - **supervisor** (the calling process): creates the user, PID and mount namespaces,
//!   builds the new root (`mounts.rs`: nothing is created in the root directory itself),
//!   forks init, relays signals to it (`signals.rs`), waits, and returns how the command
//!   ended.
//! - **init**: pid 1 of the new PID namespace. It dies with the supervisor
//!   (`PR_SET_PDEATHSIG`, checked against a lifeline pipe), mounts `/proc`, enters the new
//!   root (pivot_root; the supervisor, in the same mount namespace, moves with it), forks
//!   the command, relays signals to it, reaps orphans, and passes the command's wait
//!   status on. When it exits the kernel kills whatever is left in the namespace.
//! - **command**: gets the caller's signal state and closed descriptors back, installs the
//!   filter last, self-tests it and `execvp`s (`exec.rs`).
//!
//! Fail closed: a failing step is returned (or, from init or the command, reported through
//! a close-on-exec pipe) and the command is never executed. Errors are typed
//! ([`LaunchError`](crate::launch::LaunchError)); with a root directory, a command killed
//! by signal N is reported as [`Outcome::Signaled`](crate::launch::Outcome::Signaled) (the
//! CLI exits 128+N, as shells do).
//!
//! A mode that needs a supervisor next to the command (e.g. answering seccomp user
//! notifications) takes the forking path, with or without a root directory; the fork-free
//! path is for plain runs.
//!
//! The caller must be single-threaded (the kernel refuses a user namespace otherwise).

mod apt;
mod error;
mod exec;
mod inherited;
mod mounts;
mod process;
mod resolve;
mod signals;
mod userns;
mod wire;

pub use apt::{APT_CONFIG_PATH, APT_SETTING};
pub use error::{DestinationProblem, LaunchError, MountStep, Namespace, ProcessStep, RootProblem, SETUP_FAILED, UsernsCause, quoted};

use crate::Filter;
use crate::supervisor::keeper::Keeper;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// What to run and how.
#[derive(Clone, Debug, Default)]
pub struct LaunchOptions {
    /// A directory that becomes `/` (with fresh /proc, minimal /dev, read-only /sys, /tmp
    /// where it has those directories). Nothing in it is created or changed.
    pub root: Option<PathBuf>,
    /// `(host source, destination)` bind mounts; destinations are inside `root` if given,
    /// and must exist (except on the launcher's own `/dev` and `/tmp`).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// The filter to install right before `execvp`; `None` runs without emulation.
    pub filter: Option<Filter>,
    /// Supply [`APT_SETTING`] to apt inside `root` when it has `/etc/apt`.
    pub apt_hook: bool,
    /// Print what the launcher does on stderr.
    pub debug: bool,
    /// The command and its arguments (looked up in PATH inside the namespace).
    pub command: Vec<OsString>,
    /// Consistent mode (a filter that notifies): a unix socket path for the supervisor's
    /// control requests (status, handler upgrades).
    pub control: Option<PathBuf>,
    /// Consistent mode: a directory for the records of files that cannot carry them
    /// (see [`crate::store`]).
    pub records: Option<PathBuf>,
}

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl Outcome {
    /// The status `rootemu` exits with: the command's own, or 128+N when killed by signal N.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Exited(c) => (c & 0xff) as u8,
            Outcome::Signaled(s) => (128 + s).min(255) as u8,
        }
    }

    fn from_wait_status(status: i32) -> Outcome {
        if libc::WIFSIGNALED(status) { Outcome::Signaled(libc::WTERMSIG(status)) } else { Outcome::Exited(libc::WEXITSTATUS(status)) }
    }
}

fn debug(on: bool, msg: &str) {
    if on {
        eprintln!("rootemu: debug: {msg}");
    }
}

/// Runs the command as described by `opts`. With a root, returns how it ended; without
/// one this process becomes the command, so it returns only the error that prevented that.
pub fn run(opts: &LaunchOptions) -> Result<Outcome, LaunchError> {
    let name = opts.command.first().ok_or(LaunchError::NoCommand)?;
    let argv = opts
        .command
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| LaunchError::NulByte(a.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let signals = signals::Inherited::capture();
    let root = opts.root.as_deref().map(mounts::RootDir::open).transpose()?;

    // SAFETY: plain id getters.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if userns::is_real_root(uid) {
        eprintln!(
            "rootemu: note: running as real root: the namespace maps root to root, so the command keeps real root's powers over the host's files; emulation still fakes chown/setuid/setgroups/mknod of devices"
        );
    }
    userns::create(uid, gid)?;
    debug(opts.debug, &format!("user namespace: uid {uid} -> 0, gid {gid} -> 0, setgroups denied"));
    // Consistent mode: the keeper starts now, in the user namespace but still in the host's
    // mount and PID namespaces (its handlers resolve callers through the host's /proc).
    let mut keeper = match opts.filter.as_ref().filter(|f| !f.notified.is_empty()) {
        Some(f) => {
            let records = match &opts.records {
                Some(p) => {
                    Some(crate::store::Store::open(p, true).map_err(|e| LaunchError::Records { path: p.clone(), problem: e.to_string() })?)
                }
                None => None,
            };
            Some(
                Keeper::start(f.notified, f.program, opts.control.as_deref(), records)
                    .map_err(|e| LaunchError::Supervisor(e.to_string()))?,
            )
        }
        None => None,
    };
    let mut cmd = exec::Command {
        argv,
        name,
        filter: opts.filter.as_ref(),
        signals,
        apt_config: None,
        nofile: None,
        debug: opts.debug,
        listener_to: keeper.as_ref().map(Keeper::outboxes),
    };
    let Some(root) = root else {
        if !opts.binds.is_empty() {
            mounts::private_namespace()?;
            cmd.nofile = mounts::bind_on_host(opts)?;
        }
        let Some(mut keeper) = keeper else {
            // Nothing to supervise: like `unshare -r`, this process becomes the command
            // (with a private mount namespace only when there is something to bind).
            return Err(exec::exec(&cmd));
        };
        let r = process::supervise_command(&cmd, &mut keeper);
        keeper.stop();
        return r;
    };
    if keeper.is_none() {
        // Children of this process are created in a new PID namespace, for a fresh /proc.
        // (With a keeper only init is, by clone3: the keeper's later handlers stay in the
        // host's.)
        // SAFETY: unshare with a flag constant.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            return Err(LaunchError::Namespace {
                kind: Namespace::Pid,
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            });
        }
    }
    mounts::private_namespace()?;
    let new_root = mounts::build_root(&root, opts)?;
    cmd.apt_config = new_root.apt_config;
    cmd.nofile = new_root.nofile;
    let r = process::supervise(&cmd, &new_root, keeper.as_mut());
    if let Some(k) = keeper {
        k.stop();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Exited(7).exit_code(), 7);
        assert_eq!(Outcome::Signaled(libc::SIGTERM).exit_code(), 143);
    }

    #[test]
    fn missing_root_fails_before_anything_runs() {
        let opts = LaunchOptions { root: Some("/nonexistent/rootemu-root".into()), command: vec!["true".into()], ..Default::default() };
        let e = run(&opts).unwrap_err();
        assert_eq!(e, LaunchError::Root { path: "/nonexistent/rootemu-root".into(), problem: RootProblem::Open(libc::ENOENT) });
        assert_eq!(e.exit_code(), SETUP_FAILED);
    }
}
