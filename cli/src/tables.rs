//! `rootemu tables ...`: import tables from a kernel tree, check them, compare two sets,
//! show a policy's syscall x ABI matrix.

use crate::inputs::FilterInputs;
use crate::output::{OutputFormat, print_json};
use crate::tables_json;
use clap::Subcommand;
use rootemu_codegen::{Errors, Policy, Tables, files, import, matrix};
use std::path::{Path, PathBuf};

/// `rootemu tables` subcommands.
#[derive(Subcommand)]
pub(crate) enum TablesCmd {
    /// Regenerate `source`, `syscalls` and `unimplemented` of every ABI file from a kernel tree.
    Import {
        /// The kernel source tree (e.g. extracted from Debian's linux-source-6.12).
        #[arg(long)]
        kernel: PathBuf,
        /// The tables directory whose ABI headers say what to import.
        #[arg(long, default_value = "tables")]
        tables: PathBuf,
        /// Where to write `<abi>.yaml` (default: the --tables directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Accept that syscall NAME of ABI changed its number (ABI:NAME, or ABI:* for every
        /// syscall of the ABI; repeatable). Linux never renumbers a syscall of a living ABI,
        /// so without it any renumbering refuses the import.
        #[arg(long = "allow-renumber", value_name = "ABI:NAME", value_parser = abi_and_name)]
        allow_renumber: Vec<(String, String)>,
    },
    /// Load and validate every ABI file and every policy, reporting all errors together.
    Check {
        /// The tables directory.
        #[arg(long, default_value = "tables")]
        tables: PathBuf,
        /// Policies to check (repeatable; default: every `<tables>/policy/*.yaml`).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Compare two sets of tables; each side is a tables directory or a kernel tree
    /// (imported with the ABI headers of --tables). Exit status: 0 no differences, 1
    /// differences (in the tables or in a reviewed policy), 2 an error.
    Diff {
        /// Old side: tables directory or kernel tree.
        old: PathBuf,
        /// New side: tables directory or kernel tree.
        new: PathBuf,
        /// ABI headers used to import a kernel tree.
        #[arg(long, default_value = "tables")]
        tables: PathBuf,
        /// Policies to flag for review (repeatable; default: the new side's `policy/*.yaml`,
        /// else those of --tables, else the bundled root-emulation policy).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Print the syscall x ABI matrix of a policy: the numbers a reviewer checks.
    Show {
        #[command(flatten)]
        inputs: FilterInputs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// Runs one `tables` subcommand.
pub(crate) fn main(cmd: TablesCmd) -> Result<u8, String> {
    match cmd {
        TablesCmd::Import { kernel, tables, out, allow_renumber } => {
            let out = out.unwrap_or_else(|| tables.clone());
            let opts = import::ImportOptions { allow_renumber };
            match import::import_tree(&kernel, &tables, &out, &opts) {
                Ok(report) => {
                    out!("{report}");
                    outln!("wrote {} files to {}", report.abis.len(), out.display());
                    Ok(0)
                }
                Err(e) => {
                    let mut text = e.to_string();
                    if text.contains("Linux never renumbers a syscall") {
                        text.push_str("\nnothing written; to accept a renumbering after checking it, pass --allow-renumber ABI:NAME");
                    }
                    Err(text)
                }
            }
        }
        TablesCmd::Check { tables, policies, format } => {
            let policies = if policies.is_empty() { policy_files(&tables.join("policy")) } else { policies };
            let result = Policy::check_all(&tables, &policies);
            if format == OutputFormat::Json {
                print_json(&tables_json::check(&tables, &result));
                return Ok(u8::from(result.is_err()));
            }
            match result {
                Ok((t, ps)) => {
                    let calls: usize = t.abis.iter().map(|a| a.syscalls.len()).sum();
                    let mut kernels: Vec<&str> = t.abis.iter().map(|a| a.kernel()).collect();
                    kernels.sort_unstable();
                    kernels.dedup();
                    let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
                    outln!(
                        "{}: {} ABIs, {} syscalls, kernel {}, {} ({}): ok",
                        tables.display(),
                        t.abis.len(),
                        calls,
                        kernels.join(", "),
                        if ps.len() == 1 { "1 policy".to_string() } else { format!("{} policies", ps.len()) },
                        names.join(", ")
                    );
                    Ok(0)
                }
                Err(e) => {
                    for line in e.shown() {
                        eprintln!("{line}");
                    }
                    eprintln!("{}: {} error(s)", tables.display(), e.0.len());
                    Ok(1)
                }
            }
        }
        TablesCmd::Diff { old, new, tables, policies, format } => match diff_main(&old, &new, &tables, policies, format) {
            Ok(differs) => Ok(u8::from(differs)),
            Err(e) => {
                for line in e.lines() {
                    eprintln!("rootemu: {line}");
                }
                Ok(2)
            }
        },
        TablesCmd::Show { inputs, format } => {
            let f = inputs.build()?;
            let tables = in_order(&f.tables, inputs.abi_order());
            match format {
                OutputFormat::Text => out!("{}", matrix::policy_matrix(&tables, &f.policy)),
                OutputFormat::Json => print_json(&tables_json::show(&tables, &f.policy)),
            }
            Ok(0)
        }
    }
}

/// `tables` with its ABIs in the order `names` gives them (the rest after, as they were).
fn in_order(tables: &Tables, names: &[String]) -> Tables {
    let mut t = tables.clone();
    t.abis.sort_by_key(|a| names.iter().position(|n| *n == a.name).unwrap_or(usize::MAX));
    t
}

/// `ABI:NAME` of --allow-renumber.
fn abi_and_name(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((a, n)) if !a.is_empty() && !n.is_empty() => Ok((a.to_string(), n.to_string())),
        _ => Err(format!("`{s}`: expected ABI:NAME (e.g. s390x:chown, or s390x:*)")),
    }
}

/// A policy to review: where it is shown from and its counterpart on the old side.
struct Reviewed {
    label: String,
    new: (PathBuf, String),
    old: Option<(PathBuf, String)>,
}

/// `tables diff`: prints the differences and the policy review; true when anything differs.
fn diff_main(old: &Path, new: &Path, headers: &Path, policies: Vec<PathBuf>, format: OutputFormat) -> Result<bool, String> {
    let o = side(old, headers)?;
    let n = side(new, headers)?;
    let d = import::diff(&o, &n);
    let mut differs = !d.is_empty();
    let mut reviews = Vec::new();
    for r in reviewed_policies(old, new, headers, policies)? {
        let policy = Policy::parse(&r.new.0, &r.new.1, &n).map_err(show)?;
        let before = match &r.old {
            Some((path, text)) => Some(Policy::parse(path, text, &o).map_err(show)?),
            None => None,
        };
        let changes = before.as_ref().map(|b| policy_changes(b, &policy)).unwrap_or_default();
        differs |= !changes.is_empty();
        reviews.push(Review::of(policy, r.label, &d, changes));
    }
    match format {
        OutputFormat::Json => print_json(&tables_json::diff(&d, &reviews)),
        OutputFormat::Text => {
            out!("{d}");
            for r in &reviews {
                out!("{r}");
            }
        }
    }
    Ok(differs)
}

/// The policies `tables diff` reviews: --policy files, else the new side's
/// `policy/*.yaml`, else those of --tables, else the bundled root-emulation policy; each
/// with the old side's file of the same name when the old side is a tables directory.
fn reviewed_policies(old: &Path, new: &Path, headers: &Path, given: Vec<PathBuf>) -> Result<Vec<Reviewed>, String> {
    let read = |p: &Path| files::read_yaml(p, "policy").map(|t| (p.to_path_buf(), t)).map_err(|e| e.to_string());
    let candidates = if !given.is_empty() {
        given
    } else if !is_kernel_tree(new) && !policy_files(&new.join("policy")).is_empty() {
        policy_files(&new.join("policy"))
    } else {
        policy_files(&headers.join("policy"))
    };
    let mut out = Vec::new();
    for path in candidates {
        let counterpart =
            path.file_name().map(|f| old.join("policy").join(f)).filter(|p| !is_kernel_tree(old) && p.is_file() && *p != path);
        out.push(Reviewed { label: path.display().to_string(), new: read(&path)?, old: counterpart.as_deref().map(read).transpose()? });
    }
    if out.is_empty() {
        let (_, (path, text)) = crate::inputs::bundled_files(crate::inputs::BUNDLED_POLICY);
        out.push(Reviewed { label: "bundled".into(), new: (path, text.to_string()), old: None });
    }
    Ok(out)
}

/// How a policy changed between the two sides, one line each (empty: the same meaning).
fn policy_changes(old: &Policy, new: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (old.names(), new.names());
    let added: Vec<&str> = b.difference(&a).copied().collect();
    let removed: Vec<&str> = a.difference(&b).copied().collect();
    if !added.is_empty() {
        out.push(format!("names added to the policy: {}", added.join(", ")));
    }
    if !removed.is_empty() {
        out.push(format!("names removed from the policy: {}", removed.join(", ")));
    }
    if (old.default, old.unknown_abi) != (new.default, new.unknown_abi) {
        out.push(format!("default / unknown_abi: {} / {} -> {} / {}", old.default, old.unknown_abi, new.default, new.unknown_abi));
    }
    let rules = |p: &Policy| p.rules.iter().map(|r| (r.action, r.syscalls.clone(), r.when_any.clone())).collect::<Vec<_>>();
    if rules(old) != rules(new) {
        out.push(format!("rules changed ({} -> {} rules)", old.rules.len(), new.rules.len()));
    }
    out
}

/// The `*.yaml` files of a policy directory, sorted (none when it does not exist).
fn policy_files(dir: &Path) -> Vec<PathBuf> {
    files::yaml_files(dir).unwrap_or_default()
}

/// What a change means for one policy: how the policy itself changed, names it lists
/// that changed in the tables, and new or changed names that look like one it lists (e.g.
/// a new chown-like call) and need review.
pub(crate) struct Review {
    pub(crate) policy: Policy,
    /// Where the policy was read from (`bundled` for the bundled one).
    pub(crate) label: String,
    /// How the policy itself changed between the two sides.
    pub(crate) changes: Vec<String>,
    /// Names the policy lists that changed.
    pub(crate) changed: Vec<String>,
    /// New or changed names that look like one it lists, with that listed name.
    pub(crate) similar: Vec<(String, String)>,
}

impl Review {
    fn of(policy: Policy, label: String, d: &import::TablesDiff, changes: Vec<String>) -> Self {
        let listed = policy.names();
        let touched: Vec<&str> = d.names_touched().collect();
        let changed = touched.iter().filter(|n| listed.contains(*n)).map(|n| n.to_string()).collect();
        let similar = touched
            .iter()
            .filter(|n| !listed.contains(*n))
            .filter_map(|n| {
                listed.iter().filter(|l| n.contains(**l) || l.contains(*n)).max_by_key(|l| l.len()).map(|l| (n.to_string(), l.to_string()))
            })
            .collect();
        Review { policy, label, changes, changed, similar }
    }

    /// Whether a reviewer must look at this policy.
    pub(crate) fn needed(&self) -> bool {
        !(self.changes.is_empty() && self.changed.is_empty() && self.similar.is_empty())
    }
}

impl std::fmt::Display for Review {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "policy {} ({}): ", self.policy.name, self.label)?;
        if !self.needed() {
            return writeln!(f, "not touched");
        }
        writeln!(f, "REVIEW")?;
        for c in &self.changes {
            writeln!(f, "  {c}")?;
        }
        if !self.changed.is_empty() {
            writeln!(f, "  listed names that changed: {}", self.changed.join(", "))?;
        }
        if !self.similar.is_empty() {
            let similar: Vec<String> = self.similar.iter().map(|(n, l)| format!("{n} (like {l})")).collect();
            writeln!(f, "  new or changed names like listed ones: {}", similar.join(", "))?;
        }
        Ok(())
    }
}

fn show(e: Errors) -> String {
    e.to_string()
}

/// A kernel tree has a top Makefile and an `arch/` directory.
fn is_kernel_tree(p: &Path) -> bool {
    p.join("Makefile").is_file() && p.join("arch").is_dir()
}

/// Loads one side of a diff, importing a kernel tree into a temporary directory
/// (renumberings are accepted there: showing them is what the diff is for).
fn side(path: &Path, headers: &Path) -> Result<Tables, String> {
    if !is_kernel_tree(path) {
        return Tables::load_dir(path).map_err(show);
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let tmp = std::env::temp_dir().join(format!("rootemu-tables-{}-{nanos}", std::process::id()));
    let opts = import::ImportOptions { allow_renumber: vec![("*".into(), "*".into())] };
    let result = import::import_tree(path, headers, &tmp, &opts).map_err(show).and_then(|_| Tables::load_dir(&tmp).map_err(show));
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
