//! The bench report: sections of markdown tables plus JSON, and the goals checked against them.

use super::Plan;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// A JSON value (the runtime crate has no JSON dependency; this is all the report needs).
#[derive(Clone, Debug)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn obj<K: Into<String>>(items: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub(crate) fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(n) if n.is_finite() => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    write!(f, "{}", *n as i64)
                } else {
                    write!(f, "{n}")
                }
            }
            Json::Num(_) => f.write_str("null"),
            Json::Str(s) => {
                f.write_char('"')?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                        c => f.write_char(c)?,
                    }
                }
                f.write_char('"')
            }
            Json::Arr(v) => {
                f.write_char('[')?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_char(']')
            }
            Json::Obj(v) => {
                f.write_char('{')?;
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{}:{x}", Json::Str(k.clone()))?;
                }
                f.write_char('}')
            }
        }
    }
}

/// A markdown table.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn markdown(&self, out: &mut String) {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.header));
        out.push_str(&line(&self.header.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
        for r in &self.rows {
            out.push_str(&line(r));
        }
    }
}

/// One section of the report.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub(crate) name: String,
    pub(crate) title: String,
    /// Why the section was not measured.
    pub(crate) skipped: Option<String>,
    pub(crate) notes: Vec<String>,
    pub(crate) tables: Vec<Table>,
    pub(crate) data: Json,
    /// Named numbers the goals look at.
    pub(crate) facts: BTreeMap<String, f64>,
}

impl Section {
    pub(crate) fn new(name: &str, title: &str) -> Section {
        Section {
            name: name.into(),
            title: title.into(),
            skipped: None,
            notes: Vec::new(),
            tables: Vec::new(),
            data: Json::Null,
            facts: BTreeMap::new(),
        }
    }

    pub(crate) fn skipped(name: &str, why: &str) -> Section {
        let mut s = Section::new(name, name);
        s.skipped = Some(why.to_string());
        s
    }
}

/// One goal and whether the measurements meet it.
#[derive(Clone, Debug)]
struct Goal {
    goal: &'static str,
    measured: String,
    met: Option<bool>,
}

/// The whole report.
pub(crate) struct Report {
    plan: Plan,
    pub(crate) sections: Vec<Section>,
    goals: Vec<Goal>,
    machine: Vec<(String, String)>,
}

impl Report {
    pub(crate) fn new(plan: Plan) -> Report {
        Report { plan, sections: Vec::new(), goals: Vec::new(), machine: machine() }
    }

    fn fact(&self, section: &str, key: &str) -> Option<f64> {
        self.sections.iter().find(|s| s.name == section)?.facts.get(key).copied().filter(|v| v.is_finite())
    }

