//! The kernel's seccomp user notification (Linux 5.0+): a filter installed with a listener
//! fd hands each `SECCOMP_RET_USER_NOTIF` call to whoever holds that fd, which answers it.
//!
//! Facts used: a notification received but not answered stays pending as long as some
//! process holds the listener, and any holder may answer it by id; `NOTIF_ID_VALID` says
//! whether the caller still waits for that id (it is gone once answered, or when the
//! caller died); `FLAG_CONTINUE` (5.5) lets the kernel run the call itself.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// One call waiting for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The kernel's id for it (answers name it).
    pub id: u64,
    /// The caller's pid, in the PID namespace of the process that received it.
    pub pid: u32,
    /// Syscall number, as the caller's ABI numbers it.
    pub nr: i32,
    /// The caller's AUDIT_ARCH.
    pub arch: u32,
    /// The six arguments.
    pub args: [u64; 6],
}

/// How a call is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The call returns this value (success).
    Value(i64),
    /// The call fails with this errno.
    Errno(i32),
    /// The kernel runs the call as if it had not been intercepted.
    Continue,
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6): caller and handler switch on one CPU.
const FD_SYNC_WAKE_UP: u64 = 1;

/// Asks the kernel to wake the handler and the caller on one CPU (faster round trips);
/// ignored where the kernel lacks it (before 6.6).
pub fn set_sync_wake_up(listener: BorrowedFd) {
    // SAFETY: the ioctl reads a u64 value argument.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _, FD_SYNC_WAKE_UP) };
}

/// Waits for the next call, which the kernel writes into `buf` (the journal's receive
/// buffer: it outlives a handler killed right after the kernel handed it the call).
/// `Ok(None)`: the wait was interrupted by a signal, or the notification vanished (its
/// caller died) before it could be read; try again.
///
/// # Safety
/// `buf` must be valid for writes of a `seccomp_notif` and zeroed (RECV requires it).
pub unsafe fn receive(listener: BorrowedFd, buf: *mut libc::seccomp_notif) -> io::Result<Option<Request>> {
    // SAFETY: the caller guarantees `buf`; the kernel fills it.
    let rc = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, buf) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EINTR) | Some(libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel wrote a whole seccomp_notif there; read it out by value.
    let n = unsafe { std::ptr::read_volatile(buf) };
    Ok(Some(Request { id: n.id, pid: n.pid, nr: n.data.nr, arch: n.data.arch, args: n.data.args }))
}

/// Whether the caller of `id` still waits for an answer.
pub fn id_valid(listener: BorrowedFd, id: u64) -> bool {
    // SAFETY: the ioctl reads the u64 id.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _, &id) == 0 }
}

/// Answers `id`. `Ok(false)`: the caller no longer waits (it died, or `id` was answered).
pub fn answer(listener: BorrowedFd, id: u64, a: Answer) -> io::Result<bool> {
    let mut r = libc::seccomp_notif_resp { id, val: 0, error: 0, flags: 0 };
    match a {
        Answer::Value(v) => r.val = v,
        Answer::Errno(e) => r.error = -e,
        Answer::Continue => r.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    }
    // SAFETY: the kernel reads `r`, which outlives the call.
    let rc = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut r) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(false),
        _ => Err(e),
    }
}
