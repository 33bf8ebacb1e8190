//! The table and policy loader on hostile inputs (issue 17), at sizes n, 2n, 4n, 8n: what
//! `rootemu tables check` does (`Policy::check_all`), in process. Before the fix the same
//! inputs took 129 s (40k duplicate numbers), 70 s (100k nested `[`), 65 s (2000 copies of
//! one ABI file) and 23 s (10k unknown policy names): quadratic. Linear growth shows as a
//! ratio near 2 from one size to the next. Every size of every input is measured once per
//! round, in rotated order, and the ratios are taken within a round.

use super::report::{Json, Section, Table, mm};
use super::{Plan, Stat, ratios, rotated};
use rootemu_codegen::Policy;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One hostile input at one size: a tables directory with its policy.
struct Case {
    kind: &'static str,
    unit: &'static str,
    size: usize,
    dir: PathBuf,
}

/// The bundled x86_64 table (header and syscalls) and policy.
fn bundled(name: &str) -> Result<&'static str, String> {
    super::BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).ok_or_else(|| format!("no bundled {name}"))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(name), text).map_err(|e| format!("writing {}: {e}", dir.join(name).display()))
}

/// Writes the input `kind` of `size` units into a fresh `dir`.
fn make(kind: &str, size: usize, dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("policy")).map_err(|e| e.to_string())?;
    let table = bundled("x86_64.yaml")?;
    let header = &table[..table.find("\nsource:").ok_or("no source: in x86_64.yaml")? + 1];
    let mut policy = bundled("policy/root-emulation.yaml")?.to_string();
    let mut tables = vec![("x86_64.yaml".to_string(), table.to_string())];
    match kind {
        "duplicate numbers" => {
            let mut t = header.replace("nr_limit: 1024", "nr_limit: 1000000");
            t.push_str("syscalls:\n");
            (0..size).for_each(|i| t.push_str(&format!("  s{i}: 7\n")));
            tables = vec![("x86_64.yaml".into(), t)];
        }
        "nested [" => tables = vec![("x86_64.yaml".into(), format!("{header}syscalls: {}\n", "[".repeat(size)))],
        "copies of one ABI file" => tables = (0..size).map(|i| (format!("c{i:05}.yaml"), table.to_string())).collect(),
        _ => {
            policy =
                String::from("policy: p\ndefault: allow\nunknown_abi: kill_process\nrules:\n  - action: fake_success\n    syscalls:\n");
            (0..size).for_each(|i| policy.push_str(&format!("      - unknown_{i}\n")));
        }
    }
    for (name, text) in &tables {
        write(dir, name, text)?;
    }
    write(dir, "policy/root-emulation.yaml", &policy)
}

pub(crate) fn run(plan: Plan) -> Result<Section, String> {
    let mut s = Section::new("loader", "5. Loader on hostile inputs");
    // (input, unit, size n): measured at n, 2n, 4n, 8n. 8 x 16 copies is the 128-file limit.
    let scale = if plan.quick { 4 } else { 1 };
    let kinds: [(&str, &str, usize); 4] = [
        ("duplicate numbers", "entries", 5000 / scale),
        ("nested [", "levels", 12_500),
        ("copies of one ABI file", "files", 16 / scale),
        ("unknown policy names", "names", 1250 / scale),
    ];
    let root = std::env::temp_dir().join(format!("rootemu-bench-loader-{}", std::process::id()));
    let mut cases = Vec::new();
    for (kind, unit, n) in kinds {
        for k in [1, 2, 4, 8] {
            let dir = root.join(format!("{}-{}", kind.replace(' ', "-"), n * k));
            make(kind, n * k, &dir)?;
            cases.push(Case { kind, unit, size: n * k, dir });
        }
    }
    let mut ms: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut errors = vec![0usize; cases.len()];
    for round in 0..plan.rounds {
        for i in rotated(cases.len(), round) {
            let c = &cases[i];
            let policy = c.dir.join("policy/root-emulation.yaml");
            let t = Instant::now();
            let r = Policy::check_all(&c.dir, &[policy]);
            ms[i].push(t.elapsed().as_secs_f64() * 1e3);
            errors[i] = r.err().map_or(0, |e| e.0.len());
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    let mut t = Table::new(&["input", "size", "ms min / median", "errors found", "time ratio to the size before (2x size)"]);
    let mut js = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let st = Stat::of(&ms[i]);
        let ratio = (i % 4 != 0).then(|| Stat::of(&ratios(&ms[i], &ms[i - 1])));
        t.row(vec![
            c.kind.to_string(),
            format!("{} {}", c.size, c.unit),
            mm(st, |x| format!("{x:.2}")),
            errors[i].to_string(),
            ratio.map_or("-".into(), |r| mm(r, |x| format!("{x:.2}"))),
        ]);
        js.push(Json::obj([
            ("input", Json::str(c.kind)),
            ("size", Json::Num(c.size as f64)),
            ("ms", st.json()),
            ("errors", Json::Num(errors[i] as f64)),
            ("ratio_to_half_size", ratio.map_or(Json::Null, |r| r.json())),
        ]));
    }
    s.tables.push(t);
    s.notes.push(
        "`Policy::check_all` (what `rootemu tables check` runs) in process. Linear growth: each doubling of the input about doubles the time (ratio ~2; a quadratic loader gives ~4). Nested brackets are refused by a linear pre-scan before the YAML parser; the errors found are all counted, the CLI shows 20 per kind."
            .into(),
    );
    s.data = Json::obj([("cases", Json::Arr(js))]);
    Ok(s)
}
