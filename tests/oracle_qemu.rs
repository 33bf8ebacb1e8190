//! Oracle 3, qemu-user: for every ABI that qemu-user runs and a Debian cross gcc builds
//! for (tests/matrix/qemu-user.tsv), tests/programs/strace_probe.c issues every number of the
//! table (`nr_base + n`, in order) under `qemu-<arch> -strace`, and the name qemu prints for
//! each number must be the table's. qemu's names come from its own per-target syscall
//! headers, maintained apart from the kernel's `.tbl` files and from our importer. The numbers
//! below the table's highest that the table lacks are issued too: qemu must have no name
//! there either (both ways, like the header oracle).
//!
//! A cell is agreed; explained (qemu has no name: it prints `Unknown syscall N`, a line that
//! names no call, or no line at all when the number never reaches its syscall layer; or a
//! spelling alias listed below); not issued (listed below with the reason: not checked); or
//! a disagreement, which fails the test. A cell's line is the one strace line between its
//! marker and the next (the probe makes no other syscall there); a cell with two lines is
//! a disagreement, so no cell is ever judged by another cell's line. A cell that ends the
//! probe anyway (exit, a signal) is still checked: qemu prints the call before running it,
//! and the probe restarts after it.
//!
//! Debian bookworm ships qemu 7.2, bookworm-backports 10.0 (what a machine whose qemu-utils
//! came from backports ends up with); both pass. What one release does differently is data
//! below, with the releases it was seen on ([`Releases`]) and why; a listed quirk the
//! running release does not show is reported as stale.

use rootemu_codegen::{Abi, Tables};
use rootemu_tests::{Ledger, Verdict, broken_tables, need, need_path, par_map, tables_dir, target_dir, workspace, write_report};
use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Calls never issued, whatever their number: (name, why). Reported, not checked.
const NOT_ISSUED: &[(&str, &str)] = &[
    ("fork", "would duplicate the probe"),
    ("vfork", "would duplicate the probe"),
    ("clone", "would duplicate the probe (flags -1 ask for every kind of sharing)"),
    ("rt_sigreturn", "restores registers from a signal frame that does not exist"),
    ("sigreturn", "restores registers from a signal frame that does not exist"),
    ("pause", "blocks until a signal"),
    ("sigsuspend", "blocks until a signal (mask -1 blocks them all)"),
];

/// Calls issued with other arguments than six -1 (the probe's `NR:A,...`): (name, the ABIs
/// it applies to (all if empty), arguments, why).
const ARGUMENTS: &[(&str, &[&str], &str, &str)] = &[
    ("execve", &[], "buf,buf,buf", "qemu prints no name for an execve whose path it cannot read; an empty path fails (ENOENT)"),
    ("msgget", &[], "-1,0", "flags -1 hold IPC_CREAT: it would create a message queue with key -1"),
    ("shmget", &[], "-1,-1,0", "flags -1 hold IPC_CREAT, and a 32-bit size -1 is a valid size"),
    ("set_tls", &[], "tp", "arm: sets the TLS pointer; passing the current one keeps errno working"),
    ("set_thread_area", &[], "tp", "mips, m68k: sets the TLS pointer (on x86 it takes a pointer: tp is -1 there)"),
    ("atomic_cmpxchg_32", &[], "-1,-1,-1,-1,-1,buf", "m68k: qemu raises SIGSEGV when the 6th argument (the address) is invalid"),
    (
        "mmap",
        &["i386", "s390x", "m68k"],
        "buf",
        "old_mmap takes one pointer to its six arguments, and qemu 10 prints its name only after reading them \
         (at -1 its line is `PID  = -1 errno=14 (Bad address)`); a zeroed block asks for length 0: EINVAL",
    ),
];

/// qemu releases a quirk was seen on, by major version, both ends included.
#[derive(Clone, Copy)]
struct Releases(u32, u32);

/// Every release.
const ALL: Releases = Releases(0, u32::MAX);

impl Releases {
    fn have(self, major: u32) -> bool {
        (self.0..=self.1).contains(&major)
    }
}

/// Names qemu's strace table spells differently for the same entry point:
/// (ABI, releases, table name, qemu's name, why).
const ALIASES: &[(&str, Releases, &str, &str, &str)] = &[
    ("mips", ALL, "fadvise64", "fadvise64_64", "o32 254 is sys_mips_fadvise64_64, which qemu names by its 64-bit form"),
    ("mipsel", ALL, "fadvise64", "fadvise64_64", "o32 254 is sys_mips_fadvise64_64, which qemu names by its 64-bit form"),
];

