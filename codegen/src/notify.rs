//! What a filter's supervisor must know: for every `(AUDIT_ARCH, number)` the program may
//! hand to it (`notify`), the syscall, its signature, and its ABI's facts (16-bit ids,
//! struct layout, byte order). Built from the tables alone, for the ABIs of the filter.

use crate::bpf::Action;
use crate::diag::{Diagnostic, Errors};
use crate::policy::Policy;
use crate::shared::{Layout, Op, Signature};
use crate::table::{Endian, Tables};

/// One syscall of one ABI that the program may hand to the supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notified {
    /// The ABI's name.
    pub abi: String,
    /// Its AUDIT_ARCH.
    pub audit_arch: u32,
    /// The number seccomp sees (`nr_base` included).
    pub nr: u32,
    /// The syscall's name.
    pub name: String,
    /// What its arguments are.
    pub signature: Signature,
    /// Its user and group ids are 16-bit (`0xffff` = unchanged).
    pub id16: bool,
    /// For stat and statx: the layout of the struct it writes on this ABI.
    pub layout: Option<Layout>,
    /// Byte order of the ABI's structs.
    pub endian: Endian,
}

/// Every syscall `policy` may notify, on every ABI of `tables`, in (AUDIT_ARCH, nr) order,
/// but the ABI's `unimplemented` ones. A notified syscall without a signature, or a stat
/// call whose struct has no layout on an ABI that implements the call, is an error (all of
/// them at once).
pub fn plan(tables: &Tables, policy: &Policy) -> Result<Vec<Notified>, Errors> {
    let mut errors = Errors::default();
    let mut out = Vec::new();
    let sigs = &tables.shared.signatures;
    let sig_file = crate::shared::SIGNATURES_FILE;
    for rule in policy.rules.iter().filter(|r| r.action == Action::Notify) {
        for name in &rule.syscalls {
            if !sigs.contains_key(name) {
                errors.push(Diagnostic::at(
                    &policy.file,
                    rule.line,
                    format!("syscall `{name}` is notified, but {sig_file} has no signature for it (what its arguments are)"),
                ));
            }
        }
    }
    for abi in &tables.abis {
        for (name, n) in &abi.syscalls {
            // A name without an entry point (ppc64's oldstat) needs no answer: the
            // supervisor lets the kernel fail it (ENOSYS), as without rootemu.
            if !policy.rules_for(name).any(|r| r.action == Action::Notify) || abi.unimplemented.contains(name) {
                continue;
            }
            let Some(signature) = sigs.get(name) else { continue };
            let layout = match &signature.struct_name {
                None => None,
                Some(st) => match abi.structs.get(st).and_then(|l| tables.shared.layouts.get(l)).or_else(|| tables.shared.universal(st)) {
                    Some(l) => Some(l.clone()),
                    None => {
                        let why = match abi.structs.get(st) {
                            Some(l) => format!("its layout `{l}` is not in the tables' {}", crate::shared::LAYOUTS_FILE),
                            None => format!("the ABI names no layout for struct `{st}` (`structs:`)"),
                        };
                        errors.push(Diagnostic::at(
                            &abi.file,
                            abi.lines.top_key("structs").or(abi.lines.top_key("abi")),
                            format!(
                                "ABI `{}`: `{name}` is notified by policy `{}`, but {why}, so its stat results cannot be written",
                                abi.name, policy.name
                            ),
                        ));
                        continue;
                    }
                },
            };
            out.push(Notified {
                abi: abi.name.clone(),
                audit_arch: abi.audit_arch,
                nr: abi.nr_base + n,
                name: name.clone(),
                signature: signature.clone(),
                id16: abi.id16.contains(name) && signature.op == Op::Chown,
                layout,
                endian: abi.endian,
            });
        }
    }
    out.sort_by_key(|n| (n.audit_arch, n.nr));
    errors.into_result(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn tables(extra_header: &str) -> Tables {
        let x86 = crate::table::tests::X86_64.replace("endian: little\n", &format!("endian: little\n{extra_header}"));
        let x86 = x86.replace("  setuid: 105\n", "  setuid: 105\n  stat: 4\n  fchownat: 260\n");
        let sigs = "signatures:\n  fchownat: {op: chown, args: [dirfd, path, uid, gid, at_flags]}\n  stat: {op: stat, struct: stat, args: [path, buf]}\n";
        let lay = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables/shared/struct-layouts.yaml")).unwrap();
        Tables::parse([
            (Path::new("x86_64.yaml"), x86.as_str()),
            (Path::new("shared/syscall-args.yaml"), sigs),
            (Path::new("shared/struct-layouts.yaml"), lay.as_str()),
        ])
        .unwrap()
    }

    const POLICY: &str =
        "policy: p\ndefault: allow\nunknown_abi: kill_process\nrules:\n  - action: notify\n    syscalls: [fchownat, stat, chown]\n";

    #[test]
    fn the_plan_names_each_notified_number_with_its_layout() {
        let t = tables("structs: {stat: stat.x86_64}\n");
        let p = Policy::parse(Path::new("p.yaml"), &POLICY.replace(", chown]", "]"), &t).unwrap();
        let plan = plan(&t, &p).unwrap();
        let names: Vec<(&str, u32)> = plan.iter().map(|n| (n.name.as_str(), n.nr)).collect();
        assert_eq!(names, [("stat", 4), ("fchownat", 260)]);
        assert_eq!(plan[0].layout.as_ref().map(|l| l.name.as_str()), Some("stat.x86_64"));
        assert!(plan[1].layout.is_none() && !plan[1].id16);
    }

    #[test]
    fn the_bundled_consistent_policy_plans_on_every_bundled_abi() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables");
        let t = Tables::load_dir(&dir).unwrap();
        let p = Policy::load(&dir.join("policy/consistent.yaml"), &t).unwrap();
        let plan = plan(&t, &p).unwrap();
        for abi in &t.abis {
            assert!(plan.iter().any(|n| n.abi == abi.name && n.signature.op == Op::Statx), "{}: no statx in the plan", abi.name);
        }
    }

    #[test]
    fn a_missing_layout_and_a_missing_signature_are_errors() {
        let t = tables("");
        let p = Policy::parse(Path::new("p.yaml"), POLICY, &t).unwrap();
        let e = plan(&t, &p).unwrap_err().to_string();
        assert!(e.contains("p.yaml:5: syscall `chown` is notified, but shared/syscall-args.yaml has no signature"), "{e}");
        assert!(
            e.contains("x86_64.yaml:1: ABI `x86_64`: `stat` is notified by policy `p`, but the ABI names no layout for struct `stat`"),
            "{e}"
        );
    }
}
