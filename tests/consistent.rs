//! `rootemu run --consistent` end to end, as an unprivileged user: what root did is
//! recorded and shown back. Each check also runs without `--consistent` (plain root
//! emulation), where it must fail: the records are what makes it pass.

use rootemu_tests::{UserEnv, need, output_text};
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

fn env() -> Option<&'static UserEnv> {
    static ENV: OnceLock<Option<UserEnv>> = OnceLock::new();
    ENV.get_or_init(|| UserEnv::new("consistent-tests")).as_ref()
}

/// `sh -c SCRIPT` under `--consistent`, and under plain root emulation.
fn both(env: &UserEnv, cwd: &Path, script: &str) -> (Output, Output) {
    let on = env.run(cwd, &["--consistent", "--", "sh", "-c", script]);
    let w = cwd.with_extension("plain");
    let _ = std::fs::remove_dir_all(&w);
    std::fs::create_dir_all(&w).unwrap();
    std::os::unix::fs::chown(&w, Some(env.uid), Some(env.gid)).unwrap();
    let off = env.run(&w, &["--", "sh", "-c", script]);
    (on, off)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `script` both ways; under `--consistent` it must succeed and print `want`, and
/// without it print something else.
fn check(name: &str, script: &str, want: &str) {
    let Some(env) = env() else { return };
    let w = env.workdir(name);
    let (on, off) = both(env, &w, script);
    assert!(on.status.success(), "{name}: --consistent failed:\n{}", output_text(&on));
    assert_eq!(stdout(&on), want, "{name}: --consistent:\n{}", output_text(&on));
    assert_ne!(stdout(&off), want, "{name}: the same without --consistent (it must differ there):\n{}", output_text(&off));
}

#[test]
fn chown_is_seen_by_stat_ls_find_and_python() {
    if env().is_some() && !need("python3", "reads os.stat") {
        return;
    }
    check(
        "chown",
        "touch f && chown 0:50 f && stat -c '%u:%g' f && ls -ln f | cut -d' ' -f3,4 && find f -printf '%U:%G\\n' \
         && python3 -c 'import os; s = os.stat(\"f\"); print(s.st_uid, s.st_gid)'",
        "0:50\n0 50\n0:50\n0 50\n",
    );
}

#[test]
fn chown_back_to_root_removes_the_record() {
    check(
        "chown-back",
        "touch f && chown 7:8 f && stat -c '%u:%g' f && chown 0:0 f && stat -c '%u:%g' f && chown 9 f && chown :0 f && stat -c '%u:%g' f",
        "7:8\n0:0\n9:0\n",
    );
}

#[test]
fn a_device_node_exists_with_its_type_numbers_and_mode() {
    check(
        "mknod",
        "mknod -m 600 n c 1 3 && stat -c '%F %t:%T %a %u:%g' n && mknod b b 8 1 && stat -c '%F %t:%T' b && ls -l n | cut -c1-10",
        "character special file 1:3 600 0:0\nblock special file 8:1\ncrw-------\n",
    );
}

#[test]
fn mknod_reports_the_kernels_errors() {
    check(
        "mknod-errors",
        "mknod n c 1 3; mknod n c 1 3 2>/dev/null || echo exists; mknod nodir/n c 1 3 2>/dev/null || echo missing; mkfifo p; stat -c %F p",
        "exists\nmissing\nfifo\n",
    );
}

#[test]
fn lchown_of_a_symlink_is_recorded_in_its_directory() {
    check(
        "lchown",
        "touch f && ln -s f l && chown -h 7:8 l && stat -c '%u:%g %F' l && stat -L -c '%u:%g' l && mv l l2 && stat -c '%u:%g' l2",
        "7:8 symbolic link\n0:0\n7:8\n",
    );
}

#[test]
fn chmod_of_a_recorded_file_keeps_the_record_and_chown_drops_setuid() {
    check(
        "chmod",
        "touch f && chown 7:8 f && chmod 4755 f && stat -c '%a %u:%g' f && chown 9:9 f && stat -c '%a %u:%g' f",
        "4755 7:8\n755 9:9\n",
    );
}

#[test]
fn an_acl_naming_an_unmapped_group_is_kept() {
    if env().is_some() && !need("setfacl", "sets ACLs (package acl)") {
        return;
    }
    check(
        "acl",
        "touch f && setfacl -m g:adm:r f && getfacl -cn f | grep -x 'group:4:r--' && getfattr -m - f 2>/dev/null | grep -c rootemu || true",
        "group:4:r--\n0\n",
    );
}

#[test]
fn a_file_capability_with_an_unmapped_root_id_is_kept() {
    if env().is_some() && !need("setcap", "sets file capabilities (package libcap2-bin)") {
        return;
    }
    check(
        "setcap",
        "touch f g && setcap cap_net_raw+ep g && getcap g && setcap -n 1000 cap_net_raw+ep f && getcap -n f",
        "g cap_net_raw=ep\nf cap_net_raw=ep [rootid=1000]\n",
    );
}

/// A file system of its own (a loop-mounted ext4 image) that the test user owns, so
/// that nothing else allocates its inodes; unmounted when dropped.
struct OwnFs(std::path::PathBuf);

impl OwnFs {
    fn new(env: &UserEnv, name: &str) -> Option<OwnFs> {
        if !need("mkfs.ext4", "makes a private file system (package e2fsprogs)") {
            return None;
        }
        let img = env.dir.join(format!("{name}.img"));
        let dir = env.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let run = |c: &mut std::process::Command| assert!(c.status().unwrap().success(), "{c:?}");
        run(std::process::Command::new("truncate").arg("-s").arg("32M").arg(&img));
        run(std::process::Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img));
        run(std::process::Command::new("mount").args(["-o", "loop"]).arg(&img).arg(&dir));
        std::os::unix::fs::chown(&dir, Some(env.uid), Some(env.gid)).unwrap();
        Some(OwnFs(dir))
    }
}

