//! What this process inherited at `execve`, recorded before the Rust runtime changes it.
//!
//! Before `main`, Rust's runtime ignores SIGPIPE and opens `/dev/null` on a closed
//! standard descriptor. `unshare -r` passes both on as it got them, and so must the
//! launcher: a constructor in `.init_array` (run by the C library before `main`, so
//! before the Rust runtime) records the SIGPIPE disposition and which of descriptors 0-2
//! were closed. The command gets that SIGPIPE disposition back and those descriptors
//! closed again right before `execve`.

use std::sync::atomic::{AtomicU32, Ordering};

const RECORDED: u32 = 1;
const SIGPIPE_IGNORED: u32 = 2;
/// Descriptor `fd` (0-2) was closed: bit `CLOSED_FD0 << fd`.
const CLOSED_FD0: u32 = 4;

static STATE: AtomicU32 = AtomicU32::new(0);

/// Called by the C library before `main` (and so before the Rust runtime's own start-up).
extern "C" fn record() {
    let mut bits = RECORDED;
    // SAFETY: queries only: the current SIGPIPE action into local storage, and whether
    // descriptors 0-2 are open.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut sa) == 0 && sa.sa_sigaction == libc::SIG_IGN {
            bits |= SIGPIPE_IGNORED;
        }
        for fd in 0..3 {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                bits |= CLOSED_FD0 << fd;
            }
        }
    }
    STATE.store(bits, Ordering::Relaxed);
}

#[used]
#[unsafe(link_section = ".init_array")]
static RECORD: extern "C" fn() = record;

/// The recorded state; if the constructor did not run (not an ELF start-up), SIGPIPE is
/// taken as default and every descriptor as open.
fn state() -> u32 {
    // Referencing the constructor keeps it in every binary that launches commands.
    std::hint::black_box(&RECORD);
    STATE.load(Ordering::Relaxed)
}

/// Whether SIGPIPE was ignored when the process started.
pub(crate) fn sigpipe_ignored() -> bool {
    state() & SIGPIPE_IGNORED != 0
}

/// Closes the standard descriptors that were closed when the process started (and that
/// the Rust runtime opened on `/dev/null`). Call right before `execve`.
pub(crate) fn close_inherited_closed_stdio() {
    let s = state();
    for fd in 0..3 {
        if s & (CLOSED_FD0 << fd) != 0 {
            // SAFETY: closes a descriptor nothing else of ours uses (it held /dev/null).
            unsafe { libc::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constructor_ran_before_the_test_harness() {
        // cargo's test harness starts with SIGPIPE at its default and fds 0-2 open.
        assert_ne!(state() & RECORDED, 0, "the .init_array constructor did not run");
    }
}
