//! The `rootemu` command line: tables, filters, and running commands under root emulation.

#[macro_use]
mod output;

mod export;
mod filter;
mod inputs;
mod inspect;
mod run;
mod selfcheck;
mod supervisor;
mod tables;
mod tables_json;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Verified seccomp filters from per-ABI syscall tables, and unprivileged root emulation.
#[derive(Parser)]
#[command(name = "rootemu", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import, check and compare syscall tables.
    #[command(subcommand)]
    Tables(tables::TablesCmd),
    /// Build, show, simulate and export filters.
    #[command(subcommand)]
    Filter(filter::FilterCmd),
    /// Run a command in a user namespace under root emulation.
    Run(run::RunArgs),
    /// Write a tree built under consistent mode as a tar layer or an OCI image.
    Export(export::ExportArgs),
    /// Find, decode and check the filters embedded in an ELF binary.
    Inspect(inspect::InspectArgs),
    /// Check this binary's embedded filter against the machine it runs on (for cross builds).
    Selfcheck(selfcheck::SelfcheckArgs),
    /// Talk to the supervisor of a running `rootemu run --consistent --control PATH`.
    #[command(subcommand)]
    Supervisor(supervisor::SupervisorCmd),
    /// A consistent-mode handler, started by a supervisor (internal).
    #[command(hide = true)]
    Handler(supervisor::HandlerArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let args: Vec<_> = std::env::args_os().collect();
            let argv: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            let e = with_hint(e, &argv);
            let _ = e.print();
            let code = if e.use_stderr() { run::usage_error_code(&args).unwrap_or(2) } else { 0 };
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Tables(c) => tables::main(c),
        Command::Filter(c) => filter::main(c),
        Command::Run(a) => run::main(a),
        Command::Export(a) => export::main(a),
        Command::Inspect(a) => inspect::main(a),
        Command::Selfcheck(a) => selfcheck::main(a),
        Command::Supervisor(c) => supervisor::main(c),
        Command::Handler(a) => supervisor::handler(a),
    };
    let result = match (result, output::finish()) {
        (Ok(code), Ok(())) => Ok(code),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            for line in e.lines() {
                eprintln!("rootemu: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `rootemu run id` (a command without `--` before it): clap's error, with the line to type.
fn with_hint(mut e: clap::Error, argv: &[String]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg).cloned() else { return e };
    let run = argv.get(1).is_some_and(|a| a == "run");
    if !run || e.kind() != ErrorKind::UnknownArgument || argv.iter().any(|a| a == "--") || arg.starts_with('-') {
        return e;
    }
    let rest = &argv[2..];
    let at = rest.iter().position(|a| *a == arg).unwrap_or(rest.len());
    let line: Vec<&str> = rest[..at].iter().map(String::as_str).chain(["--"]).chain(rest[at..].iter().map(String::as_str)).collect();
    let tip = format!("to run a command, put it after `--`: rootemu run {}", line.join(" "));
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(vec![tip.into()]));
    e
}
