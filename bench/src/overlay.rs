//! The fuse-overlayfs mode of the workloads: `fuse-overlayfs -o xattr_permissions=2` mounted
//! over the destination in a user namespace with the user's subordinate ids, as rootless
//! podman uses it, and the check that its records carry the owners real root gives.

use super::workloads::{USER, Unpriv, have};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The xattr in which fuse-overlayfs 1.10 keeps `uid:gid:mode` (mode in octal, with the type bits).
const XATTR: &str = "user.fuseoverlayfs.override_stat";
/// The subordinate ids given to the user when /etc/subuid or /etc/subgid has none for it.
const SUBIDS: &str = "231072:65536";
/// Run by `sh -c` in the namespace (arguments LOWER UPPER WORK DEST CMD...): mounts, runs, unmounts.
const SCRIPT: &str = r#"d=$4; fuse-overlayfs -o "lowerdir=$1,upperdir=$2,workdir=$3,xattr_permissions=2" "$d" || exit; shift 4; "$@"; rc=$?; umount "$d"; exit $rc"#;
/// The file of the sample archive, relative to the destination.
pub(crate) const SAMPLE_FILE: &str = "s/f";
/// What real root gives [`SAMPLE_FILE`]: owner 5:6, a regular file of mode 0640.
pub(crate) const SAMPLE_RECORD: &str = "5:6:100640";

/// The overlay's directories, and what was changed on the machine for it.
pub(crate) struct Overlay {
    /// The parent of the lower, upper and work directories (made afresh for each run).
    dirs: PathBuf,
    /// The directory the overlay is mounted over (in the run's private mount namespace).
    dest: PathBuf,
    uid: u32,
    gid: u32,
    /// The ACL entries of /dev/fuse added here (`setfacl -x` removes them on drop): the user's,
    /// and the mask when the ACL had none.
    acl_added: Option<String>,
    /// What was changed on the machine, for the report's notes.
    pub(crate) changes: Vec<String>,
}

impl Overlay {
    /// Checks the tools and makes /dev/fuse and subordinate ids available to the user; the
    /// error says why the mode cannot run (the row shows it instead of a number).
    pub(crate) fn setup(u: &Unpriv, dest: &Path) -> Result<Overlay, String> {
        for (tool, package) in [("fuse-overlayfs", "fuse-overlayfs"), ("newuidmap", "uidmap"), ("newgidmap", "uidmap")] {
            if !have(tool) {
                return Err(format!("{tool} not installed ({package})"));
            }
        }
        let mut o = Overlay {
            dirs: u.work.join("overlay"),
            dest: dest.to_path_buf(),
            uid: u.uid,
            gid: u.gid,
            acl_added: None,
            changes: Vec::new(),
        };
        for f in ["/etc/subuid", "/etc/subgid"] {
            let mut text = fs::read_to_string(f).unwrap_or_default();
            if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("{USER}:{SUBIDS}\n"));
                fs::write(f, text).map_err(|e| format!("adding {USER}'s subordinate ids to {f}: {e}"))?;
                o.changes.push(format!("added `{USER}:{SUBIDS}` to {f} (left there, as the test suite does)"));
            }
        }
        if !can_open_fuse(u) {
            if !have("setfacl") {
                return Err(format!("{USER} cannot open /dev/fuse and setfacl is not installed (acl)"));
            }
            let acl = Command::new("getfacl").args(["-cp", "/dev/fuse"]).output().map_err(|e| format!("getfacl: {e}"))?;
            let had_mask = String::from_utf8_lossy(&acl.stdout).lines().any(|l| l.starts_with("mask:"));
            let st = Command::new("setfacl").args(["-m", &format!("u:{USER}:rw"), "/dev/fuse"]).stderr(Stdio::null()).status();
            if !st.is_ok_and(|s| s.success()) {
                return Err(format!("{USER} cannot open /dev/fuse and `setfacl -m u:{USER}:rw /dev/fuse` failed"));
            }
            o.acl_added = Some(if had_mask { format!("u:{USER}") } else { format!("u:{USER},m::") });
            if !can_open_fuse(u) {
                return Err(format!("{USER} cannot open /dev/fuse even with an ACL entry"));
            }
            o.changes.push(format!("granted {USER} rw on /dev/fuse by an ACL entry for the run (removed at the end)"));
        }
        Ok(o)
    }

    /// The words that run a command as root of a user namespace over the mounted overlay.
    pub(crate) fn prefix(&self) -> Vec<String> {
        let mut v: Vec<String> = ["unshare", "--map-auto", "-r", "-m", "sh", "-c", SCRIPT, "sh"].map(String::from).into();
        v.extend([self.dir("lower"), self.dir("upper"), self.dir("work"), self.dest.clone()].map(|p| p.to_string_lossy().into_owned()));
        v
    }

    /// Makes empty lower, upper and work directories owned by the user and its group.
    pub(crate) fn prepare(&self) -> Result<(), String> {
        let _ = fs::remove_dir_all(&self.dirs);
        for d in [self.dirs.clone(), self.dir("lower"), self.dir("upper"), self.dir("work")] {
            fs::create_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(&d, Some(self.uid), Some(self.gid)).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        Ok(())
    }

    /// Whether the upper directory's record of `rel` (relative to the destination) is `want`.
    pub(crate) fn check(&self, rel: &str, want: &str) -> Result<(), String> {
        let got = xattr(&self.dir("upper").join(rel), XATTR).ok_or_else(|| format!("{rel} has no {XATTR} record (real root: {want})"))?;
        if got == want { Ok(()) } else { Err(format!("{rel} is recorded as {got}, real root gives {want}")) }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.dirs.join(name)
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Some(entries) = &self.acl_added {
            let _ = Command::new("setfacl").args(["-x", entries, "/dev/fuse"]).status();
        }
    }
}

