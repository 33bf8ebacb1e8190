//! Whole-import tests on small synthetic kernel trees.

use super::*;

struct Dir(PathBuf);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!("rootemu-import-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&d);
        for (p, t) in files {
            let f = d.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        }
        Dir(d)
    }
    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.0.join(p)).unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MAKEFILE: &str = "# SPDX\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\nNAME = Baby Opossum Posse\n";

const X86_TBL: &str = "#\n# 64-bit system call numbers and entry vectors\n#\n0\tcommon\tread\t\t\tsys_read\n1\tcommon\twrite\t\t\tsys_write\n13\t64\trt_sigaction\t\tsys_rt_sigaction\n92\tcommon\tchown\t\t\tsys_chown\n184\tcommon\ttuxcall\n# 185 hole\n512\tx32\trt_sigaction\t\tcompat_sys_rt_sigaction\n";

const X86_64_HEADER: &str = "# Syscall table of the x86_64 ABI.\nabi: x86_64\naudit_arch: 0xc000003e   # AUDIT_ARCH_X86_64\nelf_machine: 62          # EM_X86_64\nbits: 64\nendian: little\nnr_base: 0\nnr_limit: 1024\nimport:\n  table: arch/x86/entry/syscalls/syscall_64.tbl\n  tags: [common, 64]\n";

const X32_HEADER: &str = "abi: x32\naudit_arch: 0xc000003e\nelf_machine: 62\nbits: 64\nendian: little\n# seccomp sees __X32_SYSCALL_BIT | n\nnr_base: 0x40000000\nnr_limit: 1024\nimport:\n  table: arch/x86/entry/syscalls/syscall_64.tbl\n  tags: [common, x32]\n";

const GENERIC_TBL: &str = "0\tcommon\tio_setup\t\t\tsys_io_setup\t\t\tcompat_sys_io_setup\n18\tcommon\tlookup_dcookie\t\t\tsys_ni_syscall\n25\t32\tfcntl64\t\t\t\tsys_fcntl64\n25\t64\tfcntl\t\t\t\tsys_fcntl\n38\trenameat renameat\t\t\tsys_renameat\n84\tcommon\tsync_file_range\t\t\tsys_sync_file_range\n98\ttime32\tfutex\t\t\t\tsys_futex_time32\n98\t64\tfutex\t\t\t\tsys_futex\n163\trlimit\tgetrlimit\t\t\tsys_getrlimit\n244\tcsky\tset_thread_area\t\t\tsys_set_thread_area\n258\triscv\triscv_hwprobe\t\t\tsys_riscv_hwprobe\n422\t32\tfutex_time64\t\t\tsys_futex\n447\tmemfd_secret\tmemfd_secret\t\tsys_memfd_secret\n";

const ASM_HEADERS: &str = "syscall_abis_32  += common,32\nsyscall_abis_64  += common,64\nsyscalltbl := $(srctree)/scripts/syscall.tbl\n-include $(srctree)/arch/$(SRCARCH)/kernel/Makefile.syscalls\n";

fn generic_header(abi: &str, arch: &str, bits: u32, em: u32) -> String {
    let aa = crate::table::derive_audit_arch(em, bits, crate::table::Endian::Little, crate::table::Convention::None, true);
    format!(
        "abi: {abi}\naudit_arch: {aa:#x}\nelf_machine: {em}\nbits: {bits}\nendian: little\nnr_base: 0\nnr_limit: 1024\nimport:\n  generic: {{bits: {bits}, makefile: arch/{arch}/kernel/Makefile.syscalls, uapi: arch/{arch}/include/uapi/asm/unistd.h}}\n"
    )
}

