//! A tree built under consistent mode as an image holds it: every entry with the owner,
//! mode, type and device number its record gives (see [`crate::record`]), its ACLs and
//! file capability as real root's build would have stored them, and hard links found.
//! `rootemu export` writes these entries as a tar layer or an OCI image.
//!
//! Ids: a record holds ids as the build's namespace saw them. A file without a record is
//! owned by its real owner, where the *building user* (the host ids that were root in the
//! build: by default the owner of the tree's top directory) becomes 0. The same mapping
//! applies to the ids inside ACLs the kernel stored, and a file capability the kernel
//! stored as v3 with the building user as rootid becomes the v2 capability a real root
//! writes. ACLs and capabilities the build could not store (kept by consistent mode)
//! are given as the build wrote them. rootemu's own xattrs are never given.

use crate::record::{self, Birth, Kind, Record};
use crate::store;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The host ids that were root (0) in the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builder {
    /// Host uid that the build's namespace saw as 0.
    pub uid: u32,
    /// Host gid that the build's namespace saw as 0.
    pub gid: u32,
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of `size` bytes (read from [`Entry::source`]).
    File {
        /// Its length.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link to the target.
    Symlink(Vec<u8>),
    /// A hard link to an earlier entry (its archive path).
    Hardlink(Vec<u8>),
    /// A FIFO.
    Fifo,
    /// A character device (major, minor).
    Char(u32, u32),
    /// A block device (major, minor).
    Block(u32, u32),
}

/// Extended attributes: (name, value) pairs.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// One file of the tree as the image holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path in the archive, relative (`etc/passwd`); `./` for the top directory.
    pub path: Vec<u8>,
    /// Type (with size, target or device number).
    pub kind: EntryKind,
    /// Permission bits (`07777`).
    pub perms: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
    /// Extended attributes, sorted by name: names and values as real root's build has them.
    pub xattrs: Xattrs,
    /// The file on disk.
    pub source: PathBuf,
}

/// Why a tree cannot be read.
#[derive(Debug)]
pub struct ImageError {
    /// The path that failed.
    pub path: PathBuf,
    /// What was being done.
    pub what: &'static str,
    /// The error.
    pub error: io::Error,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot {}: {}", self.path.display(), self.what, self.error)
    }
}

impl std::error::Error for ImageError {}

/// What a walk left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Sockets (an archive cannot hold them), by path.
    pub sockets: Vec<PathBuf>,
}

/// The building user of a tree: the real owner of its top directory.
pub fn builder_of(root: &Path) -> Result<Builder, ImageError> {
    let m = std::fs::symlink_metadata(root).map_err(|error| ImageError { path: root.into(), what: "read the tree", error })?;
    if !m.is_dir() {
        return Err(ImageError { path: root.into(), what: "export it", error: io::Error::from_raw_os_error(libc::ENOTDIR) });
    }
    Ok(Builder { uid: m.uid(), gid: m.gid() })
}

/// Walks the tree at `root` depth first in byte order of names (a directory before its
/// contents), calling `each` with every entry; `skip` names files (device, inode) to leave
/// out (e.g. the archive being written); `records` are a record store's (see
/// [`crate::store`]; empty without one). Stops at the first error `each` returns.
pub fn walk<E: From<ImageError>>(
    root: &Path,
    builder: Builder,
    skip: &[(u64, u64)],
    records: &store::Entries,
    each: &mut dyn FnMut(Entry) -> Result<(), E>,
) -> Result<Skipped, E> {
    let mut w = Walk { builder, skip, records, links: std::collections::HashMap::new(), skipped: Skipped::default() };
    let m = std::fs::symlink_metadata(root).map_err(|error| ImageError { path: root.into(), what: "read the tree", error })?;
    w.visit(root, b"./".to_vec(), &m, None, each)?;
    Ok(w.skipped)
}

struct Walk<'a> {
    builder: Builder,
    skip: &'a [(u64, u64)],
    records: &'a store::Entries,
    /// First archive path of each multiply-linked inode.
    links: std::collections::HashMap<(u64, u64), Vec<u8>>,
    skipped: Skipped,
}

fn err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |error| ImageError { path: path.into(), what, error }
}

