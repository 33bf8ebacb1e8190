//! The error report a process inside the namespace (init, or the command before `execve`)
//! writes to its close-on-exec pipe, and its decoding by the supervisor.
//!
//! Only what those processes can fail at crosses: mounting proc, entering the root,
//! forking the command, installing the filter, executing the command. The format is a tag byte, an `i64` and
//! the command name's bytes. Values the supervisor knows itself (the running ABI, the
//! filter's ABIs, the self-test probe) are not sent: both sides run the same binary.

use super::error::{LaunchError, MountStep, ProcessStep};
use crate::Filter;
use crate::install::{self, InstallError};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The report for `e`.
pub(crate) fn encode(e: &LaunchError) -> Vec<u8> {
    let (tag, n, bytes): (u8, i64, &[u8]) = match e {
        LaunchError::Mount { step: MountStep::Proc, errno, .. } => (b'P', (*errno).into(), &[]),
        LaunchError::Process { step: ProcessStep::ForkCommand, errno } => (b'F', (*errno).into(), &[]),
        LaunchError::Process { step: ProcessStep::HandOver, errno } => (b'H', (*errno).into(), &[]),
        LaunchError::EnterRoot { errno } => (b'E', (*errno).into(), &[]),
        LaunchError::NotFound { command } => (b'N', 0, command.as_bytes()),
        LaunchError::CannotExec { command, errno } => (b'X', (*errno).into(), command.as_bytes()),
        LaunchError::Install(i) => match i {
            InstallError::BadLength(n) => (b'L', *n as i64, &[]),
            InstallError::NoNewPrivs(e) => (b'n', (*e).into(), &[]),
            InstallError::Seccomp(e) => (b's', (*e).into(), &[]),
            InstallError::PrctlFallback(e) => (b'p', (*e).into(), &[]),
            InstallError::TsyncThread(t) => (b't', *t, &[]),
            InstallError::AbiNotCovered { .. } => (b'a', 0, &[]),
            InstallError::NotActive { errno, .. } => (b'A', (*errno).into(), &[]),
        },
        // Nothing else is produced inside the namespace.
        _ => (b'?', 0, &[]),
    };
    let mut v = vec![tag];
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(bytes);
    v
}

/// The error a report stands for; `filter` is the one the command was to install.
pub(crate) fn decode(report: &[u8], filter: Option<&Filter>) -> LaunchError {
    let garbled = LaunchError::Process { step: ProcessStep::Report, errno: libc::EPROTO };
    let (Some(&tag), Some(n)) = (report.first(), report.get(1..9)) else { return garbled };
    let n = i64::from_le_bytes(n.try_into().expect("8 bytes"));
    let errno = i32::try_from(n).unwrap_or(0);
    let command = || OsString::from_vec(report[9..].to_vec());
    let abi = install::running_abi();
    LaunchError::Install(match tag {
        b'P' => return LaunchError::Mount { step: MountStep::Proc, target: "/proc".into(), errno },
        b'F' => return LaunchError::Process { step: ProcessStep::ForkCommand, errno },
        b'H' => return LaunchError::Process { step: ProcessStep::HandOver, errno },
        b'E' => return LaunchError::EnterRoot { errno },
        b'N' => return LaunchError::NotFound { command: command() },
        b'X' => return LaunchError::CannotExec { command: command(), errno },
        b'L' => InstallError::BadLength(n as usize),
        b'n' => InstallError::NoNewPrivs(errno),
        b's' => InstallError::Seccomp(errno),
        b'p' => InstallError::PrctlFallback(errno),
        b't' => InstallError::TsyncThread(n),
        b'a' => InstallError::AbiNotCovered { abi, covered: filter.map(|f| f.abis.iter().map(|a| a.name).collect()).unwrap_or_default() },
        b'A' => InstallError::NotActive { abi, probe: install::SELF_TEST_PROBE, errno },
        _ => return garbled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_made_inside_the_namespace_round_trips() {
        static ABIS: [crate::AbiInfo; 1] = [crate::AbiInfo { name: install::running_abi(), audit_arch: 1, kernel: "t" }];
        static PROG: [crate::SockFilter; 0] = [];
        let filter = Filter { policy: "t", program: &PROG, abis: &ABIS, notified: &[] };
        let abi = install::running_abi();
        let cases = [
            LaunchError::Mount { step: MountStep::Proc, target: "/proc".into(), errno: libc::EPERM },
            LaunchError::Process { step: ProcessStep::ForkCommand, errno: libc::EAGAIN },
            LaunchError::Process { step: ProcessStep::HandOver, errno: libc::EPIPE },
            LaunchError::EnterRoot { errno: libc::EINVAL },
            LaunchError::NotFound { command: OsString::from_vec(b"a\nb\xff".to_vec()) },
            LaunchError::CannotExec { command: "x".into(), errno: libc::EACCES },
            LaunchError::Install(InstallError::BadLength(5000)),
            LaunchError::Install(InstallError::NoNewPrivs(libc::EINVAL)),
            LaunchError::Install(InstallError::Seccomp(libc::EINVAL)),
            LaunchError::Install(InstallError::PrctlFallback(libc::EINVAL)),
            LaunchError::Install(InstallError::TsyncThread(1234)),
            LaunchError::Install(InstallError::AbiNotCovered { abi, covered: vec![abi] }),
            LaunchError::Install(InstallError::NotActive { abi, probe: install::SELF_TEST_PROBE, errno: libc::EBADF }),
        ];
        for e in cases {
            assert_eq!(decode(&encode(&e), Some(&filter)), e);
        }
    }

    #[test]
    fn a_truncated_report_is_an_error_of_its_own() {
        assert_eq!(decode(b"N12", None), LaunchError::Process { step: ProcessStep::Report, errno: libc::EPROTO });
    }
}
