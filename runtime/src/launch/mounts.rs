//! The private mount namespace and the new root.
//!
//! Nothing is ever created, changed or removed in the root directory: the launcher only
//! mounts over entries it already has. Every path inside it is resolved as the kernel will
//! resolve it once it is `/` ([`resolve`](super::resolve)), and the mount is made on the
//! resolved descriptor (`/proc/self/fd/N`), so no symlink or `..` leads outside.
//!
//! - `/dev`, `/proc`, `/sys`, `/tmp`: mounted where the root has a directory of that name;
//!   a missing one is skipped with a note.
//! - `/dev` is a fresh tmpfs holding binds of the host's null, zero, full, random,
//!   urandom, tty and ptmx, the host's `/dev/pts` (so a terminal on standard input keeps its
//!   name, as under `unshare -r`), a tmpfs `shm` and the fd/stdin/stdout/stderr links.
//! - `/etc/resolv.conf`: the host's, read-only, where the root has a file there.
//! - apt: the configuration file is written onto that fresh `/dev`; the command finds it
//!   through `APT_CONFIG` ([`apt`](super::apt)).
//! - `--bind` destinations must exist (inside the root, or on the host without one), except
//!   on the tmpfs mounts above (`/dev`, `/tmp`), where missing mount points are created.

use super::LaunchOptions;
use super::apt;
use super::error::{DestinationProblem, LaunchError, MountStep, Namespace, RootProblem};
use super::resolve::{Create, is_dir, open_in_root, stat};
use std::ffi::{CStr, CString};
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn cstr(p: &Path) -> Result<CString, LaunchError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| LaunchError::NulByte(p.as_os_str().to_owned()))
}

/// `/proc/self/fd/N`: `mount(2)` follows it to the descriptor's own mount and dentry.
fn fd_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

fn mount_raw(src: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: libc::c_ulong, data: Option<&CStr>) -> Result<(), i32> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: valid C strings or NULL.
    let rc = unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) };
    if rc != 0 { Err(errno()) } else { Ok(()) }
}

/// A directory that becomes the new root: as given (for messages) and opened on the host.
pub(crate) struct RootDir {
    path: PathBuf,
    canonical: PathBuf,
    fd: OwnedFd,
}

impl RootDir {
    /// Opens `path` as the invoking user (so an unreadable root fails here).
    pub(crate) fn open(path: &Path) -> Result<RootDir, LaunchError> {
        let err = |problem| LaunchError::Root { path: path.to_path_buf(), problem };
        let meta = fs::metadata(path).map_err(|e| err(RootProblem::Open(e.raw_os_error().unwrap_or(0))))?;
        if !meta.is_dir() {
            return Err(err(RootProblem::NotADirectory));
        }
        let canonical = fs::canonicalize(path).map_err(|e| err(RootProblem::Open(e.raw_os_error().unwrap_or(0))))?;
        let fd = open_dir(&cstr(&canonical)?).map_err(|e| err(RootProblem::Open(e)))?;
        Ok(RootDir { path: path.to_path_buf(), canonical, fd })
    }
}

fn open_dir(path: &CStr) -> Result<OwnedFd, i32> {
    // SAFETY: open with a valid C string; the result is owned here.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 { Err(errno()) } else { Ok(unsafe { OwnedFd::from_raw_fd(fd) }) }
}

/// The mount a descriptor is on (`mnt_id` of /proc/self/fdinfo).
fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines().find_map(|l| l.strip_prefix("mnt_id:")).and_then(|v| v.trim().parse().ok())
}

/// Creates the mount namespace and stops mount events from propagating to the host.
pub(crate) fn private_namespace() -> Result<(), LaunchError> {
    // SAFETY: unshare with a flag constant.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(LaunchError::Namespace { kind: Namespace::Mount, errno: errno() });
    }
    mount_raw(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None).map_err(|errno| LaunchError::Mount {
        step: MountStep::Private,
        target: "/".into(),
        errno,
    })
}

