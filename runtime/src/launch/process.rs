//! With a root directory: the supervisor forks init (pid 1 of the new PID namespace), init
//! forks the command, and each reports back through pipes.
//!
//! - **error pipe** (close-on-exec): a failing step of init or of the command writes its
//!   [`wire`](super::wire) report and exits; EOF without a report means the command was
//!   executed.
//! - **status pipe**: init writes the command's wait status when it ends, then exits;
//!   the kernel then kills whatever is left in the namespace.
//! - **lifeline pipe**: only the supervisor holds its write end. Init sets
//!   `PR_SET_PDEATHSIG(SIGKILL)` first thing and then checks the lifeline: if the
//!   supervisor died before that (a SIGKILL during start-up), the read end shows EOF and
//!   init exits; after it, the kernel kills init, and with it the namespace, the moment
//!   the supervisor dies.
//!
//! The supervisor's wait (report, then init's exit) is where a supervisor serving the
//! command (e.g. answering seccomp user notifications) would run its loop.

use super::error::{LaunchError, ProcessStep, SETUP_FAILED};
use super::exec::{self, Command};
use super::mounts::NewRoot;
use super::{Outcome, wire};
use crate::supervisor::keeper::Keeper;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(LaunchError::Process { step: ProcessStep::Pipe, errno: errno() });
    }
    // SAFETY: fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes the report of `e` and exits the (forked) process.
fn die(report_fd: &OwnedFd, e: &LaunchError) -> ! {
    let bytes = wire::encode(e);
    // SAFETY: write to a pipe we own, then exit without running destructors.
    unsafe {
        libc::write(report_fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
        libc::_exit(i32::from(e.exit_code()))
    }
}

fn waitpid_retry(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Some(status);
        }
        if rc < 0 && errno() != libc::EINTR {
            return None;
        }
    }
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut f = fs::File::from(fd);
    loop {
        match f.read_to_end(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return buf,
        }
    }
}

/// Forks init (pid 1 of the new PID namespace: this process has unshared it, or, with a
/// keeper, init alone is cloned into it), which enters `root`, and waits for the
/// command's outcome (with a keeper, keeping its handler running meanwhile).
pub(crate) fn supervise(cmd: &Command<'_>, root: &NewRoot, keeper: Option<&mut Keeper>) -> Result<Outcome, LaunchError> {
    let (report_r, report_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let (life_r, life_w) = pipe()?;
    cmd.signals.block_relayed();
    let pid = if keeper.is_some() {
        fork_into_new_pid_namespace()
    } else {
        // SAFETY: this process is single-threaded; the child only runs launcher code.
        unsafe { libc::fork() }
    };
    if pid < 0 {
        let e = errno();
        cmd.signals.relay_to(0, false);
        return Err(LaunchError::Process { step: ProcessStep::ForkInit, errno: e });
    }
    if pid == 0 {
        drop((report_r, status_r, life_w));
        init(cmd, root, &report_w, &status_w, &life_r);
    }
    drop((report_w, status_w, life_r));
    cmd.signals.relay_to(pid, false);
    // Blocks until the command is executed (EOF) or a step reports its failure.
    let report = read_all(report_r);
    let status = match keeper {
        Some(k) => Some(k.wait(pid)),
        None => waitpid_retry(pid),
    };
    cmd.signals.relay_to(0, false);
    drop(life_w);
    if !report.is_empty() {
        return Err(wire::decode(&report, cmd.filter));
    }
    let passed = read_all(status_r);
    if let Ok(b) = <[u8; 4]>::try_from(passed.as_slice()) {
        return Ok(Outcome::from_wait_status(i32::from_ne_bytes(b)));
    }
    // Init died without passing a status: killed (e.g. SIGKILL from outside), and the
    // namespace with it.
    Ok(status.map_or(Outcome::Exited(i32::from(SETUP_FAILED)), Outcome::from_wait_status))
}

/// Consistent mode without a root: the command is a child, so that the supervisor can
/// outlive it; relays signals, keeps the handler running, returns how the command ended.
pub(crate) fn supervise_command(cmd: &Command<'_>, keeper: &mut Keeper) -> Result<Outcome, LaunchError> {
    let (report_r, report_w) = pipe()?;
    cmd.signals.block_relayed();
    // SAFETY: this process is single-threaded; the child only runs launcher code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = errno();
        cmd.signals.relay_to(0, false);
        return Err(LaunchError::Process { step: ProcessStep::ForkSupervised, errno: e });
    }
    if pid == 0 {
        drop(report_r);
        die(&report_w, &exec::exec(cmd));
    }
    drop(report_w);
    cmd.signals.relay_to(pid, false);
    let report = read_all(report_r);
    let status = keeper.wait(pid);
    cmd.signals.relay_to(0, false);
    if !report.is_empty() {
        return Err(wire::decode(&report, cmd.filter));
    }
    Ok(Outcome::from_wait_status(status))
}

/// Like `fork()`, with the child alone in a new PID namespace (`clone3(CLONE_NEWPID)`,
/// Linux 5.3), so that this process's later children stay in its own.
fn fork_into_new_pid_namespace() -> libc::pid_t {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let args = CloneArgs {
        flags: libc::CLONE_NEWPID as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork; this
    // process is single-threaded and the child only runs launcher code.
    unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) as libc::pid_t }
}

/// Pid 1 of the namespace: mounts proc and enters the root, forks the command, relays signals, reaps orphans,
/// passes the command's wait status on.
fn init(cmd: &Command<'_>, root: &NewRoot, report: &OwnedFd, status: &OwnedFd, lifeline: &OwnedFd) -> ! {
    // SAFETY: prctl with integer arguments; poll on our own descriptor.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        let mut p = libc::pollfd { fd: lifeline.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut p, 1, 0) != 0 {
            // The supervisor died before PDEATHSIG was set: nobody waits for us.
            libc::_exit(i32::from(SETUP_FAILED));
        }
    }
    if let Err(e) = root.enter() {
        die(report, &e);
    }
    // SAFETY: init is single-threaded.
    let child = unsafe { libc::fork() };
    if child < 0 {
        die(report, &LaunchError::Process { step: ProcessStep::ForkCommand, errno: errno() });
    }
    if child == 0 {
        die(report, &exec::exec(cmd));
    }
    // SAFETY: closing our copy: the supervisor sees EOF once the command has executed.
    unsafe { libc::close(report.as_raw_fd()) };
    cmd.signals.relay_to(child, true);
    super::debug(cmd.debug, &format!("init: the command is pid {child} in the PID namespace"));
    let st = loop {
        let mut st = 0;
        // SAFETY: reaps any child, including orphans re-parented to pid 1.
        let rc = unsafe { libc::waitpid(-1, &mut st, 0) };
        if rc == child {
            break st;
        }
        if rc < 0 && errno() == libc::ECHILD {
            break i32::from(SETUP_FAILED) << 8;
        }
    };
    let bytes = st.to_ne_bytes();
    // SAFETY: a 4-byte write to our pipe, then exit; the kernel kills what is left.
    unsafe {
        libc::write(status.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0)
    }
}
