//! The cost of one call: ns per `getppid`, `fstatat` and `fchownat` as the unprivileged user
//! without a filter, under `rootemu run` and under `rootemu run --consistent` (where the
//! chown and stat families go to the supervisor), measured by this binary's `--probe` mode.

use super::report::{Json, Section, Table, mm};
use super::workloads::{USER, Unpriv, failure};
use super::{Plan, Stat, ratios, rotated};
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Instant;

/// The owner the chown calls give.
const OWNER: (libc::uid_t, libc::gid_t) = (5, 6);
/// Timed batches per probe; the probe reports the fastest.
const BATCHES: usize = 5;

/// One measured call: the probe's name for it, the report's label, and the file it works on.
struct Call {
    key: &'static str,
    label: &'static str,
    file: &'static str,
}

const CALLS: [Call; 4] = [
    Call { key: "getppid", label: "getppid (never notified)", file: "plain" },
    Call { key: "stat", label: "fstatat of a file without a record", file: "plain" },
    Call { key: "chown", label: "fchownat to 5:6 (writes a record)", file: "chowned" },
    Call { key: "statrec", label: "fstatat of a file with a record", file: "recorded" },
];

/// How the probe is started: its label and the words before the probe's own.
struct Mode {
    label: &'static str,
    prefix: Vec<String>,
    /// Whether records show back (a recorded owner must be the one stat returns).
    consistent: bool,
}

/// The `--probe CALL PATH N` mode: runs CALL on PATH N times and prints `ns/call result`.
pub(crate) fn probe(args: &[String]) -> Result<(), String> {
    let [call, path, n] = args else { return Err("--probe CALL PATH N".into()) };
    let n: usize = n.parse().map_err(|_| format!("--probe: {n}: not a count"))?;
    let p = CString::new(path.as_str()).map_err(|e| e.to_string())?;
    // SAFETY: a plain C struct, filled by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is NUL-terminated and `st` is a stat buffer.
    let stat = |st: &mut libc::stat| ret(unsafe { libc::fstatat(libc::AT_FDCWD, p.as_ptr(), st, 0) });
    // SAFETY: `p` is NUL-terminated.
    let chown = || ret(unsafe { libc::fchownat(libc::AT_FDCWD, p.as_ptr(), OWNER.0, OWNER.1, 0) });
    let (ns, rc) = match call.as_str() {
        // SAFETY: no arguments.
        "getppid" => time(n, || i64::from(unsafe { libc::getppid() })),
        "stat" => time(n, || stat(&mut st)),
        "chown" => time(n, chown),
        "statrec" => {
            // The record is made in this run; its own result shows in the owner printed.
            chown();
            time(n, || stat(&mut st))
        }
        _ => return Err(format!("--probe: {call}: unknown call (getppid, stat, chown, statrec)")),
    };
    let result = match call.as_str() {
        "getppid" => "-".to_string(),
        _ if rc < 0 => format!("fails: {}", std::io::Error::from_raw_os_error(-rc as i32)),
        "chown" => "0".to_string(),
        _ => format!("owner {}:{}", st.st_uid, st.st_gid),
    };
    println!("{ns:.1} {result}");
    Ok(())
}

/// A libc return value, or `-errno` when it is -1.
fn ret(rc: libc::c_int) -> i64 {
    if rc == -1 { -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) } else { i64::from(rc) }
}

/// ns per call of `f` (the fastest of [`BATCHES`] batches after n/10 warm-up calls) and its last result.
fn time(n: usize, mut f: impl FnMut() -> i64) -> (f64, i64) {
    let mut rc = 0;
    for _ in 0..n / 10 {
        rc = f();
    }
    let batch = (n / BATCHES).max(1);
    let mut best = f64::INFINITY;
    for _ in 0..BATCHES {
        let t0 = Instant::now();
        for _ in 0..batch {
            rc = f();
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / batch as f64);
    }
    (best, rc)
}

