//! The user namespace: the caller's uid/gid mapped to 0, and why creating it failed.

use super::error::{LaunchError, UsernsCause};
use std::fs;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// unshare(CLONE_NEWUSER), deny setgroups, map `uid`/`gid` to 0.
pub(crate) fn create(uid: u32, gid: u32) -> Result<(), LaunchError> {
    // SAFETY: unshare with a flag constant; the caller is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        let e = errno();
        return Err(LaunchError::UserNamespace { errno: e, cause: diagnose(e, uid, gid) });
    }
    for (file, content) in [
        ("/proc/self/setgroups", "deny".to_string()),
        ("/proc/self/uid_map", format!("0 {uid} 1\n")),
        ("/proc/self/gid_map", format!("0 {gid} 1\n")),
    ] {
        fs::write(file, content).map_err(|e| LaunchError::IdMap { file, errno: e.raw_os_error().unwrap_or(0) })?;
    }
    Ok(())
}

fn sysctl(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Whether `id` lies in one of the `inside outside count` ranges of an id map.
fn mapped(map: &str, id: u32) -> bool {
    map.lines().any(|l| {
        let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(id))
    })
}

/// Why unshare(CLONE_NEWUSER) failed with `e`, from the sysctls and id maps that control it.
fn diagnose(e: i32, uid: u32, gid: u32) -> UsernsCause {
    if sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return UsernsCause::Disabled;
    }
    if uid != 0 && sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return UsernsCause::UnprivilegedDisabled;
    }
    if uid != 0 && sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return UsernsCause::AppArmor;
    }
    let maps = (sysctl("/proc/self/uid_map"), sysctl("/proc/self/gid_map"));
    if e == libc::EPERM {
        if let (Some(u), Some(g)) = maps {
            if !mapped(&u, uid) || !mapped(&g, gid) {
                return UsernsCause::Unmapped { uid, gid };
            }
        }
    }
    match e {
        libc::ENOSPC => UsernsCause::Limit(sysctl("/proc/sys/user/max_user_namespaces").and_then(|v| v.parse().ok())),
        libc::EPERM => UsernsCause::NotPermitted,
        libc::EINVAL => UsernsCause::Unsupported,
        libc::EUSERS => UsernsCause::TooDeep,
        _ => UsernsCause::Unavailable,
    }
}

/// Whether this process is root of the initial user namespace (uid 0 mapped to 0 over the
/// whole id range): inside `unshare -r` or a nested `rootemu run`, uid 0 is not real root.
pub(crate) fn is_real_root(uid: u32) -> bool {
    uid == 0 && sysctl("/proc/self/uid_map").is_some_and(|m| m.split_whitespace().eq(["0", "0", "4294967295"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_map_ranges() {
        let map = "         0       1000          1\n      1000     100000      65536\n";
        assert!(mapped(map, 0));
        assert!(!mapped(map, 1));
        assert!(mapped(map, 1000) && mapped(map, 66535) && !mapped(map, 66536));
        assert!(!mapped("", 0));
    }
}