impl Drop for OwnFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A record of a symlink or FIFO lives in its directory, keyed by inode and birth time:
/// a new file that reuses the inode after the first is deleted must not inherit it (on a
/// file system of its own, where ext4 hands the freed inode to the next file).
#[test]
fn a_record_never_follows_a_deleted_file_to_a_new_one_with_its_inode() {
    let Some(env) = env() else { return };
    let Some(fs) = OwnFs::new(env, "inode-reuse") else { return };
    let script = "ln -s x l && chown -h 7:8 l && mkfifo p && chown 5:6 p && stat -c '%u:%g' l p && ino=$(stat -c %i l) && rm l && \
                  ln -s y l2 && [ \"$(stat -c %i l2)\" = \"$ino\" ] && echo reused && stat -c '%u:%g' l2 && \
                  ino=$(stat -c %i p) && rm p && mkfifo p2 && [ \"$(stat -c %i p2)\" = \"$ino\" ] && echo reused && stat -c '%u:%g' p2";
    let on = env.run(&fs.0, &["--consistent", "--", "sh", "-c", script]);
    assert!(on.status.success(), "{}", output_text(&on));
    assert_eq!(stdout(&on), "7:8\n5:6\nreused\n0:0\nreused\n0:0\n", "{}", output_text(&on));
}

/// Builds tests/programs/consistent_stat.c with `compiler` into the test directory.
fn stat_program(env: &UserEnv, compiler: &str, extra: &[&str], name: &str) -> Option<std::path::PathBuf> {
    if !need(compiler, "builds tests/programs/consistent_stat.c") {
        return None;
    }
    let src = rootemu_tests::workspace().join("tests/programs/consistent_stat.c");
    let out = env.dir.join(name);
    let st = std::process::Command::new(compiler).args(extra).args(["-O2", "-Wall", "-o"]).arg(&out).arg(&src).status().unwrap();
    assert!(st.success(), "{compiler} failed on {}", src.display());
    Some(out)
}

/// The `dump` lines of one file: `call uid gid mode major minor size hex`.
fn dump(env: &UserEnv, w: &Path, prog: &str, file: &str, consistent: bool) -> Vec<String> {
    let mut args = vec!["--consistent", "--", prog, "dump", file];
    if !consistent {
        args.remove(0);
    }
    let o = env.run(w, &args);
    assert!(o.status.success(), "{}", output_text(&o));
    stdout(&o).lines().map(str::to_string).collect()
}

