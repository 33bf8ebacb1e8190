//! The golden listing of the shipped root-emulation program, reviewed by diff.
//!
//! The listing has no instruction numbers: jump targets are labels named for what is there
//! (`x86_64:`, `x32:`, `mknod_le:`, `ret_errno_0:`, `x86_64_nr_ge_133:`), so a table change
//! shows up as the lines it really changes. After a table, policy or compiler change this
//! test fails with the diff; review it, then accept the new listing with
//! `cargo insta review` (or `cargo insta accept`; without cargo-insta:
//! `INSTA_UPDATE=always cargo test -p rootemu-tests --test golden`) and commit
//! `tests/snapshots/golden__root-emulation.snap` with the change that caused it.

use rootemu_codegen::{Filter, Inputs};
use rootemu_tests::tables_dir;

#[test]
fn root_emulation_listing() {
    let tables = tables_dir();
    let policy = tables.join("policy/root-emulation.yaml");
    let f = Filter::build(&Inputs { tables: &tables, policy: &policy, abis: &[] }).unwrap_or_else(|e| panic!("{e}"));
    insta::assert_snapshot!("root-emulation", f.listing());
}
