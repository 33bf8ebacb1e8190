//! Validates the bundled tables once, when this crate is built, and hands them to the
//! macros as JSON: parsing 37 YAML files in an unoptimised proc-macro (a user's default
//! profile) costs about 0.2 s of every expansion, reading the JSON about 15 ms.
//!
//! `rerun-if-changed=tables` makes cargo watch the whole directory (the policies too): a
//! table or policy added, changed or removed rebuilds this crate and so every crate that
//! expands its macros.

use std::path::PathBuf;

fn main() {
    let var = |name: &str| PathBuf::from(std::env::var_os(name).unwrap_or_else(|| panic!("cargo sets {name}")));
    println!("cargo::rerun-if-changed=tables");
    let json = match rootemu_codegen::Tables::load_dir(&var("CARGO_MANIFEST_DIR").join("tables")) {
        Ok(tables) => serde_json::to_string(&tables).expect("tables serialize"),
        // The macros then load the YAML themselves and report these errors with compile_error!.
        Err(_) => String::new(),
    };
    let out = var("OUT_DIR").join("bundled-tables.json");
    if std::fs::read_to_string(&out).ok().as_deref() != Some(json.as_str()) {
        std::fs::write(&out, json).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
}
