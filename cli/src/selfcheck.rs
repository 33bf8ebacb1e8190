//! `rootemu selfcheck`: the binary checks its own embedded filter on the machine it runs
//! on (made for cross builds: run it under qemu-user or on the target itself).
//!
//! 1. Its own ABI, from its own ELF header (`/proc/self/exe`: e_machine, class, byte order,
//!    MIPS n32 flag) matched against the header facts of the bundled tables; the embedded
//!    filter must cover it.
//! 2. (a) For the policy's calls and some controls, the bundled table's number equals the
//!    target's `libc::SYS_*` constant.
//! 3. (b) The embedded program, simulated with the own AUDIT_ARCH and libc's numbers, fakes
//!    the policy's calls (mknod only for devices) and allows the controls.
//! 4. (c) The `.rootemu_filter` section of its own ELF decodes, in the ELF's byte order, to
//!    the program in memory.
//! 5. With `--install`: installs the filter for real and checks that chown of an own file to
//!    0:0 returns 0 and changes nothing (needs seccomp: not under qemu-user).
//! 6. With `--consistent` (and `--install`): first runs itself under `rootemu run
//!    --consistent` (user namespace, supervisor, the ABI's struct layouts) and checks that
//!    `chown 0:50` then `stat` shows 0:50, and that `mknod c 1 3` then `stat` shows a char
//!    device 1:3 with the requested mode (needs user namespaces and a TMPDIR with user
//!    xattrs: tmpfs since Linux 6.6).
//!
//! Output: `CHECK <name> ok|FAIL <detail>` per check, then `RESULT <abi> <passed>/<total>`.

use crate::inspect;
use clap::Args;
use rootemu_codegen::{Abi, Action, Endian, Insn, Policy, Tables, sim};
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Arguments of `rootemu selfcheck`.
///
/// Checks the filter embedded in this binary against the machine it runs on: its own ABI
/// (from its ELF header) is covered, the bundled table's numbers equal libc's SYS_*
/// constants, the simulated program fakes the policy's calls and allows the rest, and the
/// `.rootemu_filter` section decodes to the program in memory. Exit status 0 when every
/// check passes, 1 otherwise.
#[derive(Args)]
pub(crate) struct SelfcheckArgs {
    /// Also install the filter for real (seccomp; not available under qemu-user) and check
    /// that chown/fchown of an own file to 0:0 returns 0 and changes nothing. As root, give
    /// --uid: the checks mean nothing for root.
    #[arg(long)]
    install: bool,
    /// With --install: first drop to this uid (and its gid, see --gid); needs root.
    #[arg(long, value_name = "UID", requires = "install")]
    uid: Option<u32>,
    /// With --uid: the gid to drop to (default: the uid).
    #[arg(long, value_name = "GID", requires = "uid")]
    gid: Option<u32>,
    /// With --install: also check consistent mode for real (chown and mknod, then stat,
    /// under `rootemu run --consistent`).
    #[arg(long, requires = "install")]
    consistent: bool,
    /// The consistent-mode probe `--consistent` runs under `rootemu run --consistent`.
    #[arg(long, hide = true, conflicts_with = "install")]
    consistent_probe: bool,
}

/// Counts and prints checks.
#[derive(Default)]
struct Report {
    passed: usize,
    total: usize,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, detail: impl FnOnce() -> String) -> bool {
        self.total += 1;
        if ok {
            self.passed += 1;
            outln!("CHECK {name} ok");
        } else {
            outln!("CHECK {name} FAIL {}", detail().replace('\n', " "));
        }
        ok
    }
}

/// `(name, number)` of `libc::SYS_*` constants.
macro_rules! sys {
    ($($name:ident),* $(,)?) => { &[$((stringify!($name), libc::$name as i64)),*] };
}

