//! The simulator against the kernel itself: the real root-emulation program is installed
//! in a child process on this machine (x86_64, whose filter also sees the x32 numbers) and
//! harmless calls are issued; each call's fate in the kernel (faked: returned 0 without
//! running; or ran and failed as it must) must be what `sim::run` says.

use rootemu_codegen::bpf::Action;
use rootemu_codegen::sim::{self, SeccompData};
use rootemu_codegen::{Filter, Inputs};
use rootemu_tests::tables_dir;
use std::ffi::CString;
use std::process::Command;

const CHILD: &str = "ROOTEMU_KVS_CHILD";
/// A path whose directory does not exist: every real call on it fails (ENOENT).
const MISSING: &str = "/nonexistent-rootemu-kvs/node";

fn filter() -> Filter {
    let tables = tables_dir();
    let policy = tables.join("policy/root-emulation.yaml");
    Filter::build(&Inputs { tables: &tables, policy: &policy, abis: &[] }).unwrap_or_else(|e| panic!("{e}"))
}

/// Arguments that make the real call fail (so a 0 can only mean "faked"). `u64::MAX - 7`
/// stands for the pointer to MISSING.
fn cases(abi: &rootemu_codegen::Abi) -> Vec<(u32, [u64; 6])> {
    const PATH: u64 = u64::MAX - 7;
    let bad_id = u64::from(u32::MAX); // (uid_t)-1: EINVAL for setuid, "no change" elsewhere
    let mut out = Vec::new();
    let mut add = |name: &str, args: [u64; 6]| {
        if let Some(nr) = abi.nr(name) {
            out.push((nr, args));
        }
    };
    for name in ["chown", "lchown", "chown32", "lchown32"] {
        add(name, [PATH, 0, 50, 0, 0, 0]);
    }
    for name in ["fchown", "fchown32"] {
        add(name, [u64::MAX, 0, 50, 0, 0, 0]); // fd -1: EBADF
    }
    add("fchownat", [u64::from(u32::MAX), PATH, 0, 0, 0, 0]);
    for name in ["setuid", "setgid", "setuid32", "setgid32"] {
        add(name, [bad_id, 0, 0, 0, 0, 0]);
    }
    for name in ["setgroups", "setgroups32"] {
        add(name, [u64::from(u32::MAX), 0, 0, 0, 0, 0]); // size -1: EINVAL
    }
    add("capset", [0, 0, 0, 0, 0, 0]); // NULL header: EFAULT
    // mknod/mknodat: every file type x dev zero/non-zero x garbage in the high half.
    for ty in [0o010000u64, 0o020000, 0o040000, 0o060000, 0o100000, 0o120000, 0o140000, 0] {
        for dev in [0u64, 0x0103] {
            for hi in [0u64, 0xdead_beef << 32] {
                add("mknod", [PATH, hi | ty | 0o644, hi | dev, 0, 0, 0]);
                add("mknodat", [u64::from(u32::MAX), PATH, hi | ty | 0o644, hi | dev, 0, 0]);
            }
        }
    }
    // Calls the policy leaves alone, failing on a bad fd, and numbers no table has.
    for name in ["close", "fchmod", "fchdir", "dup", "fsync", "getppid"] {
        add(name, [u64::MAX, 0, 0, 0, 0, 0]);
    }
    for nr in [abi.nr_base + 1000, abi.nr_base + 1023, u32::MAX] {
        out.push((nr, [0; 6]));
    }
    out
}

/// In the child: drop root, install the real program, issue every case, print the results.
#[test]
fn kvs_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let f = filter();
    let program = rootemu::SockFilter::program(&f.program);
    let path = CString::new(MISSING).unwrap();
    let all: Vec<(u32, [u64; 6])> = ["x86_64", "x32"].iter().flat_map(|a| cases(f.tables.get(a).unwrap())).collect();
    // SAFETY: plain id syscalls; dropping root makes setfs*/set*id results unambiguous.
    unsafe {
        if libc::geteuid() == 0 {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
            assert_eq!(libc::setresgid(65534, 65534, 65534), 0);
            assert_eq!(libc::setresuid(65534, 65534, 65534), 0);
        }
    }
    rootemu::install::install(&program, Default::default()).expect("install the real program");
    let mut lines = String::new();
    for (nr, args) in all {
        let a = args.map(|v| if v == u64::MAX - 7 { path.as_ptr() as u64 } else { v });
        // SAFETY: every case fails harmlessly in the kernel or is faked by the filter.
        let ret = unsafe { libc::syscall(nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
        let errno = if ret < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(0) } else { 0 };
        lines.push_str(&format!("KVS {nr} {} {ret} {errno}\n", args.map(|v| v.to_string()).join(" ")));
    }
    print!("{lines}");
}

#[test]
fn kernel_agrees_with_the_simulator_on_x86_64_and_x32() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kvs_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let f = filter();
    let arch = f.tables.get("x86_64").unwrap().audit_arch;
    let (mut compared, mut faked, mut disagreements) = (0, 0, Vec::new());
    for line in stdout.lines().filter_map(|l| l.strip_prefix("KVS ")) {
        let v: Vec<i64> = line.split(' ').map(|x| x.parse::<i128>().unwrap() as i64).collect();
        let (nr, args, ret, errno) = (v[0] as u32, std::array::from_fn(|i| v[1 + i] as u64), v[7], v[8]);
        let d = SeccompData { nr, arch, ip: 0, args, big_endian: false };
        let sim_faked = sim::run(&f.program, &d).unwrap().ret == Action::Errno(0).to_ret();
        let kernel_faked = ret == 0;
        compared += 1;
        faked += usize::from(kernel_faked);
        if sim_faked != kernel_faked {
            let name = f.tables.lookup(arch, nr).map_or("?", |(_, n)| n);
            disagreements.push(format!("{name} (nr {nr:#x}) args {args:x?}: kernel ret {ret} errno {errno}, simulator faked={sim_faked}"));
        }
    }
    eprintln!("kernel vs simulator: {compared} cases compared, {faked} faked by the kernel, {} disagreements", disagreements.len());
    assert!(compared > 100 && faked > 20, "too few cases: {stdout}");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