fn new_tree() -> Dir {
    Dir::new(&[
        ("Makefile", MAKEFILE),
        ("arch/x86/entry/syscalls/syscall_64.tbl", X86_TBL),
        ("scripts/syscall.tbl", GENERIC_TBL),
        ("scripts/Makefile.asm-headers", ASM_HEADERS),
        ("arch/riscv/kernel/Makefile.syscalls", "syscall_abis_32 += riscv memfd_secret\nsyscall_abis_64 += riscv rlimit memfd_secret\n"),
        (
            "arch/riscv/include/uapi/asm/unistd.h",
            "#include <asm/bitsperlong.h>\n#if __BITS_PER_LONG == 64\n#include <asm/unistd_64.h>\n#else\n#include <asm/unistd_32.h>\n#endif\n",
        ),
        ("arch/csky/kernel/Makefile.syscalls", "syscall_abis_32 += csky time32 stat64 rlimit\n"),
        (
            "arch/csky/include/uapi/asm/unistd.h",
            "#include <asm/unistd_32.h>\n#define __NR_sync_file_range2 84\n#undef __NR_sync_file_range\n",
        ),
    ])
}

fn import(tree: &Dir, headers: &[(&str, &str)]) -> Result<(ImportReport, Dir), Errors> {
    let tables = Dir::new(headers);
    let r = import_tree(&tree.0, &tables.0, &tables.0, &ImportOptions::default())?;
    Ok((r, tables))
}

#[test]
fn x86_64_and_x32_from_one_file_with_header_kept() {
    let tree = new_tree();
    let old = format!("{X86_64_HEADER}source:\n  kernel: 1.0\n  file: x\n  tags: []\nsyscalls:\n  read: 0\n  bogus: 0\n");
    let (r, t) = import(&tree, &[("x86_64.yaml", &old), ("x32.yaml", X32_HEADER)]).unwrap();
    assert_eq!(r.kernel, "6.12.117");
    assert_eq!(r.abis.iter().map(|a| (a.abi.as_str(), a.syscalls, a.unimplemented)).collect::<Vec<_>>(), [("x32", 5, 1), ("x86_64", 5, 1)]);
    let x = t.read("x86_64.yaml");
    assert!(x.starts_with(X86_64_HEADER), "{x}");
    assert!(x.contains("  chown: 92\n  tuxcall: 184\nunimplemented:"), "{x}");
    assert!(!x.contains("bogus"));
    let tables = Tables::load_dir(&t.0).unwrap();
    assert_eq!(tables.get("x32").unwrap().nr("rt_sigaction"), Some(0x4000_0000 + 512));
    assert_eq!(tables.get("x86_64").unwrap().nr("rt_sigaction"), Some(13));
    assert_eq!(tables.get("x32").unwrap().source.as_ref().unwrap().tags, ["common", "x32"]);
    // Re-running on its own output changes nothing.
    let before = (t.read("x86_64.yaml"), t.read("x32.yaml"));
    import_tree(&tree.0, &t.0, &t.0, &ImportOptions::default()).unwrap();
    assert_eq!(before, (t.read("x86_64.yaml"), t.read("x32.yaml")));
}

#[test]
fn generic_tags_come_from_the_tree_makefiles() {
    let tree = new_tree();
    let rv64 = generic_header("riscv64", "riscv", 64, 243);
    let rv32 = generic_header("riscv32", "riscv", 32, 243);
    let (r, t) = import(&tree, &[("riscv64.yaml", &rv64), ("riscv32.yaml", &rv32)]).unwrap();
    let tables = Tables::load_dir(&t.0).unwrap();
    let (a, b) = (tables.get("riscv64").unwrap(), tables.get("riscv32").unwrap());
    assert_eq!(a.source.as_ref().unwrap().tags, ["common", "64", "riscv", "rlimit", "memfd_secret"]);
    assert_eq!(
        a.syscalls.keys().collect::<Vec<_>>(),
        ["fcntl", "futex", "getrlimit", "io_setup", "lookup_dcookie", "memfd_secret", "riscv_hwprobe", "sync_file_range"]
    );
    // riscv32 has no time32 tag: no 32-bit-time futex, but futex_time64.
    assert_eq!(
        b.syscalls.keys().collect::<Vec<_>>(),
        ["fcntl64", "futex_time64", "io_setup", "lookup_dcookie", "memfd_secret", "riscv_hwprobe", "sync_file_range"]
    );
    assert_eq!(a.unimplemented, ["lookup_dcookie"]);
    assert_eq!(r.abis[1].file, "scripts/syscall.tbl");
}