/// libc's `SYS_*` numbers of the policy's calls on this target. Which constants the libc
/// crate defines is its fact per `target_arch`: the asm-generic ABIs (aarch64, riscv,
/// loongarch) have no chown, lchown or mknod, and only i386 and arm the 32-bit-id variants.
fn libc_policy_calls() -> Vec<(&'static str, i64)> {
    #[allow(unused_mut)] // extended on some targets only
    let mut v = sys![
        SYS_fchown,
        SYS_fchownat,
        SYS_setuid,
        SYS_setgid,
        SYS_setreuid,
        SYS_setregid,
        SYS_setresuid,
        SYS_setresgid,
        SYS_setgroups,
        SYS_setfsuid,
        SYS_setfsgid,
        SYS_capset,
        SYS_mknodat,
    ]
    .to_vec();
    #[cfg(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "s390x",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64",
        target_arch = "m68k"
    ))]
    v.extend_from_slice(sys![SYS_chown, SYS_lchown, SYS_mknod]);
    #[cfg(any(target_arch = "x86", target_arch = "arm"))]
    v.extend_from_slice(sys![
        SYS_chown32,
        SYS_lchown32,
        SYS_fchown32,
        SYS_setuid32,
        SYS_setgid32,
        SYS_setreuid32,
        SYS_setregid32,
        SYS_setresuid32,
        SYS_setresgid32,
        SYS_setgroups32,
        SYS_setfsuid32,
        SYS_setfsgid32,
    ]);
    v
}

/// libc's numbers of calls the policy does not name: the filter must let them through.
fn libc_controls() -> Vec<(&'static str, i64)> {
    #[allow(unused_mut)] // extended on i386 and arm only
    let mut v = sys![SYS_getpid, SYS_getuid, SYS_openat, SYS_read, SYS_write, SYS_close].to_vec();
    #[cfg(any(target_arch = "x86", target_arch = "arm"))]
    v.extend_from_slice(sys![SYS_getuid32]);
    v
}

const S_IFCHR: u64 = 0o020000;
const S_IFIFO: u64 = 0o010000;
/// `makedev(1, 3)` (/dev/null) as the kernel encodes it.
const DEV_NULL: u64 = 0x103;
const AT_FDCWD: u64 = -100i64 as u64;
const PATH: u64 = 0x1000;

