//! Starting the handler process and handing it the listener: the process that installs the
//! filter sends the listener fd over a socket (`SCM_RIGHTS`) to the handler, which was
//! forked before (in the launcher's user namespace, in the host's PID namespace).

use super::{Handler, SuperviseError};
use crate::notified::Notified;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A running handler process.
#[derive(Debug)]
pub struct HandlerProcess {
    /// Its pid.
    pub pid: libc::pid_t,
    /// The socket end the filter's installer sends the listener through.
    pub socket: OwnedFd,
}

impl HandlerProcess {
    /// Stops the handler (the command is gone) and reaps it.
    pub fn stop(self) {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Forks the handler of `table`'s calls. It waits for the listener on a socket, then
/// serves until killed; it dies with its parent.
pub fn spawn_handler(table: &'static [Notified]) -> io::Result<HandlerProcess> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the launcher is single-threaded here; the child only runs the handler.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(theirs);
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        let code = match handler_main(&ours, table) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rootemu: {e}");
                1
            }
        };
        // SAFETY: leave the forked process without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    Ok(HandlerProcess { pid, socket: theirs })
}

fn handler_main(socket: &OwnedFd, table: &'static [Notified]) -> Result<(), SuperviseError> {
    let Some(listener) = receive_fd(socket.as_raw_fd()).map_err(SuperviseError::Setup)? else {
        return Ok(()); // the command never installed its filter: nothing to serve
    };
    Handler::new(listener, table)?.serve()
}

/// Sends `fd` over the unix socket `socket`.
pub fn send_fd(socket: RawFd, fd: RawFd) -> io::Result<()> {
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
    // SAFETY: the control buffer has room for one cmsg with one fd.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
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

/// Receives one fd from the unix socket `socket`; `None` at end of file.
pub fn receive_fd(socket: RawFd) -> io::Result<Option<OwnedFd>> {
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
        return Ok(None);
    }
    // SAFETY: the kernel filled msg; we read the first cmsg if it carries an fd.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no fd in the message"));
        }
        Ok(Some(OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>()))))
    }
}