/// Without a root: binds each source on its host destination, which must exist. Returns
/// the caller's open-file limit when it had to be raised for the sources.
pub(crate) fn bind_on_host(opts: &LaunchOptions) -> Result<Option<libc::rlimit>, LaunchError> {
    let (sources, nofile) = open_user_sources(opts)?;
    let slash = open_dir(c"/").map_err(|errno| LaunchError::Mount { step: MountStep::Private, target: "/".into(), errno })?;
    for (i, (_, dst)) in opts.binds.iter().enumerate() {
        bind_user(slash.as_fd(), sources.of(i), dst, &[], false, opts.debug)?;
    }
    Ok(nofile)
}

/// A host path to bind, opened (`O_PATH`, following symlinks as `mount(2)` does) before
/// anything is mounted in the new root, so that nothing mounted there changes what it names.
struct Source {
    path: PathBuf,
    fd: OwnedFd,
    is_dir: bool,
}

impl Source {
    fn open(path: &Path) -> Result<Source, i32> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
        // SAFETY: open with a valid C string; the result is owned here.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(errno());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let is_dir = is_dir(&stat(fd.as_fd())?);
        Ok(Source { path: path.to_path_buf(), fd, is_dir })
    }

    /// One of the host's own paths (`/dev/null`...); `target` names it in errors.
    fn host(path: &str, target: &str) -> Result<Source, LaunchError> {
        Source::open(Path::new(path)).map_err(|errno| LaunchError::Mount {
            step: MountStep::Bind(path.into()),
            target: target.into(),
            errno,
        })
    }

    fn bind(&self, at: BorrowedFd<'_>, recursive: bool, target: &Path) -> Result<(), LaunchError> {
        let flags = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
        mount_raw(Some(&fd_path(self.fd.as_fd())), &fd_path(at), None, flags, None).map_err(|errno| LaunchError::Mount {
            step: MountStep::Bind(self.path.clone()),
            target: target.to_path_buf(),
            errno,
        })
    }
}

/// The `--bind` sources, each distinct path opened once; `of(i)` is the source of bind `i`.
struct UserSources {
    opened: Vec<Source>,
    index: Vec<usize>,
}

impl UserSources {
    fn of(&self, bind: usize) -> &Source {
        &self.opened[self.index[bind]]
    }
}

/// Opens the `--bind` sources, raising the soft open-file limit when there are many; the
/// caller's limit when it was raised.
fn open_user_sources(opts: &LaunchOptions) -> Result<(UserSources, Option<libc::rlimit>), LaunchError> {
    let mut seen = std::collections::HashMap::new();
    let index: Vec<usize> = opts
        .binds
        .iter()
        .map(|(src, _)| {
            let n = seen.len();
            *seen.entry(src.as_path()).or_insert(n)
        })
        .collect();
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    let needed = seen.len() as libc::rlim_t + 64;
    let mut raised = None;
    // SAFETY: getrlimit/setrlimit with local storage.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < needed {
        let more = libc::rlimit { rlim_cur: needed.min(lim.rlim_max), rlim_max: lim.rlim_max };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &more) } == 0 {
            raised = Some(lim);
        }
    }
    let mut paths: Vec<(&Path, usize)> = seen.into_iter().collect();
    paths.sort_unstable_by_key(|(_, i)| *i);
    let opened = paths
        .into_iter()
        .map(|(src, _)| Source::open(src).map_err(|errno| LaunchError::BindSource { source: src.to_path_buf(), errno }))
        .collect::<Result<_, _>>()?;
    Ok((UserSources { opened, index }, raised))
}

