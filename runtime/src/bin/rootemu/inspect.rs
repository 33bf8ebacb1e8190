//! `rootemu inspect`.

use clap::Args;

/// Arguments of `rootemu inspect`.
#[derive(Args)]
pub(crate) struct InspectArgs {}

/// Runs `rootemu inspect`.
pub(crate) fn main(args: InspectArgs) -> Result<u8, String> {
    let _ = args;
    Err("not implemented yet".into())
}
