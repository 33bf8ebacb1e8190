//! The journal of the call in flight, so that a handler that dies between receiving a
//! call and answering it loses nothing: a page of shared memory (a memfd the keeper
//! holds), written before acting and cleared after answering. A new handler reads it
//! first: a call still waiting (`NOTIF_ID_VALID`) is handled again, or answered with the
//! answer already decided. Handling is idempotent; where an operation is not by nature
//! (mknod, an xattr created or removed), it leaves a `note` before its one mutation, which
//! tells a replay that the mutation was done. The handler is single-threaded: one slot.
//!
//! The kernel itself writes each received call into the page: `SECCOMP_IOCTL_NOTIF_RECV`
//! fills a buffer there, so a handler killed after the kernel handed it a call but before
//! it journaled it leaves the call in the page all the same (the kernel never hands a call
//! out twice: without this, that call's caller would wait forever).
//!
//! The page also counts what happened (received, answered, replayed, ...), for
//! `rootemu supervisor status` and the tests.

use super::unotify::{Answer, Request};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Nothing in flight.
const FREE: u32 = 0;
/// Received; being handled.
const RECEIVED: u32 = 1;
/// The answer is decided (in the slot); being sent.
const ANSWERING: u32 = 2;

/// The shared page.
#[repr(C)]
struct Page {
    state: AtomicU32,
    nr: AtomicI32,
    id: AtomicU64,
    pid: AtomicU32,
    arch: AtomicU32,
    args: [AtomicU64; 6],
    note: AtomicU64,
    answer_kind: AtomicU32,
    answer_errno: AtomicI32,
    answer_value: AtomicI64,
    counts: [AtomicU64; COUNTS],
    /// CLOCK_MONOTONIC ns when the current handler became ready.
    ready_ns: AtomicU64,
    /// The `struct seccomp_notif` the kernel writes the last received call into.
    recv: [AtomicU64; RECV_WORDS],
}

/// 64-bit words of a `struct seccomp_notif` (80 bytes).
const RECV_WORDS: usize = std::mem::size_of::<libc::seccomp_notif>().div_ceil(8);

/// What the journal counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Calls received.
    Received = 0,
    /// Answers sent.
    Answered,
    /// Answers the kernel refused because the caller no longer waited (it died).
    Gone,
    /// Calls a new handler found in flight and answered.
    Replayed,
    /// Calls a new handler found in flight but no longer waiting (answered before the
    /// old handler died, or the caller died): not answered again.
    ReplaySkipped,
    /// Handlers started after the first (restarts and upgrades).
    Takeovers,
}
const COUNTS: usize = 6;

/// A handle on the journal page.
pub struct Journal {
    fd: OwnedFd,
    page: &'static Page,
}

