//! `rootemu tables ...`: import tables from a kernel tree, check them, compare two sets,
//! show a policy's syscall x ABI matrix.

use crate::inputs::FilterInputs;
use crate::output::{OutputFormat, print_json};
use crate::tables_json;
use clap::Subcommand;
use rootemu_codegen::{Errors, Policy, Tables, import, matrix};
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
    },
    /// Load and validate every ABI file.
    Check {
        /// The tables directory.
        #[arg(long, default_value = "tables")]
        tables: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Compare two sets of tables; each side is a tables directory or a kernel tree
    /// (imported with the ABI headers of --tables).
    Diff {
        /// Old side: tables directory or kernel tree.
        old: PathBuf,
        /// New side: tables directory or kernel tree.
        new: PathBuf,
        /// ABI headers used to import a kernel tree.
        #[arg(long, default_value = "tables")]
        tables: PathBuf,
        /// Policies to flag for review (repeatable; default: every `<tables>/policy/*.yaml`).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Print the syscall x ABI matrix of a policy: the numbers a reviewer checks.
    /// Columns follow the order of --abi.
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
        TablesCmd::Import { kernel, tables, out } => {
            let out = out.unwrap_or_else(|| tables.clone());
            let report = import::import_tree(&kernel, &tables, &out).map_err(show)?;
            out!("{report}");
            outln!("wrote {} files to {}", report.abis.len(), out.display());
            Ok(0)
        }
        TablesCmd::Check { tables, format: OutputFormat::Json } => {
            let result = Tables::load_dir(&tables);
            print_json(&tables_json::check(&tables, &result));
            Ok(u8::from(result.is_err()))
        }
        TablesCmd::Check { tables, format: OutputFormat::Text } => match Tables::load_dir(&tables) {
            Ok(t) => {
                let calls: usize = t.abis.iter().map(|a| a.syscalls.len()).sum();
                let mut kernels: Vec<&str> = t.abis.iter().map(|a| a.kernel()).collect();
                kernels.sort_unstable();
                kernels.dedup();
                outln!("{}: {} ABIs, {} syscalls, kernel {}: ok", tables.display(), t.abis.len(), calls, kernels.join(", "));
                Ok(0)
            }
            Err(e) => {
                for d in &e.0 {
                    eprintln!("{d}");
                }
                eprintln!("{}: {} error(s)", tables.display(), e.0.len());
                Ok(1)
            }
        },
        TablesCmd::Diff { old, new, tables, policies, format } => {
            let o = side(&old, &tables)?;
            let n = side(&new, &tables)?;
            let d = import::diff(&o, &n);
            let policies = if policies.is_empty() { rootemu_codegen::table::yaml_files(&tables.join("policy")).unwrap_or_default() } else { policies };
            let loaded = policies.iter().map(|path| Policy::load(path, &n).map_err(show)).collect::<Result<Vec<_>, _>>()?;
            let reviews: Vec<Review> = loaded.iter().zip(&policies).map(|(p, path)| Review::of(p, path, &d)).collect();
            match format {
                OutputFormat::Json => print_json(&tables_json::diff(&d, &reviews)),
                OutputFormat::Text => {
                    out!("{d}");
                    for r in &reviews {
                        out!("{r}");
                    }
                }
            }
            Ok(0)
        }
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

/// What a table change means for one policy.
pub(crate) struct Review<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) file: &'a Path,
    /// Names the policy lists that changed.
    pub(crate) changed: Vec<&'a str>,
    /// New or changed names that look like one it lists (e.g. a new chown-like call), with
    /// that listed name.
    pub(crate) similar: Vec<(&'a str, &'a str)>,
}

impl<'a> Review<'a> {
    fn of(policy: &'a Policy, file: &'a Path, d: &'a import::TablesDiff) -> Self {
        let listed = policy.names();
        let touched: Vec<&str> = d.names_touched().collect();
        let changed: Vec<&str> = touched.iter().copied().filter(|n| listed.contains(n)).collect();
        let similar = touched
            .iter()
            .filter(|n| !listed.contains(*n))
            .filter_map(|n| listed.iter().filter(|l| n.contains(**l) || l.contains(*n)).max_by_key(|l| l.len()).map(|l| (*n, *l)))
            .collect();
        Review { policy, file, changed, similar }
    }
}

impl std::fmt::Display for Review<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "policy {} ({}): ", self.policy.name, self.file.display())?;
        if self.changed.is_empty() && self.similar.is_empty() {
            return writeln!(f, "not touched");
        }
        writeln!(f, "REVIEW")?;
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

/// Loads one side of a diff, importing a kernel tree into a temporary directory.
fn side(path: &Path, headers: &Path) -> Result<Tables, String> {
    if !is_kernel_tree(path) {
        return Tables::load_dir(path).map_err(show);
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let tmp = std::env::temp_dir().join(format!("rootemu-tables-{}-{nanos}", std::process::id()));
    let result = import::import_tree(path, headers, &tmp).map_err(show).and_then(|_| Tables::load_dir(&tmp).map_err(show));
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
