//! The handler's side of the record store ([`crate::store`], `--records DIR`): records of
//! files that cannot carry them are looked up in memory and appended to the store, and
//! every file given a record is handed to the keeper (`SCM_RIGHTS`) before the call is
//! answered, so that its inode stays allocated (and cannot be reused) for the whole run.

use super::spawn;
use super::target::{Fail, Target};
use crate::record::Record;
use crate::store::{self, Entries, Entry, Key, Stamps};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// The store's fds a handler gets from the keeper: the file (read and appended), and the
/// socket it hands recorded files to the keeper through.
pub struct StoreFds {
    /// `DIR/rootemu-records`, opened for reading and appending.
    pub file: OwnedFd,
    /// The handler's end of the keeper's socket for recorded files.
    pub pins: OwnedFd,
}

struct Stored {
    file: std::fs::File,
    pins: OwnedFd,
    entries: Entries,
}

/// The store of this handler process (one per process: handlers are single-threaded).
static STORED: Mutex<Option<Stored>> = Mutex::new(None);

/// Loads the store for this handler (a torn last line a killed handler left is ended).
pub(crate) fn install(fds: StoreFds) -> std::io::Result<()> {
    let file = std::fs::File::from(fds.file);
    let mut bytes = Vec::new();
    let mut at = 0u64;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = file.read_at(&mut chunk, at)?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    if bytes.last().is_some_and(|b| *b != b'\n') {
        (&file).write_all(b"\n")?;
    }
    let entries = store::parse(&String::from_utf8_lossy(&bytes));
    *STORED.lock().unwrap_or_else(|p| p.into_inner()) = Some(Stored { file, pins: fds.pins, entries });
    Ok(())
}

fn key(t: &Target) -> Key {
    ((t.st.stx_dev_major, t.st.stx_dev_minor), t.st.stx_ino)
}

fn stamps(t: &Target) -> Stamps {
    Stamps::of_statx(&t.st, t.parent.as_ref().map(|(_, n)| n.as_bytes()))
}

impl Stored {
    fn append(&mut self, line: &str) -> Result<(), Fail> {
        (&self.file).write_all(line.as_bytes()).map_err(|e| Fail::Errno(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// Hands `t` to the keeper, then records `r` for it.
    fn hold(&mut self, t: &Target, r: Record) -> Result<(), Fail> {
        let k = key(t);
        if !self.entries.get(&k).is_some_and(|e| e.held) {
            spawn::send_fd(self.pins.as_raw_fd(), t.fd.as_raw_fd()).map_err(|e| Fail::Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
        }
        let s = stamps(t);
        self.append(&store::rec_line(k, &r, &s))?;
        self.entries.insert(k, Entry { record: r, stamps: s, held: true });
        Ok(())
    }

    fn forget(&mut self, k: Key) -> Result<(), Fail> {
        if self.entries.contains_key(&k) {
            self.append(&store::del_line(k))?;
            self.entries.remove(&k);
        }
        Ok(())
    }
}

/// Whether this run has a store.
pub(crate) fn enabled() -> bool {
    STORED.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// `t`'s record in the store. A record from before this run counts only while the file's
/// stamps are those it was recorded with; the run then holds the file.
pub(crate) fn get(t: &Target) -> Result<Option<Record>, Fail> {
    let mut guard = STORED.lock().unwrap_or_else(|p| p.into_inner());
    let Some(s) = guard.as_mut() else { return Ok(None) };
    let k = key(t);
    let Some(e) = s.entries.get(&k) else { return Ok(None) };
    if e.held {
        return Ok(Some(e.record));
    }
    let r = e.record;
    if e.stamps.still(&stamps(t), u64::from(t.st.stx_nlink)) {
        s.hold(t, r)?;
        return Ok(Some(r));
    }
    s.forget(k)?;
    Ok(None)
}

/// Records `r` for `t` (`None`: removes its record).
pub(crate) fn set(t: &Target, r: Option<Record>) -> Result<(), Fail> {
    let mut guard = STORED.lock().unwrap_or_else(|p| p.into_inner());
    let Some(s) = guard.as_mut() else { return Err(Fail::Errno(libc::EOPNOTSUPP)) };
    match r {
        Some(r) => s.hold(t, r),
        None => s.forget(key(t)),
    }
}
