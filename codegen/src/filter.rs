//! A verified filter: tables + policy compiled, checked by the verifier and proved by simulation.

use crate::bpf::Insn;
use crate::diag::Errors;
use crate::notify::{self, Notified};
use crate::policy::Policy;
use crate::proof::{self, Proof};
use crate::table::{Loaded, Tables};
use crate::{compile, disasm, verifier};
use std::path::Path;

/// The inputs of a filter: a tables directory, a policy file, optionally a subset of ABIs.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// Directory of `<abi>.yaml` files.
    pub tables: &'a Path,
    /// Policy file.
    pub policy: &'a Path,
    /// Only these ABIs (all when empty).
    pub abis: &'a [String],
}

/// A program that passed the verifier and the proof, with what it was built from.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The ABIs covered.
    pub tables: Tables,
    /// The policy implemented.
    pub policy: Policy,
    /// The BPF program.
    pub program: Vec<Insn>,
    /// What the proof checked.
    pub proof: Proof,
    /// The syscalls the program hands to a supervisor (`notify`), per ABI; empty when
    /// the policy notifies nothing.
    pub notified: Vec<Notified>,
}

/// The result of [`Filter::build_per_target`].
#[derive(Clone, Debug)]
pub struct PerTarget {
    /// `(Rust target_arch values, the filter over the ABIs their kernels deliver)`.
    pub groups: Vec<(Vec<String>, Filter)>,
    /// Every ABI: for a `target_arch` that no group names.
    pub all: Filter,
}

/// The result of [`Filter::build_groups`].
#[derive(Debug)]
pub struct Groups {
    /// `(Rust target_arch values, the filter over the ABIs their kernels deliver, or why not)`.
    pub groups: Vec<(Vec<String>, Result<Filter, Errors>)>,
    /// Every ABI, or why not.
    pub all: Result<Filter, Errors>,
}

impl Filter {
    /// Loads, validates, compiles, verifies and proves; every error found is returned:
    /// table and policy errors together.
    pub fn build(inputs: &Inputs) -> Result<Filter, Errors> {
        Filter::from_policy_file(Tables::load_dir_lenient(inputs.tables), inputs.policy, inputs.abis)
    }

    /// Loads the policy file and selects `abis` (all when empty) of tables already loaded,
    /// then compiles, verifies and proves; every error found is returned.
    pub fn with_tables(tables: &Tables, policy: &Path, abis: &[String]) -> Result<Filter, Errors> {
        let loaded = Loaded { tables: tables.clone(), errors: Errors::default(), complete: true };
        Filter::from_policy_file(loaded, policy, abis)
    }

    fn from_policy_file(tables: Loaded, policy: &Path, abis: &[String]) -> Result<Filter, Errors> {
        match crate::files::read_yaml(policy, "policy") {
            Ok(text) => Filter::from_loaded(tables, Ok((policy, &text)), abis),
            Err(e) => Filter::from_loaded(tables, Err(e.into()), abis),
        }
    }

    /// Builds from file texts already in memory: `(path, text)` of each ABI table and of
    /// the policy (used for the tables bundled into a binary).
    pub fn from_texts(tables: &[(&Path, &str)], policy: (&Path, &str), abis: &[String]) -> Result<Filter, Errors> {
        Filter::from_loaded(Tables::parse_lenient(tables.iter().copied()), Ok(policy), abis)
    }

    /// Checks the policy against the tables even when the tables have errors (its names
    /// only when every table file parsed), so that all errors show at once.
    fn from_loaded(tables: Loaded, policy: Result<(&Path, &str), Errors>, abis: &[String]) -> Result<Filter, Errors> {
        let known = tables.complete.then(|| crate::policy::known_names(&tables.tables));
        let policy = policy.and_then(|(path, text)| Policy::parse_names(path, text, known.as_ref()));
        let mut errors = tables.errors;
        // With tables that did not all load, an --abi name may be missing for that reason alone.
        let selected = match (abis.is_empty(), tables.complete) {
            (true, _) => Ok(tables.tables),
            (false, true) => tables.tables.select(abis),
            (false, false) => Ok(Tables::default()),
        };
        match (errors.is_empty(), policy, selected) {
            (true, Ok(p), Ok(t)) => Filter::from_parts(t, p),
            (_, p, t) => {
                errors.0.extend(p.err().into_iter().chain(t.err()).flat_map(|e| e.0));
                Err(errors)
            }
        }
    }

