//! The file a notified call names, found as the kernel would find it for the caller, and
//! its record (see [`crate::record`]).
//!
//! The handler runs with the caller's root as its own root (it `chroot`s into
//! `/proc/PID/root` whenever a caller's root differs) and with the host's `/proc` as its
//! cwd, so that an absolute path, a `..` at the root and an absolute symlink resolve as for
//! the caller, while `PID/cwd`, `PID/fd/N` and `self/fd/N` reach any process's files.

use super::caller::{Caller, CopyError};
use super::stored;
use crate::notified::{Notified, Role};
use crate::record::{self, Birth, Kind, Record};
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Why a call cannot be handled: the errno the caller gets, or its memory is out of reach.
pub(crate) type Fail = CopyError;

/// The errno of the last failed libc call, as a [`Fail`].
pub(crate) fn last() -> Fail {
    Fail::Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// The target of a call: an `O_PATH` fd, its `statx`, and where it is listed.
pub(crate) struct Target {
    /// `O_PATH` fd of the file itself (a symlink itself when not followed).
    pub(crate) fd: OwnedFd,
    /// Its `statx` (basic stats and birth time).
    pub(crate) st: libc::statx,
    /// Its directory and name there, when the call named it by path.
    pub(crate) parent: Option<(OwnedFd, CString)>,
}

/// `openat(dirfd, path, flags)` as an owned fd.
pub(crate) fn open_at(dirfd: i32, path: &CStr, flags: i32) -> Result<OwnedFd, Fail> {
    create_at(dirfd, path, flags, 0)
}

/// `openat(dirfd, path, flags, mode)` as an owned fd.
pub(crate) fn create_at(dirfd: i32, path: &CStr, flags: i32, mode: u32) -> Result<OwnedFd, Fail> {
    // SAFETY: a valid C string; the result is a new fd or -1.
    let fd = unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `statx` of an fd (`AT_EMPTY_PATH`), with `flags` added (sync flags) and `mask`.
pub(crate) fn statx_fd(fd: i32, flags: i32, mask: u32) -> Result<libc::statx, Fail> {
    // SAFETY: all-zero is a valid statx; the kernel fills it.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty C string and our buffer.
    let rc = unsafe { libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH | flags, mask, &mut st) };
    if rc != 0 {
        return Err(last());
    }
    Ok(st)
}

/// The `statx` fields a record decision needs.
pub(crate) const MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// `self/fd/N`: the handler's own fd as a path (relative to its cwd, the host's /proc).
pub(crate) fn fd_path(fd: &OwnedFd) -> CString {
    CString::new(format!("self/fd/{}", fd.as_raw_fd())).expect("no NUL")
}

/// `PID/...` of a caller, relative to the host's /proc.
pub(crate) fn proc_path(pid: u32, rest: &str) -> CString {
    CString::new(format!("{pid}/{rest}")).expect("no NUL")
}

impl Target {
    /// The file `n`'s arguments name, resolved as the kernel would for the caller: a
    /// trailing symlink is followed unless the call is an `l*` one or has
    /// `AT_SYMLINK_NOFOLLOW`; an empty path names `dirfd` itself with `AT_EMPTY_PATH`.
    pub(crate) fn resolve(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<Target, Fail> {
        let flags = n.arg(Role::AtFlags, args).unwrap_or(0) as i32;
        let nofollow = n.nofollow || flags & libc::AT_SYMLINK_NOFOLLOW != 0;
        if let Some(fd) = n.arg(Role::Fd, args) {
            return Target::of_fd(caller, fd as i32);
        }
        let dirfd = n.arg(Role::DirFd, args).map_or(libc::AT_FDCWD, |d| d as i32);
        let addr = n.arg(Role::Path, args).unwrap_or(0);
        let path =
            if addr == 0 && flags & libc::AT_EMPTY_PATH != 0 { CString::default() } else { own_proc(caller, caller.read_path(addr)?) };
        let bytes = path.as_bytes();
        if bytes.is_empty() {
            if flags & libc::AT_EMPTY_PATH == 0 {
                return Err(Fail::Errno(libc::ENOENT));
            }
            return Target::of_fd(caller, dirfd);
        }
        let base = if bytes[0] == b'/' { None } else { Some(base_dir(caller, dirfd)?) };
        let base_fd = base.as_ref().map_or(libc::AT_FDCWD, |b| b.as_raw_fd());
        // Split off the last component, so that the record of a symlink, FIFO or socket
        // can be found in its directory; a trailing slash or `.`/`..` names a directory.
        let trimmed_slash = bytes.ends_with(b"/");
        let (dir, last): (&[u8], &[u8]) = match bytes.iter().rposition(|b| *b == b'/') {
            Some(0) => (b"/", &bytes[1..]),
            Some(i) => (&bytes[..i], &bytes[i + 1..]),
            None => (b".", bytes),
        };
        if trimmed_slash || last == b"." || last == b".." {
            let fd = open_at(base_fd, &path, libc::O_PATH)?;
            let st = statx_fd(fd.as_raw_fd(), 0, MASK)?;
            return Ok(Target { fd, st, parent: None });
        }
        let dir_c = CString::new(dir).expect("no NUL");
        let parent = open_at(base_fd, &dir_c, libc::O_PATH | libc::O_DIRECTORY)?;
        let last_c = CString::new(last).expect("no NUL");
        let fd = open_at(parent.as_raw_fd(), &last_c, libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 })?;
        let st = statx_fd(fd.as_raw_fd(), 0, MASK)?;
        Ok(Target { fd, st, parent: Some((parent, last_c)) })
    }

    /// The file behind the caller's fd `fd` (EBADF when it has none).
    pub(crate) fn of_fd(caller: &Caller, fd: i32) -> Result<Target, Fail> {
        let fd = base_fd(caller, fd)?;
        let st = statx_fd(fd.as_raw_fd(), 0, MASK)?;
        Ok(Target { fd, st, parent: None })
    }

    /// The file's type.
    pub(crate) fn kind(&self) -> Option<Kind> {
        Kind::of_mode(u32::from(self.st.stx_mode), self.st.stx_rdev_major, self.st.stx_rdev_minor)
    }

    /// Whether the file can carry its own `user.*` xattr (regular files and directories).
    pub(crate) fn holds_xattrs(&self) -> bool {
        matches!(u32::from(self.st.stx_mode) & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR)
    }

    /// Its birth time, where the file system keeps one.
    pub(crate) fn birth(&self) -> Option<Birth> {
        (self.st.stx_mask & libc::STATX_BTIME != 0).then_some(Birth { sec: self.st.stx_btime.tv_sec, nsec: self.st.stx_btime.tv_nsec })
    }

    /// What the kernel would report without a record.
    pub(crate) fn real(&self) -> Record {
        Record {
            uid: self.st.stx_uid,
            gid: self.st.stx_gid,
            perms: u32::from(self.st.stx_mode) & 0o7777,
            kind: self.kind().unwrap_or(Kind::File),
        }
    }

    /// The directory that lists the file, for records of files without xattrs: the one
    /// it was named in, or, for an fd, the directory of the path the kernel gives it.
    fn directory(&self) -> Option<OwnedFd> {
        if let Some((p, _)) = &self.parent {
            return open_at(p.as_raw_fd(), c".", libc::O_PATH | libc::O_DIRECTORY).ok();
        }
        let link = std::fs::read_link(std::path::Path::new(std::ffi::OsStr::from_bytes(fd_path(&self.fd).as_bytes()))).ok()?;
        let dir = link.parent().filter(|_| link.is_absolute())?;
        open_at(libc::AT_FDCWD, &CString::new(dir.as_os_str().as_encoded_bytes()).ok()?, libc::O_PATH | libc::O_DIRECTORY).ok()
    }

    /// The file's record, if it has one: with the file, or in the store.
    pub(crate) fn record(&self) -> Result<Option<Record>, Fail> {
        let kind = self.kind().unwrap_or(Kind::File);
        let own = if self.holds_xattrs() {
            get_xattr(&fd_path(&self.fd), record::OVERRIDE_STAT)?.and_then(|v| Record::parse(&v, kind))
        } else if let (Some(birth), Some(dir)) = (self.birth(), self.directory()) {
            get_xattr(&fd_path(&dir), &record::child_name(self.st.stx_ino))?.and_then(|v| record::parse_child(&v, birth, kind))
        } else {
            None
        };
        match own {
            Some(r) => Ok(Some(r)),
            None => stored::get(self),
        }
    }

    /// Writes the file's record (`None`, or the file's own values: removes it): with the
    /// file, or in the store (`--records`) where the file system keeps no xattr for it.
    /// A record that cannot be written fails the call with the file system's errno (the
    /// xattr is written whole or not at all), and says why on stderr once per cause.
    pub(crate) fn set_record(&self, r: Option<Record>) -> Result<(), Fail> {
        let r = r.filter(|r| *r != self.real());
        let result = if self.holds_xattrs() {
            let p = fd_path(&self.fd);
            match r {
                Some(r) => set_xattr(&p, record::OVERRIDE_STAT, r.to_string().as_bytes(), 0),
                None => remove_xattr(&p, record::OVERRIDE_STAT),
            }
        } else {
            let name = record::child_name(self.st.stx_ino);
            match (self.directory(), r) {
                (None, _) => Err(Fail::Errno(libc::EOPNOTSUPP)),
                (Some(dir), None) => remove_xattr(&fd_path(&dir), &name),
                (Some(dir), Some(r)) => match self.birth() {
                    Some(birth) => set_xattr(&fd_path(&dir), &name, record::child_value(birth, &r).as_bytes(), 0),
                    None => Err(Fail::Errno(libc::EOPNOTSUPP)),
                },
            }
        };
        let result = match result {
            Err(Fail::Errno(libc::EOPNOTSUPP)) if stored::enabled() => stored::set(self, r),
            Ok(()) if r.is_none() && stored::enabled() => stored::set(self, None),
            other => other,
        };
        if let Err(Fail::Errno(e @ (libc::EOPNOTSUPP | libc::ENOSPC | libc::EDQUOT | libc::E2BIG))) = result {
            self.explain(e);
        }
        result
    }

    /// One line on stderr per cause (a full disk, a file system without user xattrs).
    fn explain(&self, e: i32) {
        static SAID: [std::sync::atomic::AtomicBool; 3] = [
            std::sync::atomic::AtomicBool::new(false),
            std::sync::atomic::AtomicBool::new(false),
            std::sync::atomic::AtomicBool::new(false),
        ];
        let (i, why) = match e {
            libc::EOPNOTSUPP => (
                0,
                "the file system does not keep user xattrs (or birth times) there, where consistent mode keeps its records; `--records DIR` keeps them in DIR",
            ),
            libc::E2BIG => (2, "the file's xattrs are full"),
            _ => (1, "the file system is full"),
        };
        if !SAID[i].swap(true, std::sync::atomic::Ordering::Relaxed) {
            let path = std::fs::read_link(String::from_utf8_lossy(fd_path(&self.fd).as_bytes()).as_ref()).unwrap_or_default();
            eprintln!(
                "rootemu: consistent mode: cannot record what root did to {}: {why} ({}); the call fails with that error",
                crate::launch::quoted(&path),
                crate::install::errno_text(e)
            );
        }
    }
}

/// `/proc/self/...` and `/proc/thread-self/...` name the caller's own entries: the handler
/// (whose root is the caller's, so `/proc` is the caller's procfs) must not find its own
/// there. They become `/proc/TGID/...` and `/proc/TGID/task/TID/...` with the caller's ids
/// in its PID namespace (the last of `NStgid:`/`NSpid:` in its status). glibc reaches files
/// this way (e.g. `lchmod` and `fchmodat(AT_SYMLINK_NOFOLLOW)` through `/proc/self/fd/N`).
pub(crate) fn own_proc(caller: &Caller, path: CString) -> CString {
    let b = path.as_bytes();
    let (rest, thread) = if let Some(r) = b.strip_prefix(b"/proc/self") {
        (r, false)
    } else if let Some(r) = b.strip_prefix(b"/proc/thread-self") {
        (r, true)
    } else {
        return path;
    };
    if !(rest.is_empty() || rest.starts_with(b"/")) {
        return path;
    }
    let status = std::fs::read_to_string(String::from_utf8_lossy(proc_path(caller.pid, "status").as_bytes()).as_ref()).unwrap_or_default();
    let last = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().last().map(str::to_string));
    let (Some(tgid), Some(tid)) = (last("NStgid:"), last("NSpid:")) else { return path };
    let head = if thread { format!("/proc/{tgid}/task/{tid}") } else { format!("/proc/{tgid}") };
    let mut out = head.into_bytes();
    out.extend_from_slice(rest);
    CString::new(out).unwrap_or(path)
}

