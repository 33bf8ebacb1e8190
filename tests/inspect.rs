//! `rootemu inspect`: finds the embedded program in stripped, patched, foreign and
//! big-endian ELF files and checks it against the current tables.

use rootemu_codegen::record;
use rootemu_tests::{need, rootemu_bin};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn inspect(binary: &Path) -> Output {
    Command::new(rootemu_bin()).arg("inspect").arg(binary).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rootemu-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_rootemu_binary_matches_the_tables_even_stripped() {
    let o = inspect(&rootemu_bin());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("policy root-emulation, tables of Linux 7.3.4"), "{}", text(&o));
    if !need("strip", "binutils") {
        return;
    }
    let stripped = scratch("stripped");
    std::fs::copy(rootemu_bin(), &stripped).unwrap();
    assert!(Command::new("strip").arg(&stripped).status().unwrap().success());
    let o = inspect(&stripped);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("matches the current tables"), "{}", text(&o));
}

#[test]
fn a_patched_program_is_reported_and_a_plain_binary_has_none() {
    let mut bytes = std::fs::read(rootemu_bin()).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let sh = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(record::SECTION)).unwrap();
    let at = sh.sh_offset as usize;
    assert_eq!(bytes[at..at + 8], record::MAGIC);
    // The first instruction's k (ld [arch] = 4) becomes 0: ld [nr].
    bytes[at + 16 + 4] ^= 4;
    let patched = scratch("patched");
    std::fs::write(&patched, bytes).unwrap();
    let o = inspect(&patched);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("DIFFERS from the current tables (Linux 7.3.4) at instruction 0"), "{}", text(&o));
    let o = inspect(Path::new("/bin/true"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// A big-endian 64-bit ELF (s390x object) carrying a record in its byte order.
#[test]
fn big_endian_elf_files_decode_in_their_byte_order() {
    if !need("s390x-linux-gnu-gcc", "scripts/setup-deps cross") {
        return;
    }
    for (order, expect) in [("big", 0), ("little", 1)] {
        let out = Command::new(rootemu_bin()).args(["filter", "export", "--format", "raw", "--byte-order", order]).output().unwrap();
        assert!(out.status.success());
        let abis = abis();
        let meta = record::meta("root-emulation", "6.12.117", &abis.iter().map(String::as_str).collect::<Vec<_>>());
        // The bytes exported in `order`, placed as they are in a big-endian record.
        let program = rootemu_codegen::export::from_raw(&out.stdout, true).unwrap();
        let rec = record::encode(&program, &meta, true);
        let (src, obj, sec) = (scratch("e.c"), scratch(&format!("e-{order}.o")), scratch("rec.bin"));
        std::fs::write(&src, "int rootemu_inspect_test;\n").unwrap();
        std::fs::write(&sec, rec).unwrap();
        assert!(Command::new("s390x-linux-gnu-gcc").arg("-c").arg(&src).arg("-o").arg(&obj).status().unwrap().success());
        let add = format!("{}={}", record::SECTION, sec.display());
        assert!(Command::new("s390x-linux-gnu-objcopy").args(["--add-section", &add]).arg(&obj).status().unwrap().success());
        let o = inspect(&obj);
        assert!(text(&o).contains("64-bit big-endian ELF"), "{}", text(&o));
        // The program written in the wrong byte order does not decode to the real one.
        assert_eq!(o.status.code(), Some(expect), "{order}: {}", text(&o));
    }
}

fn abis() -> Vec<String> {
    let o = Command::new(rootemu_bin()).args(["filter", "export", "--format", "json"]).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    // `"name": "x"` of each ABI, in order.
    s.lines().filter_map(|l| l.trim().strip_prefix("\"name\": \"")).map(|l| l.trim_end_matches([',', '"']).to_string()).collect()
}
