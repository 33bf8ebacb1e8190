//! What consistent mode records, and where: the formats `rootemu run --consistent` writes
//! and `rootemu export` (through [`crate::image`]; also containers/storage, fuse-overlayfs) reads.
//!
//! - A regular file or directory carries its record in the xattr
//!   `user.containers.override_stat` = `uid:gid:mode:type` (decimal ids as the namespace
//!   sees them, octal permission bits, type `file`, `dir`, `symlink`, `pipe`, `socket`,
//!   `char-M-m` or `block-M-m`): the format containers/storage and fuse-overlayfs use.
//!   A device node made under consistent mode is an empty regular file with such a record.
//! - A symlink, FIFO or socket cannot carry `user.*` xattrs: its record is an xattr of its
//!   directory, `user.rootemu.override.<inode>` = `<btime>:<record>`, where `<btime>` is the
//!   file's birth time (`sec.nsec`); a record whose inode or birth time no longer match
//!   belongs to a deleted file and is ignored, so it never attaches to a new file that
//!   reuses the inode.
//! - An ACL or file capability naming ids the namespace cannot map is kept, as the build
//!   gave it (ids as the namespace sees them), in `user.rootemu.<xattr name>`, e.g.
//!   `user.rootemu.system.posix_acl_access`, and shown in its place.
//!
//! The xattrs of this module are rootemu's own: the build never sees them.

use std::fmt;

/// The record of a regular file or directory.
pub const OVERRIDE_STAT: &str = "user.containers.override_stat";
/// Prefix of every other rootemu xattr.
pub const OWN_PREFIX: &str = "user.rootemu.";
/// Prefix of a directory's records of its symlinks, FIFOs and sockets (+ inode number).
pub const CHILD_PREFIX: &str = "user.rootemu.override.";
/// xattrs the kernel may refuse for unmapped ids, recorded instead (see [`kept_name`]).
pub const KEPT_XATTRS: [&str; 3] = ["system.posix_acl_access", "system.posix_acl_default", "security.capability"];

/// Whether `name` is one of rootemu's own xattrs (hidden from the build).
pub fn is_own(name: &[u8]) -> bool {
    name == OVERRIDE_STAT.as_bytes() || name.starts_with(OWN_PREFIX.as_bytes())
}

/// The xattr holding a kept value of `name` (one of [`KEPT_XATTRS`]).
pub fn kept_name(name: &str) -> String {
    format!("{OWN_PREFIX}{name}")
}

/// A file's type, as a record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// FIFO.
    Pipe,
    /// Unix socket.
    Socket,
    /// Character device (major, minor).
    Char(u32, u32),
    /// Block device (major, minor).
    Block(u32, u32),
}

impl Kind {
    /// The type of a `st_mode` (with its `st_rdev` for devices); `None` for unknown types.
    pub fn of_mode(mode: u32, rdev_major: u32, rdev_minor: u32) -> Option<Kind> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Pipe,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::Char(rdev_major, rdev_minor),
            libc::S_IFBLK => Kind::Block(rdev_major, rdev_minor),
            _ => return None,
        })
    }

    /// The `S_IFMT` bits.
    pub fn type_bits(self) -> u32 {
        match self {
            Kind::File => libc::S_IFREG,
            Kind::Dir => libc::S_IFDIR,
            Kind::Symlink => libc::S_IFLNK,
            Kind::Pipe => libc::S_IFIFO,
            Kind::Socket => libc::S_IFSOCK,
            Kind::Char(..) => libc::S_IFCHR,
            Kind::Block(..) => libc::S_IFBLK,
        }
    }

    /// `(major, minor)` of a device, `(0, 0)` otherwise.
    pub fn rdev(self) -> (u32, u32) {
        match self {
            Kind::Char(a, b) | Kind::Block(a, b) => (a, b),
            _ => (0, 0),
        }
    }
}

/// Owner, permission bits and type, as root would have left them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Owner, as the namespace sees it.
    pub uid: u32,
    /// Group, as the namespace sees it.
    pub gid: u32,
    /// Permission bits (`07777`).
    pub perms: u32,
    /// Type (and device numbers).
    pub kind: Kind,
}