/// The directory a relative path starts from: the caller's cwd or its fd `dirfd`.
pub(crate) fn base_dir(caller: &Caller, dirfd: i32) -> Result<OwnedFd, Fail> {
    let fd = base_fd(caller, dirfd)?;
    let st = statx_fd(fd.as_raw_fd(), 0, libc::STATX_TYPE)?;
    if u32::from(st.stx_mode) & libc::S_IFMT != libc::S_IFDIR {
        return Err(Fail::Errno(libc::ENOTDIR));
    }
    Ok(fd)
}

/// An `O_PATH` fd of the caller's fd `fd` (its cwd for `AT_FDCWD`); EBADF when not open.
fn base_fd(caller: &Caller, fd: i32) -> Result<OwnedFd, Fail> {
    let rest = if fd == libc::AT_FDCWD {
        "cwd".to_string()
    } else if fd < 0 {
        return Err(Fail::Errno(libc::EBADF));
    } else {
        format!("fd/{fd}")
    };
    match open_at(libc::AT_FDCWD, &proc_path(caller.pid, &rest), libc::O_PATH) {
        Err(Fail::Errno(libc::ENOENT)) if fd != libc::AT_FDCWD => Err(Fail::Errno(libc::EBADF)),
        Err(Fail::Errno(e @ (libc::EACCES | libc::EPERM))) => Err(Fail::Unreachable(e)),
        r => r,
    }
}