    /// Builds from `(name, text)` pairs as `rootemu::bundled_sources!()` gives them: every
    /// top-level `*.yaml` is an ABI table, `shared/*.yaml` the shared facts, `policy` names the policy among them (e.g.
    /// `policy/root-emulation.yaml`). Paths in errors are `tables/<name>`.
    pub fn from_sources(sources: &[(&str, &str)], policy: &str, abis: &[String]) -> Result<Filter, Errors> {
        let path = |name: &str| Path::new("tables").join(name);
        let tables: Vec<(std::path::PathBuf, &str)> = sources
            .iter()
            .filter(|(name, _)| !name.contains('/') || name.starts_with("shared/"))
            .map(|(name, text)| (path(name), *text))
            .collect();
        let Some((_, policy_text)) = sources.iter().find(|(name, _)| *name == policy) else {
            return Err(Errors::from(crate::diag::Diagnostic::bare(format!("no policy `{policy}` among the sources"))));
        };
        let tables: Vec<(&Path, &str)> = tables.iter().map(|(p, t)| (p.as_path(), *t)).collect();
        Filter::from_texts(&tables, (&path(policy), policy_text), abis)
    }

    /// The filters a binary chooses from by its Rust `target_arch` at compile time: one per
    /// group of [`Tables::by_rust_arch`] (that group's ABIs), and one over every ABI for
    /// targets no table names. Every program is verified and proved; all errors at once.
    pub fn build_per_target(inputs: &Inputs) -> Result<PerTarget, Errors> {
        let all = Filter::build(inputs)?;
        let mut errors = Errors::default();
        let mut groups = Vec::new();
        for (arches, abis) in all.tables.by_rust_arch() {
            match all.tables.select(&abis).and_then(|t| Filter::from_parts(t, all.policy.clone())) {
                Ok(f) => groups.push((arches, f)),
                Err(e) => errors.0.extend(e.0),
            }
        }
        errors.into_result(PerTarget { groups, all })
    }

    /// Like [`Filter::build_per_target`], but one group failing does not fail the others:
    /// `Err` only when the inputs do not load; each group (and the all-ABI filter) carries
    /// its own result. For policies some ABIs cannot serve (consistent mode needs struct
    /// layouts), so that a binary fails at run time on those, not at build time on all.
    pub fn build_groups(tables: &Tables, policy: &Path, abis: &[String]) -> Result<Groups, Errors> {
        let policy = Policy::load(policy, tables);
        let selected = if abis.is_empty() { Ok(tables.clone()) } else { tables.select(abis) };
        let (policy, tables) = match (policy, selected) {
            (Ok(p), Ok(t)) => (p, t),
            (p, t) => return Err(Errors(p.err().into_iter().chain(t.err()).flat_map(|e| e.0).collect())),
        };
        let groups = tables
            .by_rust_arch()
            .into_iter()
            .map(|(arches, abis)| {
                let f = tables.select(&abis).and_then(|t| Filter::from_parts(t, policy.clone()));
                (arches, f)
            })
            .collect();
        Ok(Groups { groups, all: Filter::from_parts(tables, policy) })
    }

    /// Compiles, verifies and proves already loaded inputs.
    pub fn from_parts(tables: Tables, policy: Policy) -> Result<Filter, Errors> {
        let program = compile::compile(&tables, &policy)?;
        verifier::verify(&program)?;
        let proof = proof::prove(&program, &tables, &policy)?;
        let notified = notify::plan(&tables, &policy)?;
        Ok(Filter { tables, policy, program, proof, notified })
    }

    /// The symbolic listing, with labels (what `rootemu filter dump` prints and the golden
    /// file holds).
    pub fn listing(&self) -> String {
        disasm::labelled(&self.program, &self.tables)
    }

    /// The kernel release of the tables (all ABIs), e.g. `6.12.117`, or a list when they differ.
    pub fn kernel(&self) -> String {
        let mut k: Vec<&str> = self.tables.abis.iter().map(|a| a.kernel()).collect();
        k.sort_unstable();
        k.dedup();
        k.join(", ")
    }
}
