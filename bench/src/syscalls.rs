//! Per-syscall cost under each filter layout, measured in forked children.

use super::report::{Json, Section, Table, mm};
use super::{Plan, Stat, ratios, rotated};
use rootemu::SockFilter;
use rootemu::install::{self, InstallOptions};
use rootemu_codegen::bpf::{Action, Insn, op};
use rootemu_codegen::layout;
use rootemu_codegen::sim::{self, SeccompData};
use rootemu_codegen::table::Abi;

/// One raw syscall measured in a tight loop.
struct Call {
    name: &'static str,
    what: &'static str,
    nr: libc::c_long,
    args: [libc::c_long; 3],
}

fn calls() -> Vec<Call> {
    vec![
        Call { name: "getppid", what: "not faked, low number", nr: libc::SYS_getppid, args: [0, 0, 0] },
        Call {
            name: "getrandom",
            what: "not faked, above every faked number (getrandom(NULL, 0, 0))",
            nr: libc::SYS_getrandom,
            args: [0, 0, 0],
        },
        Call { name: "fchown", what: "faked (fchown(-1, 0, 0); EBADF without a filter)", nr: libc::SYS_fchown, args: [-1, 0, 0] },
    ]
}

/// One filter variant.
struct Variant {
    key: &'static str,
    label: &'static str,
    program: Option<Vec<Insn>>,
    /// Numbers allowed without the program, per ABI (from the proof when there is one).
    cacheable: Vec<(String, usize)>,
    proved: bool,
}

fn variants() -> Result<(Vec<Variant>, rootemu_codegen::Tables), String> {
    let f = super::bundled_filter()?;
    let host = install::running_abi();
    let all = |prog: &[Insn]| -> Vec<(String, usize)> {
        f.tables.abis.iter().map(|a| (a.name.clone(), layout::cacheable_numbers(prog, a))).collect()
    };
    let from_proof =
        |p: &rootemu_codegen::proof::Proof| -> Vec<(String, usize)> { p.abis.iter().map(|a| (a.abi.clone(), a.cacheable)).collect() };
    let trivial = vec![Insn::new(op::RET | op::K, 0, 0, Action::Allow.to_ret())];
    let (linear, linear_proof) = layout::linear(&f.tables, &f.policy, host).map_err(|e| format!("linear layout: {e}"))?;
    let uncacheable = layout::uncacheable(&f.program).map_err(|e| format!("uncacheable variant: {e}"))?;
    let v = vec![
        Variant { key: "none", label: "no filter", program: None, cacheable: Vec::new(), proved: false },
        Variant {
            key: "trivial",
            label: "trivial cached filter (`ret ALLOW`)",
            cacheable: all(&trivial),
            program: Some(trivial),
            proved: false,
        },
        Variant {
            key: "rootemu",
            label: "rootemu (all ABIs, binary search)",
            cacheable: from_proof(&f.proof),
            program: Some(f.program.clone()),
            proved: true,
        },
        Variant {
            key: "linear",
            label: "Charliecloud layout (linear, host ABI last)",
            cacheable: from_proof(&linear_proof),
            program: Some(linear),
            proved: true,
        },
        Variant {
            key: "uncacheable",
            label: "rootemu + `ld [args[0]]` first (not cacheable)",
            cacheable: all(&uncacheable),
            program: Some(uncacheable),
            proved: false,
        },
    ];
    Ok((v, f.tables))
}

