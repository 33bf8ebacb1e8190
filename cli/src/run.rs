//! `rootemu run`.

use clap::Args;
use rootemu::launch::{self, LaunchOptions};
use std::path::PathBuf;

/// Arguments of `rootemu run`.
///
/// Runs CMD in a new user namespace (plus a mount namespace with --bind or --root) where
/// the invoking user is root (uid/gid 0), under the root-emulation seccomp filter: chown,
/// setuid/setgid, setgroups and mknod of devices return 0 without doing anything, so
/// package managers work unprivileged.
///
/// With --root DIR, DIR becomes / (in a new PID namespace) with a fresh /proc, a minimal
/// /dev (null zero full random urandom tty, pts, shm), read-only /sys, a tmpfs /tmp and the
/// host's resolv.conf. If DIR has /etc/apt, /etc/apt/apt.conf.d/00rootemu-sandbox is
/// supplied saying `APT::Sandbox::User "root";` (apt would otherwise drop to `_apt` with a
/// setuid that emulation fakes, and abort when it checks); --no-apt-hook turns that off.
///
/// Without --root, rootemu becomes the command (like `unshare -r`), so its exit status or
/// signal is the command's own. With --root: the command's status, 128+N if it was killed
/// by signal N. Either way 127 if it was not found, 126 if it could not be executed, 1 if
/// a setup step failed (then the command is never run).
#[derive(Args)]
pub(crate) struct RunArgs {
    /// Directory that becomes / for the command.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Bind-mount SRC (host path) at DST (inside --root if given); repeatable.
    #[arg(long, value_name = "SRC:DST")]
    bind: Vec<String>,
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
    /// Do not supply the apt sandbox configuration inside --root.
    #[arg(long)]
    no_apt_hook: bool,
    /// Print each setup step on stderr.
    #[arg(long)]
    debug: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs `rootemu run`.
pub(crate) fn main(args: RunArgs) -> Result<u8, String> {
    let mut binds = Vec::new();
    for b in &args.bind {
        let Some((src, dst)) = b.split_once(':') else {
            return Err(format!("--bind {b}: expected SRC:DST"));
        };
        if src.is_empty() || !dst.starts_with('/') {
            return Err(format!("--bind {b}: SRC must be non-empty and DST an absolute path"));
        }
        binds.push((PathBuf::from(src), PathBuf::from(dst)));
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
        command: args.command,
    };
    match launch::run(&opts) {
        Ok(outcome) => Ok(outcome.exit_code()),
        Err(e) if e.exit_code() != 1 => {
            eprintln!("rootemu: {e}");
            Ok(e.exit_code())
        }
        Err(e) => Err(e.to_string()),
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
