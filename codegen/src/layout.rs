//! Program variants for comparison only (`rootemu bench`): Charliecloud's linear layout
//! of the same policy, and a variant the kernel's action cache cannot skip.

use crate::bpf::{Action, Insn, data, op};
use crate::compile::{self, Layout};
use crate::diag::Errors;
use crate::policy::Policy;
use crate::proof::{self, Proof};
use crate::table::{Abi, Tables};
use crate::verifier;

/// A Charliecloud-layout program ([`Layout::Linear`]) for `policy` over `tables`, with
/// `host_last`'s AUDIT_ARCH compared last; verified and proved like the real program.
pub fn linear(tables: &Tables, policy: &Policy, host_last: &str) -> Result<(Vec<Insn>, Proof), Errors> {
    let program = compile::compile_with(tables, policy, &Layout::Linear { host_last: host_last.to_string() })?;
    verifier::verify(&program)?;
    let proof = proof::prove(&program, tables, policy)?;
    Ok((program, proof))
}

/// `prog` with `ld [args[0]]` prepended: every path reads an argument, so no number is
/// action-cache eligible (the verdicts are unchanged: the load is overwritten before use).
/// Verified; not proved, since the proof requires cache eligibility of every allowed number.
pub fn uncacheable(prog: &[Insn]) -> Result<Vec<Insn>, Errors> {
    let mut out = Vec::with_capacity(prog.len() + 1);
    out.push(Insn::new(op::LD | op::W | op::ABS, 0, 0, data::ARGS));
    out.extend_from_slice(prog);
    verifier::verify(&out)?;
    Ok(out)
}

/// How many numbers of `abi` the kernel's action cache would let through without running
/// `prog` (numbers from the ABI's base over its table range, with `sim::const_path`).
pub fn cacheable_numbers(prog: &[Insn], abi: &Abi) -> usize {
    (abi.nr_base..abi.nr_base + abi.nr_limit)
        .filter(|nr| crate::sim::const_path(prog, abi.audit_arch, *nr).is_some_and(|o| o.ret == Action::Allow.to_ret()))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{self, SeccompData};

    fn inputs() -> (Tables, Policy) {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let tables = Tables::load_dir(&fixtures.join("tables")).unwrap().select(&["x86_64".into(), "x32".into(), "i386".into()]).unwrap();
        let policy = Policy::load(&fixtures.join("root-emulation.yaml"), &tables).unwrap();
        (tables, policy)
    }

    #[test]
    fn linear_layout_is_proved_and_checks_the_host_last() {
        let (tables, policy) = inputs();
        let (prog, proof) = linear(&tables, &policy, "x86_64").unwrap();
        assert!(proof.abis.iter().all(|a| a.cacheable > 0));
        // ld [arch]; jeq i386; jeq x86_64 (host last).
        let x86_64 = tables.get("x86_64").unwrap().audit_arch;
        assert_eq!(prog[2].k, x86_64);
        let fchown = SeccompData { nr: tables.get("x86_64").unwrap().nr("fchown").unwrap(), arch: x86_64, ..Default::default() };
        assert_eq!(sim::run(&prog, &fchown).unwrap().ret, Action::Errno(0).to_ret());
    }

    #[test]
    fn uncacheable_variant_has_no_cacheable_number() {
        let (tables, policy) = inputs();
        let (prog, _) = linear(&tables, &policy, "x86_64").unwrap();
        let u = uncacheable(&prog).unwrap();
        for abi in &tables.abis {
            assert!(cacheable_numbers(&prog, abi) > 0);
            assert_eq!(cacheable_numbers(&u, abi), 0);
        }
    }
}