impl Walk<'_> {
    fn visit<E: From<ImageError>>(
        &mut self,
        path: &Path,
        name: Vec<u8>,
        m: &std::fs::Metadata,
        parent: Option<&Path>,
        each: &mut dyn FnMut(Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let ft = m.file_type();
        if ft.is_socket() {
            self.skipped.sockets.push(path.into());
            return Ok(());
        }
        let real = Kind::of_mode(m.mode(), major(m.rdev()), minor(m.rdev())).unwrap_or(Kind::File);
        let rec = self.record(path, m, real, parent)?;
        let kind = match (rec.map(|r| r.kind), real) {
            (Some(Kind::Char(a, b)), Kind::File) => EntryKind::Char(a, b),
            (Some(Kind::Block(a, b)), Kind::File) => EntryKind::Block(a, b),
            (_, Kind::File) => EntryKind::File { size: m.len() },
            (_, Kind::Dir) => EntryKind::Dir,
            (_, Kind::Symlink) => {
                EntryKind::Symlink(std::fs::read_link(path).map_err(err(path, "read the link"))?.into_os_string().into_vec())
            }
            (_, Kind::Pipe | Kind::Socket) => EntryKind::Fifo,
            (_, Kind::Char(a, b)) => EntryKind::Char(a, b),
            (_, Kind::Block(a, b)) => EntryKind::Block(a, b),
        };
        let map_uid = |id: u32| if id == self.builder.uid { 0 } else { id };
        let map_gid = |id: u32| if id == self.builder.gid { 0 } else { id };
        let (uid, gid, perms) = match rec {
            Some(r) => (r.uid, r.gid, r.perms),
            None => (map_uid(m.uid()), map_gid(m.gid()), m.mode() & 0o7777),
        };
        let key = (m.dev(), m.ino());
        let kind = if !ft.is_dir() && m.nlink() > 1 {
            match self.links.get(&key) {
                Some(first) => EntryKind::Hardlink(first.clone()),
                None => {
                    self.links.insert(key, name.clone());
                    kind
                }
            }
        } else {
            kind
        };
        let xattrs = if matches!(kind, EntryKind::Hardlink(_)) { Vec::new() } else { self.xattrs(path)? };
        let is_dir = ft.is_dir();
        each(Entry { path: name.clone(), kind, perms, uid, gid, mtime: m.mtime(), xattrs, source: path.into() })?;
        if !is_dir {
            return Ok(());
        }
        let mut children: Vec<OsString> = Vec::new();
        for e in std::fs::read_dir(path).map_err(err(path, "read the directory"))? {
            children.push(e.map_err(err(path, "read the directory"))?.file_name());
        }
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for c in children {
            let p = path.join(&c);
            let cm = std::fs::symlink_metadata(&p).map_err(err(&p, "read"))?;
            if self.skip.contains(&(cm.dev(), cm.ino())) {
                continue;
            }
            let mut child = if name == b"./" { Vec::new() } else { [&name[..], b"/"].concat() };
            child.extend_from_slice(c.as_bytes());
            self.visit(&p, child, &cm, Some(path), each)?;
        }
        Ok(())
    }

    /// The file's record: its own xattr, or for a symlink or FIFO, its directory's; else
    /// the store's, if the file is still the one it was recorded for.
    fn record(&self, path: &Path, m: &std::fs::Metadata, real: Kind, parent: Option<&Path>) -> Result<Option<Record>, ImageError> {
        let own = self.own_record(path, m, real, parent)?;
        if own.is_some() || self.records.is_empty() {
            return Ok(own);
        }
        let Some(e) = self.records.get(&((major(m.dev()), minor(m.dev())), m.ino())) else { return Ok(None) };
        let time = |s: i64, n: i64| (s, n as u32);
        let btime =
            m.created().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| (d.as_secs() as i64, d.subsec_nanos()));
        let now = store::Stamps {
            ctime: time(m.ctime(), m.ctime_nsec()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            btime,
            name: path.file_name().map(|n| n.as_bytes().to_vec()),
        };
        Ok(e.stamps.still(&now, m.nlink()).then_some(e.record))
    }

    /// The record kept with the file, or for a symlink or FIFO, with its directory.
    fn own_record(&self, path: &Path, m: &std::fs::Metadata, real: Kind, parent: Option<&Path>) -> Result<Option<Record>, ImageError> {
        if m.is_file() || m.is_dir() {
            return Ok(lget(path, record::OVERRIDE_STAT.as_bytes())
                .map_err(err(path, "read the xattrs of"))?
                .and_then(|v| Record::parse(&v, real)));
        }
        let (Some(dir), Ok(born)) = (parent, m.created()) else { return Ok(None) };
        let Ok(since) = born.duration_since(std::time::UNIX_EPOCH) else { return Ok(None) };
        let birth = Birth { sec: since.as_secs() as i64, nsec: since.subsec_nanos() };
        let v = lget(dir, record::child_name(m.ino()).as_bytes()).map_err(err(dir, "read the xattrs of"))?;
        Ok(v.and_then(|v| record::parse_child(&v, birth, real)))
    }

    /// The file's xattrs as real root's build has them.
    fn xattrs(&self, path: &Path) -> Result<Xattrs, ImageError> {
        let names = llist(path).map_err(err(path, "list the xattrs of"))?;
        let mut out = Vec::new();
        for n in &names {
            if record::is_own(n) {
                continue;
            }
            let kept_name = record::kept_name(&String::from_utf8_lossy(n));
            if record::KEPT_XATTRS.iter().any(|k| k.as_bytes() == &n[..]) && names.contains(&kept_name.clone().into_bytes()) {
                continue; // the kept value wins, below
            }
            let Some(v) = lget(path, n).map_err(err(path, "read the xattrs of"))? else { continue };
            let v = match &n[..] {
                b"security.capability" => v2_capability(&v, self.builder.uid),
                b"system.posix_acl_access" | b"system.posix_acl_default" => acl_ids_to_root(&v, self.builder),
                _ => v,
            };
            out.push((n.clone(), v));
        }
        for k in record::KEPT_XATTRS {
            if names.contains(&record::kept_name(k).into_bytes()) {
                if let Some(v) = lget(path, record::kept_name(k).as_bytes()).map_err(err(path, "read the xattrs of"))? {
                    out.push((k.as_bytes().to_vec(), v));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn major(rdev: u64) -> u32 {
    libc::major(rdev)
}

fn minor(rdev: u64) -> u32 {
    libc::minor(rdev)
}

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;

/// A v3 file capability whose rootid is `root` as the v2 one real root writes (same
/// flags and sets); any other value unchanged.
pub fn v2_capability(v: &[u8], root: u32) -> Vec<u8> {
    if v.len() != 24 {
        return v.to_vec();
    }
    let word = |i: usize| u32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    let magic = word(0);
    if magic & VFS_CAP_REVISION_MASK != VFS_CAP_REVISION_3 || word(20) != root {
        return v.to_vec();
    }
    let mut out = ((magic & !VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_2).to_le_bytes().to_vec();
    out.extend_from_slice(&v[4..20]);
    out
}

const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;

/// A POSIX ACL xattr value with the building user's ids (named user and group entries)
/// turned into 0.
pub fn acl_ids_to_root(v: &[u8], builder: Builder) -> Vec<u8> {
    let mut out = v.to_vec();
    if v.len() < 4 || (v.len() - 4) % 8 != 0 {
        return out;
    }
    for e in out[4..].chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        if (tag == ACL_USER && id == builder.uid) || (tag == ACL_GROUP && id == builder.gid) {
            e[4..8].copy_from_slice(&0u32.to_le_bytes());
        }
    }
    out
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `lgetxattr`: `None` when the file has no such xattr (or the file system none at all).
fn lget(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings and our buffer.
        let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA | libc::EOPNOTSUPP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 1 << 16 => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

/// `llistxattr`: the names, in the order the file system gives them.
fn llist(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: a valid C string and our buffer.
        let rc = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(buf.split(|b| *b == 0).filter(|s| !s.is_empty()).map(<[u8]>::to_vec).collect());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

/// An archive path as a host path component list (for messages).
pub fn display_path(p: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespaced_capability_becomes_the_v2_real_root_writes() {
        // cap_net_raw+ep as the kernel stores it for a setcap in a namespace whose root is 1001.
        let mut v3 = (VFS_CAP_REVISION_3 | 1).to_le_bytes().to_vec();
        v3.extend_from_slice(&[0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v3.extend_from_slice(&1001u32.to_le_bytes());
        let v2 = v2_capability(&v3, 1001);
        assert_eq!(v2.len(), 20);
        assert_eq!(&v2[..4], &(VFS_CAP_REVISION_2 | 1).to_le_bytes());
        assert_eq!(&v2[4..], &v3[4..20]);
        assert_eq!(v2_capability(&v3, 1002), v3, "another rootid is kept as it is");
        assert_eq!(v2_capability(&v2, 1001), v2);
    }

    #[test]
    fn acl_entries_naming_the_builder_name_root() {
        let entry = |tag: u16, perm: u16, id: u32| [tag.to_le_bytes().as_slice(), &perm.to_le_bytes(), &id.to_le_bytes()].concat();
        let acl = |g: u32| {
            [&2u32.to_le_bytes()[..], &entry(1, 7, u32::MAX), &entry(ACL_GROUP, 5, g), &entry(ACL_USER, 5, 1001), &entry(0x20, 5, u32::MAX)]
                .concat()
        };
        let b = Builder { uid: 1001, gid: 1002 };
        let out = acl_ids_to_root(&acl(1002), b);
        assert_eq!(&out[4 + 8 + 4..4 + 16], &0u32.to_le_bytes(), "group 1002 -> 0");
        assert_eq!(&out[4 + 16 + 4..4 + 24], &0u32.to_le_bytes(), "user 1001 -> 0");
        assert_eq!(acl_ids_to_root(&acl(4), b)[4 + 8 + 4..4 + 16], 4u32.to_le_bytes(), "adm stays adm");
    }
}
