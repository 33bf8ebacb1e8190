//! The golden listing of the shipped root-emulation program, reviewed by diff
//! (`cargo insta review` after a table or compiler change).

use rootemu_codegen::{Filter, Inputs};
use rootemu_tests::tables_dir;

#[test]
fn root_emulation_listing() {
    let tables = tables_dir();
    let policy = tables.join("policy/root-emulation.yaml");
    let f = Filter::build(&Inputs { tables: &tables, policy: &policy, abis: &[] }).unwrap_or_else(|e| panic!("{e}"));
    insta::assert_snapshot!("root-emulation", f.listing());
}
