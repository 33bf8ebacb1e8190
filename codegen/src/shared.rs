//! Facts shared by the ABIs, for consistent mode's supervisor: what each notified syscall's
//! arguments are (`shared/syscall-args.yaml`), and the layouts of the structs the stat family
//! writes (`shared/struct-layouts.yaml`), which each ABI file references by name.

use crate::diag::{Diagnostic, Errors, did_you_mean};
use crate::yaml::{self, Lines};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Path of the signatures file, relative to a tables directory.
pub const SIGNATURES_FILE: &str = "shared/syscall-args.yaml";
/// Path of the struct layouts file, relative to a tables directory.
pub const LAYOUTS_FILE: &str = "shared/struct-layouts.yaml";

/// What the supervisor does for a notified syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    /// Record a new owner (`chown` family).
    Chown,
    /// Change the mode, keeping a record in step (`chmod` family).
    Chmod,
    /// Create a placeholder for a device node and record its type (`mknod` family).
    Mknod,
    /// Fill a `struct stat`-like buffer from the file and its record.
    Stat,
    /// Fill a `struct statx` from the file and its record.
    Statx,
    /// Set an xattr, recording what the namespace cannot store.
    SetXattr,
    /// Read an xattr, recorded ones included.
    GetXattr,
    /// List xattrs, recorded ones included, rootemu's own hidden.
    ListXattr,
    /// Remove an xattr, recorded ones included.
    RemoveXattr,
}

impl Op {
    const ALL: [(&'static str, Op); 9] = [
        ("chown", Op::Chown),
        ("chmod", Op::Chmod),
        ("mknod", Op::Mknod),
        ("stat", Op::Stat),
        ("statx", Op::Statx),
        ("setxattr", Op::SetXattr),
        ("getxattr", Op::GetXattr),
        ("listxattr", Op::ListXattr),
        ("removexattr", Op::RemoveXattr),
    ];

    /// The name used in the signatures file.
    pub fn name(self) -> &'static str {
        Op::ALL.iter().find(|(_, o)| *o == self).map_or("?", |(n, _)| n)
    }

    /// The roles every signature of this operation must have.
    fn required(self) -> &'static [Role] {
        use Role::*;
        match self {
            Op::Chown => &[Uid, Gid],
            Op::Chmod => &[Mode],
            Op::Mknod => &[Path, Mode, Dev],
            Op::Stat => &[Buf],
            Op::Statx => &[DirFd, Path, AtFlags, StatxMask, Buf],
            // and either the value roles or `xattr_args` (see [`Op::value_roles`]).
            Op::SetXattr | Op::GetXattr => &[XattrName],
            Op::ListXattr => &[XattrList, XattrSize],
            Op::RemoveXattr => &[XattrName],
        }
    }
}

impl Op {
    /// The roles that give an xattr call its value buffer, size (and flags), when they are
    /// arguments of their own (`setxattr`); the `*xattrat` calls have `xattr_args` (a
    /// `struct xattr_args` holding them) and `xattr_args_size` instead.
    fn value_roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Op::SetXattr => &[XattrValue, XattrSize, XattrFlags],
            Op::GetXattr => &[XattrValue, XattrSize],
            _ => &[],
        }
    }
}

/// The role of one syscall argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// `const char *` path, relative to `dirfd` or the cwd.
    Path,
    /// Directory fd the path is relative to (`AT_FDCWD`: the cwd).
    DirFd,
    /// The file, as an open fd.
    Fd,
    /// New owner (-1: unchanged).
    Uid,
    /// New group (-1: unchanged).
    Gid,
    /// File mode (type and permission bits).
    Mode,
    /// Device number (mknod).
    Dev,
    /// `AT_*` flags.
    AtFlags,
    /// The struct the call writes.
    Buf,
    /// `statx` mask of wanted fields.
    StatxMask,
    /// xattr name (`const char *`).
    XattrName,
    /// xattr value buffer.
    XattrValue,
    /// Size of the value or list buffer.
    XattrSize,
    /// `XATTR_CREATE` / `XATTR_REPLACE`.
    XattrFlags,
    /// Buffer for the list of names.
    XattrList,
    /// `struct xattr_args *` (value pointer, size, flags; the `*xattrat` calls, Linux 6.13).
    XattrArgs,
    /// The size of that struct as the caller gives it.
    XattrArgsSize,
}