/// Names qemu prints for numbers our table lacks (besides `unused*`/`reserved*`
/// placeholders, which the importer drops): (ABI, releases, qemu's names, why).
const NAMED_GAPS: &[(&str, Releases, &[&str], &str)] = &[
    (
        "arm",
        ALL,
        &["time", "umount", "stime", "alarm", "utime", "getrlimit", "select", "readdir", "syscall", "socketcall", "ipc"],
        "OABI-only row of arch/arm/tools/syscall.tbl: our arm table is EABI, qemu-arm runs OABI binaries too",
    ),
    (
        "arm",
        Releases(7, 7),
        &["mmap"],
        "OABI-only old_mmap (90); qemu 10 prints its name only after reading the argument block, which -1 is not",
    ),
    (
        "riscv32",
        Releases(7, 7),
        &["fstatat64", "fstat64", "getrlimit", "setrlimit"],
        "qemu 7's riscv32 table has it, the kernel never wired it on rv32 (tags stat64/rlimit: not in riscv's \
         syscall_abis_32); qemu 10 has no name for it either",
    ),
];

/// ABIs of our tables that qemu-user cannot check on Debian bookworm, and why.
const NOT_COVERED: &[(&str, &str)] = &[
    ("x32", "qemu has no x32 user mode"),
    ("s390", "qemu has no 31-bit s390 user mode"),
    ("parisc64", "qemu has no 64-bit hppa user mode"),
    ("sheb", "qemu-sh4eb exists, but Debian's sh4 binutils link little-endian only"),
    ("loongarch64", "qemu-loongarch64 exists, but bookworm has no loongarch64 gcc"),
    ("microblaze", "qemu-microblaze exists, but Debian has no microblaze Linux gcc"),
    ("nios2", "qemu-nios2 exists, but Debian has no nios2 Linux gcc"),
    ("xtensa", "qemu-xtensa exists, but Debian has no xtensa Linux gcc (only gcc-xtensa-lx106, ESP8266)"),
    ("hexagon", "qemu-hexagon exists, but Debian has no hexagon gcc"),
    ("arc", "qemu has no arc user mode"),
    ("arcbe", "qemu has no arc user mode"),
    ("arcompact", "qemu has no arc user mode"),
    ("arcompactbe", "qemu has no arc user mode"),
    ("csky", "qemu has no csky user mode"),
];

/// Wall-clock limit of one probe run (normally well under a second); a cell that blocks
/// is killed at this limit, checked and reported, and the probe restarts after it.
const RUN_LIMIT_SECS: &str = "120";

/// The probe's stderr marker before each cell (then `I NR`) and at the end (then `end`).
const MARK: &str = "@@strace-probe ";

/// One row of tests/matrix/qemu-user.tsv: how to build and run the probe for an ABI.
struct Target {
    abi: String,
    qemu: String,
    cc: String,
    cflags: Vec<String>,
    qemu_args: Vec<String>,
}

/// The rows of tests/matrix/qemu-user.tsv, in file order.
fn targets() -> Vec<Target> {
    let path = workspace().join("tests/matrix/qemu-user.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let words = |s: &str| if s == "-" { Vec::new() } else { s.split('+').map(String::from).collect() };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{}: not 5 tab-separated fields: {l:?}", path.display());
            Target { abi: f[0].into(), qemu: f[1].into(), cc: f[2].into(), cflags: words(f[3]), qemu_args: words(f[4]) }
        })
        .collect()
}

/// Whether the tools for `t` are installed (under CI=true a missing one panics).
fn available(t: &Target) -> bool {
    let qemu = need(&t.qemu, "qemu-user runs the strace probe");
    let cc = need(&t.cc, "the cross gcc builds the strace probe");
    let sysroot = t.qemu_args.windows(2).filter(|w| w[0] == "-L").all(|w| need_path(Path::new(&w[1]), "the probe's dynamic libc"));
    qemu && cc && sysroot
}

