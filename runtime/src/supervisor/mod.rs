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
mod held;
pub mod journal;
pub mod keeper;
mod ops;
pub mod spawn;
mod stat;
mod stored;
mod target;
pub mod unotify;
mod xattr;

use crate::notified::{self, Notified, Op};
use caller::{Caller, CopyError};
use journal::{Count, Journal};
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

/// What an operation needs besides its call: whether the call still waits, and the
/// journal's note (see [`journal`]).
pub(crate) struct Cx<'a> {
    valid: &'a dyn Fn() -> bool,
    journal: &'a Journal,
    /// A replay of a dead handler's call: the note it left (0: none).
    replay_note: Option<u64>,
}

impl Cx<'_> {
    /// Whether the caller still waits (check before changing anything).
    pub(crate) fn valid(&self) -> bool {
        (self.valid)()
    }

    /// The call's one non-idempotent mutation is about to happen; `v` identifies it.
    pub(crate) fn note(&self, v: u64) {
        self.journal.note(v);
    }

    /// In a replay, the note the dead handler left, if it left one.
    pub(crate) fn replayed(&self) -> Option<u64> {
        self.replay_note.filter(|n| *n != 0)
    }
}

/// Handles the notified calls of one listener.
pub struct Handler {
    listener: OwnedFd,
    table: &'static [Notified],
    journal: Journal,
    proc_dir: OwnedFd,
    root: Option<RootId>,
    warned: bool,
    /// Test hook (`ROOTEMU_TEST_STOP_BEFORE_ANSWER=N`): stop (SIGSTOP) after journaling
    /// every N-th call, before answering it, for fault-injection tests to kill it there.
    stop_every: u64,
    /// Test hook (`ROOTEMU_TEST_DIE_AFTER_RECEIVE=N`): die (SIGKILL) right after the kernel
    /// hands over every N-th call, before journaling it.
    die_every: u64,
    /// Test hook (`ROOTEMU_TEST_UNREACHABLE=NAME`): calls of syscall NAME fail as if the
    /// caller's memory were out of reach (ptrace rules, an LSM), for the fault tests.
    unreachable: Option<String>,
}

impl Handler {
    /// A handler for `listener`, the listener fd of a filter whose notified calls `table`
    /// describes (`Filter::notified`), journaling in `journal`; `proc_dir` is the host's
    /// /proc (where callers' pids are). Sets this process's umask to 0 and its cwd to
    /// `proc_dir`: run it in a process of its own.
    pub fn new(listener: OwnedFd, proc_dir: OwnedFd, table: &'static [Notified], journal: Journal) -> Result<Handler, SuperviseError> {
        // SAFETY: umask and fchdir with valid arguments.
        unsafe {
            libc::umask(0);
            if libc::fchdir(proc_dir.as_raw_fd()) != 0 {
                return Err(SuperviseError::Setup(io::Error::last_os_error()));
            }
        }
        unotify::set_sync_wake_up(listener.as_fd());
        let stop_every = std::env::var("ROOTEMU_TEST_STOP_BEFORE_ANSWER").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        let die_every = std::env::var("ROOTEMU_TEST_DIE_AFTER_RECEIVE").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        let unreachable = std::env::var("ROOTEMU_TEST_UNREACHABLE").ok();
        Ok(Handler { listener, table, journal, proc_dir, root: None, warned: false, stop_every, die_every, unreachable })
    }

    /// The listener.
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Takes over what a dead handler left in the journal, then receives and answers calls
    /// until the listener fails.
    pub fn serve(&mut self) -> Result<(), SuperviseError> {
        self.take_over()?;
        self.journal.ready();
        loop {
            let buf = self.journal.recv_buffer();
            // SAFETY: the journal's receive buffer, zeroed, lives as long as the process.
            let req = match unsafe { unotify::receive(self.listener.as_fd(), buf) } {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => return Err(SuperviseError::Listener(e)),
            };
            if self.die_every > 0 && (self.journal.get(Count::Received) + 1) % self.die_every == 0 {
                // SAFETY: raise with a signal number.
                unsafe { libc::raise(libc::SIGKILL) };
            }
            self.journal.begin(&req);
            if self.stop_every > 0 && self.journal.get(Count::Received) % self.stop_every == 0 {
                // SAFETY: raise with a signal number.
                unsafe { libc::raise(libc::SIGSTOP) };
            }
            let a = self.handle(&req, None);
            self.finish(&req, a)?;
        }
    }

