//! The part of the supervisor that must never die: it holds the listener and the
//! journal, waits for the command, and keeps a handler running — restarted when it dies
//! (crash, kill -9), replaced by another binary on request (an upgrade). It does no work
//! on the calls itself, so it has nothing to crash on.
//!
//! While the keeper holds the listener, calls a dead handler had received stay pending
//! (the kernel keeps them until someone answers); the next handler finds them in the
//! journal ([`super::journal`]). Callers stay killable while they wait where the kernel
//! has `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19).
//!
//! Control socket (`rootemu run --consistent --control PATH`), one line per request:
//! `status` answers a JSON line of counts and takeover latencies; `upgrade BINARY` kills
//! the handler and starts `BINARY handler` in its place (its program must be the one
//! installed), answering `ok LATENCY_US` or `error ...`.

use super::held::Held;
use super::journal::{Count, Journal, now_ns};
use super::spawn::{self, HANDLER_FDS, Process, STORE_FDS};
use crate::notified::Notified;
use crate::store::Store;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The keeper of one consistent-mode run.
pub struct Keeper {
    table: &'static [Notified],
    digest: u64,
    journal: Journal,
    /// The host's /proc, for every handler.
    proc_dir: OwnedFd,
    /// The host's root directory: an upgraded handler is executed from there (the keeper's
    /// own root may be the build's after pivot_root, without the binary's loader).
    host_root: OwnedFd,
    /// The keeper's end of the socket the command sends the listener through.
    inbox: OwnedFd,
    /// The command's ends: to the keeper, to the first handler.
    outboxes: (OwnedFd, OwnedFd),
    listener: Option<OwnedFd>,
    handler: Option<Process>,
    control: Option<(UnixListener, PathBuf)>,
    latencies_ns: Vec<u64>,
    /// The record store (`--records`) and the files held for it.
    held: Option<Held>,
}

/// What a takeover measured.
#[derive(Clone, Copy, Debug)]
struct Takeover {
    latency_ns: u64,
}

impl Keeper {
    /// Starts the journal and the first handler (which waits for the listener), the control
    /// socket at `control` and a run in the record store `records` if given. `program` is
    /// the installed filter's.
    pub fn start(
        table: &'static [Notified],
        program: &[crate::SockFilter],
        control: Option<&Path>,
        records: Option<Store>,
    ) -> io::Result<Keeper> {
        let journal = Journal::create()?;
        let proc_dir = super::open_dir(c"/proc")?;
        let host_root = super::open_dir(c"/")?;
        let (inbox, to_keeper) = spawn::socket_pair()?;
        let (from_command, to_handler) = spawn::socket_pair()?;
        let control = match control {
            Some(p) => Some((
                UnixListener::bind(p).map_err(|e| io::Error::new(e.kind(), format!("--control {}: {e}", p.display())))?,
                p.to_path_buf(),
            )),
            None => None,
        };
        if let Some((l, _)) = &control {
            l.set_nonblocking(true)?;
        }
        let held = match records {
            Some(s) => Some(Held::start(s).map_err(|e| io::Error::other(format!("record store: {e}")))?),
            None => None,
        };
        let (journal_fd, proc_fd) = (journal.fd().try_clone()?, proc_dir.try_clone()?);
        let store = held.as_ref().map(Held::handler_fds).transpose()?;
        let handler = spawn::fork_running(move || match spawn::receive_fd(from_command.as_raw_fd()) {
            Ok(Some(listener)) => spawn::handler_main(spawn::HandlerFds { listener, journal: journal_fd, proc_dir: proc_fd, store }, table),
            _ => 0, // the command never installed its filter
        })?;
        Ok(Keeper {
            table,
            digest: spawn::program_digest(program),
            journal,
            proc_dir,
            host_root,
            inbox,
            outboxes: (to_keeper, to_handler),
            listener: None,
            handler: Some(handler),
            control,
            latencies_ns: Vec::new(),
            held,
        })
    }

    /// The sockets the filter's installer sends the listener through (to the keeper, then
    /// to the first handler): [`spawn::send_fd`] on each.
    pub fn outboxes(&self) -> [RawFd; 2] {
        [self.outboxes.0.as_raw_fd(), self.outboxes.1.as_raw_fd()]
    }