#[test]
fn generic_uapi_header_renames_are_applied() {
    let tree = new_tree();
    let csky = generic_header("csky", "csky", 32, 252);
    let (_, t) = import(&tree, &[("csky.yaml", &csky)]).unwrap();
    let a = Tables::load_dir(&t.0).unwrap().abis.remove(0);
    assert_eq!(a.syscalls.get("sync_file_range2"), Some(&84));
    assert!(!a.syscalls.contains_key("sync_file_range"));
    assert_eq!(a.syscalls.get("set_thread_area"), Some(&244));
    assert_eq!(a.syscalls.get("futex"), Some(&98));
}

const OLD_GENERIC: &str = "#include <asm/bitsperlong.h>\n#ifndef __SYSCALL\n#define __SYSCALL(x, y)\n#endif\n#if __BITS_PER_LONG == 32 || defined(__SYSCALL_COMPAT)\n#define __SC_3264(_nr, _32, _64) __SYSCALL(_nr, _32)\n#else\n#define __SC_3264(_nr, _32, _64) __SYSCALL(_nr, _64)\n#endif\n#define __NR_io_setup 0\n__SC_COMP(__NR_io_setup, sys_io_setup, compat_sys_io_setup)\n#define __NR3264_fcntl 25\n__SC_3264(__NR3264_fcntl, sys_fcntl64, sys_fcntl)\n#ifdef __ARCH_WANT_RENAMEAT\n#define __NR_renameat 38\n__SYSCALL(__NR_renameat, sys_renameat)\n#endif\n#define __NR_nfsservctl 42\n__SYSCALL(__NR_nfsservctl, sys_ni_syscall)\n#if defined(__ARCH_WANT_TIME32_SYSCALLS) || __BITS_PER_LONG != 32\n#define __NR_futex 98\n__SC_3264(__NR_futex, sys_futex_time32, sys_futex)\n#endif\n#define __NR_arch_specific_syscall 244\n#if defined(__SYSCALL_COMPAT) || __BITS_PER_LONG == 32\n#define __NR_futex_time64 422\n__SYSCALL(__NR_futex_time64, sys_futex)\n#endif\n#undef __NR_syscalls\n#define __NR_syscalls 451\n#if __BITS_PER_LONG == 64 && !defined(__SYSCALL_COMPAT)\n#define __NR_fcntl __NR3264_fcntl\n#else\n#define __NR_fcntl64 __NR3264_fcntl\n#endif\n";

