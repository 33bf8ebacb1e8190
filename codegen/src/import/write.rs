//! The YAML an import writes: the reviewed header verbatim, then the generated part.

use super::Imported;

/// Top-level keys the importer writes; everything before the first of them is header.
const GENERATED: [&str; 4] = ["source:", "syscalls:", "unimplemented:", "id16:"];

/// The header of an ABI file (`abi` .. `import`, comments included), ending in one newline.
pub(crate) fn header_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if GENERATED.iter().any(|k| line.starts_with(k)) {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// The complete ABI file: `header`, then `source`, `syscalls` (by number), `unimplemented`
/// and, when the ABI has any, `id16`.
/// `not_in`: the newer kernel release that no longer has the ABI (the numbers are kept).
pub(crate) fn abi_file(header: &str, kernel: &str, imp: &Imported, not_in: Option<&str>) -> String {
    let mut s = String::from(header);
    s.push_str("source:                  # written by the importer: where these numbers came from\n");
    s.push_str(&format!("  kernel: {}\n", release(kernel)));
    s.push_str(&format!("  file: {}\n", scalar(&imp.file)));
    s.push_str(&format!("  tags: [{}]\n", imp.tags.iter().map(|t| scalar(t)).collect::<Vec<_>>().join(", ")));
    if let Some(n) = not_in {
        s.push_str(&format!("  not_in: {}            # Linux {n} no longer has this ABI: numbers kept from {kernel}\n", release(n)));
    }
    s.push_str("syscalls:                # every syscall of the ABI: name -> n (seccomp sees nr_base + n)\n");
    let mut by_nr: Vec<(&u32, &String)> = imp.syscalls.iter().map(|(k, v)| (v, k)).collect();
    by_nr.sort();
    for (n, name) in by_nr {
        s.push_str(&format!("  {name}: {n}\n"));
    }
    if imp.unimplemented.is_empty() {
        s.push_str("unimplemented: []        # numbered in the kernel table, no entry point\n");
    } else {
        s.push_str("unimplemented:           # numbered in the kernel table, no entry point\n");
        for name in &imp.unimplemented {
            s.push_str(&format!("  - {name}\n"));
        }
    }
    if !imp.id16.is_empty() {
        s.push_str("id16:                    # entry point takes 16-bit ids (sys_*16)\n");
        for name in &imp.id16 {
            s.push_str(&format!("  - {name}\n"));
        }
    }
    s
}

/// A kernel release as a YAML string: quoted when YAML would read it as a number (`7.3`).
fn release(s: &str) -> String {
    let number = s.chars().all(|c| c.is_ascii_digit() || c == '.') && s.matches('.').count() <= 1;
    if number { format!("{s:?}") } else { scalar(s) }
}

/// A YAML plain scalar when safe, else double-quoted.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./=-".contains(c)) && !s.starts_with('-');
    if plain { s.to_string() } else { format!("{s:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keeps_comments_and_stops_at_generated_keys() {
        let text = "# comment\nabi: x\nimport:   # how\n  table: t.tbl\n  tags: [common]\n\n# trailing\n\nsource:\n  kernel: 1\nsyscalls:\n  read: 0\n";
        assert_eq!(header_of(text), "# comment\nabi: x\nimport:   # how\n  table: t.tbl\n  tags: [common]\n\n# trailing\n");
        assert_eq!(header_of("abi: x\nimport:\n  table: t\n"), "abi: x\nimport:\n  table: t\n");
    }

    #[test]
    fn generated_part_is_sorted_by_number() {
        let mut imp = Imported { file: "a/b.tbl".into(), tags: vec!["common".into(), "64".into()], ..Imported::default() };
        imp.insert("write", 1, false, ("a/b.tbl".into(), 2));
        imp.insert("read", 0, false, ("a/b.tbl".into(), 1));
        imp.insert("tuxcall", 184, true, ("a/b.tbl".into(), 3));
        let s = abi_file("abi: x\n", "6.12.117", &imp, None);
        assert_eq!(
            s,
            "abi: x\nsource:                  # written by the importer: where these numbers came from\n  kernel: 6.12.117\n  file: a/b.tbl\n  tags: [common, 64]\nsyscalls:                # every syscall of the ABI: name -> n (seccomp sees nr_base + n)\n  read: 0\n  write: 1\n  tuxcall: 184\nunimplemented:           # numbered in the kernel table, no entry point\n  - tuxcall\n"
        );
    }
}
