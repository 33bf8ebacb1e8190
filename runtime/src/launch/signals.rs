//! Signals: what the command inherits, and how the supervisor and init relay them.
//!
//! The command starts with the signal state the caller gave `rootemu`, as under
//! `unshare -r`: the same blocked mask, the same ignored signals (nohup's SIGHUP, a
//! shell's `trap '' INT`), SIGPIPE as it was before the Rust runtime ignored it, and
//! every other signal at its default.
//!
//! With a root directory, the supervisor and init relay [`RELAYED`] signals to their child,
//! except:
//! - signals the caller ignored: they stay ignored in all three processes;
//! - terminal-generated ones (`si_code` SI_KERNEL): the terminal sends them to the whole
//!   foreground process group, the command included;
//! - in init, signals sent from inside the namespace (`si_pid` != 0: e.g. the command's
//!   `kill -HUP 1`): pid 1 ignores them, as an init without handlers would, instead of
//!   bouncing them back to the command.

use super::inherited;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Signals the supervisor and init pass on to their child. Job-control stops are left to
/// the kernel.
const RELAYED: [libc::c_int; 7] = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// The caller's signal state, captured before the launcher changes anything.
#[derive(Clone, Copy)]
pub(crate) struct Inherited {
    mask: libc::sigset_t,
    /// Bit `i` set: `RELAYED[i]` was ignored.
    ignored: u32,
    sigpipe_ignored: bool,
}

fn is_ignored(sig: libc::c_int) -> bool {
    // SAFETY: a query into local storage.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut sa) == 0 && sa.sa_sigaction == libc::SIG_IGN
    }
}

fn set_disposition(sig: libc::c_int, ignored: bool) {
    // SAFETY: installs SIG_IGN or SIG_DFL.
    unsafe { libc::signal(sig, if ignored { libc::SIG_IGN } else { libc::SIG_DFL }) };
}

impl Inherited {
    /// Records the current mask and ignored signals (SIGPIPE: as at process start).
    pub(crate) fn capture() -> Inherited {
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: reads the current mask into local storage.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) };
        let ignored = RELAYED.iter().enumerate().filter(|(_, s)| is_ignored(**s)).fold(0, |acc, (i, _)| acc | 1 << i);
        Inherited { mask, ignored, sigpipe_ignored: inherited::sigpipe_ignored() }
    }

    fn relayed_ignored(&self, i: usize) -> bool {
        self.ignored & (1 << i) != 0
    }

    /// Gives this process the caller's signal state back: call right before `execve`.
    pub(crate) fn restore(&self) {
        RELAY_TO.store(0, Ordering::SeqCst);
        for (i, s) in RELAYED.iter().enumerate() {
            set_disposition(*s, self.relayed_ignored(i));
        }
        set_disposition(libc::SIGPIPE, self.sigpipe_ignored);
        // SAFETY: restores a mask obtained from sigprocmask.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) };
    }

    /// Blocks the relayed signals (around a fork, until the relay is installed).
    pub(crate) fn block_relayed(&self) {
        // SAFETY: sigset manipulation on local storage.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in RELAYED {
                libc::sigaddset(&mut set, s);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
    }

    /// Relays the signals the caller did not ignore to `child`, then restores the
    /// caller's mask (signals that arrived while blocked are relayed then). `from_init`:
    /// this process is pid 1 of the namespace, which drops signals sent from inside it.
    pub(crate) fn relay_to(&self, child: libc::pid_t, from_init: bool) {
        RELAY_TO.store(child, Ordering::SeqCst);
        IS_INIT.store(from_init, Ordering::SeqCst);
        for (i, s) in RELAYED.iter().enumerate() {
            if self.relayed_ignored(i) {
                continue;
            }
            // SAFETY: installs an async-signal-safe handler.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = relay;
                sa.sa_sigaction = handler as usize;
                sa.sa_flags = libc::SA_SIGINFO; // no SA_RESTART: waits see EINTR and loop
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(*s, &sa, std::ptr::null_mut());
            }
        }
        // SAFETY: restores a mask obtained from sigprocmask.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) };
    }
}

static RELAY_TO: AtomicI32 = AtomicI32::new(0);
static IS_INIT: AtomicBool = AtomicBool::new(false);

extern "C" fn relay(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if info.is_null() {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let pid = RELAY_TO.load(Ordering::SeqCst);
    let from_inside = IS_INIT.load(Ordering::SeqCst) && sender != 0;
    if pid > 0 && code != libc::SI_KERNEL && !from_inside {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}
