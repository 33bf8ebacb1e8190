//! The operations on files: chown, chmod, mknod, and the stat family, each as root would
//! see it, remembered in the file's record.

use super::Cx;
use super::caller::Caller;
use super::stat;
use super::target::{self, Fail, Target, base_dir, create_at, fd_path, open_at, proc_path, statx_fd};
use super::unotify::Answer;
use crate::notified::{Notified, Role};
use crate::record::{self, Kind, Record};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// `chown` family: records the new owner. As the kernel does for any chown of a
/// non-directory, the set-user-ID bit, the set-group-ID bit of a group-executable file and
/// the file capability are dropped.
pub(crate) fn chown(caller: &Caller, n: &Notified, args: &[u64; 6], cx: &Cx) -> Result<Answer, Fail> {
    let id = |r: Role| {
        let v = n.arg(r, args).unwrap_or(u64::MAX);
        if n.id16 {
            let v = v as u16;
            if v == u16::MAX { u32::MAX } else { u32::from(v) }
        } else {
            v as u32
        }
    };
    let (uid, gid) = (id(Role::Uid), id(Role::Gid));
    if n.arg(Role::Fd, args).is_some_and(|fd| fd as i32 == -1) && uid == crate::install::PROBE_ID && gid == crate::install::PROBE_ID {
        return Ok(Answer::Value(0)); // the launcher's self-test: the supervisor answers
    }
    let t = Target::resolve(caller, n, args)?;
    let recorded = t.record()?;
    let real = t.real();
    if recorded.is_none() && (uid == u32::MAX || uid == real.uid) && (gid == u32::MAX || gid == real.gid) {
        // No record, and the owner the file already has: the kernel does exactly this chown
        // (side effects included), so let it.
        return Ok(Answer::Continue);
    }
    let mut r = recorded.unwrap_or(real);
    if uid != u32::MAX {
        r.uid = uid;
    }
    if gid != u32::MAX {
        r.gid = gid;
    }
    if !cx.valid() {
        return Ok(Answer::Errno(libc::EINTR));
    }
    if r.kind != Kind::Dir {
        let mut perms = r.perms & !libc::S_ISUID;
        if perms & libc::S_IXGRP != 0 {
            perms &= !libc::S_ISGID;
        }
        if perms != r.perms {
            set_perms(&t, perms)?;
            r.perms = perms;
        }
        if t.holds_xattrs() {
            let p = fd_path(&t.fd);
            let _ = target::remove_xattr(&p, "security.capability");
            target::remove_xattr(&p, &record::kept_name("security.capability"))?;
        }
    }
    t.set_record(Some(r))?;
    Ok(Answer::Value(0))
}

/// Changes the real file's permission bits (not through a symlink).
fn set_perms(t: &Target, perms: u32) -> Result<(), Fail> {
    if u32::from(t.st.stx_mode) & libc::S_IFMT == libc::S_IFLNK {
        return Err(Fail::Errno(libc::EOPNOTSUPP));
    }
    // SAFETY: a valid C string; chmod through the handler's fd of the file.
    if unsafe { libc::chmod(fd_path(&t.fd).as_ptr(), perms) } != 0 {
        return Err(target::last());
    }
    Ok(())
}

/// `chmod` family: a file with a record gets the mode in its record too; others go to
/// the kernel.
pub(crate) fn chmod(caller: &Caller, n: &Notified, args: &[u64; 6], cx: &Cx) -> Result<Answer, Fail> {
    let t = Target::resolve(caller, n, args)?;
    let Some(mut r) = t.record()? else { return Ok(Answer::Continue) };
    if !cx.valid() {
        return Ok(Answer::Errno(libc::EINTR));
    }
    let perms = n.arg(Role::Mode, args).unwrap_or(0) as u32 & 0o7777;
    set_perms(&t, perms)?;
    r.perms = perms;
    t.set_record(Some(r))?;
    Ok(Answer::Value(0))
}

