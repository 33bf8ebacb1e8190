//! `rootemu tables ...`: import tables from a kernel tree, check them, compare two sets,
//! show a policy's syscall x ABI matrix.

use crate::inputs::FilterInputs;
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
    },
    /// Print the syscall x ABI matrix of a policy: the numbers a reviewer checks.
    Show {
        #[command(flatten)]
        inputs: FilterInputs,
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
        TablesCmd::Check { tables } => match Tables::load_dir(&tables) {
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
        TablesCmd::Diff { old, new, tables, policies } => {
            let o = side(&old, &tables)?;
            let n = side(&new, &tables)?;
            let d = import::diff(&o, &n);
            out!("{d}");
            let policies =
                if policies.is_empty() { rootemu_codegen::table::yaml_files(&tables.join("policy")).unwrap_or_default() } else { policies };
            for path in policies {
                let p = Policy::load(&path, &n).map_err(show)?;
                out!("{}", review(&p, &path, &d));
            }
            Ok(0)
        }
        TablesCmd::Show { inputs } => {
            let f = inputs.build()?;
            out!("{}", matrix::policy_matrix(&f.tables, &f.policy));
            Ok(0)
        }
    }
}

/// What a table change means for one policy: names it lists that changed, and new or
/// changed names that look like one it lists (e.g. a new chown-like call) and need review.
fn review(p: &Policy, path: &Path, d: &import::TablesDiff) -> String {
    let listed = p.names();
    let touched: Vec<&str> = d.names_touched().collect();
    let changed: Vec<&str> = touched.iter().copied().filter(|n| listed.contains(n)).collect();
    let similar: Vec<String> = touched
        .iter()
        .filter(|n| !listed.contains(*n))
        .filter_map(|n| {
            listed.iter().filter(|l| n.contains(**l) || l.contains(*n)).max_by_key(|l| l.len()).map(|l| format!("{n} (like {l})"))
        })
        .collect();
    let mut out = format!("policy {} ({}): ", p.name, path.display());
    if changed.is_empty() && similar.is_empty() {
        out.push_str("not touched\n");
        return out;
    }
    out.push_str("REVIEW\n");
    if !changed.is_empty() {
        out.push_str(&format!("  listed names that changed: {}\n", changed.join(", ")));
    }
    if !similar.is_empty() {
        out.push_str(&format!("  new or changed names like listed ones: {}\n", similar.join(", ")));
    }
    out
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