    /// Checks the goals against the facts of the sections.
    pub(crate) fn goals(&mut self) {
        let mut goals = Vec::new();
        let tar = self.fact("workloads", "tar --same-owner -xpf/rootemu run/ratio_median");
        let deb = self.fact("workloads", "dpkg-deb -x/rootemu run/ratio_median");
        let w: Vec<f64> = [tar, deb].into_iter().flatten().collect();
        goals.push(Goal {
            goal: "workload time under rootemu run <= 1.02x real root (median ratio)",
            measured: match (tar, deb) {
                (None, None) => "not measured".into(),
                _ => format!("tar {} / dpkg-deb {}", fmt_ratio(tar), fmt_ratio(deb)),
            },
            met: if w.is_empty() { None } else { Some(w.iter().all(|r| *r <= 1.02)) },
        });
        let noise = self.fact("syscalls", "noise");
        let tol = noise.unwrap_or(0.05).max(0.02);
        let (p, g) =
            (self.fact("syscalls", "getppid/rootemu_over_trivial/median"), self.fact("syscalls", "getrandom/rootemu_over_trivial/median"));
        goals.push(Goal {
            goal: "non-faked syscall under rootemu = trivial cached filter (`ret ALLOW`) within noise",
            measured: format!(
                "rootemu/trivial per-round median: getppid {}, getrandom {} (tolerance {:.1}%)",
                fmt_ratio(p),
                fmt_ratio(g),
                tol * 100.0
            ),
            met: match (p, g) {
                (Some(p), Some(g)) => Some(p <= 1.0 + tol && g <= 1.0 + tol),
                _ => None,
            },
        });
        let st = self.fact("startup", "rootemu run -- true/ratio_median");
        goals.push(Goal {
            goal: "`rootemu run -- true` <= 1.2x `unshare -r true` (median ratio)",
            measured: fmt_ratio(st),
            met: st.map(|r| r <= 1.2),
        });
        let f = self.fact("syscalls", "fchown/rootemu_over_linear/median");
        let (am, bm) = (self.fact("syscalls", "fchown/rootemu/median_ns"), self.fact("syscalls", "fchown/linear/median_ns"));
        goals.push(Goal {
            goal: "faked syscall (fchown) no slower than the Charliecloud linear layout",
            measured: format!(
                "rootemu/linear per-round median {} ({:.1} vs {:.1} ns)",
                fmt_ratio(f),
                am.unwrap_or(f64::NAN),
                bm.unwrap_or(f64::NAN)
            ),
            met: f.map(|r| r <= 1.0),
        });
        self.goals = goals;
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# rootemu bench{}\n", if self.plan.quick { " (--quick)" } else { "" });
        for (k, v) in &self.machine {
            let _ = writeln!(out, "- {k}: {v}");
        }
        let _ = writeln!(out, "- rounds: {} (rotated order; ratios are per round against the same round's baseline)\n", self.plan.rounds);
        for s in &self.sections {
            let _ = writeln!(out, "## {}\n", s.title);
            if let Some(why) = &s.skipped {
                let _ = writeln!(out, "Not measured: {why}\n");
                continue;
            }
            for t in &s.tables {
                t.markdown(&mut out);
                out.push('\n');
            }
            for n in &s.notes {
                let _ = writeln!(out, "- {n}");
            }
            if !s.notes.is_empty() {
                out.push('\n');
            }
        }
        let _ = writeln!(out, "## Goals\n");
        let mut t = Table::new(&["goal", "measured", "met"]);
        for g in &self.goals {
            let met = match g.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            t.row(vec![g.goal.to_string(), g.measured.clone(), met.to_string()]);
        }
        t.markdown(&mut out);
        out
    }

    pub(crate) fn json(&self) -> Json {
        let sections = self.sections.iter().map(|s| {
            let mut fields = vec![("title".to_string(), Json::str(s.title.clone()))];
            match &s.skipped {
                Some(why) => fields.push(("skipped".into(), Json::str(why.clone()))),
                None => {
                    fields.push(("data".into(), s.data.clone()));
                    fields.push(("notes".into(), Json::Arr(s.notes.iter().map(|n| Json::str(n.clone())).collect())));
                }
            }
            (s.name.clone(), Json::Obj(fields))
        });
        let goals = self.goals.iter().map(|g| {
            Json::obj([
                ("goal", Json::str(g.goal)),
                ("measured", Json::str(g.measured.clone())),
                ("met", g.met.map_or(Json::Null, Json::Bool)),
            ])
        });
        Json::obj([
            ("machine", Json::obj(self.machine.iter().map(|(k, v)| (k.clone(), Json::str(v.clone()))))),
            ("quick", Json::Bool(self.plan.quick)),
            ("rounds", Json::Num(self.plan.rounds as f64)),
            ("sections", Json::Obj(sections.collect())),
            ("goals", Json::Arr(goals.collect())),
        ])
    }
}

pub(crate) fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.3}x"))
}

/// `min / median` of a stat, with a unit formatter.
pub(crate) fn mm(s: super::Stat, f: impl Fn(f64) -> String) -> String {
    format!("{} / {}", f(s.min), f(s.median))
}

fn machine() -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct.
    unsafe { libc::uname(&mut uts) };
    let field = |f: &[libc::c_char]| unsafe { std::ffi::CStr::from_ptr(f.as_ptr()) }.to_string_lossy().into_owned();
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    let load = read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    vec![
        ("machine".into(), format!("{os}, {} {}, {cpu}, {cores} cores", field(&uts.release), field(&uts.machine))),
        ("load average at start".into(), load),
        ("command".into(), std::env::args().collect::<Vec<_>>().join(" ")),
    ]
}