#[test]
fn old_trees_use_asm_generic_unistd_h() {
    let tree = Dir::new(&[
        ("Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION = -rc1\n"),
        ("include/uapi/asm-generic/unistd.h", OLD_GENERIC),
        (
            "arch/riscv/include/uapi/asm/unistd.h",
            "#if defined(__LP64__) && !defined(__SYSCALL_COMPAT)\n#define __ARCH_WANT_NEW_STAT\n#endif\n#include <asm-generic/unistd.h>\n#ifndef __NR_riscv_flush_icache\n#define __NR_riscv_flush_icache (__NR_arch_specific_syscall + 15)\n#endif\n__SYSCALL(__NR_riscv_flush_icache, sys_riscv_flush_icache)\n",
        ),
        (
            "arch/nios2/include/uapi/asm/unistd.h",
            "#define __ARCH_WANT_RENAMEAT\n#define __ARCH_WANT_TIME32_SYSCALLS\n#include <asm-generic/unistd.h>\n#define __NR_cacheflush (__NR_arch_specific_syscall)\n__SYSCALL(__NR_cacheflush, sys_cacheflush)\n",
        ),
    ]);
    let rv64 = generic_header("riscv64", "riscv", 64, 243);
    let nios2 = generic_header("nios2", "nios2", 32, 113);
    let (r, t) = import(&tree, &[("riscv64.yaml", &rv64), ("nios2.yaml", &nios2)]).unwrap();
    assert_eq!(r.kernel, "6.1.192-rc1");
    let tables = Tables::load_dir(&t.0).unwrap();
    let rv = tables.get("riscv64").unwrap();
    assert_eq!(rv.syscalls.keys().collect::<Vec<_>>(), ["fcntl", "futex", "io_setup", "nfsservctl", "riscv_flush_icache"]);
    assert_eq!(rv.syscalls["riscv_flush_icache"], 259);
    assert_eq!(rv.unimplemented, ["nfsservctl"]);
    assert_eq!(rv.source.as_ref().unwrap().file, "include/uapi/asm-generic/unistd.h");
    assert_eq!(rv.source.as_ref().unwrap().tags, ["__BITS_PER_LONG=64", "__ARCH_WANT_NEW_STAT"]);
    let n = tables.get("nios2").unwrap();
    assert_eq!(
        n.syscalls.keys().collect::<Vec<_>>(),
        ["cacheflush", "fcntl64", "futex", "futex_time64", "io_setup", "nfsservctl", "renameat"]
    );
    assert_eq!(n.syscalls["cacheflush"], 244);
}

#[test]
fn arm_private_calls_are_added() {
    let tree = Dir::new(&[
        ("Makefile", MAKEFILE),
        (
            "arch/arm/tools/syscall.tbl",
            "0\tcommon\trestart_syscall\tsys_restart_syscall\n1\tcommon\texit\t\t\tsys_exit\n16\tcommon\tlchown\t\t\tsys_lchown16\n17\toabi\tbreak\n# 18 was sys_stat\n",
        ),
        (
            "arch/arm/include/uapi/asm/unistd.h",
            "#define __NR_OABI_SYSCALL_BASE\t0x900000\n#if defined(__thumb__) || defined(__ARM_EABI__)\n#define __NR_SYSCALL_BASE\t0\n#else\n#define __NR_SYSCALL_BASE\t__NR_OABI_SYSCALL_BASE\n#endif\n#define __NR_sync_file_range2\t\t__NR_arm_sync_file_range\n#define __ARM_NR_BASE\t\t\t(__NR_SYSCALL_BASE+0x0f0000)\n#define __ARM_NR_breakpoint\t\t(__ARM_NR_BASE+1)\n#define __ARM_NR_set_tls\t\t(__ARM_NR_BASE+5)\n#define __ARM_NR_get_tls\t\t(__ARM_NR_BASE+6)\n",
        ),
    ]);
    let arm = "abi: arm\naudit_arch: 0x40000028\nelf_machine: 40\nbits: 32\nendian: little\nnr_base: 0\nnr_limit: 0x100000\nimport:\n  table: arch/arm/tools/syscall.tbl\n  tags: [common, eabi]\n  private_header: arch/arm/include/uapi/asm/unistd.h\n";
    let (r, t) = import(&tree, &[("arm.yaml", arm)]).unwrap();
    assert_eq!(r.abis[0].syscalls, 6);
    let a = Tables::load_dir(&t.0).unwrap().abis.remove(0);
    assert_eq!(a.nr("set_tls"), Some(0x0f0005));
    assert_eq!(a.nr("get_tls"), Some(983046));
    assert_eq!(a.nr("breakpoint"), Some(0x0f0001));
    assert_eq!(a.nr("break"), None);
}

