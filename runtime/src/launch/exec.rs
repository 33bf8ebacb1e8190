//! The last steps of the command's process: the caller's signal state, open-file limit
//! and closed descriptors back, `APT_CONFIG`, the filter installed LAST and self-tested, `execvp`.

use super::error::{LaunchError, ProcessStep};
use super::inherited;
use super::signals::Inherited;
use crate::Filter;
use crate::install::{self, InstallOptions};
use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// What the command's process needs.
pub(crate) struct Command<'a> {
    /// The command and its arguments.
    pub(crate) argv: Vec<CString>,
    /// The command name as given.
    pub(crate) name: &'a OsStr,
    /// The filter to install, `None` without emulation.
    pub(crate) filter: Option<&'a Filter>,
    /// The caller's signal state.
    pub(crate) signals: Inherited,
    /// `APT_CONFIG` for the command.
    pub(crate) apt_config: Option<&'static CStr>,
    /// The caller's open-file limit, when the launcher raised it (for many bind sources).
    pub(crate) nofile: Option<libc::rlimit>,
    /// Print what is done on stderr.
    pub(crate) debug: bool,
    /// Consistent mode: the sockets the filter's listener is handed to the supervisor
    /// through (its keeper's, then its first handler's).
    pub(crate) listener_to: Option<[std::os::fd::RawFd; 2]>,
}

/// Becomes the command. Returns only when it could not: the command did not run.
pub(crate) fn exec(cmd: &Command<'_>) -> LaunchError {
    cmd.signals.restore();
    if let Some(lim) = &cmd.nofile {
        // SAFETY: setrlimit with a limit obtained from getrlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) };
    }
    if let Some(value) = cmd.apt_config {
        // SAFETY: this process is single-threaded (the launcher's precondition: a
        // multi-threaded process cannot create a user namespace).
        unsafe { std::env::set_var("APT_CONFIG", OsStr::from_bytes(value.to_bytes())) };
    }
    match (cmd.filter, cmd.listener_to) {
        (Some(filter), Some(sockets)) => {
            let listener = match install::install_with_listener(filter.program) {
                Ok(l) => l,
                Err(e) => return LaunchError::Install(e),
            };
            for socket in sockets {
                if let Err(e) = crate::supervisor::spawn::send_fd(socket, listener.as_raw_fd()) {
                    return LaunchError::Process { step: ProcessStep::HandOver, errno: e.raw_os_error().unwrap_or(libc::EIO) };
                }
            }
            drop(listener);
            if let Err(e) = install::self_test(filter) {
                return LaunchError::Install(e);
            }
        }
        (Some(filter), None) => {
            if let Err(e) = install::install(filter.program, InstallOptions { tsync: false }).and_then(|()| install::self_test(filter)) {
                return LaunchError::Install(e);
            }
        }
        (None, _) => super::debug(cmd.debug, "no emulation: no filter installed"),
    }
    inherited::close_inherited_closed_stdio();
    let mut ptrs: Vec<*const libc::c_char> = cmd.argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: NUL-terminated argv of valid C strings.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let name = cmd.name;
    // execvp reports EACCES when some PATH entry is unreadable even if the name is nowhere.
    let nowhere = e == libc::EACCES && !name.as_bytes().contains(&b'/') && !on_path(name);
    match e {
        libc::ENOENT | libc::ENOTDIR => LaunchError::NotFound { command: name.to_owned() },
        _ if nowhere => LaunchError::NotFound { command: name.to_owned() },
        _ => LaunchError::CannotExec { command: name.to_owned(), errno: e },
    }
}

/// Whether `name` exists in some PATH directory (as execvp searches it).
fn on_path(name: &OsStr) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/bin:/usr/bin".into());
    std::env::split_paths(&path).any(|d| fs::symlink_metadata(d.join(name)).is_ok())
}