/// This ABI's own chown/lchown (16-bit ids on i386)/mknodat calls, then every stat-family
/// struct of the ABI (raw syscalls, the kernel's uapi structs): the records show in every
/// one; and for a file whose record equals the file, the supervisor's struct is byte for
/// byte the kernel's (padding, timestamps, inode, device included).
fn stat_structs(compiler: &str, extra: &[&str], abi: &str) {
    let Some(env) = env() else { return };
    let Some(prog) = stat_program(env, compiler, extra, &format!("consistent_stat_{abi}")) else { return };
    let prog = prog.to_str().unwrap();
    let w = env.workdir(&format!("structs-{abi}"));
    let o = env.run(&w, &["--consistent", "--", prog, "setup"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let fields = |line: &str| line.split(' ').skip(1).take(6).collect::<Vec<_>>().join(" ");
    for (file, want) in [("f", "0 51 100644 0 0 0"), ("l", "7 8 120777 0 0 1"), ("n", "0 0 20600 1 3 0")] {
        let lines = dump(env, &w, prog, file, true);
        assert!(lines.len() >= 4, "{lines:?}");
        for l in &lines {
            if l.starts_with("oldlstat error 75") {
                continue; // EOVERFLOW: the inode number does not fit 16 bits, as without rootemu
            }
            assert_eq!(fields(l), want, "{abi} {file}: {l}");
        }
    }
    // A record that says what the file says: emulated, and identical to the kernel's.
    let same = w.join("same");
    std::fs::write(&same, "data").unwrap();
    std::os::unix::fs::chown(&same, Some(env.uid), Some(env.gid)).unwrap();
    std::fs::set_permissions(&same, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let c = std::ffi::CString::new(same.to_str().unwrap()).unwrap();
    let v = "0:0:0644:file";
    // SAFETY: valid C strings.
    let rc = unsafe { libc::setxattr(c.as_ptr(), c"user.containers.override_stat".as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
    let emulated = dump(env, &w, prog, "same", true);
    let kernel = dump(env, &w, prog, "same", false);
    assert_eq!(emulated, kernel, "{abi}: the supervisor's structs differ from the kernel's");
    // The same record with other ids is shown: the comparison above went through it.
    let v = "5:6:0644:file";
    // SAFETY: valid C strings.
    let rc = unsafe { libc::setxattr(c.as_ptr(), c"user.containers.override_stat".as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    assert_eq!(rc, 0);
    for l in dump(env, &w, prog, "same", true).iter().filter(|l| !l.contains(" error ")) {
        assert_eq!(fields(l), "5 6 100644 0 0 4", "{abi}: {l}");
    }
}

#[test]
fn x86_64_stat_structs_show_records_and_equal_the_kernels() {
    stat_structs("gcc", &[], "x86_64");
}

#[test]
fn i386_stat_structs_show_records_and_equal_the_kernels() {
    stat_structs("i686-linux-gnu-gcc", &["-static"], "i386");
}

/// glibc reaches a file through `/proc/self/fd/N` (lchmod, fchmodat with
/// AT_SYMLINK_NOFOLLOW): the supervisor must find the caller's fd there, not its own.
#[test]
fn paths_through_proc_self_name_the_callers_files() {
    check(
        "proc-self",
        "mknod -m 666 n c 1 3 && stat -c %a n && touch f && chown 7 f && exec 3<f && chown 8 /proc/self/fd/3 && stat -c %u f",
        "666\n8\n",
    );
}

/// Linux 6.13's `setxattrat`/`getxattrat`/`listxattrat`/`removexattrat` (x86_64 numbers
/// 463-466; the value travels in a `struct xattr_args`), called through Python's ctypes:
/// an ACL naming group 4 is kept, read back byte for byte, listed without rootemu's own
/// names, and removed.
const XATTRAT: &str = r#"import ctypes, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
class Args(ctypes.Structure):
    _fields_ = [("value", ctypes.c_uint64), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32)]
def call(nr, *a):
    r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(-100), b"f", 0, *a)
    return r if r >= 0 else -ctypes.get_errno()
name = b"system.posix_acl_access"
acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in
      [(1, 6, 0xffffffff), (4, 4, 0xffffffff), (8, 4, 4), (0x10, 4, 0xffffffff), (0x20, 4, 0xffffffff)])
if sys.argv[1] == "set":
    buf = ctypes.create_string_buffer(acl, len(acl))
    print("set", call(463, name, ctypes.byref(Args(ctypes.addressof(buf), len(acl), 0)), ctypes.c_long(16)))
    out = ctypes.create_string_buffer(256)
    r = call(464, name, ctypes.byref(Args(ctypes.addressof(out), 256, 0)), ctypes.c_long(16))
    print("get", r, out.raw[:r] == acl if r > 0 else None)
    lst = ctypes.create_string_buffer(512)
    r = call(465, lst, ctypes.c_long(512))
    names = lst.raw[:max(r, 0)].split(b"\0")
    print("list", name in names, any(n.startswith(b"user.rootemu") for n in names))
else:
    print("remove", call(466, name))
"#;

#[test]
fn the_xattrat_calls_keep_an_acl_naming_an_unmapped_group() {
    if env().is_some() && !(need("python3", "calls the *xattrat syscalls") && need("getfacl", "reads ACLs (package acl)")) {
        return;
    }
    check(
        "xattrat",
        &format!(
            "cat > x.py <<'EOF'\n{XATTRAT}EOF\ntouch f && python3 x.py set && getfacl -cn f | grep -x 'group:4:r--' && python3 x.py remove \
             && getfacl -cn f | grep -c 'group:4' || true"
        ),
        "set 0\nget 44 True\nlist True False\ngroup:4:r--\nremove 0\n0\n",
    );
}