/// Runs `rootemu selfcheck`.
pub(crate) fn main(args: SelfcheckArgs) -> Result<u8, String> {
    if args.consistent_probe {
        return Ok(consistent_probe());
    }
    // SAFETY: geteuid has no preconditions.
    if args.install && args.uid.is_none() && unsafe { libc::geteuid() } == 0 {
        return Err("selfcheck --install as root: give --uid UID to drop to (root's chown to 0:0 proves nothing)".into());
    }
    let filter = crate::run::emulation_filter();
    let exe = std::fs::read("/proc/self/exe").map_err(|e| format!("cannot read /proc/self/exe: {e}"))?;
    let elf = goblin::elf::Elf::parse(&exe).map_err(|e| format!("/proc/self/exe: not an ELF file: {e}"))?;
    let (files, (policy_path, policy_text)) = crate::inputs::bundled_files(crate::inputs::BUNDLED_POLICY);
    let tables = Tables::parse(files.iter().map(|(p, t)| (p.as_path(), *t))).map_err(|e| format!("the bundled tables do not load: {e}"))?;
    let policy = Policy::parse(&policy_path, policy_text, &tables).map_err(|e| format!("the bundled policy does not load: {e}"))?;

    let mut r = Report::default();
    let program: Vec<Insn> = filter.program.iter().map(|&i| i.into()).collect();
    let covered: Vec<&str> = filter.abis.iter().map(|a| a.name).collect();
    let facts = ElfFacts { machine: elf.header.e_machine, is_64: elf.is_64, big: !elf.little_endian, flags: elf.header.e_flags };
    let abi = match facts.abi(&tables) {
        Ok(abi) => abi,
        Err(why) => {
            r.check("own_abi", false, || why);
            outln!("RESULT unknown {}/{}", r.passed, r.total);
            return Ok(1);
        }
    };
    outln!(
        "SELFCHECK {} {}: ELF e_machine {} {}-bit {}-endian; ABI {} (AUDIT_ARCH {:#x}, nr_base {}); filter `{}`: {} instructions, ABIs {}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        facts.machine,
        if facts.is_64 { 64 } else { 32 },
        if facts.big { "big" } else { "little" },
        abi.name,
        abi.audit_arch,
        abi.nr_base,
        filter.policy,
        program.len(),
        covered.join(",")
    );
    r.check("own_abi", true, String::new);
    // The same tables, read by the macro from the Rust target (rust_native, endian, elf_class).
    let running = rootemu::install::running_abi();
    r.check("running_abi", running == abi.name, || format!("the ELF header says {}, install::running_abi() says {running}", abi.name));
    let info = filter.abis.iter().find(|a| a.name == abi.name);
    let is_covered = r.check("abi_covered", info.is_some_and(|i| i.audit_arch == abi.audit_arch), || match info {
        None => format!("the embedded filter has no branch for {} (it covers {})", abi.name, covered.join(",")),
        Some(i) => format!("the filter's AUDIT_ARCH for {} is {:#x}, the table's {:#x}", abi.name, i.audit_arch, abi.audit_arch),
    });
    r.check("policy_name", filter.policy == policy.name, || format!("embedded `{}`, bundled `{}`", filter.policy, policy.name));

    // (a) table numbers == libc's constants; (b) the simulated program on libc's numbers.
    let (policy_calls, controls) = (libc_policy_calls(), libc_controls());
    let calls = policy_calls.iter().map(|c| (c, true)).chain(controls.iter().map(|c| (c, false)));
    let mut sims = Vec::new();
    for (&(sym, nr), faked) in calls {
        let name = sym.trim_start_matches("SYS_");
        let table_nr = abi.nr(name);
        r.check(&format!("table_{name}"), table_nr.map(i64::from) == Some(nr), || match table_nr {
            Some(t) => format!("table {}: {t} (nr_base {} + {}), libc::{sym}: {nr}", abi.name, abi.nr_base, t - abi.nr_base),
            None => format!("table {} has no `{name}`, libc::{sym} is {nr}", abi.name),
        });
        let args = match name {
            "mknod" => [PATH, S_IFCHR | 0o644, DEV_NULL, 0, 0, 0],
            "mknodat" => [AT_FDCWD, PATH, S_IFCHR | 0o644, DEV_NULL, 0, 0],
            _ => [0; 6],
        };
        let want = if faked { Action::Errno(0) } else { Action::Allow };
        sims.push((format!("sim_{name}"), name, nr, args, want));
    }
    // Not every mknod is faked: FIFOs and the char 0:0 whiteout go to the kernel.
    for (&(sym, nr), (mode, dev)) in
        policy_calls.iter().filter(|(s, _)| s.starts_with("SYS_mknod")).flat_map(|c| [(c, (S_IFIFO | 0o644, 0)), (c, (S_IFCHR | 0o644, 0))])
    {
        let name = sym.trim_start_matches("SYS_");
        let what = if mode & S_IFIFO != 0 { "fifo" } else { "whiteout" };
        let args = if name == "mknod" { [PATH, mode, dev, 0, 0, 0] } else { [AT_FDCWD, PATH, mode, dev, 0, 0] };
        sims.push((format!("sim_{name}_{what}"), name, nr, args, Action::Allow));
    }
    for (check, name, nr, args, want) in sims {
        let verdict = policy.verdict(Some(name), &args);
        let d = sim::SeccompData { nr: nr as u32, arch: abi.audit_arch, ip: 0, args, big_endian: abi.endian == Endian::Big };
        let got = sim::run(&program, &d);
        let ok = verdict == want && matches!(&got, Ok(o) if o.ret == want.to_ret());
        r.check(&check, ok, || {
            let got = match &got {
                Ok(o) => Action::from_ret(o.ret).map_or_else(|| format!("{:#x}", o.ret), |a| a.to_string()),
                Err(e) => format!("error: {e}"),
            };
            format!("nr {nr} arch {:#x}: program returns {got}, policy says {verdict}, expected {want}", abi.audit_arch)
        });
    }

    // (c) the section in our own ELF, in the ELF's byte order, is the program in memory.
    let native_big = cfg!(target_endian = "big");
    r.check("elf_byte_order", facts.big == native_big, || {
        format!(
            "ELF header says {}-endian, this code runs {}-endian",
            if facts.big { "big" } else { "little" },
            if native_big { "big" } else { "little" }
        )
    });
    match inspect::embedded(&elf, &exe) {
        Ok(None) => {
            r.check("section_found", false, || format!("no {} section in /proc/self/exe", rootemu_codegen::record::SECTION));
        }
        Err(e) => {
            r.check("section_found", false, || e);
        }
        Ok(Some(records)) => {
            r.check("section_found", !records.is_empty(), || "the section holds no record".into());
            let abis = covered.join(",");
            let found = records.iter().position(|rec| rec.program == program && rec.get("abis") == abis);
            r.check("section_program", found.is_some(), || {
                let shapes: Vec<String> =
                    records.iter().map(|rec| format!("{} insns for {}", rec.program.len(), rec.get("abis"))).collect();
                format!(
                    "no record equals the {} instructions in memory for {abis} ({} records: {})",
                    program.len(),
                    records.len(),
                    shapes.join("; ")
                )
            });
            if let Some(i) = found {
                let rec = &records[i];
                let ok = rec.get("policy") == filter.policy;
                r.check("section_meta", ok, || format!("record policy `{}`, filter `{}`", rec.get("policy"), filter.policy));
            }
        }
    }

    if args.install && !is_covered {
        // Its `unknown_abi: kill_process` would kill us at the next syscall.
        r.check("install", false, || format!("not installed: the filter does not cover {}", abi.name));
    } else if args.install {
        let drop_to = args.uid.map(|u| (u, args.gid.unwrap_or(u)));
        if args.consistent {
            consistent_checks(&mut r, drop_to);
        }
        install_checks(&mut r, &filter, drop_to);
    }
    outln!("RESULT {} {}/{}", abi.name, r.passed, r.total);
    Ok(u8::from(r.passed != r.total))
}

