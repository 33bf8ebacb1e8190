//! The proc-macro's output: the same program the CLI builds, placed in its ELF section,
//! and rebuilt when a table changes.

use rootemu_codegen::{Filter, Inputs, export, record};
use rootemu_tests::{rootemu_bin, tables_dir, workspace};
use std::process::Command;

static FILTER: rootemu::Filter = rootemu::root_emulation!();

fn program_bytes(f: &rootemu::Filter, big_endian: bool) -> Vec<u8> {
    f.program.iter().map(|&i| rootemu_codegen::Insn::from(i)).flat_map(|i| i.to_bytes(big_endian)).collect()
}

/// What an x86_64 kernel delivers: its own ABI, i386 (compat) and x32.
const X86_KERNEL_ABIS: [&str; 3] = ["i386", "x32", "x86_64"];

#[test]
fn root_emulation_covers_what_this_kernel_delivers() {
    let names: Vec<&str> = FILTER.abis.iter().map(|a| a.name).collect();
    assert_eq!(names, X86_KERNEL_ABIS, "root_emulation!() in an x86_64 binary");
}

#[test]
fn macro_program_equals_the_cli_export_instruction_for_instruction() {
    let abis: Vec<&str> = X86_KERNEL_ABIS.iter().flat_map(|a| ["--abi", a]).collect();
    for (order, big) in [("little", false), ("big", true)] {
        let out =
            Command::new(rootemu_bin()).args(["filter", "export", "--format", "raw", "--byte-order", order]).args(&abis).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, program_bytes(&FILTER, big), "{order}-endian export differs from root_emulation!()");
    }
    // And the listing has one line per instruction of the same program (plus label lines).
    let dump = Command::new(rootemu_bin()).args(["filter", "dump"]).args(&abis).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&dump.stdout).lines().filter(|l| !l.ends_with(':')).count(), FILTER.program.len());
}

#[test]
fn macro_program_equals_codegen_on_the_files() {
    let tables = tables_dir();
    let policy = tables.join("policy/root-emulation.yaml");
    let abis: Vec<String> = X86_KERNEL_ABIS.iter().map(|s| s.to_string()).collect();
    let f = Filter::build(&Inputs { tables: &tables, policy: &policy, abis: &abis }).unwrap();
    assert_eq!(export::raw(&f.program, false), program_bytes(&FILTER, false));
    assert!(FILTER.abis.iter().all(|a| a.kernel == f.kernel()), "kernel release travels with each ABI");
}

#[test]
fn every_target_gets_a_verified_program_and_unnamed_targets_get_every_abi() {
    let tables = tables_dir();
    let policy = tables.join("policy/root-emulation.yaml");
    let per = Filter::build_per_target(&Inputs { tables: &tables, policy: &policy, abis: &[] }).unwrap();
    let x86 = per.groups.iter().find(|(arches, _)| arches.iter().any(|a| a == "x86_64")).expect("a group for x86_64");
    assert_eq!(x86.0, ["x86", "x86_64"]);
    assert_eq!(x86.1.tables.abis.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), X86_KERNEL_ABIS);
    // arm64 kernels run arm (compat) binaries, s390x kernels s390 ones.
    for (arch, abis) in [("aarch64", &["aarch64", "arm"][..]), ("arm", &["aarch64", "arm"]), ("s390x", &["s390", "s390x"])] {
        let g = per.groups.iter().find(|(a, _)| a.iter().any(|x| x == arch)).unwrap_or_else(|| panic!("no group for {arch}"));
        assert_eq!(g.1.tables.abis.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), abis, "{arch}");
    }
    assert_eq!(
        per.all.tables.abis.len(),
        std::fs::read_dir(&tables).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml")).count()
    );
}

/// The bundled tables reach a crate through rootemu-macros' build script, which validates
/// them and tells cargo to watch the whole directory (tests/outside_crate.rs shows a new
/// table file rebuilding a user's crate).
#[test]
fn the_macros_build_script_watches_the_bundled_directory() {
    let build = rootemu_tests::target_dir().join("debug/build");
    let outputs: Vec<String> = std::fs::read_dir(&build)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rootemu-macros-"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("output")).ok())
        .collect();
    assert!(!outputs.is_empty(), "no build script output of rootemu-macros under {}", build.display());
    assert!(outputs.iter().all(|o| o.contains("cargo::rerun-if-changed=tables")), "{outputs:?}");
}

#[test]
fn program_is_in_its_own_elf_section() {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let elf = goblin::elf::Elf::parse(&exe).unwrap();
    let sh = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(record::SECTION)).expect("the section");
    let data = &exe[sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize];
    // The runtime's `Embedded` layout is the record format codegen decodes.
    let records = record::decode(data, false).unwrap();
    let ours =
        records.iter().find(|r| export::raw(&r.program, false) == program_bytes(&FILTER, false)).expect("root_emulation!()'s record");
    assert_eq!(ours.get("policy"), "root-emulation");
    assert_eq!(ours.get("abis"), X86_KERNEL_ABIS.join(","));
    assert!(ours.get("kernel").starts_with("7."), "{ours:?}");
}

#[test]
fn bundled_tables_travel_inside_the_published_macros_crate() {
    // A crate depending on rootemu from a registry expands root_emulation!() from the
    // tables packaged with rootemu-macros (macros/tables links to tables/).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["package", "--list", "--allow-dirty", "--offline", "-p", "rootemu-macros"])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    for entry in std::fs::read_dir(tables_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") {
            assert!(listed.lines().any(|l| l == format!("tables/{name}")), "tables/{name} is not packaged");
        }
    }
    assert!(listed.lines().any(|l| l == "tables/policy/root-emulation.yaml"));
}