/// The caller's umask (`Umask:` of `/proc/PID/status`).
fn umask(caller: &Caller) -> u32 {
    let path = String::from_utf8_lossy(proc_path(caller.pid, "status").as_bytes()).into_owned();
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok())))
        .unwrap_or(0o022)
}

/// `mknod` of a block or character device: an empty regular file with the permission
/// bits asked for, and a record of the device type and number. It appears at its name
/// complete (record included) or not at all (an unnamed `O_TMPFILE` linked into place).
pub(crate) fn mknod(caller: &Caller, n: &Notified, args: &[u64; 6], cx: &Cx) -> Result<Answer, Fail> {
    let mode = n.arg(Role::Mode, args).unwrap_or(0) as u32;
    let dev = n.arg(Role::Dev, args).unwrap_or(0) as u32;
    let (major, minor) = ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00));
    let kind = match mode & libc::S_IFMT {
        libc::S_IFCHR => Kind::Char(major, minor),
        libc::S_IFBLK => Kind::Block(major, minor),
        _ => return Ok(Answer::Continue), // the filter sends only devices; be safe anyway
    };
    let (parent, name) = Target::parent_of(caller, n, args)?;
    let perms = mode & 0o7777 & !umask(caller);
    if let Some(note) = cx.replayed() {
        // A handler died after creating the node (the note names it): it is done.
        let made = open_at(parent.as_raw_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW)
            .and_then(|fd| statx_fd(fd.as_raw_fd(), 0, libc::STATX_INO))
            .is_ok_and(|st| st.stx_ino == note);
        if made {
            return Ok(Answer::Value(0));
        }
    }
    if !cx.valid() {
        return Ok(Answer::Errno(libc::EINTR));
    }
    let placeholder = match create_at(parent.as_raw_fd(), c".", libc::O_TMPFILE | libc::O_WRONLY, perms) {
        Ok(fd) => {
            record_new(&fd, perms, kind)?;
            cx.note(statx_fd(fd.as_raw_fd(), 0, libc::STATX_INO)?.stx_ino);
            // linkat through the handler's /proc (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
            // SAFETY: valid C strings and fds.
            let rc =
                unsafe { libc::linkat(libc::AT_FDCWD, fd_path(&fd).as_ptr(), parent.as_raw_fd(), name.as_ptr(), libc::AT_SYMLINK_FOLLOW) };
            if rc != 0 {
                return Err(target::last());
            }
            fd
        }
        Err(Fail::Errno(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => {
            // No O_TMPFILE on this file system: create, then record.
            let fd = create_at(parent.as_raw_fd(), &name, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW, perms)?;
            cx.note(statx_fd(fd.as_raw_fd(), 0, libc::STATX_INO)?.stx_ino);
            record_new(&fd, perms, kind)?;
            fd
        }
        Err(e) => return Err(e),
    };
    drop(placeholder);
    Ok(Answer::Value(0))
}

/// Gives a new placeholder its exact permission bits and its device record.
fn record_new(fd: &OwnedFd, perms: u32, kind: Kind) -> Result<Record, Fail> {
    // SAFETY: fchmod of our own fd.
    if unsafe { libc::fchmod(fd.as_raw_fd(), perms) } != 0 {
        return Err(target::last());
    }
    let fd = open_at(libc::AT_FDCWD, &fd_path(fd), libc::O_PATH)?;
    let st = statx_fd(fd.as_raw_fd(), 0, target::MASK)?;
    let r = Record { uid: st.stx_uid, gid: st.stx_gid, perms, kind };
    Target { fd, st, parent: None }.set_record(Some(r))?;
    Ok(r)
}

/// `stat`, `lstat`, `fstat`, `newfstatat`, `*stat64`, `old*stat`: a file with a record is
/// described by rootemu in the ABI's struct; others go to the kernel.
pub(crate) fn stat(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<Answer, Fail> {
    let t = Target::resolve(caller, n, args)?;
    let Some(r) = t.record()? else { return Ok(Answer::Continue) };
    let Some(layout) = n.layout else { return Err(Fail::Errno(libc::ENOSYS)) };
    let bytes = stat::fill(layout, n.big_endian, &t.st, &r).map_err(Fail::Errno)?;
    let buf = n.arg(Role::Buf, args).unwrap_or(0);
    if layout.padding_kept {
        let parts: Vec<(u64, &[u8])> =
            layout.fields.iter().map(|f| (f.at as u64, &bytes[f.at as usize..][..usize::from(f.size)])).collect();
        caller.write_parts(buf, &parts)?;
    } else {
        caller.write(buf, &bytes)?;
    }
    Ok(Answer::Value(0))
}

/// `statx`: the kernel's own answer for the handler, with the record's owner, mode and
/// device number.
pub(crate) fn statx(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<Answer, Fail> {
    let t = Target::resolve(caller, n, args)?;
    let Some(r) = t.record()? else { return Ok(Answer::Continue) };
    let Some(layout) = n.layout else { return Err(Fail::Errno(libc::ENOSYS)) };
    let flags = n.arg(Role::AtFlags, args).unwrap_or(0) as i32;
    let mask = n.arg(Role::StatxMask, args).unwrap_or(0) as u32;
    let st = statx_fd(t.fd.as_raw_fd(), flags & libc::AT_STATX_SYNC_TYPE, mask)?;
    let mut raw = vec![0u8; layout.size as usize];
    let n_copy = raw.len().min(std::mem::size_of::<libc::statx>());
    // SAFETY: reading the bytes of a plain-old-data struct.
    raw[..n_copy].copy_from_slice(unsafe { std::slice::from_raw_parts((&st as *const libc::statx).cast::<u8>(), n_copy) });
    stat::patch_statx(layout, n.big_endian, &mut raw, &r);
    caller.write(n.arg(Role::Buf, args).unwrap_or(0), &raw)?;
    Ok(Answer::Value(0))
}

impl Target {
    /// The directory a creating call (mknod) names and the new name in it.
    pub(crate) fn parent_of(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<(OwnedFd, CString), Fail> {
        let path = target::own_proc(caller, caller.read_path(n.arg(Role::Path, args).unwrap_or(0))?);
        let bytes = path.as_bytes();
        if bytes.is_empty() {
            return Err(Fail::Errno(libc::ENOENT));
        }
        let trimmed = bytes.strip_suffix(b"/").unwrap_or(bytes);
        let (dir, last): (&[u8], &[u8]) = match trimmed.iter().rposition(|b| *b == b'/') {
            Some(0) => (b"/", &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (b".", trimmed),
        };
        if last.is_empty() || last == b"." || last == b".." {
            return Err(Fail::Errno(libc::EEXIST));
        }
        let dirfd = n.arg(Role::DirFd, args).map_or(libc::AT_FDCWD, |d| d as i32);
        let base = if dir[0] == b'/' { None } else { Some(base_dir(caller, dirfd)?) };
        let parent = open_at(
            base.as_ref().map_or(libc::AT_FDCWD, |b| b.as_raw_fd()),
            &CString::new(dir).expect("no NUL"),
            libc::O_PATH | libc::O_DIRECTORY,
        )?;
        if trimmed.len() != bytes.len() {
            // `mknod("name/")`: an existing name is EEXIST, a missing one ENOENT.
            return Err(match open_at(parent.as_raw_fd(), &CString::new(last).expect("no NUL"), libc::O_PATH | libc::O_NOFOLLOW) {
                Ok(_) => Fail::Errno(libc::EEXIST),
                Err(_) => Fail::Errno(libc::ENOENT),
            });
        }
        Ok((parent, CString::new(last).expect("no NUL")))
    }
}
