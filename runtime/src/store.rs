//! The record store: where consistent mode keeps the records of files that cannot carry
//! them (see [`crate::record`]) — every file of a file system without user xattrs (ramfs,
//! NFS without xattr support, old tmpfs), and symlinks, FIFOs and sockets where the file
//! system keeps no birth time — in a directory the user names (`rootemu run --consistent
//! --records DIR`, read by `rootemu export --records DIR`).
//!
//! `DIR/rootemu-records` is text, one line per change, appended (a torn last line is
//! ignored; every line ends with a checksum):
//!
//! - `rec DEV INO CTIME MTIME BTIME NAME RECORD #SUM`: the file with device `major:minor`
//!   and inode `INO`, whose change, modification and birth times (`sec.nsec`, `-` when the
//!   file system keeps none) were those when the line was written, named `NAME` (the last
//!   component, %-escaped; `-` when unknown), has `RECORD` (`uid:gid:mode:type`).
//! - `del DEV INO #SUM`: it has none any more.
//! - `run #SUM`: a run starts; lines after it were written while the run holds the file.
//!
//! `SUM` is the FNV-1a 64 digest (hex) of the line before ` #`.
//!
//! A record never attaches to a later file reusing its inode: during a run the supervisor
//! holds every recorded file open, so its inode cannot be freed and reused; when the run
//! ends the store is rewritten with each file's times and name as they are then, and a
//! record read outside that run (by a later run, or by the export) counts only for a file
//! whose times (and name, for a file with one link) are still those. A file changed or
//! renamed outside a run loses its record (it shows its real owner), rather than risking
//! another file's.

use crate::record::{Kind, Record};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The store's file in its directory.
pub const FILE: &str = "rootemu-records";
/// Where a new store is written before it replaces [`FILE`].
const NEW: &str = "rootemu-records.new";

/// A time, `(seconds, nanoseconds)`.
pub type Time = (i64, u32);

/// Which file a record belongs to: device `(major, minor)` and inode.
pub type Key = ((u32, u32), u64);

/// What identifies a file besides its inode, outside a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamps {
    /// Change time.
    pub ctime: Time,
    /// Modification time.
    pub mtime: Time,
    /// Birth time, where the file system keeps one.
    pub btime: Option<Time>,
    /// Last component of its name, where known.
    pub name: Option<Vec<u8>>,
}

impl Stamps {
    /// The stamps of a `statx` (with `STATX_BASIC_STATS | STATX_BTIME`), named `name`.
    pub(crate) fn of_statx(st: &libc::statx, name: Option<&[u8]>) -> Stamps {
        let t = |t: libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
        Stamps {
            ctime: t(st.stx_ctime),
            mtime: t(st.stx_mtime),
            btime: (st.stx_mask & libc::STATX_BTIME != 0).then(|| t(st.stx_btime)),
            name: name.map(<[u8]>::to_vec),
        }
    }

    /// Whether a file with stamps `now` and `nlink` links is still the file these stamps
    /// were taken of: same times, and the same name when it has one link (and both names are known).
    pub fn still(&self, now: &Stamps, nlink: u64) -> bool {
        let same_birth = match (self.btime, now.btime) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let same_name = match (&self.name, &now.name) {
            (Some(a), Some(b)) if nlink == 1 => a == b,
            _ => true,
        };
        self.ctime == now.ctime && self.mtime == now.mtime && same_birth && same_name
    }
}

/// A record in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The record.
    pub record: Record,
    /// The file's stamps when the line was written.
    pub stamps: Stamps,
    /// Written after the last `run` line: held by that run.
    pub held: bool,
}

/// The store's records, by file.
pub type Entries = HashMap<Key, Entry>;

/// Why a store cannot be used.
#[derive(Debug)]
pub struct StoreError {
    /// What was being done.
    pub what: &'static str,
    /// The error.
    pub error: io::Error,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return write!(f, "in use by a running `rootemu run --consistent`");
        }
        match self.error.raw_os_error() {
            Some(e) => write!(f, "cannot {}: {}", self.what, crate::install::errno_text(e)),
            None => write!(f, "cannot {}: {}", self.what, self.error),
        }
    }
}

impl std::error::Error for StoreError {}

fn fail(what: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    move |error| StoreError { what, error }
}

