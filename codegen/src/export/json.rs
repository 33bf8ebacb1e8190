//! ABIs, tables' provenance, the policy's faked numbers per ABI and the program, as JSON for tooling.

use crate::filter::Filter;
use crate::table::Endian;
use serde_json::json;

/// ABIs, tables' provenance, the policy's faked numbers per ABI and the program, as JSON.
pub fn json(f: &Filter) -> String {
    let abis: Vec<_> = f
        .tables
        .abis
        .iter()
        .map(|a| {
            let handled: serde_json::Map<String, serde_json::Value> =
                f.policy.names().into_iter().filter_map(|n| a.nr(n).map(|nr| (n.to_string(), json!(nr)))).collect();
            json!({
                "name": a.name,
                "audit_arch": a.audit_arch,
                "endian": if a.endian == Endian::Big { "big" } else { "little" },
                "nr_base": a.nr_base,
                "kernel": a.kernel(),
                "source": a.source.as_ref().map(|s| json!({"file": s.file, "tags": s.tags})),
                "syscalls": a.syscalls.len(),
                "policy_numbers": handled,
            })
        })
        .collect();
    let program: Vec<_> = f.program.iter().map(|i| json!([i.code, i.jt, i.jf, i.k])).collect();
    let value = json!({
        "policy": f.policy.name,
        "kernel": f.kernel(),
        "abis": abis,
        "instructions": f.program.len(),
        "program": program,
    });
    serde_json::to_string_pretty(&value).expect("JSON values serialize") + "\n"
}
