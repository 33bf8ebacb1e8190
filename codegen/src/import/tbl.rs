//! Kernel `.tbl` syscall tables: `<number> <abi> <name> [<entry point> [<compat entry point>]]`.

use super::Imported;
use crate::diag::{Diagnostic, Errors};
use std::path::Path;

/// One row of a `.tbl` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// 1-based line in the file.
    pub line: usize,
    pub nr: u32,
    pub abi: String,
    pub name: String,
    /// The native entry point; `None` when the column is empty.
    pub entry: Option<String>,
    /// The compat entry point (5th column); `None` when the column is empty.
    pub compat: Option<String>,
}

impl Row {
    /// Numbered in the table without a working entry point: none, `-` or `sys_ni_syscall`
    /// in the native column, or with `compat` in the compat column (which defaults to the
    /// native one when absent, as the kernel's scripts read it).
    pub fn unimplemented(&self, compat: bool) -> bool {
        self.entry_point(compat).is_none_or(|e| e == "sys_ni_syscall" || e == "-")
    }

    /// The entry point the ABI uses: the compat column (defaulting to the native one) for
    /// a compat ABI, else the native column.
    fn entry_point(&self, compat: bool) -> Option<&str> {
        if compat { self.compat.as_deref().or(self.entry.as_deref()) } else { self.entry.as_deref() }
    }

    /// The entry point is the 16-bit-id variant of the call (`chown` -> `sys_chown16`,
    /// `compat_sys_chown16`, s390's `compat_sys_s390_chown16`): its uid and gid arguments
    /// are 16 bits wide.
    pub fn id16(&self, compat: bool) -> bool {
        self.entry_point(compat).is_some_and(|e| {
            let base = e.strip_prefix("compat_").unwrap_or(e);
            base.strip_prefix("sys_")
                .and_then(|b| b.strip_suffix("16"))
                .is_some_and(|b| b == self.name || b.strip_suffix(self.name.as_str()).is_some_and(|arch| arch.ends_with('_')))
        })
    }

    /// Placeholder rows (`reserved177`, `unused18` with no entry point or `sys_ni_syscall`)
    /// keep a number free; they are no syscall. A row named like one but wired to a real
    /// entry point (mips o32 `59 unused59 sys_olduname`) is a working syscall.
    pub fn placeholder(&self, compat: bool) -> bool {
        (self.name.starts_with("reserved") || self.name.starts_with("unused")) && self.unimplemented(compat)
    }
}

/// Parses every row; comments (`# 7 was sys_waitpid`) and blank lines are holes.
/// Columns are separated by any run of blanks and tabs.
pub(crate) fn parse(file: &Path, text: &str, errors: &mut Errors) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default();
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        let at = |m: String| Diagnostic::at(file, Some(i + 1), m);
        if cols.len() < 3 {
            errors.push(at(format!("bad syscall table row `{}`: expected `<number> <abi> <name> [<entry point>]`", raw.trim())));
            continue;
        }
        let Some(nr) = parse_number(cols[0]) else {
            errors.push(at(format!("bad syscall number `{}` in row `{}`", cols[0], raw.trim())));
            continue;
        };
        if !is_ident(cols[2]) {
            errors.push(at(format!("bad syscall name `{}` in row `{}`", cols[2], raw.trim())));
            continue;
        }
        rows.push(Row {
            line: i + 1,
            nr,
            abi: cols[1].to_string(),
            name: cols[2].to_string(),
            entry: cols.get(3).map(|s| s.to_string()),
            compat: cols.get(4).map(|s| s.to_string()),
        });
    }
    rows
}

/// Keeps the rows whose ABI column is one of `tags`, skipping placeholders, and adds
/// them to `out`; `compat`: the ABI's entry points are the compat column. Two rows with
/// one name or one number are errors at the later row.
pub(crate) fn select(file: &Path, rows: &[Row], tags: &[String], compat: bool, out: &mut Imported, errors: &mut Errors) {
    let mut lines: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    let file_rel = out.file.clone();
    for r in rows.iter().filter(|r| tags.contains(&r.abi) && !r.placeholder(compat)) {
        if let Some(&n) = out.syscalls.get(&r.name) {
            errors.push(Diagnostic::at(
                file,
                Some(r.line),
                format!("syscall `{}` numbered twice for tags [{}]: {} and {}", r.name, tags.join(", "), n, r.nr),
            ));
            continue;
        }
        if let Some(other) = out.name_of(r.nr) {
            let first = lines.get(&r.nr).map_or(String::new(), |l| format!(" (line {l})"));
            errors.push(Diagnostic::at(
                file,
                Some(r.line),
                format!("number {} of `{}` is already taken by `{other}`{first} for tags [{}]", r.nr, r.name, tags.join(", ")),
            ));
            continue;
        }
        lines.insert(r.nr, r.line);
        out.insert(&r.name, r.nr, r.unimplemented(compat), (file_rel.clone(), r.line));
        if r.id16(compat) {
            out.id16.insert(r.name.clone());
        }
    }
}

