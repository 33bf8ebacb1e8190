//! `rootemu tables ...`.

use clap::Subcommand;

/// `rootemu tables` subcommands.
#[derive(Subcommand)]
pub(crate) enum TablesCmd {}

/// Runs one `tables` subcommand.
pub(crate) fn main(cmd: TablesCmd) -> Result<u8, String> {
    match cmd {}
}