#[test]
fn missing_files_and_bad_rows_are_all_reported_and_nothing_is_written() {
    let tree =
        Dir::new(&[("Makefile", MAKEFILE), ("arch/x86/entry/syscalls/syscall_64.tbl", "0\tcommon\tread\tsys_read\nzz\tcommon\twrite\n")]);
    let i386 = X86_64_HEADER
        .replace("x86_64", "i386")
        .replace("syscall_64.tbl", "syscall_32.tbl")
        .replace("0xc000003e", "0x40000003")
        .replace("62 ", "3  ")
        .replace("bits: 64", "bits: 32");
    let tables = Dir::new(&[("x86_64.yaml", X86_64_HEADER), ("i386.yaml", &i386)]);
    let err = import_tree(&tree.0, &tables.0, &tables.0.join("out"), &ImportOptions::default()).unwrap_err();
    let msgs: Vec<String> = err.0.iter().map(|d| d.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].contains("syscall_32.tbl: ABI `i386`: cannot read table"), "{msgs:?}");
    assert!(msgs[1].ends_with("syscall_64.tbl:2: bad syscall number `zz` in row `zz\tcommon\twrite`"), "{msgs:?}");
    assert!(!tables.0.join("out").exists());
}

#[test]
fn numbers_beyond_nr_limit_fail_validation_before_writing() {
    let tree = new_tree();
    let small = X86_64_HEADER.replace("nr_limit: 1024", "nr_limit: 100");
    let tables = Dir::new(&[("x86_64.yaml", &small)]);
    let err = import_tree(&tree.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("syscall `tuxcall` has number 184, outside the ABI's range 0..100"), "{err}");
    assert_eq!(tables.read("x86_64.yaml"), small);
}

#[test]
fn diff_reports_added_removed_renumbered_and_implementation_changes() {
    let mk =
        |body: &str, kernel: &str| format!("{X86_64_HEADER}source:\n  kernel: {kernel}\n  file: f\n  tags: [common]\nsyscalls:\n{body}");
    let old = mk("  read: 0\n  write: 1\n  uselib: 134\n  lookup_dcookie: 212\n", "6.1.192");
    let new = mk("  read: 0\n  write: 2\n  lookup_dcookie: 212\n  cachestat: 451\nunimplemented: [lookup_dcookie]\n", "6.12.117");
    let o = Tables::parse([(Path::new("x86_64.yaml"), old.as_str())]).unwrap();
    let n = Tables::parse([(Path::new("x86_64.yaml"), new.as_str()), (Path::new("x32.yaml"), X32_HEADER)]).unwrap();
    let d = diff(&o, &n);
    assert_eq!(
        d.to_string(),
        "+ ABI x32 (new)\nABI x86_64 (6.1.192 -> 6.12.117): 1 added, 1 removed, 1 renumbered, 1 now unimplemented, 0 now implemented\n  + cachestat 451\n  - uselib 134\n  ~ write 1 -> 2\n  ! lookup_dcookie now unimplemented\n"
    );
    assert_eq!(d.names_touched().collect::<Vec<_>>(), ["cachestat", "lookup_dcookie", "uselib", "write"]);
    assert!(diff(&o, &o).is_empty());
    assert_eq!(diff(&o, &o).to_string(), "no differences\n");
}

const S390X_HEADER: &str = "abi: s390x\naudit_arch: 0x80000016\nelf_machine: 22\nbits: 64\nendian: big\nnr_base: 0\nnr_limit: 1024\nimport:\n  table: arch/s390/kernel/syscalls/syscall.tbl\n  tags: [common, 64]\n";
const S390_HEADER: &str = "abi: s390\naudit_arch: 0x16\nelf_machine: 22\nbits: 32\nendian: big\nnr_base: 0\nnr_limit: 1024\nimport:\n  table: arch/s390/kernel/syscalls/syscall.tbl\n  tags: [common, 32]\n";