impl Role {
    const ALL: [(&'static str, Role); 17] = [
        ("path", Role::Path),
        ("dirfd", Role::DirFd),
        ("fd", Role::Fd),
        ("uid", Role::Uid),
        ("gid", Role::Gid),
        ("mode", Role::Mode),
        ("dev", Role::Dev),
        ("at_flags", Role::AtFlags),
        ("buf", Role::Buf),
        ("statx_mask", Role::StatxMask),
        ("xattr_name", Role::XattrName),
        ("xattr_value", Role::XattrValue),
        ("xattr_size", Role::XattrSize),
        ("xattr_flags", Role::XattrFlags),
        ("xattr_list", Role::XattrList),
        ("xattr_args", Role::XattrArgs),
        ("xattr_args_size", Role::XattrArgsSize),
    ];

    /// The name used in the signatures file.
    pub fn name(self) -> &'static str {
        Role::ALL.iter().find(|(_, r)| *r == self).map_or("?", |(n, _)| n)
    }
}

/// One syscall's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// What the supervisor does.
    pub op: Op,
    /// The role of each argument, in order.
    pub args: Vec<Role>,
    /// Never follows a trailing symlink.
    pub nofollow: bool,
    /// For `stat`/`statx`: the C struct written (its layout is per ABI).
    pub struct_name: Option<String>,
    /// 1-based line in the signatures file.
    pub line: usize,
}

/// What a struct field holds, and so how the kernel fills it (see the layouts file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FieldKind {
    /// `st_dev`.
    Dev,
    /// `st_ino`.
    Ino,
    /// A second, truncated `st_ino` (`__st_ino`).
    InoTrunc,
    /// `st_mode`.
    Mode,
    /// `st_nlink`.
    Nlink,
    /// `st_uid`.
    Uid,
    /// `st_gid`.
    Gid,
    /// `st_rdev`.
    Rdev,
    /// `st_size`.
    Size,
    /// `st_blksize`.
    Blksize,
    /// `st_blocks`.
    Blocks,
    /// `st_atime`.
    Atime,
    /// `st_atime_nsec`.
    AtimeNsec,
    /// `st_mtime`.
    Mtime,
    /// `st_mtime_nsec`.
    MtimeNsec,
    /// `st_ctime`.
    Ctime,
    /// `st_ctime_nsec`.
    CtimeNsec,
    /// `stx_rdev_major`.
    RdevMajor,
    /// `stx_rdev_minor`.
    RdevMinor,
}

impl FieldKind {
    const ALL: [(&'static str, FieldKind); 19] = [
        ("dev", FieldKind::Dev),
        ("ino", FieldKind::Ino),
        ("ino_trunc", FieldKind::InoTrunc),
        ("mode", FieldKind::Mode),
        ("nlink", FieldKind::Nlink),
        ("uid", FieldKind::Uid),
        ("gid", FieldKind::Gid),
        ("rdev", FieldKind::Rdev),
        ("size", FieldKind::Size),
        ("blksize", FieldKind::Blksize),
        ("blocks", FieldKind::Blocks),
        ("atime", FieldKind::Atime),
        ("atime_nsec", FieldKind::AtimeNsec),
        ("mtime", FieldKind::Mtime),
        ("mtime_nsec", FieldKind::MtimeNsec),
        ("ctime", FieldKind::Ctime),
        ("ctime_nsec", FieldKind::CtimeNsec),
        ("rdev_major", FieldKind::RdevMajor),
        ("rdev_minor", FieldKind::RdevMinor),
    ];

    /// The name used in the layouts file.
    pub fn name(self) -> &'static str {
        FieldKind::ALL.iter().find(|(_, k)| *k == self).map_or("?", |(n, _)| n)
    }

    /// Every kind, stat's then statx's own.
    pub fn all() -> impl Iterator<Item = FieldKind> {
        FieldKind::ALL.iter().map(|(_, k)| *k)
    }
}

/// How a device number is encoded in a field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Encode {
    /// Not a device number.
    #[default]
    Plain,
    /// `old_encode_dev`: `major << 8 | minor`, truncated.
    Old,
    /// `new_encode_dev`: `(minor & 0xff) | major << 8 | (minor & !0xff) << 12`.
    New,
}

