//! The generic syscall table's ABI tags and file, as `scripts/Makefile.asm-headers` and
//! the arch's `kernel/Makefile.syscalls` set them (6.11+ trees).
//!
//! Only the two variables the kernel build uses are read: `syscall_abis_<bits>`
//! (`+=`, `:=`, `=`; values separated by commas or blanks) and `syscalltbl` (`%` is
//! replaced by the ABI's bits, as make's pattern rule does).

use crate::diag::{Diagnostic, Errors};
use std::path::Path;

/// What a Makefile sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vars {
    /// The ABI tags for the requested bits, in order, without duplicates.
    pub tags: Vec<String>,
    /// The table, relative to the tree (`scripts/syscall.tbl`), with `%` replaced.
    pub table: Option<String>,
}

/// Applies the assignments of one Makefile (`file` is only used in diagnostics).
pub(crate) fn apply(vars: &mut Vars, file: &Path, text: &str, bits: u32, errors: &mut Errors) {
    let abis = format!("syscall_abis_{bits}");
    let mut logical = String::new();
    let mut first_line = 0;
    for (i, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            first_line = i + 1;
        }
        let line = raw.split('#').next().unwrap_or_default();
        if let Some(l) = line.strip_suffix('\\') {
            logical.push_str(l);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let stmt = std::mem::take(&mut logical);
        let Some((var, op, value)) = assignment(&stmt) else { continue };
        if var == abis {
            if op != "+=" {
                vars.tags.clear();
            }
            for t in value.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
                if t.contains('$') {
                    errors.push(Diagnostic::at(file, Some(first_line), format!("cannot evaluate `{t}` in {var}")));
                } else if !vars.tags.iter().any(|x| x == t) {
                    vars.tags.push(t.to_string());
                }
            }
        } else if var == "syscalltbl" {
            let v = value.trim();
            let v = v.strip_prefix("$(srctree)/").unwrap_or(v);
            if v.contains('$') || v.is_empty() {
                errors.push(Diagnostic::at(file, Some(first_line), format!("cannot evaluate syscalltbl `{v}`")));
            } else {
                vars.table = Some(v.replace('%', &bits.to_string()));
            }
        }
    }
}

/// `var op value` for `=`, `:=`, `+=`, `?=` assignments; directives are not assignments.
fn assignment(stmt: &str) -> Option<(&str, &str, &str)> {
    let eq = stmt.find('=')?;
    let (lhs, value) = (&stmt[..eq], &stmt[eq + 1..]);
    let (var, op) = match lhs.trim_end().chars().last()? {
        '+' => (&lhs.trim_end()[..lhs.trim_end().len() - 1], "+="),
        ':' => (&lhs.trim_end()[..lhs.trim_end().len() - 1], ":="),
        '?' => (&lhs.trim_end()[..lhs.trim_end().len() - 1], "?="),
        _ => (lhs, "="),
    };
    let var = var.trim();
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return None;
    }
    Some((var, op, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &str = "syscall_abis_32  += common,32\nsyscall_abis_64  += common,64\nsyscalltbl := $(srctree)/scripts/syscall.tbl\nsyshdr-args := --emit-nr\n-include $(srctree)/arch/$(SRCARCH)/kernel/Makefile.syscalls\n";

    fn vars(arch: &str, bits: u32) -> Vars {
        let mut v = Vars::default();
        let mut e = Errors::default();
        apply(&mut v, Path::new("scripts/Makefile.asm-headers"), HEADERS, bits, &mut e);
        apply(&mut v, Path::new("arch/x/kernel/Makefile.syscalls"), arch, bits, &mut e);
        assert!(e.is_empty(), "{e}");
        v
    }

    #[test]
    fn tags_come_from_both_makefiles() {
        let riscv = "# SPDX\n\nsyscall_abis_32 += riscv memfd_secret\nsyscall_abis_64 += riscv rlimit memfd_secret\n";
        let v = vars(riscv, 64);
        assert_eq!(v.tags, ["common", "64", "riscv", "rlimit", "memfd_secret"]);
        assert_eq!(v.table.as_deref(), Some("scripts/syscall.tbl"));
        assert_eq!(vars(riscv, 32).tags, ["common", "32", "riscv", "memfd_secret"]);
    }

    #[test]
    fn empty_additions_and_table_override() {
        let arm64 = "syscall_abis_32 +=\nsyscall_abis_64 += renameat rlimit memfd_secret\n\nsyscalltbl = arch/arm64/tools/syscall_%.tbl\n";
        let v = vars(arm64, 64);
        assert_eq!(v.tags, ["common", "64", "renameat", "rlimit", "memfd_secret"]);
        assert_eq!(v.table.as_deref(), Some("arch/arm64/tools/syscall_64.tbl"));
        let loong = "# No special ABIs on loongarch so far\nsyscall_abis_64 +=\n";
        assert_eq!(vars(loong, 64).tags, ["common", "64"]);
    }

    #[test]
    fn plain_assignment_replaces_and_unknown_variables_are_errors() {
        let mut v = Vars::default();
        let mut e = Errors::default();
        apply(
            &mut v,
            Path::new("M"),
            "syscall_abis_32 += common,32\nsyscall_abis_32 := a \\\n  b\nsyscall_abis_32 += $(FOO)\n",
            32,
            &mut e,
        );
        assert_eq!(v.tags, ["a", "b"]);
        assert_eq!(e.to_string(), "M:4: cannot evaluate `$(FOO)` in syscall_abis_32");
    }
}
