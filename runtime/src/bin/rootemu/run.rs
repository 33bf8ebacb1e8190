//! `rootemu run`.

use clap::Args;

/// Arguments of `rootemu run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs `rootemu run`.
pub(crate) fn main(args: RunArgs) -> Result<u8, String> {
    let _ = args;
    Err("not yet".into())
}