/// One field of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// What it holds.
    pub kind: FieldKind,
    /// Byte offset.
    pub at: u32,
    /// Size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Device-number encoding (dev, rdev only).
    pub encode: Encode,
}

/// The layout of one C struct on one ABI family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Its name, e.g. `stat64.i386`.
    pub name: String,
    /// The C struct, e.g. `stat64`.
    pub struct_name: String,
    /// The same on every ABI (no ABI file names it).
    pub universal: bool,
    /// `sizeof`.
    pub size: u32,
    /// Largest `st_size` before EOVERFLOW, when below the field's range.
    pub max_size: Option<u64>,
    /// The kernel writes the fields one by one (`put_user`), leaving the bytes between
    /// them as the caller had them; otherwise it copies the whole struct, padding zeroed.
    pub padding_kept: bool,
    /// The fields, by offset.
    pub fields: Vec<Field>,
    /// 1-based line in the layouts file.
    pub line: usize,
}

/// The shared files of a tables directory (both optional: empty when absent).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Shared {
    /// Syscall name -> signature.
    pub signatures: BTreeMap<String, Signature>,
    /// Layout name -> layout.
    pub layouts: BTreeMap<String, Layout>,
    /// The signatures file, when there was one.
    pub signatures_file: Option<PathBuf>,
    /// The layouts file, when there was one.
    pub layouts_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignaturesFile {
    signatures: BTreeMap<String, SignatureFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    op: String,
    args: Vec<String>,
    #[serde(default)]
    nofollow: bool,
    #[serde(default, rename = "struct")]
    struct_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutsFile {
    layouts: BTreeMap<String, LayoutFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    #[serde(rename = "struct")]
    struct_name: String,
    #[serde(default)]
    universal: bool,
    size: u32,
    #[serde(default)]
    max_size: Option<u64>,
    #[serde(default)]
    padding: Option<String>,
    fields: BTreeMap<String, FieldFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    at: u32,
    size: u8,
    #[serde(default)]
    encode: Option<String>,
}

impl Shared {
    /// Whether `path` (as given to [`crate::Tables::parse`]) is one of the shared files.
    pub fn is_shared_file(path: &Path) -> bool {
        path.parent().and_then(Path::file_name).is_some_and(|d| d == "shared")
    }

    /// Parses one shared file, by its name; all errors at once.
    pub(crate) fn add(&mut self, path: &Path, text: &str, errors: &mut Errors) {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("syscall-args.yaml") => match yaml::parse::<SignaturesFile>(path, text) {
                Ok(p) => {
                    self.signatures = signatures(path, p.value, &p.lines, errors);
                    self.signatures_file = Some(path.to_path_buf());
                }
                Err(e) => errors.0.extend(e.0),
            },
            Some("struct-layouts.yaml") => match yaml::parse::<LayoutsFile>(path, text) {
                Ok(p) => {
                    self.layouts = layouts(path, p.value, &p.lines, errors);
                    self.layouts_file = Some(path.to_path_buf());
                }
                Err(e) => errors.0.extend(e.0),
            },
            _ => errors.push(Diagnostic::at(path, None, format!("unknown shared file (expected {SIGNATURES_FILE} or {LAYOUTS_FILE})"))),
        }
    }

    /// The universal layout of a struct (e.g. `statx`), if there is one.
    pub fn universal(&self, struct_name: &str) -> Option<&Layout> {
        self.layouts.values().find(|l| l.universal && l.struct_name == struct_name)
    }
}

fn line_of(lines: &Lines, key: &str, name: &str) -> usize {
    lines.word_in(key, name).unwrap_or_else(|| lines.key_line(key))
}

