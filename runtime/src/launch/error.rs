//! Why a launch failed, as types a caller can match on. Every Display is one line: paths
//! and names are shown by [`quoted`], so a newline in a path cannot start a second line.

use crate::install::{InstallError, errno_text};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

/// `s` as it can be shown on one line: unchanged when it is plain (letters, digits and
/// `/._+,:@%=-`), else double-quoted with Rust's escapes (`"a b"`, `"a\nb"`, `"a\xFFb"`).
pub fn quoted(s: impl AsRef<OsStr>) -> String {
    let s = s.as_ref();
    let plain = !s.is_empty() && s.as_encoded_bytes().iter().all(|b| b.is_ascii_alphanumeric() || b"/._+,:@%=-".contains(b));
    if plain { s.to_string_lossy().into_owned() } else { format!("{s:?}") }
}

/// Why the user namespace could not be created: the first cause found among the sysctls
/// that control user namespaces, the caller's id maps and the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsernsCause {
    /// `user.max_user_namespaces` is 0.
    Disabled,
    /// `kernel.unprivileged_userns_clone` is 0 (Debian's switch for unprivileged users).
    UnprivilegedDisabled,
    /// `kernel.apparmor_restrict_unprivileged_userns` is 1 (Ubuntu's default).
    AppArmor,
    /// The caller's uid or gid has no mapping in its own user namespace (it shows as the
    /// overflow id, e.g. inside `unshare --user` without a map): the kernel refuses to nest.
    Unmapped {
        /// The caller's uid as seen here.
        uid: u32,
        /// The caller's gid as seen here.
        gid: u32,
    },
    /// ENOSPC: the limit `user.max_user_namespaces` (this value) is reached, or 32 levels deep.
    Limit(Option<u64>),
    /// EPERM for another reason: a chroot, or a seccomp/LSM policy.
    NotPermitted,
    /// EINVAL: no `CONFIG_USER_NS`, or the calling process is multi-threaded.
    Unsupported,
    /// EUSERS: nested too deep.
    TooDeep,
    /// Any other errno.
    Unavailable,
}

impl fmt::Display for UsernsCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsernsCause::Disabled => f.write_str("user namespaces are disabled (sysctl user.max_user_namespaces = 0)"),
            UsernsCause::UnprivilegedDisabled => {
                f.write_str("unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)")
            }
            UsernsCause::AppArmor => {
                f.write_str("AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns = 1)")
            }
            UsernsCause::Unmapped { uid, gid } => write!(
                f,
                "this process's uid {uid} / gid {gid} has no mapping in its user namespace (see /proc/self/uid_map), and the kernel creates nested namespaces only for mapped ids"
            ),
            UsernsCause::Limit(max) => write!(
                f,
                "the user namespace limit is reached (sysctl user.max_user_namespaces = {}) or namespaces are nested 32 deep",
                max.map_or("?".to_string(), |m| m.to_string())
            ),
            UsernsCause::NotPermitted => {
                f.write_str("not permitted here (inside a chroot, or a seccomp/LSM policy forbids user namespaces)")
            }
            UsernsCause::Unsupported => {
                f.write_str("the kernel lacks user namespace support (CONFIG_USER_NS) or the process is multi-threaded")
            }
            UsernsCause::TooDeep => f.write_str("user namespaces are nested too deep"),
            UsernsCause::Unavailable => f.write_str("user namespaces are unavailable"),
        }
    }
}

/// A namespace other than the user namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// The PID namespace (with a root directory).
    Pid,
    /// The mount namespace (with a root directory or bind mounts).
    Mount,
}

/// What a failed mount step was doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountStep {
    /// Making every mount of the new mount namespace private.
    Private,
    /// Binding the root directory onto itself (it must be a mount point for pivot_root).
    BindRoot,
    /// Mounting a fresh proc.
    Proc,
    /// Mounting a tmpfs (`/dev`, `/dev/shm`, `/tmp`).
    Tmpfs,
    /// Bind-mounting this host path.
    Bind(PathBuf),
    /// Making a mount read-only.
    ReadOnly,
    /// Creating a mount point or link on a tmpfs the launcher mounted (never in the root itself).
    MountPoint,
    /// Writing the apt configuration file onto the launcher's `/dev`.
    AptConfig,
}

