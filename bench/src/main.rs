//! `rootemu-bench`: syscall overhead per filter layout, real workloads as an unprivileged
//! user against real root / `unshare -r` / fakeroot / proot, start-up, and build cost.
//!
//! Every comparison is made inside one run: variants are measured in rotated order over
//! several rounds, ratios are taken per round against the baseline of the same round, and
//! the report gives the minimum and the median. Nothing here asserts on time.

mod buildcost;
mod loader;
mod notify;
mod overlay;
mod report;
mod startup;
mod syscalls;
mod workloads;

use clap::Parser;
use report::{Json, Report};
use std::path::PathBuf;

/// Measure rootemu's syscall overhead, workloads and build cost side by side.
///
/// Sections: `syscalls` (ns per raw syscall under each filter layout, in forked children),
/// `workloads` (tar/dpkg-deb of a Debian package as the unprivileged user `rootemu-test`;
/// needs root), `startup` (`rootemu run -- true` against `unshare -r true`), `build`
/// (`Filter::build` in process, and cargo builds of a crate using the macro), `loader` (the
/// table and policy loader on hostile inputs of doubling size), `notify` (ns per stat and
/// chown call as `rootemu-test` without a filter, under `rootemu run` and under
/// `--consistent`; needs root). Downloads go to `${ROOTEMU_CACHE:-$HOME/.cache/rootemu}/bench`.
#[derive(Parser)]
#[command(name = "rootemu-bench", version)]
struct BenchArgs {
    /// The `rootemu` binary measured (default: `rootemu` next to this program).
    #[arg(long, value_name = "PATH")]
    rootemu: Option<PathBuf>,
    /// A short run: fewer rounds and iterations (numbers are noisier).
    #[arg(long)]
    quick: bool,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as markdown to FILE (it is always printed on stdout).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Skip a section (syscalls, workloads, startup, build, loader, notify); repeatable.
    #[arg(long, value_name = "SECTION")]
    skip: Vec<String>,
    /// Run only this section (repeatable).
    #[arg(long, value_name = "SECTION", conflicts_with = "skip")]
    only: Vec<String>,
    /// In the build section, time `Filter::build` only (no cargo builds of a crate).
    #[arg(long)]
    no_crate_build: bool,
    /// Rounds per measurement (default: 7, or 2 with --quick).
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// The notify section's probe: run CALL (getppid, stat, chown, statrec) on PATH N times
    /// and print ns per call and the result; nothing else runs.
    #[arg(long, hide = true, num_args = 3, value_names = ["CALL", "PATH", "N"])]
    probe: Option<Vec<String>>,
}

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    pub(crate) rounds: usize,
    pub(crate) crate_build: bool,
}

/// The `rootemu` binary measured; set once in [`main`].
static ROOTEMU: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The `rootemu` binary measured.
pub(crate) fn rootemu_bin() -> &'static std::path::Path {
    ROOTEMU.get().expect("set in main")
}

/// The bundled tables and policy, as the `rootemu` CLI has them.
const BUNDLED: &[(&str, &str)] = rootemu::bundled_sources!();

/// The filter from the bundled tables and root-emulation policy, compiled and proved now.
pub(crate) fn bundled_filter() -> Result<rootemu_codegen::Filter, String> {
    rootemu_codegen::Filter::from_sources(BUNDLED, "policy/root-emulation.yaml", &[]).map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    let args = BenchArgs::parse();
    let result = match &args.probe {
        Some(p) => notify::probe(p),
        None => run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            for line in e.lines() {
                eprintln!("rootemu-bench: {line}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

const SECTIONS: [&str; 6] = ["syscalls", "workloads", "startup", "build", "loader", "notify"];

/// Runs every section not skipped and writes the report.
fn run(args: BenchArgs) -> Result<(), String> {
    let bin = match args.rootemu.clone() {
        Some(p) => p,
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("rootemu"),
    };
    if !bin.is_file() {
        return Err(format!("{}: no such file (build it with scripts/build, or pass --rootemu PATH)", bin.display()));
    }
    ROOTEMU.set(bin).expect("set once");
    for s in args.skip.iter().chain(&args.only) {
        if !SECTIONS.contains(&s.as_str()) {
            return Err(format!("--skip/--only {s}: unknown section (expected one of {})", SECTIONS.join(", ")));
        }
    }
    let plan =
        Plan { quick: args.quick, rounds: args.rounds.unwrap_or(if args.quick { 2 } else { 7 }).max(1), crate_build: !args.no_crate_build };
    let mut report = Report::new(plan);
    for name in SECTIONS {
        let section = if args.skip.iter().any(|s| s == name) {
            Ok(report::Section::skipped(name, "skipped with --skip"))
        } else if !args.only.is_empty() && !args.only.iter().any(|s| s == name) {
            Ok(report::Section::skipped(name, "not chosen with --only"))
        } else {
            eprintln!("rootemu-bench: {name}...");
            match name {
                "syscalls" => syscalls::run(plan),
                "workloads" => workloads::run(plan),
                "startup" => startup::run(plan),
                "loader" => loader::run(plan),
                "notify" => notify::run(plan),
                _ => buildcost::run(plan),
            }
        };
        report.sections.push(section.unwrap_or_else(|e| report::Section::skipped(name, &e)));
    }
    report.goals();
    let md = report.markdown();
    print!("{md}");
    if let Some(p) = &args.markdown {
        std::fs::write(p, &md).map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    if let Some(p) = &args.json {
        let mut text = report.json().to_string();
        text.push('\n');
        std::fs::write(p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    Ok(())
}

/// Minimum and median of a sample.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stat {
    pub(crate) min: f64,
    pub(crate) median: f64,
}

impl Stat {
    pub(crate) fn of(v: &[f64]) -> Stat {
        let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stat { min: f64::NAN, median: f64::NAN };
        }
        v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Stat { min: v[0], median }
    }

    pub(crate) fn json(self) -> Json {
        Json::obj([("min", Json::Num(self.min)), ("median", Json::Num(self.median))])
    }
}

/// Per-round ratios `a[i] / b[i]`.
pub(crate) fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// `order[round]`: the indices 0..n rotated by the round number.
pub(crate) fn rotated(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n)
}

/// The cache directory for downloads and the build crate.
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ROOTEMU_CACHE") {
        return PathBuf::from(d).join("bench");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/rootemu/bench")
}
