//! `rootemu filter ...`: show, simulate, measure and export a filter.

use crate::inputs::FilterInputs;
use crate::output::{OutputFormat, did_you_mean, parse_number, print_json};
use clap::{Subcommand, ValueEnum};
use rootemu_codegen::bpf::Action;
use rootemu_codegen::export::{AbiChoice, ProfileForm};
use rootemu_codegen::sim::{self, SeccompData};
use rootemu_codegen::{Endian, Filter, export};
use std::io::IsTerminal;
use std::path::PathBuf;

/// `rootemu filter` subcommands.
#[derive(Subcommand)]
pub(crate) enum FilterCmd {
    /// Print the symbolic listing of the program.
    Dump {
        #[command(flatten)]
        inputs: FilterInputs,
    },
    /// Run the program on one syscall and print the action and path length.
    Sim {
        #[command(flatten)]
        inputs: FilterInputs,
        /// The ABI whose AUDIT_ARCH and numbers to use.
        #[arg(long = "as", value_name = "ABI")]
        as_abi: String,
        /// Syscall name (or a raw number).
        #[arg(long)]
        syscall: String,
        /// Argument value, e.g. `--arg 1=0o20644` (repeatable; others are 0). VALUE is
        /// decimal, 0x hex, 0o or C's leading-0 octal (020644), or 0b binary.
        #[arg(long = "arg", value_name = "N=VALUE")]
        args: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Print program size, per-ABI path lengths and proof counts.
    Stats {
        #[command(flatten)]
        inputs: FilterInputs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Write the program as raw bytes, a C header or JSON, or the policy as an OCI or Docker
    /// seccomp profile.
    Export {
        #[command(flatten)]
        inputs: FilterInputs,
        /// Output format.
        #[arg(long, value_enum)]
        format: Format,
        /// Byte order of `raw` output (default: this machine's).
        #[arg(long, value_enum, default_value = "host")]
        byte_order: ByteOrder,
        /// Output file (default: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Export formats.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// `struct sock_filter[]` as the kernel takes it.
    Raw,
    /// A C header with a `struct sock_fprog`.
    C,
    /// ABIs, tables and program for tooling.
    Json,
    /// An OCI runtime spec `linux.seccomp` object (runc, crun `config.json`): the policy by
    /// name, for the ABIs this machine's kernel delivers in its byte order (or --abi's).
    Oci,
    /// A Docker seccomp profile (docker/podman `--security-opt seccomp=FILE`, a Kubernetes
    /// `Localhost` profile): the same, with a comment per rule.
    #[value(alias = "kubernetes")]
    Docker,
}

/// Byte order of raw output.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ByteOrder {
    /// This machine's.
    Host,
    /// Little-endian.
    Little,
    /// Big-endian.
    Big,
}

/// Runs one `filter` subcommand.
pub(crate) fn main(cmd: FilterCmd) -> Result<u8, String> {
    match cmd {
        FilterCmd::Dump { inputs } => {
            let f = inputs.build()?;
            out!("{}", f.listing());
            Ok(0)
        }
        FilterCmd::Sim { inputs, as_abi, syscall, args, format } => sim(&inputs.build()?, &as_abi, &syscall, &args, format),
        FilterCmd::Stats { inputs, format: OutputFormat::Json } => {
            print_json(&stats_json(&inputs.build()?));
            Ok(0)
        }
        FilterCmd::Stats { inputs, format: OutputFormat::Text } => {
            out!("{}", stats(&inputs.build()?));
            Ok(0)
        }
        FilterCmd::Export { inputs, format, byte_order, output } => {
            if matches!(format, Format::Raw) && output.is_none() && std::io::stdout().is_terminal() {
                return Err("refusing to write the raw (binary) program to a terminal: use -o FILE or a pipe".into());
            }
            let f = inputs.build()?;
            let bytes = match format {
                Format::Raw => export::raw(
                    &f.program,
                    match byte_order {
                        ByteOrder::Host => cfg!(target_endian = "big"),
                        ByteOrder::Little => false,
                        ByteOrder::Big => true,
                    },
                ),
                Format::C => export::c_header(&f).into_bytes(),
                Format::Json => export::json(&f).into_bytes(),
                Format::Oci => seccomp_profile(&f, ProfileForm::Oci, inputs.abis_given())?,
                Format::Docker => seccomp_profile(&f, ProfileForm::Docker, inputs.abis_given())?,
            };
            match output {
                Some(path) => std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                None => crate::output::write_bytes(&bytes),
            }
            Ok(0)
        }
    }
}

/// The policy as a runtime's seccomp profile: for the ABIs named with --abi, else for those
/// this machine's kernel delivers (the tables' `rust_arches` against this binary's
/// target_arch, in its byte order). What the profile cannot carry is noted on stderr.
fn seccomp_profile(f: &Filter, form: ProfileForm, named: bool) -> Result<Vec<u8>, String> {
    let endian = if cfg!(target_endian = "big") { Endian::Big } else { Endian::Little };
    let choice = if named { AbiChoice::Named } else { AbiChoice::Host { target_arch: std::env::consts::ARCH, endian } };
    let p = export::profile(f, form, choice).map_err(|e| e.to_string())?;
    for n in &p.notes {
        eprintln!("rootemu: note: {n}");
    }
    Ok(p.json.into_bytes())
}

fn sim(f: &Filter, abi_name: &str, syscall: &str, arg_specs: &[String], format: OutputFormat) -> Result<u8, String> {
    let abi = f.tables.get(abi_name).ok_or_else(|| {
        let abis = || f.tables.abis.iter().map(|a| a.name.as_str());
        match did_you_mean(abi_name, abis()) {
            s if s.is_empty() => format!("no ABI `{abi_name}` in the filter (it has: {})", abis().collect::<Vec<_>>().join(", ")),
            s => format!("no ABI `{abi_name}` in the filter{s}"),
        }
    })?;
    let nr = match abi.nr(syscall) {
        Some(nr) => nr,
        None if syscall.starts_with(|c: char| c.is_ascii_digit()) => {
            let n = parse_number(syscall).map_err(|e| format!("--syscall {e}"))?;
            u32::try_from(n).map_err(|_| format!("--syscall `{syscall}`: syscall numbers are 32-bit"))?
        }
        None => {
            let s = did_you_mean(syscall, abi.syscalls.keys().map(String::as_str));
            return Err(format!("ABI `{}` has no syscall `{syscall}`{s}", abi.name));
        }
    };
    let mut args = [0u64; 6];
    for spec in arg_specs {
        let (i, v) = spec.split_once('=').ok_or_else(|| format!("--arg `{spec}`: expected N=VALUE"))?;
        let i: usize = i.parse().ok().filter(|i| *i < 6).ok_or_else(|| format!("--arg `{spec}`: argument index must be 0..5"))?;
        args[i] = parse_number(v).map_err(|e| format!("--arg `{spec}`: {e}"))?;
    }
    let d = SeccompData { nr, arch: abi.audit_arch, ip: 0, args, big_endian: abi.endian == Endian::Big };
    let out = sim::run(&f.program, &d).map_err(|e| format!("the program fails: {e}"))?;
    let action = Action::from_ret(out.ret).map_or(format!("{:#x}", out.ret), |a| a.to_string());
    let name = f.tables.lookup(abi.audit_arch, nr).map(|(_, n)| n);
    match format {
        OutputFormat::Text => {
            outln!("{} {} (nr {nr}): {action} after {} instructions", abi.name, name.unwrap_or("no syscall"), out.steps)
        }
        OutputFormat::Json => print_json(&serde_json::json!({
            "abi": abi.name,
            "audit_arch": abi.audit_arch,
            "syscall": name,
            "nr": nr,
            "args": args,
            "action": action,
            "ret": out.ret,
            "instructions": out.steps,
        })),
    }
    Ok(0)
}

/// `filter stats` as one JSON object: the program and one entry per ABI.
fn stats_json(f: &Filter) -> serde_json::Value {
    let abis: Vec<serde_json::Value> = f
        .tables
        .abis
        .iter()
        .zip(&f.proof.abis)
        .map(|(a, p)| {
            serde_json::json!({
                "abi": a.name,
                "audit_arch": a.audit_arch,
                "syscalls": a.syscalls.len(),
                "policy_names": f.policy.names().into_iter().filter(|n| a.syscalls.contains_key(*n)).count(),
                "worst_path": p.worst_path,
                "mean_path": p.mean_path,
                "cacheable": p.cacheable,
                "proved": p.cases,
            })
        })
        .collect();
    serde_json::json!({
        "instructions": f.program.len(),
        "kernel_limit": 4096,
        "policy": f.policy.name,
        "kernel": f.kernel(),
        "abis": abis,
        "unknown_arch_cases": f.proof.unknown_arch_cases,
    })
}

fn stats(f: &Filter) -> String {
    let mut s = format!(
        "program: {} instructions (kernel limit 4096), {} ABIs, policy {}, tables of Linux {}\n",
        f.program.len(),
        f.tables.abis.len(),
        f.policy.name,
        f.kernel()
    );
    s.push_str(&format!(
        "{:<14} {:<10} {:>8} {:>6} {:>6} {:>6} {:>10} {:>9}\n",
        "ABI", "AUDIT_ARCH", "syscalls", "policy", "worst", "mean", "cacheable", "proved"
    ));
    for (a, p) in f.tables.abis.iter().zip(&f.proof.abis) {
        let handled = f.policy.names().into_iter().filter(|n| a.syscalls.contains_key(*n)).count();
        s.push_str(&format!(
            "{:<14} {:<10} {:>8} {:>6} {:>6} {:>6.1} {:>10} {:>9}\n",
            a.name,
            format!("{:#x}", a.audit_arch),
            a.syscalls.len(),
            handled,
            p.worst_path,
            p.mean_path,
            p.cacheable,
            p.cases
        ));
    }
    s.push_str(&format!(
        "worst path is in instructions executed; cacheable = numbers the kernel's action cache can skip; proved = (number, arguments) cases simulated, plus {} with unknown AUDIT_ARCH values\n",
        f.proof.unknown_arch_cases
    ));
    s
}