    /// The journal's counts and the takeover latencies so far.
    pub fn status(&self) -> String {
        let lat: Vec<String> = self.latencies_ns.iter().map(|n| (n / 1000).to_string()).collect();
        format!(
            "{{\"handler_pid\":{},\"received\":{},\"answered\":{},\"gone\":{},\"replayed\":{},\"replay_skipped\":{},\"takeovers\":{},\"takeover_latencies_us\":[{}]}}",
            self.handler.as_ref().map_or(0, |h| h.pid),
            self.journal.get(Count::Received),
            self.journal.get(Count::Answered),
            self.journal.get(Count::Gone),
            self.journal.get(Count::Replayed),
            self.journal.get(Count::ReplaySkipped),
            self.journal.get(Count::Takeovers),
            lat.join(",")
        )
    }

    /// Waits for the child `pid` (the command, or the namespace's init) and returns its
    /// wait status, restarting the handler whenever it dies and serving the control socket.
    pub fn wait(&mut self, pid: libc::pid_t) -> i32 {
        if self.held.is_some() {
            Held::raise_limit();
        }
        let child = match spawn::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(_) => return reap(pid),
        };
        loop {
            let mut fds = vec![libc::pollfd { fd: child.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            let handler = self.handler.as_ref().map(|h| h.pidfd.as_raw_fd());
            fds.push(libc::pollfd { fd: handler.unwrap_or(-1), events: libc::POLLIN, revents: 0 });
            fds.push(libc::pollfd {
                fd: if self.listener.is_none() { self.inbox.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
            let control = self.control.as_ref().map(|(l, _)| l.as_raw_fd());
            fds.push(libc::pollfd { fd: control.unwrap_or(-1), events: libc::POLLIN, revents: 0 });
            fds.push(libc::pollfd { fd: self.held.as_ref().map_or(-1, Held::socket), events: libc::POLLIN, revents: 0 });
            // SAFETY: fds is a valid array of pollfd.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                continue; // EINTR: a forwarded signal
            }
            if fds[2].revents != 0 {
                self.take_listener();
            }
            if fds[1].revents != 0 {
                if let Err(e) = self.restart(None) {
                    eprintln!("rootemu: consistent mode: the handler died and could not be restarted: {e}");
                }
            }
            if fds[3].revents != 0 {
                self.serve_control();
            }
            if fds[4].revents != 0 {
                if let Some(h) = &mut self.held {
                    h.receive();
                }
            }
            if fds[0].revents != 0 {
                return reap(pid);
            }
        }
    }

    /// Reads the keeper's copy of the listener, once the command has sent it.
    fn take_listener(&mut self) {
        if let Ok(Some(l)) = spawn::receive_fd(self.inbox.as_raw_fd()) {
            self.listener = Some(l);
        }
    }

    /// The handler died (or is being replaced): reap it, start the next one (from the
    /// executable `binary` for an upgrade), and wait until it has taken over.
    fn restart(&mut self, binary: Option<&OwnedFd>) -> Result<Takeover, String> {
        let t0 = now_ns();
        if let Some(h) = self.handler.take() {
            h.kill();
        }
        if self.listener.is_none() {
            self.take_listener();
        }
        let Some(listener) = &self.listener else {
            return Err("the command has not handed over its listener".into());
        };
        self.journal.unready();
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| e.to_string());
        let store = self.held.as_ref().map(Held::handler_fds).transpose().map_err(|e| e.to_string())?;
        let fds = spawn::HandlerFds { listener: dup(listener)?, journal: dup(self.journal.fd())?, proc_dir: dup(&self.proc_dir)?, store };
        let (table, digest, host_root) = (self.table, self.digest, &self.host_root);
        let h = spawn::fork_running(move || match binary {
            None => spawn::handler_main(fds, table),
            Some(b) => exec_handler(b, host_root, fds, digest),
        })
        .map_err(|e| format!("starting a handler failed: {e}"))?;
        self.handler = Some(h);
        self.journal.count(Count::Takeovers);
        // Ready when it has taken over the journal (a few ms); a handler that dies first
        // (a refused upgrade) is reported.
        for _ in 0..10_000 {
            let ready = self.journal.ready_ns();
            if ready != 0 {
                let t = Takeover { latency_ns: ready.saturating_sub(t0) };
                self.latencies_ns.push(t.latency_ns);
                return Ok(t);
            }
            if self.handler.as_ref().is_some_and(|h| exited(h.pidfd.as_fd())) {
                return Err("the new handler exited before taking over".into());
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        Err("the new handler did not take over within 2 s".into())
    }

    /// One request: a byte, `S` (status) or `U` (upgrade, with the new binary's fd
    /// attached); one line of answer.
    fn serve_control(&mut self) {
        let Some((l, _)) = &self.control else { return };
        let Ok((stream, _)) = l.accept() else { return };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let reply = match spawn::receive_byte_and_fd(stream.as_raw_fd()) {
            Ok((b'S', _)) => self.status(),
            Ok((b'U', Some(binary))) => match self.restart(Some(&binary)) {
                Ok(t) => format!("ok {}", t.latency_ns / 1000),
                Err(e) => {
                    // Keep serving: back to a handler of this binary.
                    let back = self.restart(None).map(|_| "").unwrap_or("; restarting the old handler failed too");
                    format!("error {e}{back}")
                }
            },
            Ok((b, _)) => format!("error unknown request {b:#x} (expected status or upgrade with a binary)"),
            Err(e) => format!("error reading the request: {e}"),
        };
        let _ = writeln!(&stream, "{reply}");
    }

    /// Stops the handler; seals the record store's run; removes the control socket.
    pub fn stop(mut self) {
        if let Some(h) = self.handler.take() {
            h.kill();
        }
        if let Some(held) = self.held.take() {
            if let Err(e) = held.seal(&self.proc_dir) {
                eprintln!("rootemu: consistent mode: record store: {e}; records of this run count only while their files stay unchanged");
            }
        }
        if let Some((_, p)) = self.control.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A request to a keeper's control socket: the status, or (with `binary`) an upgrade to
/// that executable; the keeper's one-line answer.
pub fn control(socket: &Path, binary: Option<&std::fs::File>) -> io::Result<String> {
    let s = UnixStream::connect(socket)?;
    match binary {
        None => spawn::send_byte_and_fd(s.as_raw_fd(), b'S', None)?,
        Some(b) => spawn::send_byte_and_fd(s.as_raw_fd(), b'U', Some(b.as_raw_fd()))?,
    }
    let mut line = String::new();
    io::BufReader::new(s).read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

/// In the forked child: `BINARY handler --program DIGEST` (the executable by its fd, so
/// that it runs whatever mount namespace and root the keeper is in), with the fds at
/// [`HANDLER_FDS`].
fn exec_handler(binary: &OwnedFd, host_root: &OwnedFd, fds: spawn::HandlerFds, digest: u64) -> i32 {
    // SAFETY: fchdir/chroot with an fd we hold, in the child.
    if unsafe { libc::fchdir(host_root.as_raw_fd()) != 0 || libc::chroot(c".".as_ptr()) != 0 } {
        eprintln!("rootemu: upgrading the handler: entering the host's root failed: {}", io::Error::last_os_error());
        return 126;
    }
    let (l, j, p) = HANDLER_FDS;
    let mut moves = vec![(fds.listener.as_raw_fd(), l), (fds.journal.as_raw_fd(), j), (fds.proc_dir.as_raw_fd(), p)];
    if let Some(s) = &fds.store {
        moves.extend([(s.file.as_raw_fd(), STORE_FDS.0), (s.pins.as_raw_fd(), STORE_FDS.1)]);
    }
    // SAFETY: fcntl/dup2 in the child: every source is first copied above the agreed
    // numbers (so none is overwritten before it moves), then onto its number without
    // close-on-exec.
    unsafe {
        for (from, _) in &mut moves {
            *from = libc::fcntl(*from, libc::F_DUPFD_CLOEXEC, 64);
            if *from < 0 {
                return 126;
            }
        }
        for (from, to) in &moves {
            if libc::dup2(*from, *to) < 0 {
                return 126;
            }
        }
    }
    let digest = format!("{digest:016x}");
    let store = if fds.store.is_some() { Some("--store") } else { None };
    let args: Vec<std::ffi::CString> =
        ["rootemu", "handler", "--program", &digest].into_iter().chain(store).map(|a| std::ffi::CString::new(a).expect("no NUL")).collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let env: Vec<std::ffi::CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            std::ffi::CString::new(kv).ok()
        })
        .collect();
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: execveat of an fd we hold, with NUL-terminated argv and envp.
    unsafe { libc::syscall(libc::SYS_execveat, binary.as_raw_fd(), c"".as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH) };
    eprintln!("rootemu: upgrading the handler: executing the new binary failed: {}", io::Error::last_os_error());
    127
}

fn exited(pidfd: std::os::fd::BorrowedFd) -> bool {
    let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

fn reap(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return status;
        }
        if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 1 << 8;
        }
    }
}