fn digest(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn time(t: Option<Time>) -> String {
    t.map_or("-".into(), |(s, n)| format!("{s}.{n:09}"))
}

fn parse_time(s: &str) -> Option<Option<Time>> {
    if s == "-" {
        return Some(None);
    }
    let (a, b) = s.split_once('.')?;
    Some(Some((a.parse().ok()?, b.parse().ok()?)))
}

/// `%`-escapes a name: bytes outside `!`..`~`, and `%`.
fn escape(name: &[u8]) -> String {
    let mut s = String::new();
    for &b in name {
        if b.is_ascii_graphic() && b != b'%' {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02x}");
        }
    }
    s
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn sealed(body: String) -> String {
    let sum = digest(&body);
    format!("{body} #{sum:016x}\n")
}

/// The line recording `entry` for `key`.
pub(crate) fn rec_line(key: Key, record: &Record, stamps: &Stamps) -> String {
    let ((ma, mi), ino) = key;
    let name = stamps.name.as_deref().map_or("-".into(), escape);
    sealed(format!("rec {ma}:{mi} {ino} {} {} {} {name} {record}", time(Some(stamps.ctime)), time(Some(stamps.mtime)), time(stamps.btime)))
}

/// The line removing `key`'s record.
pub(crate) fn del_line(key: Key) -> String {
    let ((ma, mi), ino) = key;
    sealed(format!("del {ma}:{mi} {ino}"))
}

/// One parsed line.
enum Line {
    Rec(Key, Record, Stamps),
    Del(Key),
    Run,
}

fn parse_line(line: &str) -> Option<Line> {
    let (body, sum) = line.rsplit_once(" #")?;
    if u64::from_str_radix(sum, 16).ok()? != digest(body) {
        return None;
    }
    let mut f = body.split(' ');
    let kind = f.next()?;
    if kind == "run" {
        return Some(Line::Run);
    }
    let (ma, mi) = f.next()?.split_once(':')?;
    let key = ((ma.parse().ok()?, mi.parse().ok()?), f.next()?.parse().ok()?);
    if kind == "del" {
        return Some(Line::Del(key));
    }
    if kind != "rec" {
        return None;
    }
    let ctime = parse_time(f.next()?)??;
    let mtime = parse_time(f.next()?)??;
    let btime = parse_time(f.next()?)?;
    let name = match f.next()? {
        "-" => None,
        n => Some(unescape(n)?),
    };
    let record = Record::parse(f.next()?.as_bytes(), Kind::File)?;
    Some(Line::Rec(key, record, Stamps { ctime, mtime, btime, name }))
}

/// The records a store's text holds (malformed and torn lines ignored).
pub(crate) fn parse(text: &str) -> Entries {
    let mut entries = Entries::new();
    let mut held = false;
    for line in text.lines() {
        match parse_line(line) {
            Some(Line::Rec(key, record, stamps)) => {
                entries.insert(key, Entry { record, stamps, held });
            }
            Some(Line::Del(key)) => {
                entries.remove(&key);
            }
            Some(Line::Run) => {
                held = true;
                entries.values_mut().for_each(|e| e.held = false);
            }
            None => {}
        }
    }
    entries
}

/// A store directory, locked for as long as this lives.
pub struct Store {
    dir: OwnedFd,
}

impl Store {
    /// Opens the store in `dir` for a run (`exclusive`) or for reading.
    pub fn open(dir: &Path, exclusive: bool) -> Result<Store, StoreError> {
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| StoreError { what: "open the directory", error: io::Error::from_raw_os_error(libc::EINVAL) })?;
        // SAFETY: a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(fail("open the directory")(io::Error::last_os_error()));
        }
        // SAFETY: a new fd we own.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        // SAFETY: flock of our fd.
        if unsafe { libc::flock(dir.as_raw_fd(), op | libc::LOCK_NB) } != 0 {
            return Err(fail("lock it")(io::Error::last_os_error()));
        }
        Ok(Store { dir })
    }

    fn open_at(&self, name: &str, flags: i32) -> io::Result<std::fs::File> {
        let c = std::ffi::CString::new(name).expect("no NUL");
        // SAFETY: a valid C string relative to our directory fd.
        // Never through a symlink: the store writes nothing outside its directory.
        let fd = unsafe { libc::openat(self.dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, 0o600) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd we own.
        Ok(unsafe { std::fs::File::from_raw_fd(fd) })
    }

    /// The records it holds (none when it has no file yet).
    pub fn read(&self) -> Result<Entries, StoreError> {
        let mut text = String::new();
        match self.open_at(FILE, libc::O_RDONLY) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).map_err(fail("read it"))?;
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail("read it")(e)),
        }
        Ok(parse(&text))
    }

    /// Replaces the file with `entries` (written beside, synced, renamed), followed by a
    /// `run` line when `run`; returns the new file open for reading and appending.
    pub(crate) fn rewrite<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a Key, &'a Entry)>,
        run: bool,
    ) -> Result<std::fs::File, StoreError> {
        let mut text = String::new();
        let mut sorted: Vec<_> = entries.into_iter().collect();
        sorted.sort_by_key(|(k, _)| **k);
        for (k, e) in sorted {
            text.push_str(&rec_line(*k, &e.record, &e.stamps));
        }
        if run {
            text.push_str(&sealed("run".into()));
        }
        let new = std::ffi::CString::new(NEW).expect("no NUL");
        // SAFETY: a valid C string relative to our directory fd (a leftover of a crash).
        unsafe { libc::unlinkat(self.dir.as_raw_fd(), new.as_ptr(), 0) };
        let mut f = self.open_at(NEW, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL).map_err(fail("write it"))?;
        f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(fail("write it"))?;
        let to = std::ffi::CString::new(FILE).expect("no NUL");
        // SAFETY: valid C strings relative to our directory fd.
        if unsafe { libc::renameat(self.dir.as_raw_fd(), new.as_ptr(), self.dir.as_raw_fd(), to.as_ptr()) } != 0 {
            return Err(fail("replace it")(io::Error::last_os_error()));
        }
        // SAFETY: fsync of our directory fd (the rename reaches the disk).
        unsafe { libc::fsync(self.dir.as_raw_fd()) };
        self.open_at(FILE, libc::O_RDWR | libc::O_APPEND).map_err(fail("open it"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(c: i64, name: &[u8]) -> Stamps {
        Stamps { ctime: (c, 1), mtime: (c, 2), btime: None, name: Some(name.to_vec()) }
    }

    #[test]
    fn lines_round_trip_and_later_lines_win() {
        let r = Record { uid: 5, gid: 6, perms: 0o644, kind: Kind::Pipe };
        let a = ((8, 1), 12);
        let mut text = rec_line(a, &r, &stamps(100, b"odd name%\n"));
        assert!(text.starts_with("rec 8:1 12 100.000000001 100.000000002 - odd%20name%25%0a 5:6:0644:pipe #"), "{text}");
        let got = parse(&text);
        assert_eq!(got[&a].record, r);
        assert_eq!(got[&a].stamps, stamps(100, b"odd name%\n"));
        assert!(!got[&a].held);
        text.push_str(&del_line(a));
        assert!(parse(&text).is_empty());
    }

    #[test]
    fn torn_and_altered_lines_are_ignored() {
        let r = Record { uid: 5, gid: 6, perms: 0o644, kind: Kind::File };
        let line = rec_line(((8, 1), 12), &r, &stamps(1, b"f"));
        // A prefix that would parse as another mode, without its checksum.
        let torn = &line[..line.find("0644").unwrap() + 3];
        assert!(parse(torn).is_empty());
        assert!(parse(&line.replace("5:6", "5:7")).is_empty());
        assert_eq!(parse(&format!("{torn}\n{line}")).len(), 1);
    }

    #[test]
    fn lines_after_a_run_line_are_held_by_that_run() {
        let r = Record { uid: 5, gid: 6, perms: 0o644, kind: Kind::File };
        let (a, b) = (((8, 1), 1), ((8, 1), 2));
        let text = [rec_line(a, &r, &stamps(1, b"a")), sealed("run".into()), rec_line(b, &r, &stamps(1, b"b"))].concat();
        let got = parse(&text);
        assert!(!got[&a].held && got[&b].held);
    }

    #[test]
    fn stamps_tell_a_file_from_a_later_one() {
        let s = stamps(100, b"p");
        assert!(s.still(&stamps(100, b"p"), 1));
        assert!(!s.still(&stamps(101, b"p"), 1), "changed since");
        assert!(!s.still(&stamps(100, b"q"), 1), "another name, one link");
        assert!(s.still(&stamps(100, b"q"), 2), "another link to it");
        let born = Stamps { btime: Some((50, 0)), ..s.clone() };
        assert!(!born.still(&Stamps { btime: Some((51, 0)), ..s.clone() }, 1));
    }
}
