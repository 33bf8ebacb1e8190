//! Real workloads as an unprivileged user: extracting a Debian package under real root,
//! `unshare -r`, `rootemu run`, `rootemu run --consistent`, fakeroot and `proot -0`, into a tmpfs.

use super::report::{Json, Section, Table, mm};
use super::{Plan, Stat, cache_dir, ratios, rotated};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub(crate) const USER: &str = "rootemu-test";
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// The unprivileged user commands run as, and a world-readable copy of the measured `rootemu`.
pub(crate) struct Unpriv {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) work: PathBuf,
    pub(crate) bin: PathBuf,
    /// Whether `work` was created here (and is removed on drop).
    pub(crate) owned: bool,
}

impl Unpriv {
    /// Creates `rootemu-test` if needed and a work directory on /dev/shm (tmpfs). Needs root.
    pub(crate) fn setup(tag: &str) -> Result<Unpriv, String> {
        // SAFETY: getter.
        if unsafe { libc::geteuid() } != 0 {
            return Err(format!("needs root (to create and switch to the unprivileged user {USER})"));
        }
        if !Command::new("id").arg(USER).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            let st = Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER])
                .status()
                .map_err(|e| format!("useradd: {e}"))?;
            if !st.success() {
                return Err(format!("useradd {USER} failed"));
            }
        }
        let id = |flag: &str| -> Result<u32, String> {
            let o = Command::new("id").args([flag, USER]).output().map_err(|e| format!("id: {e}"))?;
            String::from_utf8_lossy(&o.stdout).trim().parse().map_err(|_| format!("id {flag} {USER}: no number"))
        };
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let work = base.join(format!("rootemu-bench-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let bin = work.join("rootemu");
        let exe = super::rootemu_bin().to_path_buf();
        fs::copy(&exe, &bin).map_err(|e| format!("copying {}: {e}", exe.display()))?;
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        Ok(Unpriv { uid: id("-u")?, gid: id("-g")?, work, bin, owned: true })
    }

    /// A command run as the user (or as root), with a clean environment.
    pub(crate) fn command(&self, argv: &[String], as_user: bool) -> Command {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]).env_clear().env("PATH", PATH).env("LANG", "C").env("HOME", &self.work).current_dir(&self.work);
        if as_user {
            // std drops supplementary groups (setgroups(0)) when a uid is set as root.
            c.uid(self.uid).gid(self.gid);
        }
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }
}

impl Drop for Unpriv {
    fn drop(&mut self) {
        if self.owned {
            let _ = fs::remove_dir_all(&self.work);
        }
    }
}

/// Runs a command to completion: seconds, and the failure (exit status and last stderr line).
pub(crate) fn timed(c: &mut Command) -> (f64, Result<(), String>) {
    let t0 = Instant::now();
    let out = c.output();
    let dt = t0.elapsed().as_secs_f64();
    match out {
        Ok(o) if o.status.success() => (dt, Ok(())),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(160).collect::<String>();
            (dt, Err(format!("{}: {last}", o.status)))
        }
        Err(e) => (dt, Err(e.to_string())),
    }
}

pub(crate) fn have(tool: &str) -> bool {
    PATH.split(':').any(|d| Path::new(d).join(tool).is_file())
}

/// The cached package, downloading the newest `linux-headers-6.1.0-N-common` if needed.
fn package() -> Result<PathBuf, String> {
    let dir = cache_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let find = || -> Option<PathBuf> {
        let mut debs: Vec<PathBuf> = fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("linux-headers-") && n.contains("-common_") && n.ends_with(".deb"))
            })
            .collect();
        debs.sort();
        debs.pop()
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    let o = Command::new("apt-cache")
        .args(["search", "--names-only", r"^linux-headers-6\.1\.0-[0-9]+-common$"])
        .output()
        .map_err(|e| format!("apt-cache: {e}"))?;
    let mut names: Vec<(u32, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| Some((n.strip_prefix("linux-headers-6.1.0-")?.strip_suffix("-common")?.parse().ok()?, n.to_string())))
        .collect();
    names.sort();
    let (_, name) = names.pop().ok_or("apt-cache finds no linux-headers-6.1.0-*-common (run apt-get update)")?;
    eprintln!("rootemu bench: apt-get download {name} into {}", dir.display());
    let st = Command::new("apt-get").args(["download", "-q", &name]).current_dir(&dir).status().map_err(|e| format!("apt-get: {e}"))?;
    if !st.success() {
        return Err(format!("apt-get download {name} failed"));
    }
    find().ok_or_else(|| "apt-get download left no .deb".into())
}

/// How a workload is run.
struct Mode {
    key: &'static str,
    label: &'static str,
    as_user: bool,
    prefix: Vec<String>,
    tool: &'static str,
}

struct Workload {
    label: &'static str,
    argv: Vec<String>,
    modes: &'static [&'static str],
    note: &'static str,
}

