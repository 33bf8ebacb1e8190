//! The proc-macro's output: the same program the CLI builds, placed in its ELF section,
//! and rebuilt when a table changes.

use rootemu_codegen::{Filter, Inputs, export};
use rootemu_tests::{rootemu_bin, tables_dir, workspace};
use std::process::Command;

static FILTER: rootemu::Filter = rootemu::root_emulation!();

fn program_bytes(f: &rootemu::Filter, big_endian: bool) -> Vec<u8> {
    f.program.iter().map(|i| rootemu_codegen::Insn::new(i.code, i.jt, i.jf, i.k)).flat_map(|i| i.to_bytes(big_endian)).collect()
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
    // And the listing has one line per instruction of the same program.
    let dump = Command::new(rootemu_bin()).args(["filter", "dump"]).args(&abis).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&dump.stdout).lines().count(), FILTER.program.len());
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

#[test]
fn every_table_file_is_a_rebuild_dependency() {
    // cargo fingerprints a crate by its dep-info: a file listed there rebuilds the crate when it changes.
    let exe = std::env::current_exe().unwrap();
    let dep_info = std::fs::read_to_string(exe.with_extension("d")).expect("dep-info next to the test binary");
    for entry in std::fs::read_dir(tables_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(dep_info.contains(&format!("tables/{name}")), "{name} is not a dependency of the crate using root_emulation!()");
        }
    }
    assert!(dep_info.contains("tables/policy/root-emulation.yaml"));
}

#[test]
fn program_is_in_its_own_elf_section() {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let elf = goblin::elf::Elf::parse(&exe).unwrap();
    let sh =
        elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".rootemu_filter")).expect("section .rootemu_filter");
    let data = &exe[sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize];
    assert_eq!(&data[..8], b"ROOTEMU\x01");
    let n = u32::from_le_bytes(data[8..12].try_into().unwrap()) as usize;
    assert_eq!(n, FILTER.program.len());
    assert_eq!(&data[16..16 + 8 * n], &program_bytes(&FILTER, false)[..]);
    let meta_len = u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize;
    let meta = std::str::from_utf8(&data[16 + 8 * n..16 + 8 * n + meta_len]).unwrap();
    assert!(meta.starts_with("policy=root-emulation\nkernel=") && meta.contains("7.3.4"), "{meta}");
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
