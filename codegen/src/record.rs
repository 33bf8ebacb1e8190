//! The `.rootemu_filter` record: how a program travels inside a binary.
//!
//! The macros place each program in the ELF section [`SECTION`] as one record, in the
//! target's byte order: the 8-byte [`MAGIC`], the number of instructions and the length
//! of the metadata (two `u32`), the instructions (8 bytes each, `struct sock_filter`),
//! then `key=value` lines (`policy`, `kernel`, `abis`) zero-padded to a multiple of 8.
//! `rootemu inspect` and `rootemu selfcheck` find them with [`decode`]. The `rootemu`
//! crate's `Embedded` struct has this layout, so the compiler writes the byte order.

use crate::bpf::Insn;
use crate::export;

/// The ELF section holding every embedded program.
pub const SECTION: &str = ".rootemu_filter";
/// The first 8 bytes of every record (the last one is the format version).
pub const MAGIC: [u8; 8] = *b"ROOTEMU\x01";
/// Bytes before the instructions: magic, instruction count, metadata length.
pub const HEADER: usize = 16;

/// One decoded record: the program and its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The program.
    pub program: Vec<Insn>,
    /// `key=value` pairs, in order.
    pub meta: Vec<(String, String)>,
}

impl Record {
    /// The metadata value of `key`, or `?`.
    pub fn get(&self, key: &str) -> &str {
        self.meta.iter().find(|(k, _)| k == key).map_or("?", |(_, v)| v.as_str())
    }
}

/// The metadata text of a program: `policy=`, `kernel=`, `abis=` (comma-separated) lines.
pub fn meta(policy: &str, kernel: &str, abis: &[&str]) -> String {
    format!("policy={policy}\nkernel={kernel}\nabis={}\n", abis.join(","))
}

/// `meta` as the record stores it: zero-padded to a multiple of 8 bytes.
pub fn padded(meta: &str) -> Vec<u8> {
    let mut b = meta.as_bytes().to_vec();
    b.resize(b.len().next_multiple_of(8), 0);
    b
}

/// One record's bytes in the given byte order.
pub fn encode(program: &[Insn], meta: &str, big_endian: bool) -> Vec<u8> {
    let word = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = MAGIC.to_vec();
    out.extend(word(program.len() as u32));
    out.extend(word(meta.len() as u32));
    out.extend(export::raw(program, big_endian));
    out.extend(padded(meta));
    out
}

/// Splits a section's bytes into records, in the ELF's byte order (zero padding the linker
/// put between records is skipped).
pub fn decode(section: &[u8], big_endian: bool) -> Result<Vec<Record>, String> {
    let mut data = section;
    let word = |b: &[u8]| {
        let b: [u8; 4] = b.try_into().expect("4 bytes");
        if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() >= 4 && data[..4] == [0; 4] {
            data = &data[4..];
            continue;
        }
        if data.len() < HEADER || data[..8] != MAGIC {
            return Err(format!("{SECTION}: no ROOTEMU header at offset {}", section.len() - data.len()));
        }
        let n = word(&data[8..12]) as usize;
        let meta_len = word(&data[12..16]) as usize;
        let insns_end = n.checked_mul(8).and_then(|b| b.checked_add(HEADER));
        let end = insns_end.and_then(|e| e.checked_add(meta_len.checked_next_multiple_of(8)?));
        let (Some(insns_end), Some(end)) = (insns_end, end) else {
            return Err(format!("{SECTION}: a record's sizes overflow"));
        };
        if data.len() < end {
            return Err(format!("{SECTION}: a record of {n} instructions runs past the section"));
        }
        let program = export::from_raw(&data[HEADER..insns_end], big_endian).expect("a multiple of 8 bytes");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_both_byte_orders_with_padding_between() {
        let prog = [Insn::new(0x20, 0, 0, 4), Insn::new(0x06, 0, 0, 0x7fff_0000)];
        let m = meta("root-emulation", "6.12.117", &["x86_64", "x32"]);
        for big in [false, true] {
            let mut section = encode(&prog, &m, big);
            section.extend([0; 8]);
            section.extend(encode(&prog[1..], &m, big));
            let recs = decode(&section, big).unwrap();
            assert_eq!(recs.len(), 2);
            assert_eq!(recs[0].program, prog);
            assert_eq!(recs[1].program, prog[1..]);
            assert_eq!(recs[0].get("abis"), "x86_64,x32");
            assert_eq!(recs[0].get("nothing"), "?");
        }
        let err = decode(b"NOTROOTEMU......", false).unwrap_err();
        assert_eq!(err, ".rootemu_filter: no ROOTEMU header at offset 0");
    }
}
