//! Installing a seccomp filter on the calling thread (or process), and proving it is active.
//!
//! [`install`] sets `PR_SET_NO_NEW_PRIVS` and hands the program to `seccomp(2)`
//! (`SECCOMP_SET_MODE_FILTER`, optionally with `SECCOMP_FILTER_FLAG_TSYNC`), falling back
//! to `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)` on kernels without `seccomp(2)`.
//! [`self_test`] then issues a call that only succeeds when root emulation is active.

use crate::{Filter, SockFilter};
use std::fmt;

/// How [`install`] hands the program to the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// Apply the filter to every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`).
    /// Without it only the calling thread (and what it later creates) is filtered.
    pub tsync: bool,
}

/// Which step of installing or checking a filter failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallError {
    /// The program is empty or longer than the kernel's `BPF_MAXINSNS` (4096).
    BadLength(usize),
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)` failed.
    NoNewPrivs(i32),
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed with this errno.
    Seccomp(i32),
    /// `seccomp(2)` is missing (ENOSYS) and the `prctl(PR_SET_SECCOMP)` fallback failed too.
    PrctlFallback(i32),
    /// With TSYNC, this thread of the process could not be synchronised.
    TsyncThread(i64),
    /// The filter has no branch for the ABI this program was compiled for.
    AbiNotCovered {
        /// The running ABI.
        abi: &'static str,
        /// The ABIs the filter covers.
        covered: Vec<&'static str>,
    },
    /// The probe call was not faked: emulation is not active for the running ABI.
    NotActive {
        /// The running ABI.
        abi: &'static str,
        /// The probe, `fchown(-1, 0x72656d75, 0x72656d75)`.
        probe: &'static str,
        /// What it returned: errno, or 0 meaning success.
        errno: i32,
    },
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::BadLength(n) => {
                write!(f, "installing the seccomp filter: the program has {n} instructions (the kernel accepts 1 to 4096)")
            }
            InstallError::NoNewPrivs(e) => {
                write!(f, "setting no_new_privs (prctl PR_SET_NO_NEW_PRIVS) failed: {}", errno_text(*e))
            }
            InstallError::Seccomp(e) => {
                let hint = match *e {
                    libc::EINVAL => " (the kernel rejected the program, or seccomp filtering is not built in)",
                    libc::EACCES => " (no_new_privs is not set and the caller lacks CAP_SYS_ADMIN)",
                    libc::ENOMEM => " (too many filters or instructions already attached to this process)",
                    _ => "",
                };
                write!(f, "installing the seccomp filter (seccomp SECCOMP_SET_MODE_FILTER) failed: {}{hint}", errno_text(*e))
            }
            InstallError::PrctlFallback(e) => write!(
                f,
                "installing the seccomp filter: seccomp(2) is not available (ENOSYS) and prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) failed: {}",
                errno_text(*e)
            ),
            InstallError::TsyncThread(tid) => write!(
                f,
                "installing the seccomp filter with TSYNC failed: thread {tid} cannot be synchronised (it already has a diverging filter)"
            ),
            InstallError::AbiNotCovered { abi, covered } => write!(
                f,
                "self-test: the filter has no branch for the running ABI {abi} (it covers: {})",
                if covered.is_empty() { "nothing".to_string() } else { covered.join(", ") }
            ),
            InstallError::NotActive { abi, probe, errno } => {
                if *errno == 0 {
                    write!(f, "self-test on {abi}: {probe} unexpectedly succeeded without emulation")
                } else {
                    write!(
                        f,
                        "self-test on {abi}: root emulation is not active: {probe} failed with {} instead of returning 0",
                        errno_text(*errno)
                    )
                }
            }
        }
    }
}

impl std::error::Error for InstallError {}

/// The ABI this code was compiled for, named as in the bundled syscall tables: the table
/// whose `rust_native`, `endian` and `elf_class` match this target's `target_arch`,
/// `target_endian` and `target_pointer_width` (table data, read by the macro), or
/// `unknown` when no table runs as this target.
pub const fn running_abi() -> &'static str {
    rootemu_macros::running_abi!()
}

/// Sets `PR_SET_NO_NEW_PRIVS` and installs `program` as a seccomp filter.
///
/// The filter stays for the life of the thread (or process, with `tsync`) and is
/// inherited across `fork` and `execve`.
pub fn install(program: &[SockFilter], opts: InstallOptions) -> Result<(), InstallError> {
    let flags: libc::c_ulong = if opts.tsync { libc::SECCOMP_FILTER_FLAG_TSYNC as libc::c_ulong } else { 0 };
    set_mode_filter(program, flags, true).map(drop)
}

/// Like [`install`] (without TSYNC), for a program that hands calls to a supervisor
/// (`notify`): returns the filter's listener fd (`SECCOMP_FILTER_FLAG_NEW_LISTENER`), for
/// the supervisor to hold. Waiting callers stay killable where the kernel can
/// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, Linux 5.19). No `prctl` fallback: a kernel
/// without `seccomp(2)` has no user notification either.
pub fn install_with_listener(program: &[SockFilter]) -> Result<std::os::fd::OwnedFd, InstallError> {
    use std::os::fd::FromRawFd;
    let listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as libc::c_ulong;
    let rc = match set_mode_filter(program, listener | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as libc::c_ulong, false) {
        // Before 5.19 the flag is unknown: install without it.
        Err(InstallError::Seccomp(libc::EINVAL)) => set_mode_filter(program, listener, false)?,
        r => r?,
    };
    // SAFETY: with NEW_LISTENER, seccomp(2) returns a new fd that we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(rc as i32) })
}

/// `PR_SET_NO_NEW_PRIVS`, then `seccomp(SECCOMP_SET_MODE_FILTER, flags)`; its return value.
fn set_mode_filter(program: &[SockFilter], flags: libc::c_ulong, prctl_fallback: bool) -> Result<i64, InstallError> {
    if program.is_empty() || program.len() > 4096 {
        return Err(InstallError::BadLength(program.len()));
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) }
        != 0
    {
        return Err(InstallError::NoNewPrivs(last_errno()));
    }
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        // SockFilter is #[repr(C)] with the same layout as struct sock_filter.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points to `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong, flags, &fprog as *const libc::sock_fprog)
    };
    if rc >= 0 {
        if rc > 0 && flags & libc::SECCOMP_FILTER_FLAG_TSYNC as libc::c_ulong != 0 {
            // TSYNC: the id of the thread that could not be synchronised.
            return Err(InstallError::TsyncThread(rc as i64));
        }
        return Ok(rc as i64);
    }
    let e = last_errno();
    if e != libc::ENOSYS || !prctl_fallback {
        return Err(InstallError::Seccomp(e));
    }
    // SAFETY: as above; prctl(PR_SET_SECCOMP) takes the program pointer as its third argument.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc != 0 {
        return Err(InstallError::PrctlFallback(last_errno()));
    }
    Ok(0)
}

