//! `rootemu filter ...`.

use clap::Subcommand;

/// `rootemu filter` subcommands.
#[derive(Subcommand)]
pub(crate) enum FilterCmd {}

/// Runs one `filter` subcommand.
pub(crate) fn main(cmd: FilterCmd) -> Result<u8, String> {
    match cmd {}
}
