//! Replays the fuzz corpora on stable Rust, without libFuzzer: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same harness
//! function the fuzz target calls (`rootemu-fuzz-harness`), plus the built-in seeds.
//! A panic names the file. Long fuzzing is local only:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/corpus/<target>` in `fuzz/`.

use rootemu_tests::workspace;
use std::path::PathBuf;

fn files(dir: &str, target: &str) -> Vec<PathBuf> {
    let dir = workspace().join("fuzz").join(dir).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

fn replay(target: &str, harness: fn(&[u8])) {
    let corpus = files("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty or missing");
    let regressions = files("regressions", target);
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(e) = std::panic::catch_unwind(|| harness(&data)) {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            panic!("fuzz target `{target}` fails on {}: {msg}", path.display());
        }
    }
    let seeds = rootemu_fuzz_harness::seeds(target);
    for s in &seeds {
        harness(s);
    }
    eprintln!("fuzz_replay {target}: {} corpus, {} regression and {} seed inputs replayed", corpus.len(), regressions.len(), seeds.len());
}

#[test]
fn tables_corpus() {
    replay("tables", rootemu_fuzz_harness::tables);
}

#[test]
fn bpf_corpus() {
    replay("bpf", rootemu_fuzz_harness::bpf);
}

#[test]
fn differential_corpus() {
    replay("differential", rootemu_fuzz_harness::differential);
}
