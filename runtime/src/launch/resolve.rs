//! Paths inside the root directory, resolved as the kernel resolves them once that
//! directory is `/`: `..` stops at the root and a symlink's absolute target starts over at
//! the root (the semantics of `openat2(RESOLVE_IN_ROOT)`), so nothing resolves outside.
//!
//! The walk is done here, one component at a time with `O_PATH | O_NOFOLLOW` and a stack of
//! the directories walked through (so `..` never asks the kernel for a parent), because
//! `openat2` needs Linux 5.6 and clusters run older kernels. A test compares it with
//! `openat2` on a tree of hostile links.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Symlinks followed at most in one resolution (the kernel's limit).
const MAX_LINKS: usize = 40;

/// What to create when the path is missing, and where creating is allowed.
#[derive(Clone, Copy)]
pub(crate) struct Create<'a> {
    /// Create the last component as a directory (else as an empty file).
    pub(crate) dir: bool,
    /// Only in directories on these filesystems (`st_dev`): tmpfs mounts the launcher made.
    pub(crate) on: &'a [libc::dev_t],
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn c_name(name: &[u8]) -> Result<CString, i32> {
    CString::new(name).map_err(|_| libc::EINVAL)
}

/// `fstat` of a descriptor.
pub(crate) fn stat(fd: BorrowedFd<'_>) -> Result<libc::stat, i32> {
    // SAFETY: fstat into local storage.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(errno());
    }
    Ok(st)
}