/// Proves that `filter` emulates root for the running ABI: checks that the filter has
/// a branch for it, then issues `fchown(-1, PROBE_ID, PROBE_ID)`, which fails with EBADF
/// unless faked (root emulation) or answered by a supervisor (consistent mode, which
/// answers exactly this probe with 0). Call it after [`install`] (with a supervisor: once
/// it holds the listener).
pub fn self_test(filter: &Filter) -> Result<(), InstallError> {
    let abi = running_abi();
    if !filter.abis.iter().any(|a| a.name == abi) {
        return Err(InstallError::AbiNotCovered { abi, covered: filter.abis.iter().map(|a| a.name).collect() });
    }
    probe_active(abi)
}

/// The ids of the self-test probe `fchown(-1, PROBE_ID, PROBE_ID)`.
pub const PROBE_ID: u32 = 0x7265_6d75;

/// The call [`self_test`] issues; [`InstallError::NotActive`] names it.
pub(crate) const SELF_TEST_PROBE: &str = "fchown(-1, 0x72656d75, 0x72656d75)";

/// Issues the probe and reports whether it was faked (or answered by a supervisor).
fn probe_active(abi: &'static str) -> Result<(), InstallError> {
    const PROBE: &str = SELF_TEST_PROBE;
    // SAFETY: fchown on an invalid descriptor touches nothing.
    let rc = unsafe { libc::fchown(-1, PROBE_ID, PROBE_ID) };
    if rc == 0 { Ok(()) } else { Err(InstallError::NotActive { abi, probe: PROBE, errno: last_errno() }) }
}