pub(crate) fn run(plan: Plan) -> Result<Section, String> {
    let u = Unpriv::setup("w")?;
    let deb_src = package()?;
    let deb = u.work.join("package.deb");
    fs::copy(&deb_src, &deb).map_err(|e| format!("copying {}: {e}", deb_src.display()))?;
    let tar = u.work.join("data.tar");
    let tar_file = fs::File::create(&tar).map_err(|e| e.to_string())?;
    let st = Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&deb).stdout(tar_file).status().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !st.success() {
        return Err("dpkg-deb --fsys-tarfile failed".into());
    }
    for f in [&deb, &tar] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
    }
    let entries =
        Command::new("tar").arg("-tf").arg(&tar).output().map(|o| String::from_utf8_lossy(&o.stdout).lines().count()).unwrap_or(0);
    let dest = u.work.join("dest");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let bin = s(&u.bin);
    let modes: Vec<Mode> = vec![
        Mode { key: "root", label: "real root", as_user: false, prefix: vec![], tool: "tar" },
        Mode { key: "unshare", label: "unshare -r", as_user: true, prefix: vec!["unshare".into(), "-r".into()], tool: "unshare" },
        Mode { key: "rootemu", label: "rootemu run", as_user: true, prefix: vec![bin.clone(), "run".into(), "--".into()], tool: "tar" },
        Mode {
            key: "consistent",
            label: "rootemu run --consistent",
            as_user: true,
            prefix: vec![bin, "run".into(), "--consistent".into(), "--".into()],
            tool: "tar",
        },
        Mode { key: "fakeroot", label: "fakeroot", as_user: true, prefix: vec!["fakeroot".into()], tool: "fakeroot" },
        Mode { key: "proot", label: "proot -0", as_user: true, prefix: vec!["proot".into(), "-0".into()], tool: "proot" },
    ];
    let all: &[&str] = &["root", "unshare", "rootemu", "consistent", "fakeroot", "proot"];
    let workloads = vec![
        Workload {
            label: "tar --same-owner -xpf",
            argv: vec!["tar".into(), "--same-owner".into(), "-xpf".into(), s(&tar), "-C".into(), s(&dest)],
            modes: all,
            note: "",
        },
        Workload {
            label: "tar -xpf",
            argv: vec!["tar".into(), "-xpf".into(), s(&tar), "-C".into(), s(&dest)],
            modes: &["root", "unshare", "rootemu", "consistent"],
            note: "without --same-owner (what works under plain `unshare -r`)",
        },
        Workload { label: "dpkg-deb -x", argv: vec!["dpkg-deb".into(), "-x".into(), s(&deb), s(&dest)], modes: all, note: "" },
    ];
    let rounds = plan.rounds.min(5);
    let mut sec = Section::new("workloads", "2. Workloads as the unprivileged user (seconds; ratio to real root)");
    let mut t = Table::new(&["workload", "mode", "s min / median", "ratio to real root min / median", "status"]);
    let mut json_w = Vec::new();
    for w in &workloads {
        let ms: Vec<&Mode> = modes.iter().filter(|m| w.modes.contains(&m.key)).collect();
        // One untimed run as root first: page cache, dentries, binaries.
        let _ = fs::remove_dir_all(&dest);
        let _ = fs::create_dir(&dest);
        let _ = timed(&mut u.command(&w.argv, false));
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); ms.len()];
        let mut fails: Vec<Option<String>> = vec![None; ms.len()];
        let missing: Vec<bool> = ms.iter().map(|m| !have(m.tool)).collect();
        for round in 0..rounds {
            for mi in rotated(ms.len(), round) {
                if missing[mi] {
                    continue;
                }
                let m = ms[mi];
                let _ = fs::remove_dir_all(&dest);
                fs::create_dir(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                if m.as_user {
                    std::os::unix::fs::chown(&dest, Some(u.uid), Some(u.gid)).map_err(|e| e.to_string())?;
                }
                let argv: Vec<String> = m.prefix.iter().chain(&w.argv).cloned().collect();
                let (dt, r) = timed(&mut u.command(&argv, m.as_user));
                times[mi].push(dt);
                if let Err(e) = r {
                    fails[mi].get_or_insert(e);
                }
            }
        }
        let _ = fs::remove_dir_all(&dest);
        let mut jm = Vec::new();
        for (mi, m) in ms.iter().enumerate() {
            if missing[mi] {
                t.row(vec![w.label.into(), m.label.into(), "-".into(), "-".into(), format!("{} not installed", m.tool)]);
                jm.push(Json::obj([("mode", Json::str(m.key)), ("skipped", Json::str(format!("{} not installed", m.tool)))]));
                continue;
            }
            let st = Stat::of(&times[mi]);
            let rt = Stat::of(&ratios(&times[mi], &times[0]));
            sec.facts.insert(format!("{}/{}/ratio_median", w.label, m.label), if fails[mi].is_some() { f64::INFINITY } else { rt.median });
            let status = match &fails[mi] {
                None => "ok".to_string(),
                Some(e) => format!("**FAILS** ({})", e.replace('|', "/")),
            };
            t.row(vec![
                w.label.into(),
                m.label.into(),
                mm(st, |x| format!("{x:.3}")),
                if mi == 0 { "1".into() } else { mm(rt, |x| format!("{x:.3}")) },
                status,
            ]);
            jm.push(Json::obj([
                ("mode", Json::str(m.key)),
                ("label", Json::str(m.label)),
                ("seconds", st.json()),
                ("ratio_to_root", rt.json()),
                ("rounds_s", Json::Arr(times[mi].iter().map(|x| Json::Num(*x)).collect())),
                ("ok", Json::Bool(fails[mi].is_none())),
                ("error", fails[mi].clone().map_or(Json::Null, Json::Str)),
            ]));
        }
        json_w.push(Json::obj([("workload", Json::str(w.label)), ("note", Json::str(w.note)), ("modes", Json::Arr(jm))]));
    }
    sec.tables.push(t);
    let name = deb_src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    sec.notes.push(format!(
        "Package {name}: {entries} entries; extracted into {} (tmpfs), removed between runs; {rounds} rounds.",
        u.work.display()
    ));
    sec.notes.push(format!("Every mode but real root runs as {USER} (uid {}); `tar -xpf` is the extra row without --same-owner.", u.uid));
    sec.data = Json::obj([
        ("package", Json::str(name)),
        ("entries", Json::Num(entries as f64)),
        ("rounds", Json::Num(rounds as f64)),
        ("workloads", Json::Arr(json_w)),
    ]);
    Ok(sec)
}