fn signatures(path: &Path, f: SignaturesFile, lines: &Lines, errors: &mut Errors) -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for (name, s) in f.signatures {
        let line = line_of(lines, "signatures", &name);
        let mut err = |m: String| errors.push(Diagnostic::at(path, Some(line), format!("syscall `{name}`: {m}")));
        let Some(op) = Op::ALL.iter().find(|(n, _)| *n == s.op).map(|(_, o)| *o) else {
            let names = Op::ALL.map(|(n, _)| n);
            let hint = did_you_mean(&s.op, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            err(format!("unknown op `{}`{hint}; expected one of {}", s.op, names.join(", ")));
            continue;
        };
        let mut args = Vec::new();
        for a in &s.args {
            match Role::ALL.iter().find(|(n, _)| n == a) {
                Some((_, r)) if args.contains(r) => err(format!("argument role `{a}` is given twice")),
                Some((_, r)) => args.push(*r),
                None => {
                    let names = Role::ALL.map(|(n, _)| n);
                    let hint = did_you_mean(a, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                    err(format!("unknown argument role `{a}`{hint}"));
                }
            }
        }
        if args.len() > 6 {
            err(format!("{} arguments, but syscalls have at most 6", args.len()));
        }
        for r in op.required() {
            if !args.contains(r) {
                err(format!("a `{}` syscall needs an argument of role `{}`", op.name(), r.name()));
            }
        }
        let value = op.value_roles();
        let by_struct = [Role::XattrArgs, Role::XattrArgsSize];
        if !value.is_empty() && !value.iter().all(|r| args.contains(r)) && !by_struct.iter().all(|r| args.contains(r)) {
            let names: Vec<String> = value.iter().map(|r| format!("`{}`", r.name())).collect();
            err(format!("a `{}` syscall needs arguments of roles {}, or `xattr_args` and `xattr_args_size`", op.name(), names.join(", ")));
        }
        let targets = [Role::Path, Role::Fd].iter().filter(|r| args.contains(r)).count();
        if targets == 0 && op != Op::Statx {
            err("needs a `path` or an `fd` argument".into());
        }
        if args.contains(&Role::Fd) && (args.contains(&Role::Path) || args.contains(&Role::DirFd)) {
            err("an `fd` argument excludes `path` and `dirfd` (use `dirfd` with `path`)".into());
        }
        if args.contains(&Role::DirFd) && !args.contains(&Role::Path) {
            err("a `dirfd` argument needs a `path` argument".into());
        }
        let wants_struct = matches!(op, Op::Stat | Op::Statx);
        match (&s.struct_name, wants_struct) {
            (None, true) => err(format!("a `{}` syscall needs `struct`", op.name())),
            (Some(_), false) => err(format!("`struct` is only for stat and statx, not `{}`", op.name())),
            _ => {}
        }
        out.insert(name.clone(), Signature { op, args, nofollow: s.nofollow, struct_name: s.struct_name, line });
    }
    out
}

fn layouts(path: &Path, f: LayoutsFile, lines: &Lines, errors: &mut Errors) -> BTreeMap<String, Layout> {
    let mut out = BTreeMap::new();
    for (name, l) in f.layouts {
        let line = line_of(lines, "layouts", &name);
        let mut err = |m: String| errors.push(Diagnostic::at(path, Some(line), format!("layout `{name}`: {m}")));
        let mut fields = Vec::new();
        for (fname, fl) in &l.fields {
            let Some(kind) = FieldKind::ALL.iter().find(|(n, _)| n == fname).map(|(_, k)| *k) else {
                let names = FieldKind::ALL.map(|(n, _)| n);
                let hint = did_you_mean(fname, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                err(format!("unknown field `{fname}`{hint}"));
                continue;
            };
            if ![1, 2, 4, 8].contains(&fl.size) {
                err(format!("field `{fname}` has size {}, not 1, 2, 4 or 8", fl.size));
                continue;
            }
            if u64::from(fl.at) + u64::from(fl.size) > u64::from(l.size) {
                err(format!("field `{fname}` ({} bytes at {}) ends past the struct's size {}", fl.size, fl.at, l.size));
                continue;
            }
            let encode = match (fl.encode.as_deref(), kind) {
                (None, FieldKind::Dev | FieldKind::Rdev) => {
                    err(format!("field `{fname}` needs `encode: old` or `encode: new`"));
                    Encode::Plain
                }
                (None, _) => Encode::Plain,
                (Some("old"), FieldKind::Dev | FieldKind::Rdev) => Encode::Old,
                (Some("new"), FieldKind::Dev | FieldKind::Rdev) => Encode::New,
                (Some(e), FieldKind::Dev | FieldKind::Rdev) => {
                    err(format!("field `{fname}`: unknown encoding `{e}` (expected old or new)"));
                    Encode::Plain
                }
                (Some(_), _) => {
                    err(format!("field `{fname}`: only dev and rdev have an encoding"));
                    Encode::Plain
                }
            };
            fields.push(Field { kind, at: fl.at, size: fl.size, encode });
        }
        let padding_kept = match l.padding.as_deref() {
            None | Some("zeroed") => false,
            Some("kept") => true,
            Some(p) => {
                err(format!("padding `{p}`: expected `zeroed` (the default) or `kept`"));
                false
            }
        };
        fields.sort_by_key(|f| f.at);
        for w in fields.windows(2) {
            if w[0].at + u32::from(w[0].size) > w[1].at {
                err(format!("fields `{}` and `{}` overlap", w[0].kind.name(), w[1].kind.name()));
            }
        }
        let needed: &[FieldKind] = if l.struct_name == "statx" {
            &[FieldKind::Uid, FieldKind::Gid, FieldKind::Mode, FieldKind::RdevMajor, FieldKind::RdevMinor]
        } else {
            &[
                FieldKind::Dev,
                FieldKind::Ino,
                FieldKind::Mode,
                FieldKind::Nlink,
                FieldKind::Uid,
                FieldKind::Gid,
                FieldKind::Rdev,
                FieldKind::Size,
            ]
        };
        for k in needed {
            if !fields.iter().any(|f| f.kind == *k) && !l.fields.is_empty() {
                err(format!("a `{}` layout needs the field `{}`", l.struct_name, k.name()));
            }
        }
        out.insert(
            name.clone(),
            Layout {
                name,
                struct_name: l.struct_name,
                universal: l.universal,
                size: l.size,
                max_size: l.max_size,
                padding_kept,
                fields,
                line,
            },
        );
    }
    let mut universal: BTreeMap<&str, &str> = BTreeMap::new();
    for l in out.values().filter(|l| l.universal) {
        if let Some(first) = universal.insert(&l.struct_name, &l.name) {
            errors.push(Diagnostic::at(
                path,
                Some(l.line),
                format!("layout `{}`: struct `{}` already has the universal layout `{first}`", l.name, l.struct_name),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(sig: &str, lay: &str) -> (Shared, Errors) {
        let mut s = Shared::default();
        let mut e = Errors::default();
        s.add(Path::new("t/shared/syscall-args.yaml"), sig, &mut e);
        s.add(Path::new("t/shared/struct-layouts.yaml"), lay, &mut e);
        (s, e)
    }

    #[test]
    fn bundled_files_load_cleanly() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables/shared");
        let (s, e) = load(
            &std::fs::read_to_string(dir.join("syscall-args.yaml")).unwrap(),
            &std::fs::read_to_string(dir.join("struct-layouts.yaml")).unwrap(),
        );
        assert!(e.is_empty(), "{e}");
        assert_eq!(s.signatures["fchownat"].args, [Role::DirFd, Role::Path, Role::Uid, Role::Gid, Role::AtFlags]);
        assert!(s.signatures["lchown"].nofollow);
        assert_eq!(s.universal("statx").map(|l| l.size), Some(256));
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let sig = "signatures:\n  chown: {op: chwon, args: [path, uid, gid]}\n  lchown: {op: chown, args: [path, uid, uid]}\n  fstat: {op: stat, args: [fd, buf]}\n";
        let lay = "layouts:\n  s:\n    struct: stat\n    size: 8\n    fields:\n      dev: {at: 0, size: 4}\n      ino: {at: 2, size: 8}\n";
        let (_, e) = load(sig, lay);
        let text = e.to_string();
        for want in [
            "syscall-args.yaml:2: syscall `chown`: unknown op `chwon` (did you mean `chown`?)",
            "syscall-args.yaml:3: syscall `lchown`: argument role `uid` is given twice",
            "syscall-args.yaml:3: syscall `lchown`: a `chown` syscall needs an argument of role `gid`",
            "syscall-args.yaml:4: syscall `fstat`: a `stat` syscall needs `struct`",
            "struct-layouts.yaml:2: layout `s`: field `dev` needs `encode: old` or `encode: new`",
            "struct-layouts.yaml:2: layout `s`: field `ino` (8 bytes at 2) ends past the struct's size 8",
            "struct-layouts.yaml:2: layout `s`: a `stat` layout needs the field `mode`",
        ] {
            assert!(text.contains(want), "missing `{want}` in:\n{text}");
        }
    }
}