/// `getxattr` of a whole value (through a magic link: the file itself); `None` when the file has no such xattr (or none at all).
pub(crate) fn get_xattr(path: &CStr, name: &str) -> Result<Option<Vec<u8>>, Fail> {
    let n = CString::new(name).expect("no NUL");
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings and our buffer.
        let rc = unsafe { libc::getxattr(path.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(Some(buf));
        }
        match last() {
            Fail::Errno(libc::ENODATA | libc::EOPNOTSUPP) => return Ok(None),
            Fail::Errno(libc::ERANGE) if buf.len() < super::caller::XATTR_SIZE_MAX => buf.resize(buf.len() * 4, 0),
            e => return Err(e),
        }
    }
}

/// `setxattr`.
pub(crate) fn set_xattr(path: &CStr, name: &str, value: &[u8], flags: i32) -> Result<(), Fail> {
    let n = CString::new(name).expect("no NUL");
    // SAFETY: valid C strings and value buffer.
    if unsafe { libc::setxattr(path.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), flags) } == 0 { Ok(()) } else { Err(last()) }
}

/// `removexattr`; removing what is not there (or from a file system without xattrs) is
/// not an error.
pub(crate) fn remove_xattr(path: &CStr, name: &str) -> Result<(), Fail> {
    let n = CString::new(name).expect("no NUL");
    // SAFETY: valid C strings.
    if unsafe { libc::removexattr(path.as_ptr(), n.as_ptr()) } == 0 {
        return Ok(());
    }
    match last() {
        Fail::Errno(libc::ENODATA | libc::EOPNOTSUPP) => Ok(()),
        e => Err(e),
    }
}