/// `123`, `0x7b`.
pub(crate) fn parse_number(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

pub(crate) fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !s.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str, tags: &[&str]) -> Result<Imported, Errors> {
        let mut errors = Errors::default();
        let rows = parse(Path::new("k/syscall.tbl"), text, &mut errors);
        let mut out = Imported::default();
        let tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        select(Path::new("k/syscall.tbl"), &rows, &tags, false, &mut out, &mut errors);
        errors.into_result(out)
    }

    #[test]
    fn x86_64_and_x32_share_one_file() {
        let text =
            "0\tcommon\tread\t\t\tsys_read\n13\t64\trt_sigaction\t\tsys_rt_sigaction\n512\tx32\trt_sigaction\t\tcompat_sys_rt_sigaction\n";
        let a = import(text, &["common", "64"]).unwrap();
        assert_eq!(a.syscalls.get("rt_sigaction"), Some(&13));
        let b = import(text, &["common", "x32"]).unwrap();
        assert_eq!(b.syscalls.get("rt_sigaction"), Some(&512));
        assert_eq!(b.syscalls.get("read"), Some(&0));
    }

    #[test]
    fn common_rows_inside_an_abi_specific_file_are_taken() {
        // mips n64: every row is `n64` except a stray `common` one.
        let text = "449\tn64\tfutex_waitv\t\t\tsys_futex_waitv\n450\tcommon\tset_mempolicy_home_node\tsys_set_mempolicy_home_node\n";
        let a = import(text, &["n64", "common"]).unwrap();
        assert_eq!(a.syscalls.get("set_mempolicy_home_node"), Some(&450));
        assert_eq!(a.syscalls.len(), 2);
    }

    /// i386 rows as the kernel has them: `chown` enters `sys_chown16` (16-bit ids),
    /// `chown32` enters `sys_chown`; an s390-style compat column decides for a compat ABI.
    #[test]
    fn sixteen_bit_id_entry_points_are_flagged() {
        let text = "16\ti386\tlchown\t\t\tsys_lchown16\n198\ti386\tlchown32\t\tsys_lchown\n23\ti386\tsetuid\t\t\tsys_setuid16\n24\ti386\tgetuid\t\t\tsys_getuid16\n213\ti386\tsetuid32\t\tsys_setuid\n42\ti386\tsync_file_range2\tsys_sync_file_range2\n";
        let a = import(text, &["i386"]).unwrap();
        assert_eq!(a.id16.iter().map(String::as_str).collect::<Vec<_>>(), ["getuid", "lchown", "setuid"]);
        let mut errors = Errors::default();
        let rows = parse(
            Path::new("k/syscall.tbl"),
            "16\tcommon\tlchown\tsys_lchown\tcompat_sys_s390_lchown16\n95\tcommon\tfchown\tsys_fchown\tcompat_sys_s390_chown16\n182\tcommon\tchown\tsys_chown\tcompat_sys_chown16\n",
            &mut errors,
        );
        let mut out = Imported::default();
        select(Path::new("k/syscall.tbl"), &rows, &["common".to_string()], true, &mut out, &mut errors);
        assert_eq!(out.id16.iter().map(String::as_str).collect::<Vec<_>>(), ["chown", "lchown"]);
    }

    #[test]
    fn unimplemented_rows_are_kept_and_flagged() {
        let text = "183\tcommon\tafs_syscall\n184\tcommon\ttuxcall\n185\tcommon\tsecurity\t\tsys_ni_syscall\n186\tcommon\tgettid\t\t\tsys_gettid\n";
        let a = import(text, &["common"]).unwrap();
        assert_eq!(a.syscalls.len(), 4);
        assert_eq!(a.unimplemented.iter().map(String::as_str).collect::<Vec<_>>(), ["afs_syscall", "security", "tuxcall"]);
    }

    #[test]
    fn placeholders_and_comment_holes_are_skipped() {
        let text = "# SPDX header\n#\n6\to32\tclose\t\t\tsys_close\n# 7 was sys_waitpid\n18\to32\tunused18\t\tsys_ni_syscall\n82\to32\treserved82\t\tsys_ni_syscall\n\n8\to32\tcreat\t\t\tsys_creat # trailing comment\n";
        let a = import(text, &["o32"]).unwrap();
        assert_eq!(a.syscalls.keys().collect::<Vec<_>>(), ["close", "creat"]);
        assert!(a.unimplemented.is_empty());
    }

    #[test]
    fn a_placeholder_name_with_a_real_entry_point_is_a_syscall() {
        // mips o32: the kernel wires these two "unused" rows to working calls.
        let text =
            "59\to32\tunused59\t\t\tsys_olduname\n60\to32\tumask\t\t\tsys_umask\n108\to32\tunused108\n109\to32\tunused109\t\t\tsys_uname\n";
        let a = import(text, &["o32"]).unwrap();
        assert_eq!(a.syscalls.keys().collect::<Vec<_>>(), ["umask", "unused109", "unused59"]);
        assert!(a.unimplemented.is_empty());
    }

    #[test]
    fn whitespace_variations_are_accepted() {
        // powerpc mixes tabs and spaces; some rows have trailing blanks.
        let text = "0\tnospu\trestart_syscall\t\t\tsys_restart_syscall\n1 \t common  exit   sys_exit  \n  2\tnospu\tfork\t\t\t\tsys_fork\n3   32   read   sys_read\n";
        let a = import(text, &["common", "nospu", "64"]).unwrap();
        assert_eq!(a.syscalls.keys().collect::<Vec<_>>(), ["exit", "fork", "restart_syscall"]);
    }

    #[test]
    fn bad_rows_are_all_reported_with_file_and_line() {
        let text =
            "0\tcommon\tread\tsys_read\nx1\tcommon\twrite\tsys_write\n2\tcommon\n3\tcommon\tread\tsys_read\n0\tcommon\topen\tsys_open\n";
        let err = import(text, &["common"]).unwrap_err();
        let msgs: Vec<String> = err.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs[0].starts_with("k/syscall.tbl:2: bad syscall number `x1`"), "{msgs:?}");
        assert!(msgs[1].starts_with("k/syscall.tbl:3: bad syscall table row"), "{msgs:?}");
        assert_eq!(msgs[2], "k/syscall.tbl:4: syscall `read` numbered twice for tags [common]: 0 and 3");
        assert_eq!(msgs[3], "k/syscall.tbl:5: number 0 of `open` is already taken by `read` (line 1) for tags [common]");
    }

    /// s390 before 7.x: `<entry-64bit> <compat-entry>`, `-` where an ABI has none; the
    /// 31-bit ABI runs only as compat, so its entry points are the compat column.
    #[test]
    fn a_dash_is_no_entry_point_and_compat_abis_read_the_compat_column() {
        let text = "89\tcommon\treaddir\t-\tcompat_sys_old_readdir\n137\tcommon\tafs_syscall\t-\t-\n16\t32\tlchown\t-\tsys_lchown16\n1\tcommon\texit\tsys_exit\n";
        let (mut errors, tags) = (Errors::default(), vec!["common".to_string(), "32".to_string()]);
        let rows = parse(Path::new("t"), text, &mut errors);
        let mut native = Imported::default();
        select(Path::new("t"), &rows, &tags, false, &mut native, &mut errors);
        assert_eq!(native.unimplemented.iter().map(String::as_str).collect::<Vec<_>>(), ["afs_syscall", "lchown", "readdir"]);
        let mut compat = Imported::default();
        select(Path::new("t"), &rows, &tags, true, &mut compat, &mut errors);
        assert_eq!(compat.unimplemented.iter().map(String::as_str).collect::<Vec<_>>(), ["afs_syscall"]);
        assert!(errors.is_empty());
    }

    #[test]
    fn rows_of_other_tags_do_not_conflict() {
        let text = "4\ttime32\tio_getevents\tsys_io_getevents_time32\n4\t64\tio_getevents\tsys_io_getevents\n";
        assert_eq!(import(text, &["common", "64"]).unwrap().syscalls.get("io_getevents"), Some(&4));
        assert_eq!(import(text, &["common", "32"]).unwrap().syscalls.len(), 0);
    }
}
