//! `oracle-summary`: how many oracles agree with each cell of the bundled tables, from the
//! ledgers the oracle tests wrote (`<target>/oracle-ledger/<oracle>.tsv`). Exits 1 if a ledger
//! holds a disagreement, or under CI=true if fewer than 3 ledgers exist.

use rootemu_codegen::Tables;
use rootemu_tests::{Verdict, in_ci, ledger_dir, tables_dir};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Ledgers a full run writes (headers, libseccomp, rust, qemu: at least 3 under CI=true).
const LEDGERS_IN_CI: usize = 3;

/// A table cell: (ABI, syscall name).
type Cell = (String, String);

/// One oracle's ledger as read back: its verdict per cell.
struct Read {
    oracle: String,
    verdicts: BTreeMap<Cell, Verdict>,
}

/// Parses one ledger line `abi \t name \t nr \t verdict`.
fn parse_line(line: &str) -> Option<(Cell, Verdict)> {
    let mut f = line.splitn(4, '\t');
    let (abi, name, nr, v) = (f.next()?, f.next()?, f.next()?, f.next()?);
    nr.parse::<u64>().ok()?;
    let verdict = match v.split_once(": ") {
        None if v == "agree" => Verdict::Agree,
        Some(("explained", why)) => Verdict::Explained(why.to_string()),
        Some(("disagree", why)) => Verdict::Disagree(why.to_string()),
        _ => return None,
    };
    Some(((abi.to_string(), name.to_string()), verdict))
}

/// Reads every `*.tsv` ledger, sorted by oracle name.
fn read_ledgers() -> Result<Vec<Read>, String> {
    let dir = ledger_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut ledgers = Vec::new();
    for e in entries {
        let path = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let Some(oracle) = path.file_stem().filter(|_| path.extension().is_some_and(|x| x == "tsv")) else { continue };
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut verdicts = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let (cell, v) =
                parse_line(line).ok_or_else(|| format!("{}:{}: not `abi\\tname\\tnr\\tverdict`: {line:?}", path.display(), i + 1))?;
            verdicts.insert(cell, v);
        }
        ledgers.push(Read { oracle: oracle.to_string_lossy().into_owned(), verdicts });
    }
    ledgers.sort_by(|a, b| a.oracle.cmp(&b.oracle));
    Ok(ledgers)
}

/// Agree / explained / disagree counts of one ledger over the table cells, and its rows
/// naming no table cell.
fn counts(l: &Read, cells: &BTreeMap<Cell, usize>) -> [usize; 4] {
    let mut c = [0; 4];
    for (cell, v) in &l.verdicts {
        let i = match v {
            _ if !cells.contains_key(cell) => 3,
            Verdict::Agree => 0,
            Verdict::Explained(_) => 1,
            Verdict::Disagree(_) => 2,
        };
        c[i] += 1;
    }
    c
}

/// The markdown summary and whether it passes.
fn summary(tables: &Tables, ledgers: &[Read]) -> (String, bool) {
    // Every cell of every table -> how many oracles agree with it.
    let mut cells: BTreeMap<Cell, usize> =
        tables.abis.iter().flat_map(|a| a.syscalls.keys().map(|n| ((a.name.clone(), n.clone()), 0))).collect();
    for l in ledgers {
        for (cell, v) in &l.verdicts {
            if let (Some(k), Verdict::Agree) = (cells.get_mut(cell), v) {
                *k += 1;
            }
        }
    }
    let names: Vec<&str> = ledgers.iter().map(|l| l.oracle.as_str()).collect();
    let mut out = format!(
        "## Oracle coverage\n\n{} ABIs, {} cells (every name of every table); {} ledgers in {}: {}\n\n",
        tables.abis.len(),
        cells.len(),
        ledgers.len(),
        ledger_dir().display(),
        names.join(", ")
    );
    out.push_str("| oracle | agree | explained | disagree | rows naming no table cell |\n|---|---:|---:|---:|---:|\n");
    let mut disagreements = Vec::new();
    for l in ledgers {
        let [agree, explained, disagree, stale] = counts(l, &cells);
        out.push_str(&format!("| {} | {agree} | {explained} | {disagree} | {stale} |\n", l.oracle));
        for ((abi, name), v) in &l.verdicts {
            if let Verdict::Disagree(why) = v {
                disagreements.push(format!("{}: {abi} {name}: {why}", l.oracle));
            }
        }
    }
    out.push_str(&format!("\n| ABI | cells | {} | checked by 0 | 1 | 2 | 3+ |\n|---|---:|", names.join(" | ")));
    out.push_str(&"---:|".repeat(names.len() + 4));
    out.push('\n');
    let mut total = [0usize; 4];
    let mut uncovered = Vec::new();
    for a in &tables.abis {
        let mut by = [0usize; 4];
        for n in a.syscalls.keys() {
            by[cells[&(a.name.clone(), n.clone())].min(3)] += 1;
        }
        let per: Vec<String> = ledgers
            .iter()
            .map(|l| {
                a.syscalls.keys().filter(|n| l.verdicts.get(&(a.name.clone(), (*n).clone())) == Some(&Verdict::Agree)).count().to_string()
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            a.name,
            a.syscalls.len(),
            per.join(" | "),
            by[0],
            by[1],
            by[2],
            by[3]
        ));
        if by[0] == a.syscalls.len() {
            uncovered.push(a.name.as_str());
        }
        for (t, b) in total.iter_mut().zip(by) {
            *t += b;
        }
    }
    out.push_str(&format!(
        "\nCells checked (agreed) by 0 oracles: {}, by 1: {}, by 2: {}, by 3 or more: {}\n",
        total[0], total[1], total[2], total[3]
    ));
    let none = if uncovered.is_empty() { "none".to_string() } else { uncovered.join(", ") };
    out.push_str(&format!("ABIs with no oracle coverage: {none}\nDisagreements: {}\n", disagreements.len()));
    for d in &disagreements {
        out.push_str(&format!("- {d}\n"));
    }
    let mut ok = disagreements.is_empty();
    if in_ci() && ledgers.len() < LEDGERS_IN_CI {
        out.push_str(&format!("\nCI=true and only {} ledgers (at least {LEDGERS_IN_CI} expected)\n", ledgers.len()));
        ok = false;
    }
    (out, ok)
}

fn main() -> ExitCode {
    let tables = match Tables::load_dir(&tables_dir()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("oracle-summary: loading {}: {e}", tables_dir().display());
            return ExitCode::FAILURE;
        }
    };
    let ledgers = match read_ledgers() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("oracle-summary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (out, ok) = summary(&tables, &ledgers);
    println!("{out}");
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_lines_parse_back() {
        let cell = |a: &str, n: &str| (a.to_string(), n.to_string());
        assert_eq!(parse_line("x86_64\tchown\t92\tagree"), Some((cell("x86_64", "chown"), Verdict::Agree)));
        assert_eq!(
            parse_line("x32\tmseal\t1073742286\texplained: Linux 6.10: newer"),
            Some((cell("x32", "mseal"), Verdict::Explained("Linux 6.10: newer".into())))
        );
        assert_eq!(parse_line("arm\tfoo\t1\tdisagree: crate 2"), Some((cell("arm", "foo"), Verdict::Disagree("crate 2".into()))));
        assert_eq!(parse_line("arm\tfoo\tx\tagree"), None);
        assert_eq!(parse_line("arm\tfoo\t1\tmaybe"), None);
    }
}