impl MountStep {
    /// What the step did to `target`, e.g. `mounting proc on /proc`.
    fn describe(&self, target: &str) -> String {
        match self {
            MountStep::Private => format!("making mount propagation private on {target}"),
            MountStep::BindRoot => format!("bind-mounting the root directory {target} onto itself"),
            MountStep::Proc => format!("mounting proc on {target}"),
            MountStep::Tmpfs => format!("mounting tmpfs on {target}"),
            MountStep::Bind(src) => format!("bind-mounting {} on {target}", quoted(src)),
            MountStep::ReadOnly => format!("making {target} read-only"),
            MountStep::MountPoint => format!("creating the mount point {target}"),
            MountStep::AptConfig => format!("writing the apt configuration {target}"),
        }
    }
}

/// Why a bind destination cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationProblem {
    /// It does not exist, and it is not on a tmpfs the launcher mounted: the launcher
    /// creates nothing in the root directory (nor on the host).
    Missing,
    /// The source is a directory and the destination is not, or the other way round.
    KindMismatch {
        /// Whether the source is a directory.
        source_is_dir: bool,
    },
    /// Resolving it failed with this errno (e.g. ELOOP, EACCES, ENOTDIR).
    Resolve(i32),
}

impl fmt::Display for DestinationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationProblem::Missing => f.write_str("does not exist (no mount point is ever created there: create it first)"),
            DestinationProblem::KindMismatch { source_is_dir: true } => f.write_str("is not a directory, but the source is"),
            DestinationProblem::KindMismatch { source_is_dir: false } => f.write_str("is a directory, but the source is not"),
            DestinationProblem::Resolve(e) => f.write_str(&errno_text(*e)),
        }
    }
}

/// Why the root directory cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootProblem {
    /// Opening it failed with this errno.
    Open(i32),
    /// It is not a directory.
    NotADirectory,
    /// Bound onto itself, it could not be reopened as that mount (it changed meanwhile).
    Moved,
}

impl fmt::Display for RootProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootProblem::Open(e) => f.write_str(&errno_text(*e)),
            RootProblem::NotADirectory => f.write_str("not a directory"),
            RootProblem::Moved => f.write_str("changed while it was being bound onto itself"),
        }
    }
}

/// A process step of the launcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessStep {
    /// Creating a pipe to the namespace's init.
    Pipe,
    /// Forking the namespace's init.
    ForkInit,
    /// Forking the command from init.
    ForkCommand,
    /// Reading init's report (it was unreadable).
    Report,
    /// Handing the filter's listener to the supervisor.
    HandOver,
    /// Forking the command next to the supervisor (consistent mode without a root).
    ForkSupervised,
}

impl fmt::Display for ProcessStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcessStep::Pipe => "creating a pipe to the namespace's init",
            ProcessStep::ForkInit => "forking the namespace's init",
            ProcessStep::ForkCommand => "forking the command inside the PID namespace",
            ProcessStep::Report => "reading the report of the namespace's init",
            ProcessStep::HandOver => "handing the seccomp listener to the supervisor",
            ProcessStep::ForkSupervised => "forking the command",
        })
    }
}

/// Why the command was not run, or did not report how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaunchError {
    /// No command was given.
    NoCommand,
    /// This argument, path or environment value holds a NUL byte, which exec cannot pass.
    NulByte(OsString),
    /// The root directory cannot be used.
    Root {
        /// The directory as given.
        path: PathBuf,
        /// What is wrong with it.
        problem: RootProblem,
    },
    /// A bind source cannot be used (`errno` from looking it up).
    BindSource {
        /// The host path.
        source: PathBuf,
        /// The errno.
        errno: i32,
    },
    /// A bind destination cannot be used.
    BindDestination {
        /// The host path.
        source: PathBuf,
        /// The destination as given (inside the root when there is one).
        destination: PathBuf,
        /// Whether it was resolved inside a root directory (else on the host).
        in_root: bool,
        /// What is wrong with it.
        problem: DestinationProblem,
    },
    /// `unshare(CLONE_NEWUSER)` failed.
    UserNamespace {
        /// The errno.
        errno: i32,
        /// Why, as far as the launcher can tell.
        cause: UsernsCause,
    },
    /// Writing one of `/proc/self/{setgroups,uid_map,gid_map}` failed.
    IdMap {
        /// The file.
        file: &'static str,
        /// The errno.
        errno: i32,
    },
    /// Creating the PID or mount namespace failed.
    Namespace {
        /// Which one.
        kind: Namespace,
        /// The errno.
        errno: i32,
    },
    /// A mount step failed.
    Mount {
        /// What it was doing.
        step: MountStep,
        /// The mount point, as a path inside the new root when there is one.
        target: PathBuf,
        /// The errno.
        errno: i32,
    },
    /// Entering the new root (`pivot_root`, then `chroot` as a fallback) failed.
    EnterRoot {
        /// The errno.
        errno: i32,
    },
    /// A process step failed.
    Process {
        /// Which one.
        step: ProcessStep,
        /// The errno.
        errno: i32,
    },
    /// Installing or self-testing the filter failed.
    Install(InstallError),
    /// Starting consistent mode's supervisor (its journal, first handler, control socket)
    /// failed; why, in one line.
    Supervisor(String),
    /// The record store directory (`LaunchOptions::records`) cannot be used; why, in one line.
    Records {
        /// The directory.
        path: PathBuf,
        /// Why.
        problem: String,
    },
    /// The command was not found (exit status 127).
    NotFound {
        /// The command name.
        command: OsString,
    },
    /// The command was found but could not be executed (exit status 126).
    CannotExec {
        /// The command name.
        command: OsString,
        /// The errno of `execve`.
        errno: i32,
    },
}