/// ns per call of each call, and the last return value, measured in a child under `prog`.
fn measure(prog: Option<&[SockFilter]>, calls: &[Call], iters: usize) -> Result<Vec<(f64, i64)>, String> {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err("pipe failed".into());
    }
    let specs: Vec<(libc::c_long, [libc::c_long; 3])> = calls.iter().map(|c| (c.nr, c.args)).collect();
    let mut out = vec![0u8; specs.len() * 16];
    // SAFETY: the child makes raw syscalls only (no allocation) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err("fork failed".into());
    }
    if pid == 0 {
        unsafe { libc::close(fds[0]) };
        if let Some(p) = prog {
            if install::install(p, InstallOptions::default()).is_err() {
                unsafe { libc::_exit(3) };
            }
        }
        const BATCHES: usize = 5;
        for (i, (nr, a)) in specs.iter().enumerate() {
            let mut rc = 0;
            for _ in 0..iters / 10 {
                rc = unsafe { libc::syscall(*nr, a[0], a[1], a[2]) };
            }
            let mut best = f64::INFINITY;
            for _ in 0..BATCHES {
                let n = (iters / BATCHES).max(1);
                let t0 = now_ns();
                for _ in 0..n {
                    let nr = std::hint::black_box(*nr);
                    rc = unsafe { libc::syscall(nr, a[0], a[1], a[2]) };
                }
                let dt = (now_ns() - t0) as f64 / n as f64;
                best = best.min(dt);
            }
            let rc = if rc < 0 {
                -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
            } else {
                #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
                {
                    rc as i64
                }
            };
            out[i * 16..i * 16 + 8].copy_from_slice(&best.to_le_bytes());
            out[i * 16 + 8..i * 16 + 16].copy_from_slice(&rc.to_le_bytes());
        }
        let ok = unsafe { libc::write(fds[1], out.as_ptr().cast(), out.len()) } == out.len() as isize;
        unsafe { libc::_exit(if ok { 0 } else { 4 }) };
    }
    unsafe { libc::close(fds[1]) };
    let mut got = 0;
    while got < out.len() {
        let n = unsafe { libc::read(fds[0], out[got..].as_mut_ptr().cast(), out.len() - got) };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    unsafe { libc::close(fds[0]) };
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if got != out.len() || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("measuring child failed (status {status:#x})"));
    }
    Ok((0..specs.len())
        .map(|i| {
            let ns = f64::from_le_bytes(out[i * 16..i * 16 + 8].try_into().expect("8 bytes"));
            let rc = i64::from_le_bytes(out[i * 16 + 8..i * 16 + 16].try_into().expect("8 bytes"));
            (ns, rc)
        })
        .collect())
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: fills ts.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether the kernel's action cache skips `prog` for `nr`, and the instructions run otherwise.
fn path(prog: &[Insn], abi: &Abi, call: &Call) -> (bool, usize) {
    let nr = call.nr as u32;
    let cached = sim::const_path(prog, abi.audit_arch, nr).is_some_and(|o| o.ret == Action::Allow.to_ret());
    let args = call.args.map(|a| a as u64);
    let d = SeccompData { nr, arch: abi.audit_arch, ip: 0, args: [args[0], args[1], args[2], 0, 0, 0], big_endian: false };
    (cached, sim::run(prog, &d).map_or(0, |o| o.steps))
}

