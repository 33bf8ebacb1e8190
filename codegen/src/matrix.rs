//! The syscall x ABI matrix a reviewer reads: which number each policy name has on each ABI.

use crate::policy::Policy;
use crate::table::Tables;

/// A markdown table: one row per syscall the policy names, one column per ABI; a cell is
/// the number seccomp sees (hex when >= 0x10000), `-` where the ABI lacks the name.
/// Rows whose rule looks at arguments are marked `*`.
pub fn policy_matrix(tables: &Tables, policy: &Policy) -> String {
    let names = policy.names();
    let mut out = String::from("| syscall |");
    for a in &tables.abis {
        out.push_str(&format!(" {} |", a.name));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(tables.abis.len()));
    out.push('\n');
    for name in &names {
        let mark = if policy.looks_at_args(name) { "*" } else { "" };
        out.push_str(&format!("| {name}{mark} |"));
        for a in &tables.abis {
            let cell = match a.nr(name) {
                Some(nr) if nr >= 0x10000 => format!("{nr:#x}"),
                Some(nr) => nr.to_string(),
                None => "-".into(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    let covered = |a: &crate::table::Abi| names.iter().filter(|n| a.syscalls.contains_key(**n)).count();
    out.push_str("| **names present** |");
    for a in &tables.abis {
        out.push_str(&format!(" {} |", covered(a)));
    }
    out.push_str(&format!(
        "\n\nPolicy `{}`: {} names; `*` = only for some arguments (see the policy); `-` = the ABI has no such syscall, so the program has no compare for it.\n",
        policy.name,
        names.len()
    ));
    out
}