/// The host's own sources, opened before anything is mounted (with `--root /` the fresh
/// `/dev` covers the host's).
struct HostSources {
    devices: Vec<(&'static str, Source)>,
    pts: Source,
    sys: Source,
    resolv: Option<Source>,
}

impl HostSources {
    fn open() -> Result<HostSources, LaunchError> {
        let devices = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"]
            .into_iter()
            .map(|n| {
                let p = format!("/dev/{n}");
                Source::host(&p, &p).map(|s| (n, s))
            })
            .collect::<Result<_, _>>()?;
        let resolv = Source::open(Path::new("/etc/resolv.conf")).ok().filter(|s| !s.is_dir);
        Ok(HostSources { devices, pts: Source::host("/dev/pts", "/dev/pts")?, sys: Source::host("/sys", "/sys")?, resolv })
    }
}

/// The new root, built by the supervisor; init finishes it ([`NewRoot::enter`]).
pub(crate) struct NewRoot {
    /// The root's mount.
    top: OwnedFd,
    /// The root's `/proc` directory, where init mounts its PID namespace's proc.
    proc: Option<OwnedFd>,
    /// `APT_CONFIG` for the command, when the apt configuration was supplied.
    pub(crate) apt_config: Option<&'static CStr>,
    /// The caller's open-file limit, when it was raised for many `--bind` sources.
    pub(crate) nofile: Option<libc::rlimit>,
    debug: bool,
}

impl NewRoot {
    /// In init (the PID namespace's pid 1): mounts proc, then enters the root. Proc is
    /// mounted before leaving the host's tree: the kernel mounts a proc only where one is
    /// already fully visible.
    pub(crate) fn enter(&self) -> Result<(), LaunchError> {
        if let Some(proc) = &self.proc {
            mount_raw(Some(c"proc"), &fd_path(proc.as_fd()), Some(c"proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)
                .map_err(|errno| LaunchError::Mount { step: MountStep::Proc, target: "/proc".into(), errno })?;
        }
        enter(self.top.as_fd(), self.debug)
    }
}

/// Builds the new root in the (already private) mount namespace.
pub(crate) fn build_root(root: &RootDir, opts: &LaunchOptions) -> Result<NewRoot, LaunchError> {
    let dbg = opts.debug;
    let root_mount = bind_root(root)?;
    let top = root_mount.as_fd();
    let host = HostSources::open()?;
    let (sources, nofile) = open_user_sources(opts)?;
    let mut missing = Vec::new();
    let mut ours = Vec::new(); // st_dev of our tmpfs mounts: mount points may be created there
    let dir = |name: &'static str, missing: &mut Vec<&str>| {
        let fd = open_in_root(top, Path::new(name), None).ok().filter(|fd| stat(fd.as_fd()).is_ok_and(|s| is_dir(&s)));
        if fd.is_none() {
            missing.push(name);
        }
        fd
    };

    let dev = match dir("dev", &mut missing) {
        Some(fd) => {
            let dev = tmpfs(top, fd.as_fd(), "/dev", libc::MS_NOSUID | libc::MS_NOEXEC, c"mode=0755,size=64k", &mut ours)?;
            populate_dev(dev.as_fd(), &host, &ours)?;
            Some(dev)
        }
        None => None,
    };
    let proc = dir("proc", &mut missing);
    if let Some(fd) = dir("sys", &mut missing) {
        host.sys.bind(fd.as_fd(), true, Path::new("/sys"))?;
        make_readonly(reopen(top, "/sys")?.as_fd(), true, "/sys")?;
    }
    if let Some(fd) = dir("tmp", &mut missing) {
        tmpfs(top, fd.as_fd(), "/tmp", libc::MS_NOSUID | libc::MS_NODEV, c"mode=1777", &mut ours)?;
    }
    resolv_conf(top, host.resolv.as_ref(), &mut missing, dbg)?;
    let apt_config = if opts.apt_hook { apt::supply(top, dev.as_ref().map(|d| d.as_fd()), dbg)? } else { None };
    for (i, (_, dst)) in opts.binds.iter().enumerate() {
        bind_user(top, sources.of(i), dst, &ours, true, dbg)?;
    }
    if !missing.is_empty() {
        eprintln!(
            "rootemu: note: {} has no {}: not mounted (nothing is created in the root directory: create them to get them)",
            super::quoted(&root.path),
            missing.join(", ")
        );
    }
    Ok(NewRoot { top: root_mount, proc, apt_config, nofile, debug: dbg })
}

/// Binds the root onto itself (pivot_root needs a mount point) and returns that mount.
/// Inside the new mount namespace the root is looked up again (a bind source must be a
/// mount of this namespace) and must still be the directory opened before. `/` stays as
/// it is (its own mount; entering it falls back to chroot).
fn bind_root(root: &RootDir) -> Result<OwnedFd, LaunchError> {
    let moved = || LaunchError::Root { path: root.path.clone(), problem: RootProblem::Moved };
    if root.canonical == Path::new("/") {
        return open_dir(c"/").map_err(|_| moved());
    }
    let path = cstr(&root.canonical)?;
    let id = |fd: &OwnedFd| stat(fd.as_fd()).map(|s| (s.st_dev, s.st_ino)).map_err(|_| moved());
    let inner = open_dir(&path).map_err(|_| moved())?;
    if id(&inner)? != id(&root.fd)? {
        return Err(moved());
    }
    let p = fd_path(inner.as_fd());
    mount_raw(Some(&p), &p, None, libc::MS_BIND | libc::MS_REC, None).map_err(|errno| LaunchError::Mount {
        step: MountStep::BindRoot,
        target: root.path.clone(),
        errno,
    })?;
    // A descriptor keeps pointing below the new mount; a fresh lookup lands on top of it.
    let top = open_dir(&path).map_err(|_| moved())?;
    if id(&top)? != id(&inner)? || mount_id(inner.as_fd()) == mount_id(top.as_fd()) {
        return Err(moved());
    }
    Ok(top)
}

/// The mount now on `path` inside the new root (a descriptor opened before mounting keeps
/// pointing below it).
fn reopen(top: BorrowedFd<'_>, path: &str) -> Result<OwnedFd, LaunchError> {
    open_in_root(top, Path::new(path), None).map_err(|errno| LaunchError::Mount { step: MountStep::MountPoint, target: path.into(), errno })
}

/// Mounts a tmpfs on `at` (`path` inside the root) and returns it; its `st_dev` joins
/// `ours`, where mount points may be created.
fn tmpfs(
    top: BorrowedFd<'_>,
    at: BorrowedFd<'_>,
    path: &str,
    flags: libc::c_ulong,
    data: &CStr,
    ours: &mut Vec<libc::dev_t>,
) -> Result<OwnedFd, LaunchError> {
    let err = |errno| LaunchError::Mount { step: MountStep::Tmpfs, target: path.into(), errno };
    mount_raw(Some(c"tmpfs"), &fd_path(at), Some(c"tmpfs"), flags, Some(data)).map_err(err)?;
    let fd = reopen(top, path)?;
    ours.push(stat(fd.as_fd()).map_err(err)?.st_dev);
    Ok(fd)
}

/// The fresh `/dev`: device binds, the host's pts, shm, and the fd links.
fn populate_dev(dev: BorrowedFd<'_>, host: &HostSources, ours: &[libc::dev_t]) -> Result<(), LaunchError> {
    let point = |name: &str, dir: bool| {
        open_in_root(dev, Path::new(name), Some(Create { dir, on: ours })).map_err(|errno| LaunchError::Mount {
            step: MountStep::MountPoint,
            target: Path::new("/dev").join(name),
            errno,
        })
    };
    for (name, src) in &host.devices {
        src.bind(point(name, false)?.as_fd(), false, &Path::new("/dev").join(name))?;
    }
    host.pts.bind(point("pts", true)?.as_fd(), true, Path::new("/dev/pts"))?;
    let shm = point("shm", true)?;
    mount_raw(Some(c"tmpfs"), &fd_path(shm.as_fd()), Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some(c"mode=1777"))
        .map_err(|errno| LaunchError::Mount { step: MountStep::Tmpfs, target: "/dev/shm".into(), errno })?;
    for (link, to) in
        [(c"fd", c"/proc/self/fd"), (c"stdin", c"/proc/self/fd/0"), (c"stdout", c"/proc/self/fd/1"), (c"stderr", c"/proc/self/fd/2")]
    {
        // SAFETY: symlinkat with valid C strings, in our own tmpfs.
        if unsafe { libc::symlinkat(to.as_ptr(), dev.as_raw_fd(), link.as_ptr()) } != 0 {
            let target = Path::new("/dev").join(link.to_string_lossy().as_ref());
            return Err(LaunchError::Mount { step: MountStep::MountPoint, target, errno: errno() });
        }
    }
    Ok(())
}

/// The host's resolv.conf on the root's `/etc/resolv.conf`, read-only, when both exist.
fn resolv_conf(top: BorrowedFd<'_>, host: Option<&Source>, missing: &mut Vec<&str>, dbg: bool) -> Result<(), LaunchError> {
    let (Some(host), Ok(_)) = (host, open_in_root(top, Path::new("etc"), None)) else {
        super::debug(dbg, "resolv.conf: no host file or no /etc in the root: skipped");
        return Ok(());
    };
    match open_in_root(top, Path::new("etc/resolv.conf"), None) {
        Ok(fd) if stat(fd.as_fd()).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFREG) => {
            host.bind(fd.as_fd(), false, Path::new("/etc/resolv.conf"))?;
            make_readonly(reopen(top, "/etc/resolv.conf")?.as_fd(), false, "/etc/resolv.conf")
        }
        _ => {
            missing.push("etc/resolv.conf");
            Ok(())
        }
    }
}

/// One `--bind`: the destination resolved inside `top` (the root, or `/`); created only on
/// the launcher's own tmpfs mounts (`ours`).
fn bind_user(top: BorrowedFd<'_>, src: &Source, dst: &Path, ours: &[libc::dev_t], in_root: bool, dbg: bool) -> Result<(), LaunchError> {
    let problem = |problem| LaunchError::BindDestination { source: src.path.clone(), destination: dst.to_path_buf(), in_root, problem };
    let fd = open_in_root(top, dst, Some(Create { dir: src.is_dir, on: ours }))
        .map_err(|e| problem(if e == libc::ENOENT { DestinationProblem::Missing } else { DestinationProblem::Resolve(e) }))?;
    let st = stat(fd.as_fd()).map_err(|e| problem(DestinationProblem::Resolve(e)))?;
    if is_dir(&st) != src.is_dir {
        return Err(problem(DestinationProblem::KindMismatch { source_is_dir: src.is_dir }));
    }
    src.bind(fd.as_fd(), true, dst)?;
    super::debug(dbg, &format!("bound {} on {}", super::quoted(&src.path), super::quoted(dst)));
    Ok(())
}

/// Makes the mount `fd` is on read-only, recursively when the kernel can.
fn make_readonly(fd: BorrowedFd<'_>, recursive: bool, target: &str) -> Result<(), LaunchError> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr on a descriptor with an attr struct of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Before Linux 5.12: remount the top mount only, keeping its locked flags.
    let err = |errno| LaunchError::Mount { step: MountStep::ReadOnly, target: target.into(), errno };
    let path = fd_path(fd);
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs into local storage.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(err(errno()));
    }
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms;
        }
    }
    mount_raw(None, &path, None, flags, None).map_err(err)
}

/// pivot_root into `top` (chroot if that fails) and detach the host's tree.
fn enter(top: BorrowedFd<'_>, dbg: bool) -> Result<(), LaunchError> {
    let fail = || LaunchError::EnterRoot { errno: errno() };
    // SAFETY: path syscalls with valid C strings and our own descriptor.
    unsafe {
        if libc::fchdir(top.as_raw_fd()) != 0 {
            return Err(fail());
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) == 0 {
            // The old root is now stacked on "."; detach it.
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(fail());
            }
        } else {
            super::debug(dbg, &format!("pivot_root failed ({}): using chroot", crate::install::errno_text(errno())));
            if libc::chroot(c".".as_ptr()) != 0 {
                return Err(fail());
            }
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(fail());
        }
    }
    Ok(())
}