/// The probe built for `t`, cached under `<target>/strace-probe` by a hash of the source,
/// the compiler and its flags.
fn build(t: &Target) -> PathBuf {
    let src = workspace().join("tests/programs/strace_probe.c");
    let text = std::fs::read(&src).expect("read tests/programs/strace_probe.c");
    let mut h = DefaultHasher::new();
    (&text, &t.cc, &t.cflags).hash(&mut h);
    let dir = target_dir().join("strace-probe");
    std::fs::create_dir_all(&dir).expect("create the probe cache directory");
    let bin = dir.join(format!("{}-{:016x}", t.abi, h.finish()));
    if !bin.exists() {
        let tmp = dir.join(format!("{}.{}.{:?}.tmp", t.abi, std::process::id(), std::thread::current().id()));
        let out = Command::new(&t.cc).arg("-O2").args(&t.cflags).arg("-o").arg(&tmp).arg(&src).output().expect("run the cross gcc");
        assert!(out.status.success(), "{} -O2 {:?}: {}", t.cc, t.cflags, String::from_utf8_lossy(&out.stderr));
        std::fs::rename(&tmp, &bin).expect("move the built probe into the cache");
    }
    bin
}

/// What qemu's `-strace` printed for one issued number.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// `PID name(args) = ret`.
    Name(String),
    /// `PID Unknown syscall N`: qemu's strace table has no entry for the number.
    Unknown,
    /// A line that names no call (e.g. qemu 10's `PID  = -1 errno=14 (Bad address)` for an
    /// old_mmap whose argument block it cannot read): qemu has no name.
    NoName(String),
    /// No line: qemu handled or refused the number before its syscall layer.
    Nothing,
    /// More than one strace line: the probe made a syscall of its own there, and which
    /// line is the cell's cannot be told.
    Ambiguous(Vec<String>),
}

/// What qemu printed for one cell, from the cell's output: the text after its marker's
/// `write` up to the next marker's `PID write(` (excluded). Strace lines start with a PID;
/// the rest of the marker's write (` = N`) and qemu's `--- SIGNAL` lines do not.
fn first_seen(body: &str) -> Seen {
    let lines: Vec<&str> = body
        .lines()
        .filter_map(|line| line.split_once(' ').filter(|(pid, _)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())))
        .map(|(_, rest)| rest)
        .collect();
    match lines[..] {
        [] => Seen::Nothing,
        [rest] if rest.starts_with("Unknown syscall ") => Seen::Unknown,
        [rest] => match rest.split_once('(') {
            Some((name, _)) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                Seen::Name(name.to_string())
            }
            _ => Seen::NoName(rest.trim().to_string()),
        },
        _ => Seen::Ambiguous(lines.iter().map(|l| l.trim().to_string()).collect()),
    }
}

/// Splits a probe run's stderr at the markers: what qemu printed for each cell, in order,
/// and whether the end marker came (if not, the last cell ended the run).
fn parse(stderr: &str) -> (Vec<Seen>, bool) {
    let parts: Vec<&str> = stderr.split(MARK).skip(1).collect();
    let mut seen = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let (head, body) = part.split_once('\n').unwrap_or((part, ""));
        if head == "end" {
            return (seen, true);
        }
        assert_eq!(head.split(' ').next(), Some(seen.len().to_string().as_str()), "probe marker out of order: {head:?}");
        // The next marker's `PID write(2,...)` ends this part, without a newline.
        let body = if i + 1 < parts.len() { body.rsplit_once('\n').map_or("", |(b, _)| b) } else { body };
        seen.push(first_seen(body));
    }
    (seen, false)
}

/// One number the probe issues: the table's name for it (`None`: a number the table lacks)
/// and the probe's argument (`NR` or `NR:A,...`).
struct Issue {
    nr: u64,
    name: Option<String>,
    arg: String,
}