/// 6.x: one file, rows for both ABIs (`32` rows: the 31-bit compat ABI).
const S390_TBL_6: &str = "1\tcommon\texit\tsys_exit\tsys_exit\n16\t32\tlchown\t-\tsys_lchown16\n16\t64\tlchown\tsys_lchown\t-\n212\t32\tchown32\t-\tsys_chown\n212\t64\tchown\tsys_chown\t-\n";
const S390_MAKEFILE_6: &str = "syshdr_abi_unistd_32 := common,32\n$(uapi)/unistd_32.h: $(syscall) FORCE\nsyshdr_abi_unistd_64 := common,64\n$(uapi)/unistd_64.h: $(syscall) FORCE\n";
/// 7.x: the 31-bit ABI is gone; every row is `common` and only unistd_64.h is generated.
const S390_TBL_7: &str = "# <abi> is always common.\n1\tcommon\texit\tsys_exit\n16\tcommon\tlchown\tsys_lchown\n212\tcommon\tchown\tsys_chown\n463\tcommon\tsetxattrat\tsys_setxattrat\n";
const S390_MAKEFILE_7: &str =
    "$(uapi)/unistd_%.h: $(syscall) $(syshdr) FORCE\n\t$(call if_changed,syshdr)\nuapisyshdr-y\t\t+= unistd_64.h\n";

fn s390_tree(release: &str, tbl: &str, makefile: &str) -> Dir {
    let (v, p) = release.split_once('.').unwrap();
    Dir::new(&[
        ("Makefile", &format!("VERSION = {v}\nPATCHLEVEL = {p}\nSUBLEVEL = 4\nEXTRAVERSION =\n")),
        ("arch/s390/kernel/syscalls/syscall.tbl", tbl),
        ("arch/s390/kernel/syscalls/Makefile", makefile),
    ])
}

