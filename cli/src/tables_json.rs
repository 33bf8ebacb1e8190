//! `--format json` of `rootemu tables check|diff|show`: the same facts as the text, as one
//! object for scripts.

use crate::tables::Review;
use rootemu_codegen::import::TablesDiff;
use rootemu_codegen::{Errors, Policy, Tables};
use serde_json::{Value, json};
use std::path::Path;

/// `tables check`: the counts and the policies' names when everything loads, else every error with its file and line.
pub(crate) fn check(dir: &Path, result: &Result<(Tables, Vec<Policy>), Errors>) -> Value {
    match result {
        Ok((t, policies)) => {
            let mut kernels: Vec<&str> = t.abis.iter().map(|a| a.kernel()).collect();
            kernels.sort_unstable();
            kernels.dedup();
            json!({
                "tables": dir,
                "ok": true,
                "abis": t.abis.len(),
                "syscalls": t.abis.iter().map(|a| a.syscalls.len()).sum::<usize>(),
                "kernels": kernels,
                "policies": policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            })
        }
        Err(e) => json!({
            "tables": dir,
            "ok": false,
            "errors": e.0.iter().map(|d| json!({ "file": d.file, "line": d.line, "message": d.message })).collect::<Vec<_>>(),
        }),
    }
}

/// `tables diff`: per ABI what was added, removed, renumbered or (un)wired, and what each
/// policy must review.
pub(crate) fn diff(d: &TablesDiff, reviews: &[Review]) -> Value {
    let pairs = |v: &[(String, u32)]| v.iter().map(|(n, nr)| json!({ "name": n, "nr": nr })).collect::<Vec<_>>();
    let abis: Vec<Value> = d
        .abis
        .iter()
        .map(|a| {
            json!({
                "abi": a.abi,
                "kernels": { "old": a.kernels.0, "new": a.kernels.1 },
                "added": pairs(&a.added),
                "removed": pairs(&a.removed),
                "renumbered": a.renumbered.iter().map(|(n, o, new)| json!({ "name": n, "old": o, "new": new })).collect::<Vec<_>>(),
                "now_unimplemented": a.now_unimplemented,
                "now_implemented": a.now_implemented,
            })
        })
        .collect();
    let policies: Vec<Value> = reviews
        .iter()
        .map(|r| {
            json!({
                "policy": r.policy.name,
                "file": r.label,
                "review": r.needed(),
                "policy_changes": r.changes,
                "changed": r.changed,
                "similar": r.similar.iter().map(|(n, like)| json!({ "name": n, "like": like })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "added_abis": d.added_abis, "removed_abis": d.removed_abis, "abis": abis, "policies": policies })
}

/// `tables show`: the ABIs in order, and per policy name its number on each ABI (`null`
/// where the ABI lacks it) and whether the rule looks at arguments.
pub(crate) fn show(tables: &Tables, policy: &Policy) -> Value {
    let names = policy.names();
    let syscalls: Vec<Value> = names
        .iter()
        .map(|n| {
            let numbers: serde_json::Map<String, Value> = tables.abis.iter().map(|a| (a.name.clone(), json!(a.nr(n)))).collect();
            json!({ "name": n, "looks_at_args": policy.looks_at_args(n), "numbers": numbers })
        })
        .collect();
    json!({
        "policy": policy.name,
        "abis": tables.abis.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        "syscalls": syscalls,
    })
}
