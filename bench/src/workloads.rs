//! Real workloads as an unprivileged user: extracting a Debian package under real root,
//! `unshare -r`, `rootemu run`, `rootemu run --consistent`, fuse-overlayfs, fakeroot and
//! `proot -0`, into a tmpfs.

use super::overlay::{self, Overlay};
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
        Ok(o) => (dt, Err(failure(&o))),
        Err(e) => (dt, Err(e.to_string())),
    }
}

/// How a command failed: its exit status and the last line of its stderr.
pub(crate) fn failure(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(160).collect::<String>();
    format!("{}: {last}", o.status)
}

/// Whether `tool` is in the PATH commands run with.
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
    /// Whether the command runs over a fresh fuse-overlayfs mount whose records are checked.
    overlay: bool,
}

/// A command extracting the package, and the same command on the one-file sample package.
struct Workload {
    label: &'static str,
    argv: Vec<String>,
    sample: Vec<String>,
    modes: &'static [&'static str],
    note: &'static str,
}

/// Writes the data archive of `deb` to `tar`.
fn fsys_tarfile(deb: &Path, tar: &Path) -> Result<(), String> {
    let tar_file = fs::File::create(tar).map_err(|e| e.to_string())?;
    let st = Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb).stdout(tar_file).status().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !st.success() {
        return Err(format!("dpkg-deb --fsys-tarfile {} failed", deb.display()));
    }
    Ok(())
}

/// The first regular file under `dir` (sorted walk), relative to `dir`, and its metadata.
fn first_file(dir: &Path) -> Option<(PathBuf, fs::Metadata)> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    entries.into_iter().find_map(|p| {
        let m = fs::symlink_metadata(&p).ok()?;
        let name = Path::new(p.file_name()?);
        if m.is_file() {
            Some((name.to_path_buf(), m))
        } else if m.is_dir() {
            first_file(&p).map(|(rel, m)| (name.join(rel), m))
        } else {
            None
        }
    })
}