#[test]
fn an_abi_the_new_tree_no_longer_has_is_kept_from_the_last_kernel_that_had_it() {
    let old = s390_tree("6.12", S390_TBL_6, S390_MAKEFILE_6);
    let tables = Dir::new(&[("s390x.yaml", S390X_HEADER), ("s390.yaml", S390_HEADER)]);
    import_tree(&old.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    let from_6 = tables.read("s390.yaml");
    assert!(from_6.contains("  chown32: 212\n"), "{from_6}");
    let new = s390_tree("7.3", S390_TBL_7, S390_MAKEFILE_7);
    let r = import_tree(&new.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    let text = r.to_string();
    assert!(
        text.contains("s390: not in Linux 7.3.4: arch/s390/kernel/syscalls/syscall.tbl has no rows tagged `32` (its tags: `common`) and arch/s390/kernel/syscalls/Makefile generates no unistd_32.h; numbers kept from Linux 6.12.4\n"),
        "{text}"
    );
    assert_eq!(r.abis[0].kept.as_ref().map(|k| k.from.as_str()), Some("6.12.4"));
    assert_eq!(r.abis[1].kept, None);
    // s390 keeps its 6.x numbers, with that provenance; s390x takes 7.x's `common` rows.
    let kept = tables.read("s390.yaml");
    let note = "  not_in: 7.3.4            # Linux 7.3.4 no longer has this ABI: numbers kept from 6.12.4\n";
    assert_eq!(kept, from_6.replace("  tags: [common, 32]\nsyscalls:", &format!("  tags: [common, 32]\n{note}syscalls:")));
    let t = Tables::load_dir(&tables.0).unwrap();
    assert_eq!(t.get("s390").unwrap().nr("chown32"), Some(212));
    assert_eq!(t.get("s390").unwrap().nr("chown"), None, "never the 64-bit numbers");
    assert_eq!(t.get("s390x").unwrap().nr("setxattrat"), Some(463));
    assert_eq!(t.get("s390").unwrap().source.as_ref().unwrap().not_in.as_deref(), Some("7.3.4"));
    // Importing the same tree again changes nothing; an older tree brings the ABI back.
    import_tree(&new.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    assert_eq!(tables.read("s390.yaml"), kept);
    import_tree(&old.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    assert_eq!(tables.read("s390.yaml"), from_6);
}

#[test]
fn a_gone_abi_without_an_earlier_import_is_an_error() {
    let new = s390_tree("7.3", S390_TBL_7, S390_MAKEFILE_7);
    let tables = Dir::new(&[("s390x.yaml", S390X_HEADER), ("s390.yaml", S390_HEADER)]);
    let err = import_tree(&new.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.to_string().ends_with("s390.yaml: ABI `s390`: not in Linux 7.3.4: arch/s390/kernel/syscalls/syscall.tbl has no rows tagged `32` (its tags: `common`) and arch/s390/kernel/syscalls/Makefile generates no unistd_32.h; and no earlier import of it to keep"), "{err}");
    assert_eq!(tables.read("s390.yaml"), S390_HEADER, "nothing written");
}

#[test]
fn an_abi_whose_tag_has_no_rows_is_imported_while_its_header_is_generated() {
    // 7.x s390x: no row is tagged `64` any more, but unistd_64.h is still generated.
    let new = s390_tree("7.3", S390_TBL_7, S390_MAKEFILE_7);
    let tables = Dir::new(&[("s390x.yaml", S390X_HEADER), ("s390.yaml", S390_HEADER)]);
    let old = s390_tree("6.12", S390_TBL_6, S390_MAKEFILE_6);
    import_tree(&old.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    // Without the Makefile the tree says nothing of either ABI: both are kept.
    std::fs::remove_file(new.0.join("arch/s390/kernel/syscalls/Makefile")).unwrap();
    let r = import_tree(&new.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    assert!(r.abis.iter().all(|a| a.kept.is_some()), "{r}");
}

#[test]
fn a_gone_arch_directory_keeps_its_abis() {
    let tree = new_tree();
    let tables = Dir::new(&[("x86_64.yaml", X86_64_HEADER)]);
    import_tree(&tree.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    let before = tables.read("x86_64.yaml");
    std::fs::remove_dir_all(tree.0.join("arch/x86")).unwrap();
    let r = import_tree(&tree.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    assert_eq!(r.abis[0].kept.as_ref().unwrap().reason, "the tree has no arch/x86");
    assert!(tables.read("x86_64.yaml").starts_with(&before[..before.find("  tags:").unwrap()]));
}

#[test]
fn a_renumbered_syscall_is_refused_with_both_kernels_unless_accepted() {
    let old = s390_tree("6.12", S390_TBL_6, S390_MAKEFILE_6);
    let tables = Dir::new(&[("s390x.yaml", S390X_HEADER)]);
    import_tree(&old.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap();
    let before = tables.read("s390x.yaml");
    let line = before.lines().position(|l| l == "  chown: 212").unwrap() + 1;
    let moved = s390_tree("7.3", &S390_TBL_7.replace("212\tcommon\tchown", "213\tcommon\tchown"), S390_MAKEFILE_7);
    let err = import_tree(&moved.0, &tables.0, &tables.0, &ImportOptions::default()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let expect = format!(
        "{}:{line}: ABI `s390x`: syscall `chown` is 212 in Linux 6.12.4 (this file) but 213 in Linux 7.3.4 ({}:4); Linux never renumbers a syscall, so the import is refused unless the renumbering of `s390x:chown` is explicitly accepted",
        tables.0.join("s390x.yaml").display(),
        moved.0.join("arch/s390/kernel/syscalls/syscall.tbl").display()
    );
    assert_eq!(err.to_string(), expect);
    assert_eq!(tables.read("s390x.yaml"), before, "nothing written");
    for allow in ["chown", "*"] {
        let opts = ImportOptions { allow_renumber: vec![("s390x".into(), allow.into())] };
        let t2 = Dir::new(&[("s390x.yaml", &before)]);
        import_tree(&moved.0, &t2.0, &t2.0, &opts).unwrap();
        assert!(t2.read("s390x.yaml").contains("  chown: 213\n"));
    }
    let other = ImportOptions { allow_renumber: vec![("s390".into(), "chown".into())] };
    assert!(import_tree(&moved.0, &tables.0, &tables.0, &other).is_err(), "accepting it on another ABI does not count");
}
