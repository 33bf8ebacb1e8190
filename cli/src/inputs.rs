//! Where a command's tables and policy come from: files given on the command line, or the
//! tables and policies bundled into this binary at build time (root-emulation unless a
//! command names another).

use clap::Args;
use rootemu_codegen::{Filter, Inputs, files};
use std::path::{Path, PathBuf};

/// The bundled `(file name, text)` pairs; policies are `policy/<file>`.
pub(crate) const BUNDLED: &[(&str, &str)] = rootemu::bundled_sources!();
/// The bundled policy commands use by default.
pub(crate) const BUNDLED_POLICY: &str = "policy/root-emulation.yaml";

/// `--tables`, `--policy`, `--abi`.
#[derive(Args, Clone, Debug)]
pub(crate) struct FilterInputs {
    /// Directory of ABI tables (default: the tables bundled into rootemu).
    #[arg(long, value_name = "DIR")]
    tables: Option<PathBuf>,
    /// Policy file (default: the bundled root-emulation policy, also with --tables).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Only these ABIs (repeatable; default: every ABI of the tables).
    #[arg(long = "abi", value_name = "ABI")]
    abis: Vec<String>,
    /// The bundled policy used when --policy is not given (a `policy/<file>` of [`BUNDLED`]).
    #[arg(skip = BUNDLED_POLICY.to_string())]
    bundled_policy: String,
}

impl FilterInputs {
    /// The same inputs restricted to these ABIs (all when empty).
    pub(crate) fn with_abis(mut self, abis: Vec<String>) -> Self {
        self.abis = abis;
        self
    }

    /// The same inputs with the bundled policy called `name` (by its `policy:` name, as a
    /// program's record gives it) when --policy is not given and such a policy is bundled.
    pub(crate) fn with_bundled_policy_named(mut self, name: &str) -> Self {
        let file = format!("policy/{name}.yaml");
        if BUNDLED.iter().any(|(n, _)| *n == file) {
            self.bundled_policy = file;
        }
        self
    }

    /// The ABIs chosen with --abi, in the order given.
    pub(crate) fn abi_order(&self) -> &[String] {
        &self.abis
    }

    /// Whether ABIs were chosen with --abi.
    pub(crate) fn abis_given(&self) -> bool {
        !self.abis.is_empty()
    }

    /// Builds and proves the filter, or returns every error as text. A missing `--tables`
    /// or `--policy` is the bundled one, whichever the other is.
    pub(crate) fn build(&self) -> Result<Filter, String> {
        let built = match (&self.tables, &self.policy) {
            (None, None) => Filter::from_sources(BUNDLED, &self.bundled_policy, &self.abis),
            (Some(tables), Some(policy)) => Filter::build(&Inputs { tables, policy, abis: &self.abis }),
            (tables, policy) => {
                let (bundled_tables, bundled_policy) = bundled_files(&self.bundled_policy);
                let is_shared = |p: &Path| rootemu_codegen::shared::Shared::is_shared_file(p);
                let mut dir_texts = Vec::new();
                if let Some(dir) = tables {
                    dir_texts = files::yaml_texts(dir).map_err(|e| e.to_string())?;
                    let (shared, unread) = rootemu_codegen::table::shared_texts(dir);
                    unread.into_result(()).map_err(|e| e.to_string())?;
                    dir_texts.extend(shared);
                }
                let mut tables: Vec<(&Path, &str)> = dir_texts.iter().map(|(p, t)| (p.as_path(), t.as_str())).collect();
                // No --tables: every bundled table file. A directory of ABI files only gets
                // the bundled shared files (syscall signatures, struct layouts), as it gets
                // the bundled policy.
                let whole = tables.is_empty();
                if whole || !tables.iter().any(|(p, _)| is_shared(p)) {
                    tables.extend(bundled_tables.iter().filter(|(p, _)| whole || is_shared(p)).map(|(p, t)| (p.as_path(), *t)));
                }
                let policy_text = match policy {
                    Some(p) => Some((p.clone(), files::read_yaml(p, "policy").map_err(|e| e.to_string())?)),
                    None => None,
                };
                let policy = match &policy_text {
                    Some((p, t)) => (p.as_path(), t.as_str()),
                    None => (bundled_policy.0.as_path(), bundled_policy.1),
                };
                Filter::from_texts(&tables, policy, &self.abis)
            }
        };
        built.map_err(|e| e.to_string())
    }
}

/// The bundled files under `tables/`: the ABI tables (and shared files), and the policy
/// `policy` (a `policy/<file>` of [`BUNDLED`]).
pub(crate) fn bundled_files(policy_file: &str) -> (Vec<(PathBuf, &'static str)>, (PathBuf, &'static str)) {
    let (mut tables, mut policy) = (Vec::new(), None);
    for (name, text) in BUNDLED {
        let path = Path::new("tables").join(name);
        if *name == policy_file {
            policy = Some((path, *text));
        } else if !name.starts_with("policy/") {
            tables.push((path, *text));
        }
    }
    (tables, policy.expect("the bundled policy is compiled in"))
}
