//! `rootemu inspect BINARY`: find the programs the macros embedded in an ELF file (any
//! architecture, either byte order, stripped or not), decode them and check them against
//! the current tables.

use crate::inputs::FilterInputs;
use crate::output::{OutputFormat, print_json};
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
    /// Output format (json: one object with a `status` of match, differs, none or error).
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
    /// Tables and policy to check against (default: the bundled ones).
    #[command(flatten)]
    inputs: FilterInputs,
}

/// Exit status: every embedded program matches the current tables.
const MATCHES: u8 = 0;
/// Exit status: an embedded program differs from the current tables.
const DIFFERS: u8 = 1;
/// Exit status: the binary has no embedded program.
const NONE_EMBEDDED: u8 = 2;
/// Exit status: the binary or the tables cannot be read or decoded.
const CANNOT_READ: u8 = 3;
/// Largest binary `inspect` reads (it reads the whole file).
const MAX_BINARY_BYTES: u64 = 1 << 30;

/// One embedded program checked against the current tables.
struct Checked {
    record: Record,
    abis: Vec<String>,
    /// The current tables' kernel release and program length.
    kernel: String,
    current_len: usize,
    /// The first instruction that differs, if any.
    differs_at: Option<usize>,
    listing: Option<String>,
}

/// What `inspect` found in one binary: ELF facts and the checked programs (`None`: no
/// section).
struct Found {
    bits: u8,
    big: bool,
    filters: Option<Vec<Checked>>,
}

/// Runs `rootemu inspect`: exit 0 when every program matches the tables, 1 when one
/// differs, 2 when the binary has no embedded program, 3 when the binary or the tables
/// cannot be read or decoded.
pub(crate) fn main(args: InspectArgs) -> Result<u8, String> {
    let path = args.binary.display().to_string();
    let found = match find(&args) {
        Ok(found) => found,
        Err(e) => {
            if args.format == OutputFormat::Json {
                print_json(&serde_json::json!({ "binary": path, "status": "error", "error": e }));
            }
            for line in e.lines() {
                eprintln!("rootemu: {line}");
            }
            return Ok(CANNOT_READ);
        }
    };
    let status = match &found.filters {
        None => NONE_EMBEDDED,
        Some(f) if f.iter().any(|c| c.differs_at.is_some()) => DIFFERS,
        Some(_) => MATCHES,
    };
    match args.format {
        OutputFormat::Text => print_text(&path, &found),
        OutputFormat::Json => print_json(&json(&path, &found, status)),
    }
    Ok(status)
}

/// Reads the binary, decodes its programs and checks each against the current tables.
fn find(args: &InspectArgs) -> Result<Found, String> {
    let bytes = rootemu_codegen::files::read_regular(&args.binary, MAX_BINARY_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", args.binary.display()))?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| format!("{}: not an ELF file: {e}", args.binary.display()))?;
    let (bits, big) = (if elf.is_64 { 64 } else { 32 }, !elf.little_endian);
    let Some(records) = embedded(&elf, &bytes)? else { return Ok(Found { bits, big, filters: None }) };
    let mut filters = Vec::new();
    for record in records {
        let abis: Vec<String> = record.get("abis").split(',').filter(|s| !s.is_empty()).map(String::from).collect();
        let current = args.inputs.clone().with_abis(abis.clone()).with_bundled_policy_named(record.get("policy")).build()?;
        let listing = args.listing.then(|| disasm::disassemble(&record.program, &current.tables));
        let differs_at = match record.program.iter().zip(&current.program).position(|(a, b)| a != b) {
            None if record.program.len() == current.program.len() => None,
            at => Some(at.unwrap_or(record.program.len().min(current.program.len()))),
        };
        filters.push(Checked {
            abis,
            kernel: current.kernel().to_string(),
            current_len: current.program.len(),
            differs_at,
            listing,
            record,
        });
    }
    Ok(Found { bits, big, filters: Some(filters) })
}

fn print_text(path: &str, found: &Found) {
    let Some(filters) = &found.filters else {
        outln!("{path}: no {SECTION} section: no rootemu filter embedded");
        return;
    };
    outln!("{path}: {}-bit {}-endian ELF, {} filter(s) in {SECTION}", found.bits, if found.big { "big" } else { "little" }, filters.len());
    for (i, c) in filters.iter().enumerate() {
        let r = &c.record;
        outln!(
            "filter {}: policy {}, tables of Linux {}, {} instructions, {} ABIs: {}",
            i + 1,
            r.get("policy"),
            r.get("kernel"),
            r.program.len(),
            c.abis.len(),
            c.abis.join(", ")
        );
        if let Some(listing) = &c.listing {
            out!("{listing}");
        }
        match c.differs_at {
            None => outln!("filter {}: matches the current tables (Linux {}) instruction for instruction", i + 1, c.kernel),
            Some(at) => outln!(
                "filter {}: DIFFERS from the current tables (Linux {}) at instruction {at} ({} vs {} instructions)",
                i + 1,
                c.kernel,
                r.program.len(),
                c.current_len
            ),
        }
    }
}

fn json(path: &str, found: &Found, status: u8) -> serde_json::Value {
    let filters: Vec<serde_json::Value> = found
        .filters
        .iter()
        .flatten()
        .map(|c| {
            serde_json::json!({
                "policy": c.record.get("policy"),
                "kernel": c.record.get("kernel"),
                "instructions": c.record.program.len(),
                "abis": c.abis,
                "matches": c.differs_at.is_none(),
                "differs_at": c.differs_at,
                "current_kernel": c.kernel,
                "current_instructions": c.current_len,
                "listing": c.listing,
            })
        })
        .collect();
    serde_json::json!({
        "binary": path,
        "status": match status { MATCHES => "match", DIFFERS => "differs", _ => "none" },
        "bits": found.bits,
        "endian": if found.big { "big" } else { "little" },
        "filters": filters,
    })
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