pub(crate) fn run(plan: Plan) -> Result<Section, String> {
    let u = Unpriv::setup("w")?;
    let deb_src = package()?;
    let deb = u.work.join("package.deb");
    fs::copy(&deb_src, &deb).map_err(|e| format!("copying {}: {e}", deb_src.display()))?;
    let tar = u.work.join("data.tar");
    fsys_tarfile(&deb, &tar)?;
    let sample_deb = overlay::sample_deb(&u.work)?;
    let sample_tar = u.work.join("sample.tar");
    fsys_tarfile(&sample_deb, &sample_tar)?;
    for f in [&deb, &tar, &sample_deb, &sample_tar] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
    }
    let entries =
        Command::new("tar").arg("-tf").arg(&tar).output().map(|o| String::from_utf8_lossy(&o.stdout).lines().count()).unwrap_or(0);
    let dest = u.work.join("dest");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let bin = s(&u.bin);
    let overlay = Overlay::setup(&u, &dest);
    let mode = |key, label, prefix: &[&str], tool| Mode {
        key,
        label,
        as_user: true,
        prefix: prefix.iter().map(|w| w.to_string()).collect(),
        tool,
        overlay: false,
    };
    let modes: Vec<Mode> = vec![
        Mode { as_user: false, ..mode("root", "real root", &[], "tar") },
        mode("unshare", "unshare -r", &["unshare", "-r"], "unshare"),
        mode("rootemu", "rootemu run", &[bin.as_str(), "run", "--"], "tar"),
        mode("consistent", "rootemu run --consistent", &[bin.as_str(), "run", "--consistent", "--"], "tar"),
        Mode {
            prefix: overlay.as_ref().map(Overlay::prefix).unwrap_or_default(),
            overlay: true,
            ..mode("fuse", "fuse-overlayfs (xattr_permissions=2)", &[], "fuse-overlayfs")
        },
        mode("fakeroot", "fakeroot", &["fakeroot"], "fakeroot"),
        mode("proot", "proot -0", &["proot", "-0"], "proot"),
    ];
    let all: &[&str] = &["root", "unshare", "rootemu", "consistent", "fuse", "fakeroot", "proot"];
    let tar_x = |same_owner: bool, archive: &Path| -> Vec<String> {
        let flags: &[&str] = if same_owner { &["--same-owner", "-xpf"] } else { &["-xpf"] };
        ["tar"].iter().chain(flags).map(|w| w.to_string()).chain([s(archive), "-C".into(), s(&dest)]).collect()
    };
    let deb_x = |archive: &Path| vec!["dpkg-deb".into(), "-x".into(), s(archive), s(&dest)];
    let workloads = vec![
        Workload { label: "tar --same-owner -xpf", argv: tar_x(true, &tar), sample: tar_x(true, &sample_tar), modes: all, note: "" },
        Workload {
            label: "tar -xpf",
            argv: tar_x(false, &tar),
            sample: tar_x(false, &sample_tar),
            modes: &["root", "unshare", "rootemu", "consistent"],
            note: "without --same-owner (what works under plain `unshare -r`)",
        },
        Workload { label: "dpkg-deb -x", argv: deb_x(&deb), sample: deb_x(&sample_deb), modes: all, note: "" },
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
        // Real root's owner and mode of one file: what the overlay's record must say.
        let (check_file, check_meta) = first_file(&dest).ok_or("the package has no regular file")?;
        let check_file = s(&check_file);
        let check_record = overlay::record(&check_meta);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); ms.len()];
        let mut fails: Vec<Option<String>> = vec![None; ms.len()];
        let unavailable: Vec<Option<String>> = ms
            .iter()
            .map(|m| match (&overlay, m.overlay) {
                (Err(why), true) => Some(why.clone()),
                _ if !have(m.tool) => Some(format!("{} not installed", m.tool)),
                _ => None,
            })
            .collect();
        // One command as a mode runs it: into an empty destination, over a fresh overlay.
        let run_as = |m: &Mode, argv: &[String]| -> Result<(f64, Result<(), String>), String> {
            let _ = fs::remove_dir_all(&dest);
            fs::create_dir(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            if m.as_user {
                std::os::unix::fs::chown(&dest, Some(u.uid), Some(u.gid)).map_err(|e| e.to_string())?;
            }
            if let (true, Ok(o)) = (m.overlay, &overlay) {
                o.prepare()?;
            }
            let argv: Vec<String> = m.prefix.iter().chain(argv).cloned().collect();
            Ok(timed(&mut u.command(&argv, m.as_user)))
        };
        for round in 0..rounds {
            for mi in rotated(ms.len(), round) {
                if unavailable[mi].is_some() {
                    continue;
                }
                let (dt, r) = run_as(ms[mi], &w.argv)?;
                times[mi].push(dt);
                let r = match (r, &overlay) {
                    (Ok(()), Ok(o)) if ms[mi].overlay => o.check(&check_file, &check_record),
                    (r, _) => r,
                };
                if let Err(e) = r {
                    fails[mi].get_or_insert(e);
                }
            }
        }
        // The overlay once more on the sample: an owner other than the caller's must survive too.
        for (mi, m) in ms.iter().enumerate() {
            if let (true, None, Ok(o)) = (m.overlay, &unavailable[mi], &overlay) {
                let (_, r) = run_as(m, &w.sample)?;
                if let Err(e) = r.and_then(|()| o.check(overlay::SAMPLE_FILE, overlay::SAMPLE_RECORD)) {
                    fails[mi].get_or_insert(format!("loses an owner other than the caller's: one-file package: {e}"));
                }
            }
        }
        let _ = fs::remove_dir_all(&dest);
        let mut jm = Vec::new();
        for (mi, m) in ms.iter().enumerate() {
            if let Some(why) = &unavailable[mi] {
                t.row(vec![w.label.into(), m.label.into(), "-".into(), "-".into(), why.clone()]);
                jm.push(Json::obj([("mode", Json::str(m.key)), ("skipped", Json::str(why.clone()))]));
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
    sec.notes.push(format!(
        "fuse-overlayfs: `unshare --map-auto -r -m` (the user's subordinate ids), `fuse-overlayfs -o xattr_permissions=2` over the destination with fresh empty lower, upper and work directories, the command, `umount`; all inside the timed run. Checked after each run: the upper directory's `user.fuseoverlayfs.override_stat` of one file equals real root's owner and mode; once per workload, the same command on a one-file package (owner 5:6, mode 0640, as real root extracts it) must record `{}`.",
        overlay::SAMPLE_RECORD
    ));
    match &overlay {
        Ok(o) => sec.notes.extend(o.changes.iter().map(|c| format!("For fuse-overlayfs the bench {c}."))),
        Err(why) => sec.notes.push(format!("fuse-overlayfs not measured: {why}.")),
    }
    sec.data = Json::obj([
        ("package", Json::str(name)),
        ("entries", Json::Num(entries as f64)),
        ("rounds", Json::Num(rounds as f64)),
        ("workloads", Json::Arr(json_w)),
    ]);
    Ok(sec)
}
