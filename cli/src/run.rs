//! `rootemu run`.

use clap::Args;
use rootemu::launch::{self, DestinationProblem, LaunchError, LaunchOptions, MountStep, SETUP_FAILED, quoted};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Arguments of `rootemu run`.
///
/// Runs CMD in a new user namespace (plus a mount namespace with --bind or --root) where
/// the invoking user is root (uid/gid 0), under the root-emulation seccomp filter: chown,
/// setuid/setgid, setgroups and mknod of devices return 0 without doing anything, so
/// package managers work unprivileged.
///
/// With --root DIR, DIR becomes / (in a new PID namespace) with a fresh /proc, a minimal
/// /dev (null zero full random urandom tty ptmx, the host's pts, shm), read-only /sys, a
/// tmpfs /tmp and the host's resolv.conf, each where DIR has that directory or file:
/// nothing is ever created or changed in DIR (a missing one is skipped with a note). If DIR
/// has /etc/apt, apt is told `APT::Sandbox::User "root";` through APT_CONFIG (apt would
/// otherwise drop to `_apt` with a setuid that emulation fakes, and abort when it checks);
/// --no-apt-hook turns that off.
///
/// Without --root, rootemu becomes the command (like `unshare -r`), so its exit status or
/// signal is the command's own. With --root: the command's status, 128+N if it was killed
/// by signal N. Either way 127 if it was not found, 126 if it could not be executed, 125 if
/// rootemu itself failed (then the command is never run).
#[derive(Args)]
pub(crate) struct RunArgs {
    /// Directory that becomes / for the command.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Bind-mount SRC (host path) at DST (inside --root if given), which must exist
    /// (except under the fresh /dev and /tmp of --root); repeatable.
    #[arg(long, value_name = "SRC:DST")]
    bind: Vec<OsString>,
    /// Do not install the root-emulation filter (namespaces only, like `unshare -r`).
    #[arg(long, conflicts_with = "consistent")]
    no_emulation: bool,
    /// Consistent root emulation: chown, chmod, device mknod, stat and xattr calls go to a
    /// supervisor that records what root did with the files and shows it back (slower;
    /// see docs/consistent.md).
    #[arg(long)]
    consistent: bool,
    /// With --consistent: a unix socket at PATH for `rootemu supervisor status|upgrade`.
    #[arg(long, value_name = "PATH", requires = "consistent")]
    control: Option<PathBuf>,
    /// With --consistent: keep the records of files that cannot carry them (a file system
    /// without user xattrs) in DIR, for later runs and `rootemu export --records DIR`.
    #[arg(long, value_name = "DIR", requires = "consistent")]
    records: Option<PathBuf>,
    /// Do not supply the apt sandbox configuration inside --root.
    #[arg(long)]
    no_apt_hook: bool,
    /// Print each setup step on stderr.
    #[arg(long)]
    debug: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// The exit status of a command-line usage error: `run` reserves 2 for the command.
pub(crate) fn usage_error_code(args: &[OsString]) -> Option<u8> {
    (args.get(1).map(OsString::as_os_str) == Some(OsStr::new("run"))).then_some(SETUP_FAILED)
}

/// Splits `SRC:DST` at the first colon.
fn parse_bind(b: &OsStr) -> Result<(PathBuf, PathBuf), String> {
    let bytes = b.as_bytes();
    let Some(i) = bytes.iter().position(|c| *c == b':') else {
        return Err(format!("--bind {}: expected SRC:DST", quoted(b)));
    };
    let (src, dst) = (&bytes[..i], &bytes[i + 1..]);
    if src.is_empty() || !dst.starts_with(b"/") {
        return Err(format!("--bind {}: SRC must be non-empty and DST an absolute path", quoted(b)));
    }
    Ok((PathBuf::from(OsStr::from_bytes(src)), PathBuf::from(OsStr::from_bytes(dst))))
}

/// The launcher's error in the command line's terms.
fn message(e: &LaunchError, root: Option<&Path>) -> String {
    match e {
        LaunchError::Root { path, problem } => format!("--root {}: {problem}", quoted(path)),
        LaunchError::Records { path, problem } => format!("--records {}: {problem}", quoted(path)),
        // Every distinct source is held open until the binds are made.
        LaunchError::BindSource { source, errno: libc::EMFILE } => format!(
            "--bind: more distinct sources than the open-file limit allows (raise `ulimit -Hn`): {} is one too many",
            quoted(source)
        ),
        LaunchError::BindSource { source, errno } => format!("--bind source {}: {}", quoted(source), rootemu::install::errno_text(*errno)),
        LaunchError::BindDestination { source, destination, problem, .. } => {
            let mut spec = source.as_os_str().to_owned();
            spec.push(":");
            spec.push(destination);
            let spec = quoted(spec);
            match (problem, root) {
                (DestinationProblem::Missing, Some(r)) => format!(
                    "--bind {spec}: {} does not exist in --root {}: create it first (rootemu creates nothing there)",
                    quoted(destination),
                    quoted(r)
                ),
                (DestinationProblem::Missing, None) => {
                    format!(
                        "--bind {spec}: {} does not exist: create it first (rootemu creates no mount points on the host)",
                        quoted(destination)
                    )
                }
                (DestinationProblem::Resolve(_), _) => format!("--bind {spec}: {}: {problem}", quoted(destination)),
                (p, _) => format!("--bind {spec}: {} {p}", quoted(destination)),
            }
        }
        LaunchError::Mount { step: MountStep::AptConfig, .. } => format!("{e} (--no-apt-hook skips it)"),
        _ => e.to_string(),
    }
}

/// Runs `rootemu run`.
pub(crate) fn main(args: RunArgs) -> Result<u8, String> {
    let fail = |msg: String| {
        eprintln!("rootemu: {msg}");
        Ok(SETUP_FAILED)
    };
    let mut binds = Vec::new();
    for b in &args.bind {
        match parse_bind(b) {
            Ok(pair) => binds.push(pair),
            Err(msg) => return fail(msg),
        }
    }
    let opts = LaunchOptions {
        root: args.root,
        binds,
        filter: match (args.no_emulation, args.consistent) {
            (true, _) => None,
            (false, true) => Some(consistent_filter()?),
            (false, false) => Some(emulation_filter()),
        },
        apt_hook: !args.no_apt_hook,
        debug: args.debug,
        control: args.control,
        records: args.records,
        command: args.command,
    };
    match launch::run(&opts) {
        Ok(outcome) => Ok(outcome.exit_code()),
        Err(e) => {
            eprintln!("rootemu: {}", message(&e, opts.root.as_deref()));
            Ok(e.exit_code())
        }
    }
}

/// The bundled root-emulation filter over the ABIs this binary's kernel can deliver
/// (x86_64, x32 and i386 for an x86 build), generated and verified at compile time.
pub(crate) fn emulation_filter() -> rootemu::Filter {
    rootemu::root_emulation!()
}

/// The bundled consistent-mode filter for the ABIs this binary's kernel can deliver, or
/// why this build has none (an ABI without the struct layouts it needs).
pub(crate) fn consistent_filter() -> Result<rootemu::Filter, String> {
    const FILTER: Result<rootemu::Filter, &str> = rootemu::consistent_emulation!();
    FILTER.map_err(|e| format!("--consistent is not available in this build: {}", e.lines().next().unwrap_or(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_specs_split_at_the_first_colon_and_keep_raw_bytes() {
        let (s, d) = parse_bind(OsStr::from_bytes(b"/a\xff:/b:c")).unwrap();
        assert_eq!((s.as_os_str().as_bytes(), d.as_os_str().as_bytes()), (&b"/a\xff"[..], &b"/b:c"[..]));
        assert_eq!(parse_bind(OsStr::new("/usr")).unwrap_err(), "--bind /usr: expected SRC:DST");
        assert!(parse_bind(OsStr::new(":/x")).is_err() && parse_bind(OsStr::new("/x:y")).is_err());
    }

    #[test]
    fn library_errors_get_the_flags_named() {
        let e = LaunchError::BindDestination {
            source: "/s".into(),
            destination: "/d\nx".into(),
            in_root: true,
            problem: DestinationProblem::Missing,
        };
        let m = message(&e, Some(Path::new("/r")));
        assert!(!m.contains('\n') && m.starts_with("--bind \"/s:/d\\nx\": \"/d\\nx\" does not exist in --root /r"), "{m}");
    }
}