    /// A call left in flight by a dead handler: answered once, if its caller still waits
    /// (with the answer that handler decided, or by handling it again: idempotent).
    fn take_over(&mut self) -> Result<(), SuperviseError> {
        // A call the kernel handed the dead handler that it did not journal: it did nothing
        // for it yet, and the kernel will not hand it out again. Handle it now.
        let in_flight = self.journal.in_flight();
        let journaled = in_flight.map(|(r, ..)| r.id);
        if let Some(req) = self.journal.last_received().filter(|r| journaled != Some(r.id)) {
            if unotify::id_valid(self.listener.as_fd(), req.id) {
                self.journal.begin(&req);
                let a = self.handle(&req, None);
                self.journal.count(Count::Replayed);
                return self.finish(&req, a);
            }
        }
        let Some((req, note, decided)) = in_flight else { return Ok(()) };
        if !unotify::id_valid(self.listener.as_fd(), req.id) {
            self.journal.count(Count::ReplaySkipped);
            self.journal.clear();
            return Ok(());
        }
        let a = match decided {
            Some(a) => a,
            None => self.handle(&req, Some(note)),
        };
        self.journal.count(Count::Replayed);
        self.finish(&req, a)
    }

    /// Journals the answer, sends it, clears the journal.
    fn finish(&self, req: &unotify::Request, a: Answer) -> Result<(), SuperviseError> {
        self.journal.decided(a);
        let sent = unotify::answer(self.listener.as_fd(), req.id, a).map_err(SuperviseError::Listener)?;
        self.journal.count(if sent { Count::Answered } else { Count::Gone });
        self.journal.clear();
        Ok(())
    }

    /// The answer to one call; `replay`: the call was left in flight by a dead handler,
    /// which left this note.
    pub fn handle(&mut self, req: &unotify::Request, replay: Option<u64>) -> Answer {
        let Some(n) = notified::find(self.table, req.arch, req.nr as u32) else { return Answer::Continue };
        let caller = Caller { pid: req.pid };
        let entered = self.enter_root(req.pid);
        let listener = self.listener.as_fd();
        let valid = || unotify::id_valid(listener, req.id);
        let cx = Cx { valid: &valid, journal: &self.journal, replay_note: replay };
        let args = &req.args;
        let simulated = self.unreachable.as_deref() == Some(n.name);
        let result = if simulated { Err(CopyError::Unreachable(libc::EPERM)) } else { entered }.and_then(|()| match n.op {
            Op::Chown => ops::chown(&caller, n, args, &cx),
            Op::Chmod => ops::chmod(&caller, n, args, &cx),
            Op::Mknod => ops::mknod(&caller, n, args, &cx),
            Op::Stat => ops::stat(&caller, n, args),
            Op::Statx => ops::statx(&caller, n, args),
            Op::SetXattr => xattr::set(&caller, n, args, &cx),
            Op::GetXattr => xattr::get(&caller, n, args),
            Op::ListXattr => xattr::list(&caller, n, args),
            Op::RemoveXattr => xattr::remove(&caller, n, args, &cx),
        });
        match result {
            Ok(a) => a,
            Err(CopyError::Errno(e)) => Answer::Errno(e),
            Err(CopyError::Unreachable(e)) => {
                if unotify::id_valid(self.listener.as_fd(), req.id) && !self.warned {
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

/// An `O_PATH` directory fd, e.g. of the host's /proc for [`Handler::new`].
pub fn open_dir(path: &std::ffi::CStr) -> io::Result<OwnedFd> {
    target::open_at(libc::AT_FDCWD, path, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| match e {
        CopyError::Errno(e) | CopyError::Unreachable(e) => io::Error::from_raw_os_error(e),
    })
}
