//! Start-up: `rootemu run -- true` against `unshare -r true`.

use super::report::{Json, Section, Table, mm};
use super::workloads::{USER, Unpriv, have, timed};
use super::{Plan, Stat, ratios, rotated};

pub(crate) fn run(plan: Plan) -> Result<Section, String> {
    // As the unprivileged user when root; otherwise as the caller.
    let (u, as_user) = match Unpriv::setup("s") {
        Ok(u) => (Some(u), true),
        Err(_) => (None, false),
    };
    let exe = super::rootemu_bin().to_path_buf();
    let interpreter = interpreter(&exe);
    let bin = u.as_ref().map_or(exe, |u| u.bin.clone()).to_string_lossy().into_owned();
    if !have("unshare") {
        return Err("unshare (util-linux) is not installed".into());
    }
    let variants: Vec<(&str, Vec<String>)> = vec![
        ("unshare -r true", vec!["unshare".into(), "-r".into(), "true".into()]),
        ("rootemu run -- true", vec![bin.clone(), "run".into(), "--".into(), "true".into()]),
        ("rootemu run --no-emulation -- true", vec![bin.clone(), "run".into(), "--no-emulation".into(), "--".into(), "true".into()]),
        ("true (no namespace)", vec!["true".into()]),
    ];
    let per_round = if plan.quick { 10 } else { 40 };
    // medians[variant][round], all[variant]
    let mut medians = vec![Vec::new(); variants.len()];
    let mut all = vec![Vec::new(); variants.len()];
    let fallback;
    let u = match &u {
        Some(u) => u,
        None => {
            fallback = Unpriv { uid: 0, gid: 0, work: std::env::temp_dir(), bin: bin.clone().into(), owned: false };
            &fallback
        }
    };
    let mut failure: Vec<Option<String>> = vec![None; variants.len()];
    for round in 0..plan.rounds {
        for vi in rotated(variants.len(), round) {
            let mut ts = Vec::new();
            for _ in 0..per_round {
                let (dt, r) = timed(&mut u.command(&variants[vi].1, as_user));
                if let Err(e) = r {
                    failure[vi].get_or_insert(e);
                }
                ts.push(dt * 1e3);
            }
            medians[vi].push(Stat::of(&ts).median);
            all[vi].extend(ts);
        }
    }
    let mut s = Section::new("startup", "3. Start-up (ms per command; ratio to `unshare -r true`)");
    let mut t = Table::new(&["command", "ms min / median", "ratio to unshare -r min / median", "status"]);
    let mut jv = Vec::new();
    for (vi, (label, _)) in variants.iter().enumerate() {
        let st = Stat::of(&all[vi]);
        let rt = Stat::of(&ratios(&medians[vi], &medians[0]));
        s.facts.insert(format!("{label}/ratio_median"), if failure[vi].is_some() { f64::INFINITY } else { rt.median });
        let status = failure[vi].as_ref().map_or("ok".to_string(), |e| format!("**FAILS** ({e})"));
        t.row(vec![
            format!("`{label}`"),
            mm(st, |x| format!("{x:.2}")),
            if vi == 0 { "1".into() } else { mm(rt, |x| format!("{x:.3}")) },
            status,
        ]);
        jv.push(Json::obj([
            ("command", Json::str(*label)),
            ("ms", st.json()),
            ("ratio_to_unshare", rt.json()),
            ("round_medians_ms", Json::Arr(medians[vi].iter().map(|x| Json::Num(*x)).collect())),
            ("ok", Json::Bool(failure[vi].is_none())),
        ]));
    }
    s.tables.push(t);
    s.notes.push(format!(
        "{per_round} runs per command per round, {} rounds, as {}; ms are over all runs, ratios are of per-round medians.",
        plan.rounds,
        if as_user { USER.to_string() } else { "the calling user".to_string() }
    ));
    s.notes.push(match &interpreter {
        Some(None) => "The measured rootemu is statically linked (`scripts/build`).".to_string(),
        Some(Some(ld)) => format!(
            "The measured rootemu is dynamically linked ({ld} loads libc and libgcc_s first, about 0.3 ms here); `scripts/build` makes the static binary."
        ),
        None => "The measured rootemu's linking is unknown (its ELF could not be read).".to_string(),
    });
    s.data = Json::obj([
        ("runs_per_round", Json::Num(per_round as f64)),
        ("statically_linked", interpreter.as_ref().map_or(Json::Null, |i| Json::Bool(i.is_none()))),
        ("as_unprivileged_user", Json::Bool(as_user)),
        ("commands", Json::Arr(jv)),
    ]);
    Ok(s)
}

/// The ELF interpreter of `exe` (`Some(None)` when statically linked), `None` if unreadable.
fn interpreter(exe: &std::path::Path) -> Option<Option<String>> {
    let bytes = std::fs::read(exe).ok()?;
    let elf = goblin::elf::Elf::parse(&bytes).ok()?;
    Some(elf.interpreter.map(str::to_owned))
}
