//! Writing the stat family's structs for a file with a record: every field from the file's
//! own `statx`, but owner, mode, type and device number from the record, in the caller's
//! ABI layout and byte order, with the kernel's overflow rules (`fs/stat.c`).

use crate::notified::{Encode, FieldKind, Layout};
use crate::record::{Kind, Record};

/// `new_encode_dev`.
fn new_encode(major: u32, minor: u32) -> u64 {
    u64::from((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

/// `old_encode_dev` (truncated to 16 bits by the field).
fn old_encode(major: u32, minor: u32) -> u64 {
    u64::from((major << 8) | minor)
}

/// Fits in `size` bytes.
fn fits(v: u64, size: u8) -> bool {
    size >= 8 || v < 1u64 << (u32::from(size) * 8)
}

/// The struct `layout` describes, filled from `st` (the file's own `statx`) and `rec`;
/// `Err(errno)` (EOVERFLOW) where the kernel would refuse too.
pub(crate) fn fill(layout: &Layout, big_endian: bool, st: &libc::statx, rec: &Record) -> Result<Vec<u8>, i32> {
    let mut out = vec![0u8; layout.size as usize];
    let (rmaj, rmin) = match rec.kind {
        Kind::Char(a, b) | Kind::Block(a, b) => (a, b),
        _ => (st.stx_rdev_major, st.stx_rdev_minor),
    };
    let device = matches!(rec.kind, Kind::Char(..) | Kind::Block(..));
    let id = |v: u32, size: u8| if size < 4 && v > 0xffff { 65534 } else { u64::from(v) };
    for f in layout.fields {
        let dev = |major: u32, minor: u32| -> Result<u64, i32> {
            match f.encode {
                Encode::Old => Ok(old_encode(major, minor)),
                _ if f.size < 4 && (major > 0xff || minor > 0xff) => Err(libc::EOVERFLOW),
                _ => Ok(new_encode(major, minor)),
            }
        };
        let value: u64 = match f.kind {
            FieldKind::Dev => dev(st.stx_dev_major, st.stx_dev_minor)?,
            FieldKind::Rdev => dev(rmaj, rmin)?,
            FieldKind::Ino if !fits(st.stx_ino, f.size) => return Err(libc::EOVERFLOW),
            FieldKind::Ino | FieldKind::InoTrunc => st.stx_ino,
            FieldKind::Nlink if !fits(u64::from(st.stx_nlink), f.size) => return Err(libc::EOVERFLOW),
            FieldKind::Nlink => u64::from(st.stx_nlink),
            FieldKind::Mode => u64::from(rec.mode()),
            FieldKind::Uid => id(rec.uid, f.size),
            FieldKind::Gid => id(rec.gid, f.size),
            FieldKind::Size => {
                let size = if device { 0 } else { st.stx_size };
                if layout.max_size.is_some_and(|m| size > m) || !fits(size, f.size) {
                    return Err(libc::EOVERFLOW);
                }
                size
            }
            FieldKind::Blksize => u64::from(st.stx_blksize),
            FieldKind::Blocks => {
                if device {
                    0
                } else {
                    st.stx_blocks
                }
            }
            FieldKind::Atime => st.stx_atime.tv_sec as u64,
            FieldKind::AtimeNsec => u64::from(st.stx_atime.tv_nsec),
            FieldKind::Mtime => st.stx_mtime.tv_sec as u64,
            FieldKind::MtimeNsec => u64::from(st.stx_mtime.tv_nsec),
            FieldKind::Ctime => st.stx_ctime.tv_sec as u64,
            FieldKind::CtimeNsec => u64::from(st.stx_ctime.tv_nsec),
            FieldKind::RdevMajor => u64::from(rmaj),
            FieldKind::RdevMinor => u64::from(rmin),
        };
        put(&mut out, f.at as usize, f.size, value, big_endian);
    }
    Ok(out)
}

/// Writes the low `size` bytes of `v` at `at`.
pub(crate) fn put(out: &mut [u8], at: usize, size: u8, v: u64, big_endian: bool) {
    let n = usize::from(size);
    let bytes = if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let src = if big_endian { &bytes[8 - n..] } else { &bytes[..n] };
    out[at..at + n].copy_from_slice(src);
}

/// Patches a `struct statx` (as the kernel wrote it for the handler) with a record: owner,
/// mode and device numbers, at the offsets of the universal layout.
pub(crate) fn patch_statx(layout: &Layout, big_endian: bool, raw: &mut [u8], rec: &Record) {
    for f in layout.fields {
        let v = match f.kind {
            FieldKind::Uid => u64::from(rec.uid),
            FieldKind::Gid => u64::from(rec.gid),
            FieldKind::Mode => u64::from(rec.mode()),
            FieldKind::RdevMajor => u64::from(rec.kind.rdev().0),
            FieldKind::RdevMinor => u64::from(rec.kind.rdev().1),
            _ => continue,
        };
        // A device record shows its numbers; a plain file keeps its (zero) ones.
        if matches!(f.kind, FieldKind::RdevMajor | FieldKind::RdevMinor) && !matches!(rec.kind, Kind::Char(..) | Kind::Block(..)) {
            continue;
        }
        put(raw, f.at as usize, f.size, v, big_endian);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notified::Field;

    const fn field(kind: FieldKind, at: u32, size: u8) -> Field {
        Field { kind, at, size, encode: Encode::Plain }
    }

    static OLD: Layout = Layout {
        name: "test",
        size: 12,
        max_size: Some(0x7fff_ffff),
        padding_kept: false,
        fields: &[
            Field { kind: FieldKind::Dev, at: 0, size: 2, encode: Encode::Old },
            field(FieldKind::Ino, 2, 2),
            field(FieldKind::Mode, 4, 2),
            field(FieldKind::Uid, 6, 2),
            Field { kind: FieldKind::Rdev, at: 8, size: 2, encode: Encode::New },
            field(FieldKind::Size, 10, 2),
        ],
    };

    fn st() -> libc::statx {
        // SAFETY: all-zero is a valid statx.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        st.stx_ino = 7;
        st.stx_dev_major = 8;
        st.stx_dev_minor = 1;
        st
    }

    #[test]
    fn narrow_fields_follow_the_kernels_rules() {
        let rec = Record { uid: 100_000, gid: 0, perms: 0o600, kind: Kind::Char(1, 3) };
        let out = fill(&OLD, false, &st(), &rec).unwrap();
        assert_eq!(out, [0x01, 0x08, 7, 0, 0x80, 0x21, 0xfe, 0xff, 0x03, 0x01, 0, 0]);
        let big = fill(&OLD, true, &st(), &rec).unwrap();
        assert_eq!(&big[..4], [0x08, 0x01, 0, 7]);
        let mut wide_ino = st();
        wide_ino.stx_ino = 70_000;
        assert_eq!(fill(&OLD, false, &wide_ino, &rec), Err(libc::EOVERFLOW));
        let wide_dev = Record { kind: Kind::Block(300, 1), ..rec };
        assert_eq!(fill(&OLD, false, &st(), &wide_dev), Err(libc::EOVERFLOW), "new_encode in 2 bytes");
    }

    #[test]
    fn new_encode_dev_matches_the_kernel() {
        assert_eq!(new_encode(1, 3), 0x103);
        assert_eq!(new_encode(259, 0x12345), 0x45 | (259 << 8) | (0x12300 << 12));
    }
}