/// Issues every number under `qemu -strace`, restarting after a cell that ends a run:
/// (what qemu printed per issue, the cells that ended a run, the number of runs).
fn issue_all(t: &Target, probe: &Path, issues: &[Issue]) -> (Vec<Seen>, Vec<String>, usize) {
    let (mut seen, mut ended, mut runs) = (Vec::new(), Vec::new(), 0);
    while seen.len() < issues.len() {
        runs += 1;
        let todo = &issues[seen.len()..];
        let out = Command::new("timeout")
            .args(["-s", "KILL", RUN_LIMIT_SECS, &t.qemu])
            .args(&t.qemu_args)
            .arg("-strace")
            .arg(probe)
            .args(todo.iter().map(|i| &i.arg))
            .current_dir(probe.parent().expect("probe directory"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .expect("run timeout(1) and qemu");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (got, complete) = parse(&stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        if complete {
            assert_eq!(got.len(), todo.len(), "{}: the probe ended after {} of {} cells", t.abi, got.len(), todo.len());
        } else {
            assert!(!got.is_empty(), "{}: no probe marker ({}); last lines: {tail:?}", t.abi, out.status);
            let last = &todo[got.len() - 1];
            let why = tail.first().map_or("", |l| l.trim());
            ended.push(format!("{} {} ({}: {why})", last.nr, last.name.as_deref().unwrap_or("-"), out.status));
        }
        seen.extend(got);
    }
    (seen, ended, runs)
}

/// One ABI's outcome.
#[derive(Default)]
struct Report {
    cells: usize,
    agreed: usize,
    no_name: usize,
    no_line: Vec<String>,
    nameless: Vec<String>,
    aliases: Vec<String>,
    not_issued: Vec<String>,
    disagreements: Vec<String>,
    gaps: usize,
    named_gaps: Vec<String>,
    /// Quirks listed for this release that the run did not show.
    stale: Vec<String>,
    ended: Vec<String>,
    runs: usize,
    secs: f64,
    /// (name, number, verdict) of every issued cell.
    verdicts: Vec<(String, u64, Verdict)>,
}

/// The verdict on the table cell `abi`/`name` = `nr` from what qemu (major release
/// `major`) printed.
fn cell_verdict(abi: &str, major: u32, name: &str, nr: u64, seen: &Seen) -> Verdict {
    match seen {
        Seen::Name(q) if q == name => Verdict::Agree,
        Seen::Name(q) => match ALIASES.iter().find(|(a, r, n, qn, _)| *a == abi && r.have(major) && *n == name && qn == q) {
            Some((.., why)) => Verdict::Explained(format!("qemu names it {q}: {why}")),
            None => Verdict::Disagree(format!("{abi} {name}: table {nr}, qemu prints {q}")),
        },
        Seen::Ambiguous(lines) => {
            Verdict::Disagree(format!("{abi} {name}: table {nr}, {} strace lines for one cell: {lines:?}", lines.len()))
        }
        Seen::Unknown => Verdict::Explained(format!("qemu has no name (Unknown syscall {nr})")),
        Seen::NoName(line) => Verdict::Explained(format!("qemu has no name (its line names no call: `{line}`)")),
        Seen::Nothing => Verdict::Explained("qemu has no name (no strace line: the number never reaches its syscall layer)".into()),
    }
}

/// qemu's name for a number `nr` the table lacks: `None` if it has none, `Ok(name)` if the
/// name is explained (a placeholder, or listed in [`NAMED_GAPS`]), else the disagreement.
fn gap_verdict<'a>(abi: &str, major: u32, nr: u64, seen: &'a Seen) -> Option<Result<&'a str, String>> {
    let q = match seen {
        Seen::Name(q) => q,
        Seen::Ambiguous(lines) => return Some(Err(format!("{abi} {nr}: {} strace lines for one number: {lines:?}", lines.len()))),
        _ => return None,
    };
    let placeholder = q.starts_with("unused") || q.starts_with("reserved");
    if placeholder || NAMED_GAPS.iter().any(|(a, r, names, _)| *a == abi && r.have(major) && names.contains(&q.as_str())) {
        Some(Ok(q))
    } else {
        Some(Err(format!("{abi} {nr}: qemu prints {q}, the table has no {nr}")))
    }
}

/// The probe's argument for `name` = `nr` on `abi`: `NR`, or `NR:A,...` from [`ARGUMENTS`].
fn probe_arg(abi: &str, name: &str, nr: u64) -> String {
    ARGUMENTS
        .iter()
        .find(|(s, abis, ..)| *s == name && (abis.is_empty() || abis.contains(&abi)))
        .map_or(nr.to_string(), |(.., a, _)| format!("{nr}:{a}"))
}

/// `qemu --version`'s release, e.g. ("10.0.2", 10).
fn release(qemu: &str) -> (String, u32) {
    let out = Command::new(qemu).arg("--version").output().unwrap_or_else(|e| panic!("{qemu} --version: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().skip_while(|w| *w != "version").nth(1).unwrap_or_default().to_string();
    let major = version.split('.').next().and_then(|m| m.parse().ok());
    let major = major.unwrap_or_else(|| panic!("{qemu} --version: no release in {text:?}"));
    (version, major)
}

/// Issues every cell of `abi` (and the numbers it lacks below its highest) with the probe,
/// run by qemu of major release `major`.
fn check(abi: &Abi, major: u32, t: &Target, probe: &Path) -> Report {
    let mut r = Report::default();
    let mut cells: Vec<(u32, &String)> = abi.syscalls.iter().map(|(name, n)| (*n, name)).collect();
    cells.sort();
    let mut issues = Vec::new();
    for (n, name) in cells {
        r.cells += 1;
        if NOT_ISSUED.iter().any(|(s, _)| s == name) {
            r.not_issued.push(name.clone());
            continue;
        }
        let nr = u64::from(abi.nr_base + n);
        issues.push(Issue { nr, name: Some(name.clone()), arg: probe_arg(&abi.name, name, nr) });
    }
    // Regular numbers are below 1024 everywhere; arm's private calls (0x0f0000+) are cells,
    // but the range up to them is not probed.
    let taken: BTreeSet<u32> = abi.syscalls.values().copied().collect();
    let top = taken.iter().copied().filter(|n| *n < 1024).max().unwrap_or(0);
    for n in (0..top).filter(|n| !taken.contains(n)) {
        let nr = u64::from(abi.nr_base + n);
        issues.push(Issue { nr, name: None, arg: nr.to_string() });
        r.gaps += 1;
    }
    let (seen, ended, runs) = issue_all(t, probe, &issues);
    (r.ended, r.runs) = (ended, runs);
    for (issue, seen) in issues.iter().zip(&seen) {
        let Some(name) = &issue.name else {
            match gap_verdict(&abi.name, major, issue.nr, seen) {
                Some(Ok(q)) => r.named_gaps.push(format!("{} {q}", issue.nr)),
                Some(Err(why)) => r.disagreements.push(why),
                None => {}
            }
            continue;
        };
        let v = cell_verdict(&abi.name, major, name, issue.nr, seen);
        match &v {
            Verdict::Agree => r.agreed += 1,
            Verdict::Explained(why) if why.starts_with("qemu names it") => r.aliases.push(format!("{name}: {why}")),
            Verdict::Explained(_) => {
                r.no_name += 1;
                match seen {
                    Seen::Nothing => r.no_line.push(name.clone()),
                    Seen::NoName(line) => r.nameless.push(format!("{name} (`{line}`)")),
                    _ => {}
                }
            }
            Verdict::Disagree(why) => r.disagreements.push(why.clone()),
        }
        r.verdicts.push((name.clone(), issue.nr, v));
    }
    r.stale = stale_quirks(&abi.name, major, &r);
    r
}

/// The quirks listed for `abi` on release `major` that the run did not show: data to
/// update (reported, not a failure: a quirk only ever explains).
fn stale_quirks(abi: &str, major: u32, r: &Report) -> Vec<String> {
    let mut stale = Vec::new();
    for (a, rel, names, _) in NAMED_GAPS.iter().filter(|(a, r, ..)| *a == abi && r.have(major)) {
        for n in names.iter().filter(|n| !r.named_gaps.iter().any(|g| g.split_once(' ').is_some_and(|(_, q)| q == **n))) {
            stale.push(format!("{a} gap {n} (listed for qemu {}..={})", rel.0, rel.1));
        }
    }
    for (a, _, name, q, _) in ALIASES.iter().filter(|(a, r, ..)| *a == abi && r.have(major)) {
        if !r.aliases.iter().any(|x| x.starts_with(&format!("{name}: qemu names it {q}:"))) {
            stale.push(format!("{a} alias {name} = {q}"));
        }
    }
    stale
}

/// Runs the oracle on the ABIs of `tables` that have a row in qemu-user.tsv and whose tools
/// are installed, `only` these if given: (markdown report, disagreements, ledger).
fn run(tables: &Tables, only: Option<&[&str]>) -> (String, Vec<String>, Ledger) {
    let t0 = Instant::now();
    let todo: Vec<(Target, &Abi)> = targets()
        .into_iter()
        .filter(|t| only.is_none_or(|o| o.contains(&t.abi.as_str())))
        .filter_map(|t| tables.get(&t.abi).map(|a| (t, a)))
        .filter(|(t, _)| available(t))
        .collect();
    let releases: Vec<(String, u32)> = todo.iter().map(|(t, _)| release(&t.qemu)).collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let done = par_map(&todo.iter().zip(&releases).collect::<Vec<_>>(), threads, |((t, abi), (_, major))| {
        let start = Instant::now();
        let mut r = check(abi, *major, t, &build(t));
        r.secs = start.elapsed().as_secs_f64();
        r
    });
    let mut versions: Vec<&str> = releases.iter().map(|(v, _)| v.as_str()).collect();
    versions.sort_unstable();
    versions.dedup();
    let mut out = format!(
        "## Oracle 3: qemu-user {} `-strace` names\n\n\
         | ABI | qemu | cells | agree | qemu has no name | aliases | not issued | disagree | gaps probed | gaps qemu names (explained) | runs | time |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        versions.join(", ")
    );
    let (mut details, mut bad, mut ledger) = (String::new(), Vec::new(), Ledger::new("qemu"));
    let mut sum = [0usize; 6];
    for (((t, abi), (version, _)), r) in todo.iter().zip(&releases).zip(&done) {
        out.push_str(&format!(
            "| {} | {} {version} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |\n",
            t.abi,
            t.qemu,
            r.cells,
            r.agreed,
            r.no_name,
            r.aliases.len(),
            r.not_issued.len(),
            r.disagreements.len(),
            r.gaps,
            r.named_gaps.len(),
            r.runs,
            r.secs
        ));
        for (k, v) in [r.cells, r.agreed, r.no_name, r.aliases.len(), r.not_issued.len(), r.disagreements.len()].into_iter().enumerate() {
            sum[k] += v;
        }
        for (label, list) in [
            ("not issued", &r.not_issued),
            ("no strace line (qemu has no name)", &r.no_line),
            ("a strace line without a name (qemu has no name)", &r.nameless),
            ("aliases", &r.aliases),
            ("ended a probe run (checked; the probe restarted after it)", &r.ended),
            ("numbers the table lacks that qemu names", &r.named_gaps),
            ("quirks listed for this release but not seen (stale data)", &r.stale),
        ] {
            if !list.is_empty() {
                details.push_str(&format!("- {} {label}: {}\n", t.abi, list.join(", ")));
            }
        }
        for (name, nr, v) in &r.verdicts {
            ledger.record(&abi.name, name, *nr, v.clone());
        }
        bad.extend(r.disagreements.iter().cloned());
    }
    out.push_str(&format!(
        "\n{} ABIs, {} cells: {} agree, {} qemu has no name, {} aliases, {} not issued, {} disagree (in {:.1?})\n\n",
        done.len(),
        sum[0],
        sum[1],
        sum[2],
        sum[3],
        sum[4],
        sum[5],
        t0.elapsed()
    ));
    out.push_str(&details);
    out.push_str("\nWhy not issued:\n");
    for (name, why) in NOT_ISSUED {
        out.push_str(&format!("- {name}: {why}\n"));
    }
    out.push_str("\nWhy qemu names numbers the tables lack:\n- unused*, reserved*: placeholder rows, dropped by the importer\n");
    for (abi, rel, names, why) in NAMED_GAPS {
        let on = if rel.1 == u32::MAX { String::new() } else { format!(" (qemu {}..={})", rel.0, rel.1) };
        out.push_str(&format!("- {abi} {}{on}: {why}\n", names.join(", ")));
    }
    out.push_str("\nWhy some calls get other arguments:\n");
    for (name, abis, args, why) in ARGUMENTS {
        let on = if abis.is_empty() { String::new() } else { format!(" ({})", abis.join(", ")) };
        out.push_str(&format!("- {name}{on} `{args}`: {why}\n"));
    }
    out.push_str("\nNot covered by qemu-user here:\n");
    for (abi, why) in NOT_COVERED {
        out.push_str(&format!("- {abi}: {why}\n"));
    }
    (out, bad, ledger)
}

#[test]
fn qemu_names_every_cell_as_the_table_does() {
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let (report, bad, ledger) = run(&tables, None);
    ledger.write();
    write_report("qemu", &report);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_table_abi_is_covered_or_explained() {
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let covered: Vec<String> = targets().into_iter().map(|t| t.abi).collect();
    for abi in &tables.abis {
        let listed = NOT_COVERED.iter().any(|(a, _)| *a == abi.name);
        assert!(covered.contains(&abi.name) != listed, "{}: in qemu-user.tsv xor NOT_COVERED", abi.name);
    }
    for name in covered.iter().map(String::as_str).chain(NOT_COVERED.iter().map(|(a, _)| *a)) {
        assert!(tables.get(name).is_some(), "{name}: listed, but no such table");
    }
}

#[test]
fn a_wrong_cell_is_caught() {
    let Some(t) = targets().into_iter().find(|t| t.abi == "x86_64") else { panic!("qemu-user.tsv has no x86_64 row") };
    if !available(&t) {
        return;
    }
    // chown and fchown swapped; lchown moved to a free number, so its own number is a gap.
    let edits =
        [("\n  chown: 92\n", "\n  chown: 93\n"), ("\n  fchown: 93\n", "\n  fchown: 92\n"), ("\n  lchown: 94\n", "\n  lchown: 500\n")];
    let dir = broken_tables("oracle-qemu", &edits.map(|(from, to)| ("x86_64.yaml", from, to)));
    let broken = Tables::load_dir(&dir).unwrap();
    let (_, bad, _) = run(&broken, Some(&["x86_64"]));
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(
        bad,
        [
            "x86_64 fchown: table 92, qemu prints chown",
            "x86_64 chown: table 93, qemu prints fchown",
            "x86_64 94: qemu prints lchown, the table has no 94",
        ]
    );
}

/// Probe output as qemu 10.0.2 printed it for m68k with the probe built on glibc's
/// `syscall()`: mmap (90) at -1 gets a line that names no call, glibc then reads errno's
/// thread pointer with get_thread_area; munmap (91) follows; 4460 prints nothing at all.
const QEMU10_M68K: &str = "\
25126 write(2,0xc0800820,20)@@strace-probe 0 90
 = 20
25126  = -1 errno=14 (Bad address)
25126 write(2,0xc0800820,20)@@strace-probe 1 91
 = 20
25126 munmap(0xffffffff,-1) = -1 errno=22 (Invalid argument)
25126 write(2,0xc0800820,22)@@strace-probe 2 4460
 = 22
25126 write(2,0xc0800820,20)@@strace-probe 3 90
 = 20
25126  = -1 errno=14 (Bad address)
25126 get_thread_area() = 0x800794e0
25126 write(2,0x8004d8e6,19)@@strace-probe end
 = 19
25126 exit_group(0)
";

#[test]
fn a_cell_without_a_name_is_reported_as_missing_not_as_the_next_lines_name() {
    let (seen, complete) = parse(QEMU10_M68K);
    assert!(complete);
    assert_eq!(
        seen,
        [
            Seen::NoName("= -1 errno=14 (Bad address)".into()),
            Seen::Name("munmap".into()),
            Seen::Nothing,
            Seen::Ambiguous(vec!["= -1 errno=14 (Bad address)".into(), "get_thread_area() = 0x800794e0".into()]),
        ]
    );
    let verdict = |nr, name, seen| cell_verdict("m68k", 10, name, nr, seen);
    assert_eq!(
        verdict(90, "mmap", &seen[0]),
        Verdict::Explained("qemu has no name (its line names no call: `= -1 errno=14 (Bad address)`)".into())
    );
    assert_eq!(verdict(91, "munmap", &seen[1]), Verdict::Agree);
    assert_eq!(
        verdict(4460, "x", &seen[2]),
        Verdict::Explained("qemu has no name (no strace line: the number never reaches its syscall layer)".into())
    );
    assert!(matches!(verdict(90, "mmap", &seen[3]), Verdict::Disagree(why) if why.contains("2 strace lines for one cell")));
}

#[test]
fn a_cell_qemu_prints_no_name_for_is_reported_as_missing() {
    let Some(t) = targets().into_iter().find(|t| t.abi == "m68k") else { panic!("qemu-user.tsv has no m68k row") };
    if !available(&t) {
        return;
    }
    let (version, major) = release(&t.qemu);
    // Six -1 arguments: qemu 7 names old_mmap, qemu 10 prints a line without a name.
    let issues = [("mmap", 90), ("munmap", 91)].map(|(name, nr)| Issue { nr, name: Some(name.into()), arg: nr.to_string() });
    let (seen, ..) = issue_all(&t, &build(&t), &issues);
    assert_eq!(seen[1], Seen::Name("munmap".into()), "qemu {version}");
    match cell_verdict("m68k", major, "mmap", 90, &seen[0]) {
        Verdict::Agree => assert!(major < 10, "qemu {version} named mmap at -1: {:?}", seen[0]),
        Verdict::Explained(why) => assert!(why.starts_with("qemu has no name (its line names no call"), "qemu {version}: {why}"),
        Verdict::Disagree(why) => panic!("qemu {version}: {why}"),
    }
}
