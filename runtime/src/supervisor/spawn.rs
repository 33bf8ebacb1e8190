//! Handler processes, and handing the listener around: the process that installs the
//! filter sends the listener fd over unix sockets (`SCM_RIGHTS`), once to the keeper and
//! once to the first handler; later handlers inherit it from the keeper (a fork) or get it
//! as fd 3 of a new binary (an upgrade: `rootemu handler`).

use super::journal::Journal;
pub use super::stored::StoreFds;
use super::{Handler, SuperviseError};
use crate::notified::Notified;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The fd numbers an exec'd handler (`rootemu handler`) finds its listener, journal and
/// the host's /proc at.
pub const HANDLER_FDS: (RawFd, RawFd, RawFd) = (3, 4, 5);
/// The fd numbers an exec'd handler (`rootemu handler --store`) finds the record store's
/// file and socket at ([`StoreFds`]).
pub const STORE_FDS: (RawFd, RawFd) = (6, 7);

/// A process, by pid and pidfd.
#[derive(Debug)]
pub struct Process {
    /// Its pid.
    pub pid: libc::pid_t,
    /// A pidfd (readable once it has exited).
    pub pidfd: OwnedFd,
}

impl Process {
    /// Kills and reaps it.
    pub fn kill(self) {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// A pidfd for `pid` (Linux 5.3).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open with a pid and no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Forks a process that runs `f` and exits with its status; it dies with its parent.
pub(crate) fn fork_running(f: impl FnOnce() -> i32) -> io::Result<Process> {
    // SAFETY: the launcher is single-threaded; the child only runs `f`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        let code = f();
        // SAFETY: leave the forked process without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    let pidfd = pidfd_open(pid)?;
    Ok(Process { pid, pidfd })
}

/// The fds a handler serves with: the listener, the journal's memfd, and a directory fd
/// of the host's /proc (opened by the keeper before it entered any new mount namespace).
pub struct HandlerFds {
    /// The filter's listener.
    pub listener: OwnedFd,
    /// The journal's memfd.
    pub journal: OwnedFd,
    /// The host's /proc.
    pub proc_dir: OwnedFd,
    /// The record store, with `--records`.
    pub store: Option<StoreFds>,
}

/// Serves with `fds` until killed; reports failures on stderr. The body of every handler
/// process.
pub fn handler_main(fds: HandlerFds, table: &'static [Notified]) -> i32 {
    let run = || -> Result<(), SuperviseError> {
        let journal = Journal::open(fds.journal).map_err(SuperviseError::Setup)?;
        if let Some(store) = fds.store {
            super::stored::install(store).map_err(SuperviseError::Setup)?;
        }
        Handler::new(fds.listener, fds.proc_dir, table, journal)?.serve()
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rootemu: {e}");
            1
        }
    }
}

/// A pair of connected unix sockets (`SOCK_SEQPACKET`, close-on-exec).
pub(crate) fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `fd` over the unix socket `socket`.
pub fn send_fd(socket: RawFd, fd: RawFd) -> io::Result<()> {
    send_byte_and_fd(socket, 0, Some(fd))
}

/// Receives one fd from the unix socket `socket`; `None` at end of file.
pub fn receive_fd(socket: RawFd) -> io::Result<Option<OwnedFd>> {
    match receive_byte_and_fd(socket) {
        Ok((_, Some(fd))) => Ok(Some(fd)),
        Ok((_, None)) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends one byte, with `fd` attached (`SCM_RIGHTS`) if given.
pub fn send_byte_and_fd(socket: RawFd, b: u8, fd: Option<RawFd>) -> io::Result<()> {
    let mut byte = [b];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: all-zero is a valid msghdr; we point it at our buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer has room for one cmsg with one fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        }
    }
    loop {
        // SAFETY: msg describes valid buffers.
        if unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) } >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one byte and the fd attached to it, if any (EOF: `UnexpectedEof`).
pub fn receive_byte_and_fd(socket: RawFd) -> io::Result<(u8, Option<OwnedFd>)> {
    let mut byte = [0u8];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: all-zero is a valid msghdr; we point it at our buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: msg describes valid buffers.
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if n == 0 {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    // SAFETY: the kernel filled msg; we read the first cmsg if it carries an fd.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Ok((byte[0], None));
        }
        Ok((byte[0], Some(OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>())))))
    }
}

/// A 64-bit FNV-1a digest of a program: a handler exec'd from another binary serves only
/// the program it was built for.
pub fn program_digest(program: &[crate::SockFilter]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in program {
        for b in i.code.to_le_bytes().into_iter().chain([i.jt, i.jf]).chain(i.k.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
