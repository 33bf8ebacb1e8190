//! `rootemu bench`.

use clap::Args;

/// Arguments of `rootemu bench`.
#[derive(Args)]
pub(crate) struct BenchArgs {}

/// Runs `rootemu bench`.
pub(crate) fn main(args: BenchArgs) -> Result<u8, String> {
    let _ = args;
    Err("not implemented yet".into())
}