/// Runs this binary's consistent-mode probe under `rootemu run --consistent` (as the
/// `drop_to` user when given) and adds its checks.
fn consistent_checks(r: &mut Report, drop_to: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    let exe = match std::fs::read_link("/proc/self/exe") {
        Ok(p) => p,
        Err(e) => {
            r.check("consistent_run", false, || format!("cannot read /proc/self/exe: {e}"));
            return;
        }
    };
    let mut c = std::process::Command::new(&exe);
    c.args(["run", "--consistent", "--"]).arg(&exe).args(["selfcheck", "--consistent-probe"]);
    if let Some((uid, gid)) = drop_to {
        // As root, std also drops the supplementary groups.
        c.uid(uid).gid(gid);
    }
    let out = match c.output() {
        Ok(o) => o,
        Err(e) => {
            r.check("consistent_run", false, || format!("cannot run {} run --consistent: {e}", exe.display()));
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("CHECK ") else { continue };
        let (name, verdict) = rest.split_once(' ').unwrap_or((rest, ""));
        seen += 1;
        r.check(name, verdict == "ok", || verdict.trim_start_matches("FAIL ").to_string());
    }
    r.check("consistent_run", out.status.success() && seen == CONSISTENT_PROBES, || {
        let err = String::from_utf8_lossy(&out.stderr);
        format!("{} ({seen} of {CONSISTENT_PROBES} checks): {}", out.status, err.lines().last().unwrap_or(""))
    });
}

/// Checks of [`consistent_probe`].
const CONSISTENT_PROBES: usize = 4;

/// Inside `rootemu run --consistent`: chown then stat, mknod then stat, each through the
/// supervisor. Prints `CHECK` lines; exit status 0 when all pass.
fn consistent_probe() -> u8 {
    let mut r = Report::default();
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("rootemu-selfcheck-consistent-{}", std::process::id()));
    let file = dir.join("file");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, b"x")) {
        r.check("consistent_file", false, || format!("cannot create {}: {e}", file.display()));
        return 1;
    }
    let cfile = CString::new(file.as_os_str().as_encoded_bytes()).expect("no NUL in a temp path");
    let cnode = CString::new(dir.join("node").as_os_str().as_encoded_bytes()).expect("no NUL in a temp path");
    // SAFETY: cfile is a valid C string.
    let rc = unsafe { libc::chown(cfile.as_ptr(), 0, 50) };
    let e = errno();
    r.check("consistent_chown", rc == 0, || format!("chown 0:50: rc {rc}, {}", rootemu::install::errno_text(e)));
    // std reads with statx; libc::stat with the ABI's own stat call (stat64, newfstatat, ...).
    let std_owner = std::fs::metadata(&file).ok().map(|m| (m.uid(), m.gid()));
    r.check("consistent_statx_owner", std_owner == Some((0, 50)), || format!("statx says {std_owner:?}, expected 0:50"));
    // SAFETY: all-zero is a valid struct stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: cfile is a valid C string; stat writes `st`.
    let rc = unsafe { libc::stat(cfile.as_ptr(), &mut st) };
    r.check("consistent_stat_owner", rc == 0 && (st.st_uid, st.st_gid) == (0, 50), || {
        format!("stat: rc {rc}, owner {}:{}, expected 0:50", st.st_uid, st.st_gid)
    });
    // SAFETY: cnode is a valid C string.
    let rc = unsafe { libc::mknod(cnode.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    let e = errno();
    // SAFETY: all-zero is a valid struct stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: cnode is a valid C string; lstat writes `st`.
    let src = if rc == 0 { unsafe { libc::lstat(cnode.as_ptr(), &mut st) } } else { -1 };
    let (kind, mode, rdev) = (st.st_mode & libc::S_IFMT, st.st_mode & 0o7777, st.st_rdev);
    r.check(
        "consistent_mknod_stat",
        rc == 0 && src == 0 && kind == libc::S_IFCHR && mode == 0o600 && (libc::major(rdev), libc::minor(rdev)) == (1, 3),
        || {
            format!(
                "mknod c 1 3: rc {rc} ({}); lstat rc {src}: type {kind:o}, mode {mode:o}, rdev {}:{}",
                rootemu::install::errno_text(e),
                libc::major(rdev),
                libc::minor(rdev)
            )
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    u8::from(r.passed != r.total)
}

/// The ELF header facts that pick an ABI.
struct ElfFacts {
    machine: u16,
    is_64: bool,
    big: bool,
    flags: u32,
}

impl ElfFacts {
    /// The one table whose ELF facts match (`Tables::abi_of_elf`).
    fn abi<'t>(&self, tables: &'t Tables) -> Result<&'t Abi, String> {
        let endian = if self.big { Endian::Big } else { Endian::Little };
        tables.abi_of_elf(self.machine, if self.is_64 { 64 } else { 32 }, endian, self.flags)
    }
}

/// Installs the filter for real and checks that ownership calls are faked.
fn install_checks(r: &mut Report, filter: &rootemu::Filter, drop_to: Option<(u32, u32)>) {
    use rootemu::install::{self, InstallOptions, errno_text};
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if let Some((uid, gid)) = drop_to {
        // SAFETY: plain credential syscalls; the process is single-threaded here.
        let rc = unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setresgid(gid, gid, gid) != 0 || libc::setresuid(uid, uid, uid) != 0 {
                errno()
            } else {
                0
            }
        };
        // SAFETY: getuid/geteuid have no preconditions.
        let now = unsafe { (libc::getuid(), libc::geteuid()) };
        r.check("drop_to_uid", rc == 0 && now == (uid, uid), || format!("{} (uid {}, euid {})", errno_text(rc), now.0, now.1));
    }
    // SAFETY: as above.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        r.check("install_unprivileged", false, || "still root: the checks would prove nothing".into());
        return;
    }
    let dir = std::env::temp_dir().join(format!("rootemu-selfcheck-{}", std::process::id()));
    let file = dir.join("file");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, b"x")) {
        r.check("own_file", false, || format!("cannot create {}: {e}", file.display()));
        return;
    }
    let cfile = CString::new(file.as_os_str().as_encoded_bytes()).expect("no NUL in a temp path");
    let node = CString::new(dir.join("node").as_os_str().as_encoded_bytes()).expect("no NUL in a temp path");
    let owner = || std::fs::metadata(&file).ok().map(|m| (m.uid(), m.gid()));
    let mine = Some((uid, gid));
    r.check("own_file", owner() == mine, || format!("owner {:?}, expected {uid}:{gid}", owner()));
    // Without the filter, chown to root fails: the checks below mean something.
    // SAFETY: cfile is a valid C string.
    let rc = unsafe { libc::chown(cfile.as_ptr(), 0, 0) };
    let e = errno();
    r.check("control_chown_eperm", rc == -1 && e == libc::EPERM, || format!("chown to 0:0 before installing: rc {rc}, {}", errno_text(e)));

    match install::install(filter.program, InstallOptions::default()) {
        Ok(()) => r.check("install", true, String::new),
        Err(e) => {
            r.check("install", false, || e.to_string());
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    };
    r.check("install_self_test", install::self_test(filter).is_ok(), || install::self_test(filter).unwrap_err().to_string());
    let fd = std::fs::File::open(&file);
    let fd = fd.as_ref().map(std::os::fd::AsRawFd::as_raw_fd).unwrap_or(-1);
    for name in ["fchown_root", "chown_root", "lchown_root"] {
        // SAFETY: fd is ours (or -1); cfile is a valid C string.
        let rc = unsafe {
            match name {
                "fchown_root" => libc::fchown(fd, 0, 0),
                "chown_root" => libc::chown(cfile.as_ptr(), 0, 0),
                _ => libc::lchown(cfile.as_ptr(), 0, 0),
            }
        };
        let e = errno();
        let now = owner();
        r.check(name, rc == 0 && now == mine, || format!("rc {rc} ({}), owner now {now:?}, was {uid}:{gid}", errno_text(e)));
    }
    // SAFETY: credential calls with constant arguments; faked, they change nothing.
    let rc = unsafe { libc::setuid(0) };
    let e = errno();
    // SAFETY: getuid/geteuid have no preconditions.
    let now = unsafe { (libc::getuid(), libc::geteuid()) };
    r.check("setuid_root", rc == 0 && now == (uid, uid), || format!("rc {rc} ({}), uid/euid now {now:?}", errno_text(e)));
    // SAFETY: node is a valid C string.
    let rc = unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    let e = errno();
    let made = std::fs::symlink_metadata(dir.join("node")).is_ok();
    r.check("mknod_chr_1_3", rc == 0 && !made, || format!("rc {rc} ({}), node created: {made}", errno_text(e)));
    // Not faked: the kernel still answers.
    // SAFETY: getuid has no preconditions.
    let now = unsafe { libc::getuid() };
    r.check("getuid_unchanged", now == uid, || format!("getuid {now}, was {uid}"));
    // SAFETY: node is a valid C string.
    let rc = unsafe { libc::mknod(node.as_ptr(), libc::S_IFIFO | 0o600, 0) };
    let e = errno();
    let fifo = std::fs::symlink_metadata(dir.join("node")).is_ok_and(|m| m.file_type().is_fifo());
    r.check("mknod_fifo_real", rc == 0 && fifo, || format!("rc {rc} ({}), fifo created: {fifo}", errno_text(e)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled_tables() -> Tables {
        let (files, _) = crate::inputs::bundled_files(crate::inputs::BUNDLED_POLICY);
        Tables::parse(files.iter().map(|(p, t)| (p.as_path(), *t))).unwrap()
    }

    fn abi_of(tables: &Tables, machine: u16, is_64: bool, big: bool, flags: u32) -> Result<String, String> {
        ElfFacts { machine, is_64, big, flags }.abi(tables).map(|a| a.name.clone())
    }

    #[test]
    fn elf_headers_pick_the_abi() {
        let t = bundled_tables();
        let cases = [
            (62, true, false, 0, "x86_64"),
            (62, false, false, 0, "x32"),
            (3, false, false, 0, "i386"),
            (183, true, false, 0, "aarch64"),
            (40, false, false, 0x0500_0400, "arm"),
            (21, true, false, 2, "ppc64le"),
            (21, true, true, 1, "ppc64"),
            (22, true, true, 0, "s390x"),
            (22, false, true, 0, "s390"),
            (8, false, true, 0x7000_1007, "mips"),
            (8, false, false, 0x7000_1007, "mipsel"),
            (8, true, false, 0x8000_0007, "mips64el"),
            (8, false, false, 0x8000_0027, "mips64n32el"),
            (8, false, true, 0x8000_0027, "mips64n32"),
        ];
        for (machine, is_64, big, flags, want) in cases {
            assert_eq!(abi_of(&t, machine, is_64, big, flags).as_deref(), Ok(want), "e_machine {machine} 64={is_64} big={big}");
        }
        assert!(abi_of(&t, 0x1234, true, false, 0).unwrap_err().contains("no table matches"));
    }

    /// Every bundled table is the one answer for the ELF header its binaries have.
    #[test]
    fn every_table_is_reachable_from_its_elf_header() {
        let t = bundled_tables();
        for a in &t.abis {
            let got = abi_of(&t, a.elf_machine as u16, a.elf_class == 64, a.endian == Endian::Big, a.convention.elf_flag());
            assert_eq!(got.as_deref(), Ok(a.name.as_str()));
        }
    }

    /// The Rust side (`rust_native`, read by the macro) and the ELF side (`abi_of_elf`)
    /// name the same table for every target a table runs as, and for this binary.
    #[test]
    fn running_abi_and_elf_header_agree() {
        let t = bundled_tables();
        for a in t.abis.iter().filter(|a| !a.rust_native.is_empty()) {
            for arch in &a.rust_native {
                assert_eq!(t.native_abi(arch, a.endian, a.elf_class).map(|n| n.name.as_str()), Some(a.name.as_str()), "{arch}");
            }
            let elf = abi_of(&t, a.elf_machine as u16, a.elf_class == 64, a.endian == Endian::Big, a.convention.elf_flag());
            assert_eq!(elf.as_deref(), Ok(a.name.as_str()));
        }
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let elf = goblin::elf::Elf::parse(&exe).unwrap();
        let facts = ElfFacts { machine: elf.header.e_machine, is_64: elf.is_64, big: !elf.little_endian, flags: elf.header.e_flags };
        assert_eq!(rootemu::install::running_abi(), facts.abi(&t).unwrap().name);
        // The targets the hand-written list got wrong, now table data.
        for (arch, endian, width, want) in [
            ("mips64", Endian::Little, 32, "mips64n32el"),
            ("mips64", Endian::Big, 32, "mips64n32"),
            ("mips", Endian::Little, 32, "mipsel"),
            ("mips64", Endian::Little, 64, "mips64el"),
            ("csky", Endian::Little, 32, "csky"),
            ("hexagon", Endian::Little, 32, "hexagon"),
            ("xtensa", Endian::Little, 32, "xtensa"),
            ("sparc", Endian::Big, 32, "sparc"),
            ("x86_64", Endian::Little, 32, "x32"),
        ] {
            assert_eq!(t.native_abi(arch, endian, width).map(|a| a.name.as_str()), Some(want), "{arch} {width}");
        }
    }
}