/// `uid:gid:mode` of a file as fuse-overlayfs records it.
pub(crate) fn record(m: &fs::Metadata) -> String {
    format!("{}:{}:{:o}", m.uid(), m.gid(), m.mode())
}

/// Builds `dir/sample.deb`, a package of one file [`SAMPLE_FILE`] with [`SAMPLE_RECORD`] (needs root).
pub(crate) fn sample_deb(dir: &Path) -> Result<PathBuf, String> {
    let tree = dir.join("sample");
    let _ = fs::remove_dir_all(&tree);
    let file = tree.join(SAMPLE_FILE);
    let parent = file.parent().expect("a file in a directory");
    fs::create_dir_all(tree.join("DEBIAN")).map_err(|e| e.to_string())?;
    fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    fs::write(
        tree.join("DEBIAN/control"),
        "Package: rootemu-bench-sample\nVersion: 1\nArchitecture: all\nMaintainer: rootemu <rootemu@localhost>\nDescription: one file owned 5:6\n",
    )
    .map_err(|e| e.to_string())?;
    fs::write(&file, "sample\n").map_err(|e| e.to_string())?;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).map_err(|e| e.to_string())?;
    for p in [parent, &file] {
        std::os::unix::fs::chown(p, Some(5), Some(6)).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let deb = dir.join("sample.deb");
    let st =
        Command::new("dpkg-deb").arg("-b").arg(&tree).arg(&deb).stdout(Stdio::null()).status().map_err(|e| format!("dpkg-deb: {e}"))?;
    let _ = fs::remove_dir_all(&tree);
    if !st.success() {
        return Err("dpkg-deb -b of the sample package failed".into());
    }
    Ok(deb)
}

/// Whether the user may open /dev/fuse for reading and writing.
fn can_open_fuse(u: &Unpriv) -> bool {
    let argv = ["sh", "-c", "test -r /dev/fuse && test -w /dev/fuse"].map(String::from);
    u.command(&argv, true).status().is_ok_and(|s| s.success())
}

/// The value of the extended attribute `name` of `path` (not following a symlink), if any.
fn xattr(path: &Path, name: &str) -> Option<String> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated; the buffer's length is passed.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let len = usize::try_from(len).ok()?;
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}
