//! `rootemu tables ...`: import tables from a kernel tree, check them, compare two sets.

use clap::Subcommand;
use rootemu_codegen::{Errors, Tables, import};
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
    },
}

/// Runs one `tables` subcommand.
pub(crate) fn main(cmd: TablesCmd) -> Result<u8, String> {
    match cmd {
        TablesCmd::Import { kernel, tables, out } => {
            let out = out.unwrap_or_else(|| tables.clone());
            let report = import::import_tree(&kernel, &tables, &out).map_err(show)?;
            print!("{report}");
            println!("wrote {} files to {}", report.abis.len(), out.display());
            Ok(0)
        }
        TablesCmd::Check { tables } => match Tables::load_dir(&tables) {
            Ok(t) => {
                let calls: usize = t.abis.iter().map(|a| a.syscalls.len()).sum();
                let mut kernels: Vec<&str> = t.abis.iter().map(|a| a.kernel()).collect();
                kernels.sort_unstable();
                kernels.dedup();
                println!("{}: {} ABIs, {} syscalls, kernel {}: ok", tables.display(), t.abis.len(), calls, kernels.join(", "));
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
        TablesCmd::Diff { old, new, tables } => {
            let o = side(&old, &tables)?;
            let n = side(&new, &tables)?;
            print!("{}", import::diff(&o, &n));
            Ok(0)
        }
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