pub(crate) fn run(plan: Plan) -> Result<Section, String> {
    let host = install::running_abi();
    let (variants, tables) = variants()?;
    let abi = tables.get(host).ok_or_else(|| format!("the bundled tables have no ABI `{host}`"))?.clone();
    let calls = calls();
    let iters = if plan.quick { 50_000 } else { 500_000 };
    let socks: Vec<Option<Vec<SockFilter>>> = variants.iter().map(|v| v.program.as_deref().map(SockFilter::program)).collect();
    // ns[variant][call][round], rc[variant][call]
    let mut ns = vec![vec![Vec::new(); calls.len()]; variants.len()];
    let mut rcs = vec![vec![0i64; calls.len()]; variants.len()];
    for round in 0..plan.rounds {
        for vi in rotated(variants.len(), round) {
            let r = measure(socks[vi].as_deref(), &calls, iters).map_err(|e| format!("{}: {e}", variants[vi].key))?;
            for (ci, (t, rc)) in r.into_iter().enumerate() {
                ns[vi][ci].push(t);
                rcs[vi][ci] = rc;
            }
        }
    }
    let mut s = Section::new("syscalls", "1. Per-syscall cost (ns per raw syscall, forked child per variant)");
    let mut t = Table::new(&[
        "syscall",
        "variant",
        "ns/call min / median",
        "ratio to no filter min / median",
        "action cache",
        "BPF insns run",
        "returns",
    ]);
    let mut json_calls = Vec::new();
    let mut noise = Vec::new();
    for (ci, c) in calls.iter().enumerate() {
        let mut per_variant = Vec::new();
        for (vi, v) in variants.iter().enumerate() {
            let st = Stat::of(&ns[vi][ci]);
            let rt = Stat::of(&ratios(&ns[vi][ci], &ns[0][ci]));
            let (cached, steps) = v.program.as_deref().map_or((false, 0), |p| path(p, &abi, c));
            if st.min > 0.0 {
                noise.push((st.median - st.min) / st.min);
            }
            s.facts.insert(format!("{}/{}/median_ns", c.name, v.key), st.median);
            s.facts.insert(format!("{}/{}/min_ns", c.name, v.key), st.min);
            let cache = if v.program.is_none() {
                "-"
            } else if cached {
                "hit (filter skipped)"
            } else {
                "miss (filter runs)"
            };
            t.row(vec![
                c.name.into(),
                v.label.into(),
                mm(st, |x| format!("{x:.1}")),
                if vi == 0 { "1".into() } else { mm(rt, |x| format!("{x:.3}")) },
                cache.into(),
                if v.program.is_none() || cached { "-".into() } else { steps.to_string() },
                rcs[vi][ci].to_string(),
            ]);
            per_variant.push(Json::obj([
                ("variant", Json::str(v.key)),
                ("ns_per_call", st.json()),
                ("ratio_to_no_filter", rt.json()),
                ("rounds_ns", Json::Arr(ns[vi][ci].iter().map(|x| Json::Num(*x)).collect())),
                ("action_cache_hit", Json::Bool(cached)),
                ("bpf_insns_run", Json::Num(if cached { 0.0 } else { steps as f64 })),
                ("returns", Json::Num(rcs[vi][ci] as f64)),
            ]));
        }
        json_calls.push(Json::obj([
            ("syscall", Json::str(c.name)),
            ("nr", Json::Num(c.nr as f64)),
            ("what", Json::str(c.what)),
            ("variants", Json::Arr(per_variant)),
        ]));
    }
    let noise = Stat::of(&noise).median;
    // Per-round ratios between filters, for the goals (same child order, same round).
    let idx = |k: &str| variants.iter().position(|v| v.key == k).expect("listed");
    for (ci, c) in calls.iter().enumerate() {
        for (a, b) in [("rootemu", "trivial"), ("rootemu", "linear")] {
            let r = Stat::of(&ratios(&ns[idx(a)][ci], &ns[idx(b)][ci]));
            s.facts.insert(format!("{}/{a}_over_{b}/median", c.name), r.median);
        }
    }
    s.facts.insert("noise".into(), noise);
    s.tables.push(t);
    let mut t2 = Table::new(&[
        "variant",
        "program insns",
        "proved",
        &format!("{host}: cacheable numbers (proof sweep, or const_path over the table range of {})", abi.nr_limit),
        "all ABIs: cacheable numbers per ABI (min..max)",
        "fchown ratio to no filter (median)",
    ]);
    let mut json_variants = Vec::new();
    for v in &variants {
        let Some(p) = &v.program else { continue };
        let host_n = v.cacheable.iter().find(|(a, _)| a == host).map_or(0, |(_, n)| *n);
        let lo = v.cacheable.iter().map(|(_, n)| *n).min().unwrap_or(0);
        let hi = v.cacheable.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let vi = variants.iter().position(|x| x.key == v.key).expect("listed");
        let fchown = calls.iter().position(|c| c.name == "fchown").expect("listed");
        let r = Stat::of(&ratios(&ns[vi][fchown], &ns[0][fchown])).median;
        t2.row(vec![
            v.label.into(),
            p.len().to_string(),
            if v.proved { "yes" } else { "verified only" }.into(),
            host_n.to_string(),
            format!("{} ABIs: {lo}..{hi}", v.cacheable.len()),
            format!("{r:.3}"),
        ]);
        json_variants.push(Json::obj([
            ("variant", Json::str(v.key)),
            ("label", Json::str(v.label)),
            ("insns", Json::Num(p.len() as f64)),
            ("proved", Json::Bool(v.proved)),
            ("cacheable", Json::Obj(v.cacheable.iter().map(|(a, n)| (a.clone(), Json::Num(*n as f64))).collect())),
        ]));
    }
    s.tables.push(t2);
    s.notes.push(format!(
        "{iters} calls per syscall per child (best of 5 batches), one child per variant per round, {} rounds; host ABI {host}.",
        plan.rounds
    ));
    s.notes.push("Cacheable counts for proved variants come from `Proof.abis[i].cacheable`; for the others from `sim::const_path` (the kernel's `seccomp_is_const_allow` rule) over the ABI's number range.".into());
    s.notes.push(format!("Noise: median over all rows of (median-min)/min = {:.1}%; the goals compare minimums (the least disturbed rounds) with this tolerance (at least 2%).", noise * 100.0));
    s.data = Json::obj([
        ("iterations", Json::Num(iters as f64)),
        ("host_abi", Json::str(host)),
        ("calls", Json::Arr(json_calls)),
        ("variants", Json::Arr(json_variants)),
    ]);
    Ok(s)
}
