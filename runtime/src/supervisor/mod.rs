//! Consistent mode's supervisor: it holds the listener of a filter whose policy notifies
//! (`rootemu::consistent_emulation!()`), receives each notified call and answers it as
//! root would have seen it, remembering what root did in records with the files
//! ([`crate::record`]).
//!
//! The handler runs in the user namespace of the build (so ids read as the build reads
//! them, and it has the namespace root's capabilities), in the host's mount and PID
//! namespaces, with the host's `/proc` as its cwd and the caller's root as its root (see
//! [`target`]). Each call is checked with `NOTIF_ID_VALID` before anything is changed, so a
//! call whose caller died (and whose pid may be reused) changes nothing.

mod caller;
mod ops;
pub mod spawn;
mod stat;
mod target;
pub mod unotify;
mod xattr;

use crate::notified::{self, Notified, Op};
use caller::{Caller, CopyError};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use unotify::Answer;

/// Why the supervisor stopped.
#[derive(Debug)]
pub enum SuperviseError {
    /// Setting up the handler (the host's /proc, the umask) failed.
    Setup(io::Error),
    /// Receiving from or answering through the listener failed.
    Listener(io::Error),
}

impl std::fmt::Display for SuperviseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuperviseError::Setup(e) => write!(f, "consistent mode: setting up the supervisor failed: {e}"),
            SuperviseError::Listener(e) => write!(f, "consistent mode: the seccomp listener failed: {e}"),
        }
    }
}

impl std::error::Error for SuperviseError {}

/// The identity of a root directory: device, inode, mount.
type RootId = (u32, u32, u64, u64);

/// Handles the notified calls of one listener.
pub struct Handler {
    listener: OwnedFd,
    table: &'static [Notified],
    proc_dir: OwnedFd,
    root: Option<RootId>,
    warned: bool,
}

impl Handler {
    /// A handler for `listener`, the listener fd of a filter whose notified calls `table`
    /// describes (`Filter::notified`). Sets this process's umask to 0 and its cwd to the
    /// host's /proc: run it in a process of its own.
    pub fn new(listener: OwnedFd, table: &'static [Notified]) -> Result<Handler, SuperviseError> {
        let proc_dir = target_open_dir(c"/proc").map_err(SuperviseError::Setup)?;
        // SAFETY: umask and fchdir with valid arguments.
        unsafe {
            libc::umask(0);
            if libc::fchdir(proc_dir.as_raw_fd()) != 0 {
                return Err(SuperviseError::Setup(io::Error::last_os_error()));
            }
        }
        unotify::set_sync_wake_up(listener.as_fd());
        Ok(Handler { listener, table, proc_dir, root: None, warned: false })
    }

    /// The listener.
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Receives and answers calls until the listener fails (or has no callers left).
    pub fn serve(&mut self) -> Result<(), SuperviseError> {
        loop {
            let req = match unotify::receive(self.listener.as_fd()) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => return Err(SuperviseError::Listener(e)),
            };
            let a = self.handle(&req);
            unotify::answer(self.listener.as_fd(), req.id, a).map_err(SuperviseError::Listener)?;
        }
    }

    /// The answer to one call.
    pub fn handle(&mut self, req: &unotify::Request) -> Answer {
        let Some(n) = notified::find(self.table, req.arch, req.nr as u32) else { return Answer::Continue };
        let caller = Caller { pid: req.pid };
        let entered = self.enter_root(req.pid);
        let listener = self.listener.as_fd();
        let valid = || unotify::id_valid(listener, req.id);
        let args = &req.args;
        let result = entered.and_then(|()| match n.op {
            Op::Chown => ops::chown(&caller, n, args, &valid),
            Op::Chmod => ops::chmod(&caller, n, args, &valid),
            Op::Mknod => ops::mknod(&caller, n, args, &valid),
            Op::Stat => ops::stat(&caller, n, args),
            Op::Statx => ops::statx(&caller, n, args),
            Op::SetXattr => xattr::set(&caller, n, args, &valid),
            Op::GetXattr => xattr::get(&caller, n, args),
            Op::ListXattr => xattr::list(&caller, n, args),
            Op::RemoveXattr => xattr::remove(&caller, n, args, &valid),
        });
        match result {
            Ok(a) => a,
            Err(CopyError::Errno(e)) => Answer::Errno(e),
            Err(CopyError::Unreachable(e)) => {
                if valid() && !self.warned {
                    self.warned = true;
                    eprintln!(
                        "rootemu: consistent mode: cannot reach pid {} to handle its {} ({}); such calls fail with that error",
                        req.pid,
                        n.name,
                        crate::install::errno_text(e)
                    );
                }
                Answer::Errno(e)
            }
        }
    }

    /// Makes the caller's root this process's root (and the host's /proc its cwd).
    fn enter_root(&mut self, pid: u32) -> Result<(), CopyError> {
        let root = target::proc_path(pid, "root");
        // SAFETY: all-zero is a valid statx; the kernel fills it.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C string and our buffer.
        if unsafe { libc::statx(libc::AT_FDCWD, root.as_ptr(), 0, libc::STATX_INO | libc::STATX_MNT_ID, &mut st) } != 0 {
            return Err(CopyError::Unreachable(errno()));
        }
        let id = (st.stx_dev_major, st.stx_dev_minor, st.stx_ino, st.stx_mnt_id);
        if self.root == Some(id) {
            return Ok(());
        }
        let dir = target::open_at(libc::AT_FDCWD, &root, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| match e {
            CopyError::Errno(e) => CopyError::Unreachable(e),
            u => u,
        })?;
        // SAFETY: fchdir/chroot with valid arguments; then back to the host's /proc.
        unsafe {
            if libc::fchdir(dir.as_raw_fd()) != 0 || libc::chroot(c".".as_ptr()) != 0 {
                let e = errno();
                libc::fchdir(self.proc_dir.as_raw_fd());
                return Err(CopyError::Unreachable(e));
            }
            if libc::fchdir(self.proc_dir.as_raw_fd()) != 0 {
                return Err(CopyError::Unreachable(errno()));
            }
        }
        self.root = Some(id);
        Ok(())
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn target_open_dir(path: &std::ffi::CStr) -> io::Result<OwnedFd> {
    target::open_at(libc::AT_FDCWD, path, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| match e {
        CopyError::Errno(e) | CopyError::Unreachable(e) => io::Error::from_raw_os_error(e),
    })
}
