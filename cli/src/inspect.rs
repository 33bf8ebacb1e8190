//! `rootemu inspect BINARY`: find the programs the macros embedded in an ELF file (any
//! architecture, either byte order, stripped or not), decode them and check them against
//! the current tables.

use crate::inputs::FilterInputs;
use clap::Args;
use rootemu_codegen::{Insn, disasm, export};
use std::path::PathBuf;

/// Arguments of `rootemu inspect`.
#[derive(Args)]
pub(crate) struct InspectArgs {
    /// The ELF binary to inspect.
    binary: PathBuf,
    /// Also print the symbolic listing of each program.
    #[arg(long)]
    listing: bool,
    /// Tables and policy to check against (default: the bundled ones).
    #[command(flatten)]
    inputs: FilterInputs,
}

/// Largest binary `inspect` reads (it reads the whole file).
const MAX_BINARY_BYTES: u64 = 1 << 30;

/// Section the macros place each program in, behind a `ROOTEMU\x01` header.
pub(crate) const SECTION: &str = ".rootemu_filter";
const MAGIC: &[u8; 8] = b"ROOTEMU\x01";

/// One embedded program and its `key=value` metadata.
pub(crate) struct Record {
    pub(crate) program: Vec<Insn>,
    meta: Vec<(String, String)>,
}

impl Record {
    pub(crate) fn get(&self, key: &str) -> &str {
        self.meta.iter().find(|(k, _)| k == key).map_or("?", |(_, v)| v.as_str())
    }
}

/// Runs `rootemu inspect`: exit 0 when every program matches the tables, 1 when one
/// differs, 2 when the binary has no embedded program.
pub(crate) fn main(args: InspectArgs) -> Result<u8, String> {
    let bytes = rootemu_codegen::files::read_regular(&args.binary, MAX_BINARY_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", args.binary.display()))?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| format!("{}: not an ELF file: {e}", args.binary.display()))?;
    let big = !elf.little_endian;
    let Some(records) = embedded(&elf, &bytes)? else {
        println!("{}: no {SECTION} section: no rootemu filter embedded", args.binary.display());
        return Ok(2);
    };
    println!(
        "{}: {}-bit {}-endian ELF, {} filter(s) in {SECTION}",
        args.binary.display(),
        if elf.is_64 { 64 } else { 32 },
        if big { "big" } else { "little" },
        records.len()
    );
    let mut mismatch = false;
    for (i, r) in records.iter().enumerate() {
        let abis: Vec<String> = r.get("abis").split(',').filter(|s| !s.is_empty()).map(String::from).collect();
        println!(
            "filter {}: policy {}, tables of Linux {}, {} instructions, {} ABIs: {}",
            i + 1,
            r.get("policy"),
            r.get("kernel"),
            r.program.len(),
            abis.len(),
            abis.join(", ")
        );
        let current = args.inputs.clone().with_abis(abis).build()?;
        if args.listing {
            print!("{}", disasm::disassemble(&r.program, &current.tables));
        }
        match r.program.iter().zip(&current.program).position(|(a, b)| a != b) {
            None if r.program.len() == current.program.len() => {
                println!("filter {}: matches the current tables (Linux {}) instruction for instruction", i + 1, current.kernel())
            }
            at => {
                mismatch = true;
                let at = at.unwrap_or(r.program.len().min(current.program.len()));
                println!(
                    "filter {}: DIFFERS from the current tables (Linux {}) at instruction {at} ({} vs {} instructions)",
                    i + 1,
                    current.kernel(),
                    r.program.len(),
                    current.program.len()
                );
            }
        }
    }
    Ok(u8::from(mismatch))
}

/// The records of the `.rootemu_filter` section of `elf` (parsed from `bytes`), decoded
/// in the ELF's byte order; `None` when there is no such section.
pub(crate) fn embedded(elf: &goblin::elf::Elf, bytes: &[u8]) -> Result<Option<Vec<Record>>, String> {
    let Some(sh) = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(SECTION)) else {
        return Ok(None);
    };
    let start = usize::try_from(sh.sh_offset).map_err(|_| "section offset out of range".to_string())?;
    let data = usize::try_from(sh.sh_size).ok().and_then(|n| bytes.get(start..start.checked_add(n)?)).ok_or("section outside the file")?;
    decode(data, !elf.little_endian).map(Some)
}

/// Splits the section into records: header, instructions, metadata padded to 8 bytes.
fn decode(section: &[u8], big: bool) -> Result<Vec<Record>, String> {
    let mut data = section;
    let word = |b: &[u8]| {
        let b: [u8; 4] = b.try_into().expect("4 bytes");
        if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    let mut out = Vec::new();
    while !data.is_empty() {
        // The linker may align records: skip zero padding between them.
        if data.len() >= 4 && data[..4] == [0; 4] {
            data = &data[4..];
            continue;
        }
        if data.len() < 16 || &data[..8] != MAGIC {
            return Err(format!("{SECTION}: no ROOTEMU header at offset {}", section.len() - data.len()));
        }
        let n = word(&data[8..12]) as usize;
        let meta_len = word(&data[12..16]) as usize;
        let insns_end = 16 + 8 * n;
        let end = insns_end + meta_len.next_multiple_of(8);
        if data.len() < end {
            return Err(format!("{SECTION}: a record of {n} instructions runs past the section"));
        }
        let program = export::from_raw(&data[16..insns_end], big).expect("a multiple of 8 bytes");
        let meta = String::from_utf8_lossy(&data[insns_end..insns_end + meta_len])
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.push(Record { program, meta });
        data = &data[end..];
    }
    Ok(out)
}