/// Measures every call under every mode as the unprivileged user (needs root).
pub(crate) fn run(plan: Plan) -> Result<Section, String> {
    let u = Unpriv::setup("n")?;
    let probe = u.work.join("rootemu-bench");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    fs::copy(&exe, &probe).map_err(|e| format!("copying {}: {e}", exe.display()))?;
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let files = u.work.join("files");
    fs::create_dir(&files).map_err(|e| format!("{}: {e}", files.display()))?;
    for f in [files.clone()].into_iter().chain(CALLS.iter().map(|c| files.join(c.file))) {
        if !f.exists() {
            fs::write(&f, "").map_err(|e| format!("{}: {e}", f.display()))?;
        }
        std::os::unix::fs::chown(&f, Some(u.uid), Some(u.gid)).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let bin = u.bin.to_string_lossy().into_owned();
    let words = |w: &[&str]| w.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let modes = [
        Mode { label: "no filter", prefix: Vec::new(), consistent: false },
        Mode { label: "rootemu run", prefix: words(&[bin.as_str(), "run", "--"]), consistent: false },
        Mode { label: "rootemu run --consistent", prefix: words(&[bin.as_str(), "run", "--consistent", "--"]), consistent: true },
    ];
    let iters = if plan.quick { 5_000 } else { 50_000 };
    let pairs: Vec<(usize, usize)> = (0..CALLS.len()).flat_map(|c| (0..modes.len()).map(move |m| (c, m))).collect();
    // ns[call][mode][round], and each pair's last result and first failure.
    let mut ns = vec![vec![Vec::new(); modes.len()]; CALLS.len()];
    let mut result = vec![vec![String::new(); modes.len()]; CALLS.len()];
    let mut fails: Vec<Vec<Option<String>>> = vec![vec![None; modes.len()]; CALLS.len()];
    for round in 0..plan.rounds {
        for k in rotated(pairs.len(), round) {
            let (c, m) = pairs[k];
            let call = &CALLS[c];
            let mut argv = modes[m].prefix.clone();
            argv.extend([probe.to_string_lossy().into_owned(), "--probe".into(), call.key.into()]);
            argv.extend([files.join(call.file).to_string_lossy().into_owned(), iters.to_string()]);
            let out = u.command(&argv, true).stdout(Stdio::piped()).output().map_err(|e| format!("{}: {e}", argv[0]))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let parsed = text.trim().split_once(' ').and_then(|(n, r)| Some((n.parse::<f64>().ok()?, r.to_string())));
            match parsed {
                Some((x, r)) if out.status.success() => {
                    ns[c][m].push(x);
                    result[c][m] = r;
                }
                _ => {
                    ns[c][m].push(f64::NAN);
                    fails[c][m].get_or_insert(failure(&out));
                }
            }
        }
    }
    let mut sec = Section::new("notify", "6. The cost of one call (ns per call; ratio to no filter)");
    let mut t = Table::new(&["call", "mode", "ns/call min / median", "ratio to no filter min / median", "result", "status"]);
    let mut jc = Vec::new();
    for (c, call) in CALLS.iter().enumerate() {
        let mut jm = Vec::new();
        for (m, mode) in modes.iter().enumerate() {
            let st = Stat::of(&ns[c][m]);
            let rt = Stat::of(&ratios(&ns[c][m], &ns[c][0]));
            let wrong = mode.consistent && call.key == "statrec" && result[c][m] != format!("owner {}:{}", OWNER.0, OWNER.1);
            let status = match &fails[c][m] {
                Some(e) => format!("**FAILS** ({})", e.replace('|', "/")),
                None if wrong => format!("**FAILS** (the record does not show: {})", result[c][m]),
                None => "ok".into(),
            };
            t.row(vec![
                call.label.into(),
                mode.label.into(),
                mm(st, |x| format!("{x:.0}")),
                if m == 0 { "1".into() } else { mm(rt, |x| format!("{x:.2}")) },
                result[c][m].clone(),
                status,
            ]);
            jm.push(Json::obj([
                ("mode", Json::str(mode.label)),
                ("ns", st.json()),
                ("ratio_to_no_filter", rt.json()),
                ("rounds_ns", Json::Arr(ns[c][m].iter().map(|x| Json::Num(*x)).collect())),
                ("result", Json::str(result[c][m].clone())),
                ("ok", Json::Bool(fails[c][m].is_none() && !wrong)),
            ]));
        }
        jc.push(Json::obj([("call", Json::str(call.key)), ("label", Json::str(call.label)), ("modes", Json::Arr(jm))]));
    }
    sec.tables.push(t);
    sec.notes.push(format!(
        "One probe process (this binary's `--probe CALL PATH N`) per call and mode per round, {} rounds in rotated order, as {USER} on tmpfs; {iters} calls per probe after {} warm-up calls, the fastest of {BATCHES} batches.",
        plan.rounds,
        iters / 10
    ));
    sec.notes.push("The calls are libc's `getppid`, `fstatat` (the `newfstatat` syscall on x86_64) and `fchownat`. Without a filter the chown to 5:6 fails with EPERM: its row is the cost of the failing syscall. Under `rootemu run` the chown is answered in BPF; under `--consistent` the chown and both stats go to the supervisor, and the record of the last row is made by one chown in the same probe before timing.".to_string());
    sec.data =
        Json::obj([("calls_per_probe", Json::Num(iters as f64)), ("rounds", Json::Num(plan.rounds as f64)), ("calls", Json::Arr(jc))]);
    Ok(sec)
}