/// The calling thread's errno.
fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ENAME (meaning)` for an errno value.
pub fn errno_text(e: i32) -> String {
    let msg = std::io::Error::from_raw_os_error(e).to_string();
    let meaning = match msg.rfind(" (os error") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    match errno_name(e) {
        Some(name) => format!("{name} ({meaning})"),
        None => format!("errno {e} ({meaning})"),
    }
}

/// The symbolic name of common errno values.
pub fn errno_name(e: i32) -> Option<&'static str> {
    use libc::*;
    Some(match e {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        ENOEXEC => "ENOEXEC",
        EBADF => "EBADF",
        ECHILD => "ECHILD",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        EXDEV => "EXDEV",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        ETXTBSY => "ETXTBSY",
        ENOSPC => "ENOSPC",
        EROFS => "EROFS",
        EMLINK => "EMLINK",
        EPIPE => "EPIPE",
        ENAMETOOLONG => "ENAMETOOLONG",
        ENOSYS => "ENOSYS",
        ELOOP => "ELOOP",
        EUSERS => "EUSERS",
        EOPNOTSUPP => "EOPNOTSUPP",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_names_and_explains() {
        assert_eq!(errno_text(libc::EBADF), "EBADF (Bad file descriptor)");
        assert_eq!(errno_text(libc::ENOSYS), "ENOSYS (Function not implemented)");
    }

    #[test]
    fn bad_lengths_are_rejected_before_touching_the_kernel() {
        assert_eq!(install(&[], InstallOptions::default()), Err(InstallError::BadLength(0)));
        let ret = SockFilter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 };
        let long = vec![ret; 4097];
        assert_eq!(install(&long, InstallOptions::default()), Err(InstallError::BadLength(4097)));
    }

    #[test]
    fn display_is_one_line_naming_the_step() {
        let e = InstallError::Seccomp(libc::EINVAL).to_string();
        assert!(e.contains("seccomp") && e.contains("EINVAL (Invalid argument)") && !e.contains('\n'), "{e}");
        let e = InstallError::AbiNotCovered { abi: "i386", covered: vec!["x86_64"] }.to_string();
        assert!(e.contains("i386") && e.contains("x86_64"), "{e}");
    }

    /// A hand-written x86_64-only program: fchown returns 0, everything else is allowed.
    /// Only for testing the install mechanics; the real filter comes from the macro.
    #[cfg(target_arch = "x86_64")]
    fn tiny_fchown_filter() -> Vec<SockFilter> {
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        const ALLOW: u32 = 0x7fff_0000;
        const ERRNO_0: u32 = 0x0005_0000;
        vec![
            SockFilter { code: LD_W_ABS, jt: 0, jf: 0, k: 4 },
            SockFilter { code: JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
            SockFilter { code: RET_K, jt: 0, jf: 0, k: ALLOW },
            SockFilter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 },
            SockFilter { code: JEQ_K, jt: 0, jf: 1, k: libc::SYS_fchown as u32 },
            SockFilter { code: RET_K, jt: 0, jf: 0, k: ERRNO_0 },
            SockFilter { code: RET_K, jt: 0, jf: 0, k: ALLOW },
        ]
    }

    /// Runs `f` in a forked child (a filter cannot be removed) and returns its exit code.
    #[cfg(target_arch = "x86_64")]
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only runs `f` and exits; the test harness may have other
        // threads, but `f` only makes raw syscalls.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = f();
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        libc::WEXITSTATUS(status)
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn installs_and_self_test_sees_it() {
        static ABIS: [crate::AbiInfo; 1] = [crate::AbiInfo { name: "x86_64", audit_arch: 0xc000_003e, kernel: "test" }];
        let code = in_child(|| {
            let prog = tiny_fchown_filter();
            let filter = Filter { policy: "test", program: Box::leak(prog.into_boxed_slice()), abis: &ABIS, notified: &[] };
            // Before: the probe fails with EBADF.
            match probe_active("x86_64") {
                Err(InstallError::NotActive { errno: libc::EBADF, .. }) => {}
                _ => return 10,
            }
            if install(filter.program, InstallOptions { tsync: true }).is_err() {
                return 11;
            }
            if self_test(&filter).is_err() {
                return 12;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn self_test_names_an_uncovered_abi() {
        static ABIS: [crate::AbiInfo; 1] = [crate::AbiInfo { name: "aarch64", audit_arch: 0xc000_00b7, kernel: "test" }];
        static PROG: [SockFilter; 1] = [SockFilter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 }];
        let filter = Filter { policy: "test", program: &PROG, abis: &ABIS, notified: &[] };
        let e = self_test(&filter).unwrap_err();
        assert_eq!(e, InstallError::AbiNotCovered { abi: "x86_64", covered: vec!["aarch64"] });
        assert!(e.to_string().contains("running ABI x86_64"), "{e}");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_rejected_program_is_a_seccomp_error() {
        // Jumps past the end: the kernel's checker says EINVAL.
        let code = in_child(|| {
            let bad = [SockFilter { code: 0x05, jt: 0, jf: 0, k: 10 }];
            match install(&bad, InstallOptions::default()) {
                Err(InstallError::Seccomp(libc::EINVAL)) => 0,
                _ => 1,
            }
        });
        assert_eq!(code, 0);
    }
}
