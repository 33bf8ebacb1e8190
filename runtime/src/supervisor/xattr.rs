//! The xattr calls: ACLs and file capabilities that name ids the namespace cannot map are
//! kept (in `user.rootemu.<name>`) instead of failing, and shown in their place;
//! rootemu's own xattrs are hidden from the build.

use super::Cx;
use super::caller::{Caller, XATTR_NAME_MAX, XATTR_SIZE_MAX};
use super::target::{self, Fail, Target, fd_path, get_xattr, remove_xattr, set_xattr};
use super::unotify::Answer;
use crate::notified::{Notified, Role};
use crate::record;

/// The name argument; ERANGE when longer than the kernel allows.
fn name(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<String, Fail> {
    let c = caller.read_cstr(n.arg(Role::XattrName, args).unwrap_or(0), XATTR_NAME_MAX + 1, libc::ERANGE)?;
    if c.as_bytes().is_empty() {
        return Err(Fail::Errno(libc::ERANGE));
    }
    Ok(String::from_utf8_lossy(c.as_bytes()).into_owned())
}

/// The name argument when it is one of the xattrs rootemu keeps; `None` for any other
/// name (the kernel answers those). rootemu's own names fail with `own_errno`.
fn kept_name_arg(caller: &Caller, n: &Notified, args: &[u64; 6], own_errno: i32) -> Result<Option<String>, Fail> {
    let name = name(caller, n, args)?;
    if record::is_own(name.as_bytes()) {
        return Err(Fail::Errno(own_errno));
    }
    Ok(record::KEPT_XATTRS.contains(&name.as_str()).then_some(name))
}

/// Where a call's value goes or comes from: the buffer, its size, the flags.
struct Value {
    addr: u64,
    size: usize,
    flags: i32,
}

/// `sizeof(struct xattr_args)` (`XATTR_ARGS_SIZE_VER0`): `__aligned_u64 value; __u32 size;
/// __u32 flags`, the same on every ABI but for the byte order.
const XATTR_ARGS_SIZE: u64 = 16;

/// The call's value: arguments of their own (`setxattr`), or a `struct xattr_args` in the
/// caller's memory (the `*xattrat` calls), checked as the kernel checks them.
fn value(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<Value, Fail> {
    let Some(at) = n.arg(Role::XattrArgs, args) else {
        return Ok(Value {
            addr: n.arg(Role::XattrValue, args).unwrap_or(0),
            size: n.arg(Role::XattrSize, args).unwrap_or(0) as usize,
            flags: n.arg(Role::XattrFlags, args).unwrap_or(0) as i32,
        });
    };
    let at_flags = n.arg(Role::AtFlags, args).unwrap_or(0) as i32;
    if at_flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Fail::Errno(libc::EINVAL));
    }
    let given = n.arg(Role::XattrArgsSize, args).unwrap_or(0);
    if given < XATTR_ARGS_SIZE {
        return Err(Fail::Errno(libc::EINVAL));
    }
    // SAFETY: sysconf with a constant; the handler runs on the caller's kernel.
    if given > unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64 {
        return Err(Fail::Errno(libc::E2BIG)); // copy_struct_from_user's limit: one page
    }
    let raw = caller.read(at, XATTR_ARGS_SIZE as usize)?;
    let be = |b: &mut dyn Iterator<Item = &u8>| b.fold(0u64, |v, x| (v << 8) | u64::from(*x));
    let word = |b: &[u8]| if n.big_endian { be(&mut b.iter()) } else { be(&mut b.iter().rev()) };
    Ok(Value { addr: word(&raw[..8]), size: word(&raw[8..12]) as usize, flags: word(&raw[12..16]) as i32 })
}

/// Copies `value` to the caller's buffer `to` with the xattr calls' size rules: size 0
/// asks for the length; a smaller buffer is ERANGE.
fn give(caller: &Caller, to: &Value, value: &[u8]) -> Result<Answer, Fail> {
    if to.size == 0 {
        return Ok(Answer::Value(value.len() as i64));
    }
    if to.size < value.len() {
        return Err(Fail::Errno(libc::ERANGE));
    }
    caller.write(to.addr, value)?;
    Ok(Answer::Value(value.len() as i64))
}

/// `setxattr` family.
pub(crate) fn set(caller: &Caller, n: &Notified, args: &[u64; 6], cx: &Cx) -> Result<Answer, Fail> {
    let Some(name) = kept_name_arg(caller, n, args, libc::EPERM)? else { return Ok(Answer::Continue) };
    let v = value(caller, n, args)?;
    if v.size > XATTR_SIZE_MAX {
        return Err(Fail::Errno(libc::E2BIG));
    }
    let value = caller.read(v.addr, v.size)?;
    let flags = v.flags;
    let t = Target::resolve(caller, n, args)?;
    let p = fd_path(&t.fd);
    let own = record::kept_name(&name);
    if cx.replayed().is_some() && get_xattr(&p, &own)?.is_some_and(|v| v == value) {
        return Ok(Answer::Value(0)); // a handler died after keeping this very value
    }
    if !cx.valid() {
        return Ok(Answer::Errno(libc::EINTR));
    }
    match set_xattr(&p, &name, &value, flags) {
        Ok(()) => {
            remove_xattr(&p, &own)?;
            Ok(Answer::Value(0))
        }
        // The kernel cannot store ids the namespace does not map: keep the value.
        Err(Fail::Errno(libc::EINVAL)) if t.holds_xattrs() => {
            let exists = get_xattr(&p, &own)?.is_some() || get_xattr(&p, &name)?.is_some();
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(Fail::Errno(libc::EEXIST));
            }
            if flags & libc::XATTR_REPLACE != 0 && !exists {
                return Err(Fail::Errno(libc::ENODATA));
            }
            cx.note(1);
            set_xattr(&p, &own, &value, 0)?;
            remove_xattr(&p, &name)?;
            if name == "system.posix_acl_access" {
                follow_acl_mode(&t, &value)?;
            }
            Ok(Answer::Value(0))
        }
        Err(e) => Err(e),
    }
}