/// The exit status for a failure of the launcher itself: the command was never run
/// (as `env`, `chroot` and `nohup` use 125).
pub const SETUP_FAILED: u8 = 125;

impl LaunchError {
    /// The exit status `rootemu run` reports: 127 not found, 126 cannot execute, else
    /// [`SETUP_FAILED`] (125).
    pub fn exit_code(&self) -> u8 {
        match self {
            LaunchError::NotFound { .. } => 127,
            LaunchError::CannotExec { .. } => 126,
            _ => SETUP_FAILED,
        }
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::NoCommand => f.write_str("no command given"),
            LaunchError::NulByte(v) => write!(f, "{} contains a NUL byte, which cannot be passed to a command", quoted(v)),
            LaunchError::Root { path, problem } => write!(f, "root directory {}: {problem}", quoted(path)),
            LaunchError::BindSource { source, errno } => write!(f, "bind source {}: {}", quoted(source), errno_text(*errno)),
            LaunchError::BindDestination { destination, in_root, problem, .. } => {
                let place = if *in_root { " in the root directory" } else { "" };
                write!(f, "bind destination {}{place}: {problem}", quoted(destination))
            }
            LaunchError::UserNamespace { errno, cause } => {
                write!(f, "creating the user namespace (unshare CLONE_NEWUSER) failed: {}: {cause}", errno_text(*errno))
            }
            LaunchError::IdMap { file, errno } => write!(f, "writing {file} failed: {}", errno_text(*errno)),
            LaunchError::Namespace { kind, errno } => {
                let (name, flag) = match kind {
                    Namespace::Pid => ("PID", "CLONE_NEWPID"),
                    Namespace::Mount => ("mount", "CLONE_NEWNS"),
                };
                write!(f, "creating the {name} namespace (unshare {flag}) failed: {}", errno_text(*errno))
            }
            LaunchError::Mount { step, target, errno } => write!(f, "{} failed: {}", step.describe(&quoted(target)), errno_text(*errno)),
            LaunchError::EnterRoot { errno } => write!(f, "entering the new root (pivot_root, chroot) failed: {}", errno_text(*errno)),
            LaunchError::Process { step, errno } => write!(f, "{step} failed: {}", errno_text(*errno)),
            LaunchError::Install(e) => e.fmt(f),
            LaunchError::Supervisor(why) => write!(f, "starting the consistent-mode supervisor failed: {why}"),
            LaunchError::Records { path, problem } => write!(f, "record store {}: {problem}", quoted(path)),
            LaunchError::NotFound { command } => write!(f, "{}: command not found", quoted(command)),
            LaunchError::CannotExec { command, errno } => write!(f, "{}: cannot execute: {}", quoted(command), errno_text(*errno)),
        }
    }
}

impl std::error::Error for LaunchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LaunchError::Install(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_paths_and_escapes_the_rest() {
        assert_eq!(quoted("/usr/bin/x-1.2_a"), "/usr/bin/x-1.2_a");
        assert_eq!(quoted("a b"), "\"a b\"");
        assert_eq!(quoted("x\nrootemu: forged"), "\"x\\nrootemu: forged\"");
        assert_eq!(quoted(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"a\xffb")), "\"a\\xFFb\"");
        assert_eq!(quoted(""), "\"\"");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(LaunchError::NotFound { command: "x".into() }.exit_code(), 127);
        assert_eq!(LaunchError::CannotExec { command: "x".into(), errno: libc::EACCES }.exit_code(), 126);
        assert_eq!(LaunchError::NoCommand.exit_code(), 125);
    }

    #[test]
    fn display_is_one_line_even_for_hostile_paths() {
        let e = LaunchError::Root { path: "/tmp/x\nrootemu: forged".into(), problem: RootProblem::Open(libc::ENOENT) };
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert_eq!(s, "root directory \"/tmp/x\\nrootemu: forged\": ENOENT (No such file or directory)");
    }
}