impl Record {
    /// Parses `uid:gid:mode[:type]` (no type: the file's own, `fallback`).
    pub fn parse(value: &[u8], fallback: Kind) -> Option<Record> {
        let text = std::str::from_utf8(value).ok()?.trim_end_matches('\0').trim();
        let mut parts = text.splitn(4, ':');
        let uid = parts.next()?.parse().ok()?;
        let gid = parts.next()?.parse().ok()?;
        let perms = u32::from_str_radix(parts.next()?, 8).ok()?;
        if perms > 0o7777 {
            return None;
        }
        let kind = match parts.next() {
            None => fallback,
            Some("file") => Kind::File,
            Some("dir") => Kind::Dir,
            Some("symlink") => Kind::Symlink,
            Some("pipe") => Kind::Pipe,
            Some("socket") => Kind::Socket,
            Some(t) => {
                let (what, nums) = t.split_once('-')?;
                let (a, b) = nums.split_once('-')?;
                let (a, b) = (a.parse().ok()?, b.parse().ok()?);
                match what {
                    "char" => Kind::Char(a, b),
                    "block" => Kind::Block(a, b),
                    _ => return None,
                }
            }
        };
        Some(Record { uid, gid, perms, kind })
    }

    /// The full `st_mode`.
    pub fn mode(&self) -> u32 {
        self.kind.type_bits() | self.perms
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{:04o}:", self.uid, self.gid, self.perms)?;
        match self.kind {
            Kind::File => f.write_str("file"),
            Kind::Dir => f.write_str("dir"),
            Kind::Symlink => f.write_str("symlink"),
            Kind::Pipe => f.write_str("pipe"),
            Kind::Socket => f.write_str("socket"),
            Kind::Char(a, b) => write!(f, "char-{a}-{b}"),
            Kind::Block(a, b) => write!(f, "block-{a}-{b}"),
        }
    }
}

/// A file's birth time, which tells a file from a later one reusing its inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Birth {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// The name of the directory xattr that holds the record of its child with inode `ino`.
pub fn child_name(ino: u64) -> String {
    format!("{CHILD_PREFIX}{ino}")
}

/// The value of a child record: `<sec>.<nsec>:<record>`.
pub fn child_value(birth: Birth, r: &Record) -> String {
    format!("{}.{:09}:{r}", birth.sec, birth.nsec)
}

/// Parses a child record; `None` unless it is well-formed and born at `birth`.
pub fn parse_child(value: &[u8], birth: Birth, fallback: Kind) -> Option<Record> {
    let text = std::str::from_utf8(value).ok()?;
    let (b, rest) = text.split_once(':')?;
    let (sec, nsec) = b.split_once('.')?;
    if sec.parse::<i64>().ok()? != birth.sec || nsec.parse::<u32>().ok()? != birth.nsec {
        return None;
    }
    Record::parse(rest.as_bytes(), fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_the_containers_storage_format() {
        let r = Record { uid: 0, gid: 50, perms: 0o644, kind: Kind::File };
        assert_eq!(r.to_string(), "0:50:0644:file");
        assert_eq!(Record::parse(b"0:50:0644:file", Kind::Dir), Some(r));
        let dev = Record { uid: 0, gid: 0, perms: 0o600, kind: Kind::Char(1, 3) };
        assert_eq!(dev.to_string(), "0:0:0600:char-1-3");
        assert_eq!(Record::parse(dev.to_string().as_bytes(), Kind::File), Some(dev));
        assert_eq!(dev.mode(), 0o020600);
        // fuse-overlayfs writes the mode without padding; no type means the file's own.
        assert_eq!(Record::parse(b"5:6:755", Kind::Dir), Some(Record { uid: 5, gid: 6, perms: 0o755, kind: Kind::Dir }));
        for bad in [&b"x:0:0644:file"[..], b"0:0:0999:file", b"0:0:017777:file", b"0:0:0644:char-1", b"0:0:0644:fifo"] {
            assert_eq!(Record::parse(bad, Kind::File), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_child_record_belongs_only_to_the_file_born_then() {
        let r = Record { uid: 7, gid: 8, perms: 0o777, kind: Kind::Symlink };
        let birth = Birth { sec: 1_700_000_000, nsec: 5 };
        let v = child_value(birth, &r);
        assert_eq!(v, "1700000000.000000005:7:8:0777:symlink");
        assert_eq!(parse_child(v.as_bytes(), birth, Kind::Symlink), Some(r));
        assert_eq!(parse_child(v.as_bytes(), Birth { sec: 1_700_000_000, nsec: 6 }, Kind::Symlink), None);
    }

    #[test]
    fn own_names_are_recognised() {
        assert!(is_own(OVERRIDE_STAT.as_bytes()) && is_own(b"user.rootemu.override.12"));
        assert!(!is_own(b"user.mime_type") && !is_own(b"security.capability"));
        assert_eq!(kept_name("security.capability"), "user.rootemu.security.capability");
    }
}