/// An access ACL sets the owner, group (or mask) and other permission bits, as the kernel's
/// `posix_acl_update_mode` does; the record follows.
fn follow_acl_mode(t: &Target, acl: &[u8]) -> Result<(), Fail> {
    const USER_OBJ: u16 = 0x01;
    const GROUP_OBJ: u16 = 0x04;
    const MASK: u16 = 0x10;
    const OTHER: u16 = 0x20;
    let (mut user, mut group, mut mask, mut other) = (None, None, None, None);
    for e in acl.get(4..).unwrap_or_default().chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u32::from(u16::from_le_bytes([e[2], e[3]]) & 7);
        match tag {
            USER_OBJ => user = Some(perm),
            GROUP_OBJ => group = Some(perm),
            MASK => mask = Some(perm),
            OTHER => other = Some(perm),
            _ => {}
        }
    }
    let (Some(u), Some(g), Some(o)) = (user, mask.or(group), other) else { return Ok(()) };
    let mut r = t.record()?.unwrap_or_else(|| t.real());
    let perms = (r.perms & 0o7000) | u << 6 | g << 3 | o;
    if perms != r.perms {
        // SAFETY: a valid C string.
        if unsafe { libc::chmod(fd_path(&t.fd).as_ptr(), perms) } != 0 {
            return Err(target::last());
        }
        r.perms = perms;
        t.set_record(Some(r))?;
    }
    Ok(())
}

/// `getxattr` family.
pub(crate) fn get(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<Answer, Fail> {
    let Some(name) = kept_name_arg(caller, n, args, libc::ENODATA)? else { return Ok(Answer::Continue) };
    let to = value(caller, n, args)?;
    if to.flags != 0 {
        return Err(Fail::Errno(libc::EINVAL)); // getxattrat takes no flags
    }
    let t = Target::resolve(caller, n, args)?;
    match get_xattr(&fd_path(&t.fd), &record::kept_name(&name))? {
        Some(v) => give(caller, &to, &v),
        None => Ok(Answer::Continue),
    }
}

/// `listxattr` family: the file's names without rootemu's own, with the kept ones.
pub(crate) fn list(caller: &Caller, n: &Notified, args: &[u64; 6]) -> Result<Answer, Fail> {
    let t = Target::resolve(caller, n, args)?;
    let p = fd_path(&t.fd);
    let mut buf = vec![0u8; 1024];
    let len = loop {
        // SAFETY: a valid C string and our buffer.
        let rc = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            break rc as usize;
        }
        match target::last() {
            Fail::Errno(libc::ERANGE) if buf.len() < XATTR_SIZE_MAX => buf.resize(buf.len() * 4, 0),
            Fail::Errno(libc::EOPNOTSUPP) => return Ok(Answer::Continue),
            e => return Err(e),
        }
    };
    let names: Vec<&[u8]> = buf[..len].split(|b| *b == 0).filter(|s| !s.is_empty()).collect();
    if !names.iter().any(|s| record::is_own(s)) {
        return Ok(Answer::Continue);
    }
    let mut out = Vec::new();
    for s in &names {
        let shown: Option<&[u8]> = match s.strip_prefix(record::OWN_PREFIX.as_bytes()) {
            Some(k) if record::KEPT_XATTRS.contains(&String::from_utf8_lossy(k).as_ref()) && !names.contains(&k) => Some(k),
            _ if record::is_own(s) => None,
            _ => Some(s),
        };
        if let Some(s) = shown {
            out.extend_from_slice(s);
            out.push(0);
        }
    }
    let to = Value { addr: n.arg(Role::XattrList, args).unwrap_or(0), size: n.arg(Role::XattrSize, args).unwrap_or(0) as usize, flags: 0 };
    give(caller, &to, &out)
}

/// `removexattr` family.
pub(crate) fn remove(caller: &Caller, n: &Notified, args: &[u64; 6], cx: &Cx) -> Result<Answer, Fail> {
    let Some(name) = kept_name_arg(caller, n, args, libc::ENODATA)? else { return Ok(Answer::Continue) };
    let t = Target::resolve(caller, n, args)?;
    let p = fd_path(&t.fd);
    let own = record::kept_name(&name);
    if get_xattr(&p, &own)?.is_none() {
        // A handler that died after removing it (its note says so) had succeeded.
        return Ok(if cx.replayed().is_some() { Answer::Value(0) } else { Answer::Continue });
    }
    if !cx.valid() {
        return Ok(Answer::Errno(libc::EINTR));
    }
    cx.note(1);
    remove_xattr(&p, &own)?;
    remove_xattr(&p, &name)?;
    Ok(Answer::Value(0))
}
