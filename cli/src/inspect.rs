//! `rootemu inspect BINARY`: find the programs the macros embedded in an ELF file (any
//! architecture, either byte order, stripped or not), decode them and check them against
//! the current tables.

use crate::inputs::FilterInputs;
use clap::Args;
use rootemu_codegen::disasm;
use rootemu_codegen::record::{self, Record, SECTION};
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

/// Runs `rootemu inspect`: exit 0 when every program matches the tables, 1 when one
/// differs, 2 when the binary has no embedded program.
pub(crate) fn main(args: InspectArgs) -> Result<u8, String> {
    let bytes = std::fs::read(&args.binary).map_err(|e| format!("cannot read {}: {e}", args.binary.display()))?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| format!("{}: not an ELF file: {e}", args.binary.display()))?;
    let big = !elf.little_endian;
    let Some(records) = embedded(&elf, &bytes)? else {
        outln!("{}: no {SECTION} section: no rootemu filter embedded", args.binary.display());
        return Ok(2);
    };
    outln!(
        "{}: {}-bit {}-endian ELF, {} filter(s) in {SECTION}",
        args.binary.display(),
        if elf.is_64 { 64 } else { 32 },
        if big { "big" } else { "little" },
        records.len()
    );
    let mut mismatch = false;
    for (i, r) in records.iter().enumerate() {
        let abis: Vec<String> = r.get("abis").split(',').filter(|s| !s.is_empty()).map(String::from).collect();
        outln!(
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
            out!("{}", disasm::disassemble(&r.program, &current.tables));
        }
        match r.program.iter().zip(&current.program).position(|(a, b)| a != b) {
            None if r.program.len() == current.program.len() => {
                outln!("filter {}: matches the current tables (Linux {}) instruction for instruction", i + 1, current.kernel())
            }
            at => {
                mismatch = true;
                let at = at.unwrap_or(r.program.len().min(current.program.len()));
                outln!(
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
    record::decode(data, !elf.little_endian).map(Some)
}