/// Whether `st` is a directory.
pub(crate) fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// `openat(dir, name, O_PATH | O_NOFOLLOW)`.
pub(crate) fn open_path(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, i32> {
    let c = c_name(name)?;
    // SAFETY: openat with a valid C string; the result is owned here.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 { Err(errno()) } else { Ok(unsafe { OwnedFd::from_raw_fd(fd) }) }
}

fn read_link(fd: BorrowedFd<'_>) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    let empty = c"";
    // SAFETY: readlinkat on an O_PATH descriptor of the link itself (empty path) into buf.
    let n = unsafe { libc::readlinkat(fd.as_raw_fd(), empty.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn create(dir: BorrowedFd<'_>, name: &[u8], as_dir: bool) -> Result<(), i32> {
    let c = c_name(name)?;
    // SAFETY: mkdirat/openat with a valid C string; the file descriptor is closed at once.
    let rc = unsafe {
        if as_dir {
            libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755)
        } else {
            let fd = libc::openat(dir.as_raw_fd(), c.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
            if fd >= 0 { libc::close(fd) } else { fd }
        }
    };
    if rc != 0 && errno() != libc::EEXIST { Err(errno()) } else { Ok(()) }
}

/// Opens `path` (`O_PATH`) inside `root` as the kernel would with `root` as `/`, following
/// symlinks, the last one too (as `mount(2)` does). With `create`, missing components are
/// made (directories, and the last as `create.dir` says) where `create.on` allows. Errors
/// are errnos: ENOENT, ENOTDIR, ELOOP, EACCES...
pub(crate) fn open_in_root(root: BorrowedFd<'_>, path: &Path, create_missing: Option<Create<'_>>) -> Result<OwnedFd, i32> {
    let mut todo: Vec<Vec<u8>> = Vec::new();
    push_components(&mut todo, path.as_os_str().as_bytes());
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == b".." {
            stack.pop();
            continue;
        }
        let dir = stack.last().map_or(root, |d| d.as_fd());
        let fd = match open_path(dir, &name) {
            Ok(fd) => fd,
            Err(libc::ENOENT) => match create_missing {
                Some(c) if c.on.contains(&stat(dir)?.st_dev) => {
                    create(dir, &name, c.dir || !todo.is_empty())?;
                    open_path(dir, &name)?
                }
                _ => return Err(libc::ENOENT),
            },
            Err(e) => return Err(e),
        };
        if stat(fd.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFLNK {
            links += 1;
            if links > MAX_LINKS {
                return Err(libc::ELOOP);
            }
            let target = read_link(fd.as_fd())?;
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            push_components(&mut todo, &target);
            continue;
        }
        stack.push(fd);
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => root.try_clone_to_owned().map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF)),
    }
}

/// Pushes the components of `path` so that the first is popped first (`.` and empty ones
/// dropped).
fn push_components(todo: &mut Vec<Vec<u8>>, path: &[u8]) {
    todo.extend(path.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").rev().map(<[u8]>::to_vec));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn openat2_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, i32> {
        // struct open_how of linux/openat2.h.
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let how = OpenHow { flags: (libc::O_PATH | libc::O_CLOEXEC) as u64, mode: 0, resolve: libc::RESOLVE_IN_ROOT };
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: openat2 with a valid C string and open_how of the size passed.
        let fd = unsafe { libc::syscall(libc::SYS_openat2, root.as_raw_fd(), c.as_ptr(), &how, std::mem::size_of::<OpenHow>()) };
        if fd < 0 { Err(errno()) } else { Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }) }
    }

    fn id(r: Result<OwnedFd, i32>) -> Result<(u64, u64), i32> {
        r.map(|fd| {
            let st = stat(fd.as_fd()).unwrap();
            (st.st_dev, st.st_ino)
        })
    }

    /// The walk agrees with the kernel's RESOLVE_IN_ROOT on links that try to leave the root.
    #[test]
    fn agrees_with_openat2_resolve_in_root() {
        let base = std::env::temp_dir().join(format!("rootemu-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (root, outside) = (base.join("root"), base.join("outside"));
        for d in ["etc/apt", "opt", "usr/lib", "escaped", "tmp"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::create_dir_all(outside.join("sub")).unwrap();
        fs::write(root.join("etc/resolv.conf"), "").unwrap();
        symlink(&outside, root.join("opt/abs-out")).unwrap(); // absolute: means <root>/<outside> inside
        symlink("../../../../../..", root.join("opt/up")).unwrap();
        symlink("/etc", root.join("opt/etc-abs")).unwrap();
        symlink("../usr/lib", root.join("opt/rel")).unwrap();
        symlink("loop2", root.join("opt/loop1")).unwrap();
        symlink("loop1", root.join("opt/loop2")).unwrap();
        symlink("resolv.conf/x", root.join("etc/through-file")).unwrap();
        let rootfd = fs::File::open(&root).unwrap();
        let r = rootfd.as_fd();
        let cases = [
            "/",
            "etc",
            "/etc/apt",
            "../../etc",
            "/../escaped",
            "etc/../../../escaped",
            "opt/abs-out",
            "opt/abs-out/sub",
            "opt/up",
            "opt/up/etc",
            "opt/up/../escaped",
            "opt/etc-abs/resolv.conf",
            "opt/rel",
            "opt/rel/..",
            "opt/loop1",
            "etc/through-file",
            "etc/resolv.conf/x",
            "missing",
            "etc/missing/x",
            "tmp/./../etc//apt/",
        ];
        for c in cases {
            let p = Path::new(c);
            assert_eq!(id(open_in_root(r, p, None)), id(openat2_in_root(r, p)), "{c:?}");
        }
        // What escapes by the host's rules stays inside.
        assert_eq!(
            id(open_in_root(r, Path::new("opt/up/escaped"), None)),
            id(fs::File::open(root.join("escaped")).map(OwnedFd::from).map_err(|_| 0))
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn creates_only_where_allowed() {
        let base = std::env::temp_dir().join(format!("rootemu-resolve-create-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("d")).unwrap();
        let rootfd = fs::File::open(&base).unwrap();
        let dev = stat(rootfd.as_fd()).unwrap().st_dev;
        let nowhere = Create { dir: true, on: &[] };
        assert_eq!(open_in_root(rootfd.as_fd(), Path::new("d/a/b"), Some(nowhere)).err(), Some(libc::ENOENT));
        assert!(!base.join("d/a").exists());
        let here = Create { dir: false, on: &[dev] };
        let fd = open_in_root(rootfd.as_fd(), Path::new("/d/a/f"), Some(here)).unwrap();
        assert!(!is_dir(&stat(fd.as_fd()).unwrap()) && base.join("d/a").is_dir() && base.join("d/a/f").is_file());
        fs::remove_dir_all(&base).unwrap();
    }
}
