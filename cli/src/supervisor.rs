//! `rootemu supervisor` (talk to a running consistent-mode keeper) and the hidden
//! `rootemu handler` (a handler started by a keeper, for an upgrade).

use clap::{Args, Subcommand};
use rootemu::supervisor::{keeper, spawn};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

/// `rootemu supervisor ...`.
#[derive(Subcommand)]
pub(crate) enum SupervisorCmd {
    /// Print the keeper's counts and takeover latencies (one JSON line).
    Status {
        /// The socket given to `rootemu run --consistent --control`.
        #[arg(long, value_name = "PATH")]
        control: PathBuf,
    },
    /// Replace the running handler with BINARY's (`BINARY handler`), mid-build.
    Upgrade {
        /// The socket given to `rootemu run --consistent --control`.
        #[arg(long, value_name = "PATH")]
        control: PathBuf,
        /// The new rootemu binary (its consistent filter must be the one installed).
        binary: PathBuf,
    },
}

/// Runs `rootemu supervisor`.
pub(crate) fn main(c: SupervisorCmd) -> Result<u8, String> {
    let (control, binary) = match c {
        SupervisorCmd::Status { control } => (control, None),
        SupervisorCmd::Upgrade { control, binary } => {
            let f = std::fs::File::open(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
            (control, Some(f))
        }
    };
    let reply = keeper::control(&control, binary.as_ref()).map_err(|e| format!("--control {}: {e}", control.display()))?;
    match reply.strip_prefix("error ") {
        Some(e) => Err(e.to_string()),
        None => {
            println!("{reply}");
            Ok(0)
        }
    }
}

/// `rootemu handler`: started by a keeper with the listener and journal at fds 3 and 4.
#[derive(Args)]
pub(crate) struct HandlerArgs {
    /// The digest of the program the keeper's filter runs (hex).
    #[arg(long, value_name = "DIGEST")]
    program: String,
    /// The record store's file and socket are at fds 6 and 7.
    #[arg(long)]
    store: bool,
}

/// Runs `rootemu handler`.
pub(crate) fn handler(a: HandlerArgs) -> Result<u8, String> {
    let filter = crate::run::consistent_filter()?;
    let mine = format!("{:016x}", spawn::program_digest(filter.program));
    if mine != a.program {
        return Err(format!(
            "handler: this binary's consistent filter (digest {mine}) is not the one installed ({}): refusing to serve it",
            a.program
        ));
    }
    let (l, j, p) = spawn::HANDLER_FDS;
    // SAFETY: the keeper put the listener, the journal and /proc at these fds before exec.
    let fds = unsafe {
        let (f, s) = spawn::STORE_FDS;
        spawn::HandlerFds {
            listener: OwnedFd::from_raw_fd(l),
            journal: OwnedFd::from_raw_fd(j),
            proc_dir: OwnedFd::from_raw_fd(p),
            store: a.store.then(|| spawn::StoreFds { file: OwnedFd::from_raw_fd(f), pins: OwnedFd::from_raw_fd(s) }),
        }
    };
    Ok(spawn::handler_main(fds, filter.notified) as u8)
}
