//! A crate outside the workspace, as a user has it: a path dependency on the `rootemu`
//! library and default profiles (the proc-macro and codegen built unoptimised). It must
//! build and run, and be rebuilt when an input of its macros changes: an environment
//! variable named in a path, and a table file added to the bundled directory. Build times
//! are printed (the bench measures them side by side), never asserted.

use rootemu_tests::{tables_dir, target_dir, workspace};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const MAIN_RS: &str = r#"static ROOT: rootemu::Filter = rootemu::root_emulation!();

fn main() {
    let all = rootemu::filter!();
    let mine = rootemu::filter!(tables = "$ROOTEMU_OUTSIDE_TABLES", abis = [x86_64]);
    println!("root_emulation {}", ROOT.abis.iter().map(|a| a.name).collect::<Vec<_>>().join(","));
    println!("all {}", all.abis.len());
    println!("mine {}", mine.abis[0].kernel);
}
"#;

/// `cp -rL`, keeping timestamps so that a second run rebuilds nothing it need not.
fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    let ok = Command::new("cp").arg("-rL").arg("--preserve=timestamps").arg("-T").arg(from).arg(to).status().unwrap().success();
    assert!(ok, "cp {} {}", from.display(), to.display());
}

/// `text` with each line starting with one of `edits`' keys replaced (or dropped: "").
fn rewrite(text: &str, edits: &[(&str, &str)]) -> String {
    text.lines()
        .filter_map(|l| match edits.iter().find(|(k, _)| l.starts_with(k)) {
            Some((_, "")) => None,
            Some((_, v)) => Some(v.to_string()),
            None => Some(l.to_string()),
        })
        .map(|l| l + "\n")
        .collect()
}

/// `cargo build` of the crate with `ROOTEMU_OUTSIDE_TABLES=tables`, then its output.
fn build_and_run(dir: &Path, tables: &Path, what: &str) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let t = Instant::now();
    let build = |offline: bool| {
        let mut c = Command::new(&cargo);
        c.args(["build", "-q"]).current_dir(dir).env("CARGO_TARGET_DIR", dir.join("target")).env("ROOTEMU_OUTSIDE_TABLES", tables);
        c.env_remove("RUSTFLAGS").env_remove("CARGO_BUILD_RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
        if offline {
            c.arg("--offline");
        }
        c.output().unwrap()
    };
    let mut out = build(true);
    if !out.status.success() {
        out = build(false);
    }
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("outside crate: {what}: {:.2} s", t.elapsed().as_secs_f64());
    let run = Command::new(dir.join("target/debug/outside")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8(run.stdout).unwrap()
}

#[test]
fn a_users_crate_builds_runs_and_rebuilds_when_an_input_changes() {
    let work = target_dir().join("outside-crate");
    // The three packages a user's build compiles, copied (tables and all) so that a table
    // can be added without touching the workspace; a root manifest for their inheritance.
    let ws = work.join("ws");
    for (pkg, parts) in [
        ("codegen", &["Cargo.toml", "src"][..]),
        ("macros", &["Cargo.toml", "build.rs", "src", "tables"]),
        ("runtime", &["Cargo.toml", "src"]),
    ] {
        for part in parts {
            copy(&workspace().join(pkg).join(part), &ws.join(pkg).join(part));
        }
    }
    let _ = fs::remove_file(ws.join("macros/tables/madeup.yaml"));
    let root = fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let root = root.split("\n[profile").next().unwrap().replace(
        "members = [\"codegen\", \"macros\", \"runtime\", \"cli\", \"bench\", \"tests\"]",
        "members = [\"codegen\", \"macros\", \"runtime\"]",
    );
    assert!(root.contains("members = [\"codegen\", \"macros\", \"runtime\"]"), "{root}");
    fs::write(ws.join("Cargo.toml"), root).unwrap();
    // The user's crate: its own workspace, default profiles.
    let dir = work.join("outside");
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"outside\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n[dependencies]\nrootemu = {{ path = \"{}\" }}\n",
        ws.join("runtime").display()
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    if fs::read_to_string(dir.join("src/main.rs")).ok().as_deref() != Some(MAIN_RS) {
        fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
    }
    fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    // Two tables directories of the user's (x86_64 and i386, which has the policy's *32
    // names), told apart by the kernel release of x86_64.
    for (name, kernel) in [("tables-a", "6.12.117"), ("tables-b", "9.9.9")] {
        fs::create_dir_all(work.join(name)).unwrap();
        for abi in ["x86_64", "i386"] {
            let mut text = fs::read_to_string(tables_dir().join(format!("{abi}.yaml"))).unwrap();
            if abi == "x86_64" {
                text = rewrite(&text, &[("  kernel:", &format!("  kernel: {kernel}"))]);
            }
            let path = work.join(name).join(format!("{abi}.yaml"));
            if fs::read_to_string(&path).ok() != Some(text.clone()) {
                fs::write(path, text).unwrap();
            }
        }
    }
    let abis = rootemu_codegen::files::yaml_files(&tables_dir()).unwrap().len();

    let out = build_and_run(&dir, &work.join("tables-a"), "build (dependencies included when not cached)");
    assert_eq!(out, format!("root_emulation i386,x32,x86_64\nall {abis}\nmine 6.12.117\n"));
    fs::File::options().write(true).open(dir.join("src/main.rs")).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
    build_and_run(&dir, &work.join("tables-a"), "rebuild after touching src/main.rs");

    // The variable now names the other directory: cargo must rebuild (env! in the expansion).
    let out = build_and_run(&dir, &work.join("tables-b"), "rebuild after changing $ROOTEMU_OUTSIDE_TABLES");
    assert!(out.ends_with("mine 9.9.9\n"), "the crate was not rebuilt for the new $VAR:\n{out}");

    // A new table in the bundled directory: rootemu-macros' build script watches it whole.
    let riscv32 = fs::read_to_string(tables_dir().join("riscv32.yaml")).unwrap();
    let madeup = rewrite(
        &riscv32,
        &[
            ("abi:", "abi: madeup"),
            ("audit_arch:", "audit_arch: 0x40001092"),
            ("elf_machine:", "elf_machine: 4242"),
            ("rust_arches:", ""),
            ("rust_native:", ""),
            ("oci_arch:", ""),
        ],
    );
    fs::write(ws.join("macros/tables/madeup.yaml"), madeup).unwrap();
    let out = build_and_run(&dir, &work.join("tables-b"), "rebuild after adding a table file to the bundled tables");
    assert!(out.contains(&format!("all {}\n", abis + 1)), "the crate was not rebuilt for the new table file:\n{out}");
    fs::remove_file(ws.join("macros/tables/madeup.yaml")).unwrap();
    let out = build_and_run(&dir, &work.join("tables-b"), "rebuild after removing it");
    assert!(out.contains(&format!("all {abis}\n")), "{out}");
}
