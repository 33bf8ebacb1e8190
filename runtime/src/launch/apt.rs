//! The apt configuration: apt keeps running as (emulated) root instead of dropping to its
//! `_apt` sandbox user, a setuid that emulation fakes and apt then verifies.
//!
//! It is supplied without touching the root directory: a file on the launcher's own
//! `/dev` tmpfs ([`APT_CONFIG_PATH`]), named by the `APT_CONFIG` environment variable of
//! the command. apt reads that file first, then `/etc/apt/apt.conf.d` and `apt.conf`, so
//! the root's own settings still apply. A caller's `APT_CONFIG` is included first. Every
//! run has its own file: concurrent runs on one root cannot disturb each other, and a
//! killed run leaves nothing behind.

use super::error::{LaunchError, MountStep};
use super::resolve::{is_dir, open_in_root, stat};
use std::ffi::CStr;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where the configuration file is inside the new root (on the launcher's `/dev` tmpfs).
pub const APT_CONFIG_PATH: &str = "/dev/.rootemu-apt.conf";
/// The setting the file holds.
pub const APT_SETTING: &str = "APT::Sandbox::User \"root\";";

/// The file's text: the caller's `APT_CONFIG` included (when apt's syntax can name it),
/// then the setting.
fn text(caller: Option<&[u8]>) -> Vec<u8> {
    let mut t = b"// Supplied by rootemu: setuid is emulated, so apt cannot drop to _apt.\n".to_vec();
    if let Some(c) = caller.filter(|c| !c.is_empty() && !c.iter().any(|b| matches!(b, b'"' | b'\n' | 0))) {
        t.extend_from_slice(b"#include \"");
        t.extend_from_slice(c);
        t.extend_from_slice(b"\";\n");
    }
    t.extend_from_slice(APT_SETTING.as_bytes());
    t.push(b'\n');
    t
}

/// Writes the configuration onto `dev` (the launcher's `/dev`) when the root has
/// `/etc/apt`; returns the `APT_CONFIG` value for the command.
pub(crate) fn supply(top: BorrowedFd<'_>, dev: Option<BorrowedFd<'_>>, dbg: bool) -> Result<Option<&'static CStr>, LaunchError> {
    if !open_in_root(top, Path::new("etc/apt"), None).is_ok_and(|fd| stat(fd.as_fd()).is_ok_and(|s| is_dir(&s))) {
        super::debug(dbg, "apt: no /etc/apt in the root, nothing to do");
        return Ok(None);
    }
    let Some(dev) = dev else {
        eprintln!("rootemu: note: the root has /etc/apt but no /dev to hold apt's configuration: apt may fail to drop to _apt");
        return Ok(None);
    };
    let name = &APT_CONFIG_PATH["/dev/".len()..];
    let err = |errno| LaunchError::Mount { step: MountStep::AptConfig, target: APT_CONFIG_PATH.into(), errno };
    let c = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: openat in our own tmpfs with a valid C string; the descriptor is owned by the File.
    let fd = unsafe { libc::openat(dev.as_raw_fd(), c.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC, 0o444) };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)));
    }
    let caller = std::env::var_os("APT_CONFIG");
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&text(caller.as_deref().map(|c| c.as_bytes()))).map_err(|e| err(e.raw_os_error().unwrap_or(0)))?;
    super::debug(dbg, &format!("apt: APT_CONFIG={APT_CONFIG_PATH} says {APT_SETTING}"));
    Ok(Some(c"/dev/.rootemu-apt.conf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_config_is_included_first() {
        let t = String::from_utf8(text(Some(b"/etc/my apt.conf"))).unwrap();
        assert!(t.ends_with("#include \"/etc/my apt.conf\";\nAPT::Sandbox::User \"root\";\n"), "{t}");
        // apt's syntax has no escapes: such a name is left out rather than broken.
        let t = String::from_utf8(text(Some(b"/etc/a\"b"))).unwrap();
        assert!(!t.contains("#include"), "{t}");
        assert_eq!(c"/dev/.rootemu-apt.conf".to_str().unwrap(), APT_CONFIG_PATH);
    }
}