impl Journal {
    /// A new, empty journal (the keeper's).
    pub fn create() -> io::Result<Journal> {
        // SAFETY: memfd_create with a valid name and flags.
        let fd = unsafe { libc::memfd_create(c"rootemu-journal".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sizing our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Journal::open(fd)
    }

    /// Maps an existing journal (a handler's, from the keeper's fd).
    pub fn open(fd: OwnedFd) -> io::Result<Journal> {
        const _: () = assert!(std::mem::size_of::<Page>() <= 4096);
        // SAFETY: a shared mapping of a page of the memfd; it lives as long as the process
        // (the mapping is never unmapped: handlers and the keeper hold one journal each).
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the page is zero-initialised memory of the right size and alignment, and
        // every field is an atomic, so concurrent access from other processes is sound.
        Ok(Journal { fd, page: unsafe { &*(p as *const Page) } })
    }

    /// The memfd, for passing to a handler.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The buffer the next `SECCOMP_IOCTL_NOTIF_RECV` fills, zeroed as the kernel requires.
    /// Call only once the call it held before has been journaled (or was never there).
    pub(crate) fn recv_buffer(&self) -> *mut libc::seccomp_notif {
        for w in &self.page.recv {
            w.store(0, Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        self.page.recv.as_ptr() as *mut libc::seccomp_notif
    }

    /// The call the kernel last wrote into the receive buffer, if any: one a dead handler
    /// received and perhaps never journaled.
    pub(crate) fn last_received(&self) -> Option<Request> {
        std::sync::atomic::fence(Ordering::SeqCst);
        let mut bytes = [0u8; RECV_WORDS * 8];
        for (chunk, w) in bytes.chunks_exact_mut(8).zip(&self.page.recv) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        // SAFETY: `bytes` holds at least a seccomp_notif (plain integers: any bits are
        // valid); read_unaligned copies it out.
        let n: libc::seccomp_notif = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        (n.id != 0).then_some(Request { id: n.id, pid: n.pid, nr: n.data.nr, arch: n.data.arch, args: n.data.args })
    }

    /// Writes a received call, before it is acted on.
    pub(crate) fn begin(&self, r: &Request) {
        let p = self.page;
        p.id.store(r.id, Ordering::Relaxed);
        p.pid.store(r.pid, Ordering::Relaxed);
        p.nr.store(r.nr, Ordering::Relaxed);
        p.arch.store(r.arch, Ordering::Relaxed);
        for (a, v) in p.args.iter().zip(r.args) {
            a.store(v, Ordering::Relaxed);
        }
        p.note.store(0, Ordering::Relaxed);
        p.state.store(RECEIVED, Ordering::Release);
        self.count(Count::Received);
    }

    /// Leaves a note: the one non-idempotent mutation of the call is about to happen.
    pub(crate) fn note(&self, v: u64) {
        self.page.note.store(v, Ordering::Release);
    }

    /// Writes the decided answer, before it is sent.
    pub(crate) fn decided(&self, a: Answer) {
        let p = self.page;
        let (k, e, v) = match a {
            Answer::Value(v) => (0, 0, v),
            Answer::Errno(e) => (1, e, 0),
            Answer::Continue => (2, 0, 0),
        };
        p.answer_kind.store(k, Ordering::Relaxed);
        p.answer_errno.store(e, Ordering::Relaxed);
        p.answer_value.store(v, Ordering::Relaxed);
        p.state.store(ANSWERING, Ordering::Release);
    }

    /// The call is answered: nothing in flight.
    pub(crate) fn clear(&self) {
        self.page.state.store(FREE, Ordering::Release);
    }

    /// What a dead handler left in flight: the call, its note, and the answer if decided.
    pub(crate) fn in_flight(&self) -> Option<(Request, u64, Option<Answer>)> {
        let p = self.page;
        let state = p.state.load(Ordering::Acquire);
        if state == FREE {
            return None;
        }
        let mut args = [0u64; 6];
        for (v, a) in args.iter_mut().zip(&p.args) {
            *v = a.load(Ordering::Relaxed);
        }
        let r = Request {
            id: p.id.load(Ordering::Relaxed),
            pid: p.pid.load(Ordering::Relaxed),
            nr: p.nr.load(Ordering::Relaxed),
            arch: p.arch.load(Ordering::Relaxed),
            args,
        };
        let answer = (state == ANSWERING).then(|| match p.answer_kind.load(Ordering::Relaxed) {
            0 => Answer::Value(p.answer_value.load(Ordering::Relaxed)),
            1 => Answer::Errno(p.answer_errno.load(Ordering::Relaxed)),
            _ => Answer::Continue,
        });
        Some((r, p.note.load(Ordering::Acquire), answer))
    }

    /// Adds one to a count.
    pub(crate) fn count(&self, c: Count) {
        self.page.counts[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A count.
    pub fn get(&self, c: Count) -> u64 {
        self.page.counts[c as usize].load(Ordering::Relaxed)
    }

    /// Records that a handler is ready now.
    pub(crate) fn ready(&self) {
        self.page.ready_ns.store(now_ns(), Ordering::Release);
    }

    /// When the current handler became ready (CLOCK_MONOTONIC ns; 0: not yet).
    pub fn ready_ns(&self) -> u64 {
        self.page.ready_ns.load(Ordering::Acquire)
    }

    /// Forgets the ready time (a new handler is being started).
    pub(crate) fn unready(&self) {
        self.page.ready_ns.store(0, Ordering::Release);
    }
}

/// CLOCK_MONOTONIC in ns.
pub fn now_ns() -> u64 {
    // SAFETY: all-zero is a valid timespec; clock_gettime fills it.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
