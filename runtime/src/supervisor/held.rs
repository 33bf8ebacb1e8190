//! The keeper's side of the record store ([`crate::store`], `--records DIR`): it starts a
//! run in the store, holds open every file a handler records there (so that no inode with a
//! record can be freed and reused while the run lasts), and when the run ends rewrites the
//! store with each held file's stamps and name as they are then.

use super::spawn::{self, StoreFds};
use crate::store::{Entries, Key, Stamps, Store, StoreError};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// A run's store and the files it holds.
pub(crate) struct Held {
    store: Store,
    file: OwnedFd,
    /// The keeper's end and the handlers' end of the socket recorded files come through.
    sockets: (OwnedFd, OwnedFd),
    files: HashMap<Key, OwnedFd>,
}

impl Held {
    /// Starts a run in `store`: the records of earlier runs are kept (each counts while its
    /// file's stamps hold), then a `run` line.
    pub(crate) fn start(store: Store) -> Result<Held, StoreError> {
        let entries = store.read()?;
        let file = store.rewrite(&entries, true)?;
        let sockets = spawn::socket_pair().map_err(|error| StoreError { what: "create its socket", error })?;
        // SAFETY: fcntl on our fd.
        unsafe { libc::fcntl(sockets.0.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        Ok(Held { store, file: file.into(), sockets, files: HashMap::new() })
    }

    /// Raises this process's open-file limit to its maximum: each held file takes one. For
    /// the keeper once the command runs (the command keeps the limit it was started with).
    pub(crate) fn raise_limit() {
        // SAFETY: getrlimit/setrlimit with our struct.
        unsafe {
            let mut l: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
                l.rlim_cur = l.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            }
        }
    }

    /// What a handler needs: the store's file and the socket's far end.
    pub(crate) fn handler_fds(&self) -> io::Result<StoreFds> {
        Ok(StoreFds { file: self.file.try_clone()?, pins: self.sockets.1.try_clone()? })
    }

    /// The socket to poll for files to hold.
    pub(crate) fn socket(&self) -> RawFd {
        self.sockets.0.as_raw_fd()
    }

    /// Takes every file waiting in the socket.
    pub(crate) fn receive(&mut self) {
        while let Ok(Some(fd)) = spawn::receive_fd(self.sockets.0.as_raw_fd()) {
            if let Ok(st) = super::target::statx_fd(fd.as_raw_fd(), 0, libc::STATX_INO) {
                self.files.entry(((st.stx_dev_major, st.stx_dev_minor), st.stx_ino)).or_insert(fd);
            }
        }
    }

    /// The run ended (its handler is dead): rewrites the store with the stamps and names of
    /// the files this run held, as they are now; a file deleted meanwhile loses its record.
    pub(crate) fn seal(mut self, proc_dir: &OwnedFd) -> Result<(), StoreError> {
        self.receive();
        let mut entries: Entries = self.store.read()?;
        entries.retain(|k, e| {
            if !e.held {
                return true;
            }
            let Some(fd) = self.files.get(k) else { return true };
            let Ok(st) = super::target::statx_fd(fd.as_raw_fd(), 0, super::target::MASK) else { return false };
            if st.stx_nlink == 0 {
                return false;
            }
            // The name it has now; none for a file held since before it had one (a device
            // placeholder made unnamed, then linked in), which the kernel shows as deleted.
            let link = readlink_at(proc_dir, &format!("self/fd/{}", fd.as_raw_fd()));
            let name = link.as_ref().and_then(|p| p.file_name()).map(|n| n.as_bytes()).filter(|n| !n.ends_with(b" (deleted)"));
            e.stamps = Stamps::of_statx(&st, name);
            true
        });
        self.store.rewrite(&entries, false).map(drop)
    }
}

/// `readlinkat(dir, path)`.
fn readlink_at(dir: &OwnedFd, path: &str) -> Option<std::path::PathBuf> {
    let c = std::ffi::CString::new(path).ok()?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid C string and our buffer.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(std::path::PathBuf::from(std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&buf))))
}
