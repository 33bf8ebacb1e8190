#!/usr/bin/python3
"""Compiles an OCI `linux.seccomp` object (or a Docker seccomp profile) to the BPF program
libseccomp builds from it, the way runc 1.1 does (libcontainer/seccomp: InitSeccomp and
matchCall), with Debian's python3-seccomp (libseccomp 2.5.4).

Usage: profile_to_bpf.py PROFILE.json OUT.bpf
Writes `struct sock_filter[]` in this machine's byte order.

As runc: the filter starts from the default action (ERRNO without errnoRet is EPERM);
every listed architecture is added (runc keeps the native one too, which adds nothing
when the profile lists it; here the filter has the listed ones only, so a profile for
another machine compiles as it would there); a name libseccomp does not know is skipped; an entry whose action is the default
is skipped; an entry with two conditions on one argument becomes one rule per condition;
the bad-architecture action is libseccomp's default (SCMP_ACT_KILL_THREAD).
"""
import errno
import json
import sys

import seccomp

# runc 1.1.5 libcontainer/seccomp/config.go `archs`: the names it takes.
RUNC_ARCHES = {
    "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32",
    "SCMP_ARCH_ARM": "ARM", "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_MIPS": "MIPS",
    "SCMP_ARCH_MIPS64": "MIPS64", "SCMP_ARCH_MIPS64N32": "MIPS64N32", "SCMP_ARCH_MIPSEL": "MIPSEL",
    "SCMP_ARCH_MIPSEL64": "MIPSEL64", "SCMP_ARCH_MIPSEL64N32": "MIPSEL64N32", "SCMP_ARCH_PPC": "PPC",
    "SCMP_ARCH_PPC64": "PPC64", "SCMP_ARCH_PPC64LE": "PPC64LE", "SCMP_ARCH_S390": "S390",
    "SCMP_ARCH_S390X": "S390X",
}
# Names newer runtimes (crun, runc 1.2) also take.
NEWER_ARCHES = {"SCMP_ARCH_PARISC": "PARISC", "SCMP_ARCH_PARISC64": "PARISC64", "SCMP_ARCH_RISCV64": "RISCV64"}
OPS = {
    "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}


def action(name, errno_ret):
    simple = {
        "SCMP_ACT_ALLOW": seccomp.ALLOW, "SCMP_ACT_KILL": seccomp.KILL, "SCMP_ACT_KILL_THREAD": seccomp.KILL,
        "SCMP_ACT_KILL_PROCESS": seccomp.KILL_PROCESS, "SCMP_ACT_TRAP": seccomp.TRAP, "SCMP_ACT_LOG": seccomp.LOG,
    }
    if name in simple:
        return simple[name]
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno.EPERM if errno_ret is None else errno_ret)
    sys.exit(f"profile_to_bpf: action {name} is not handled here")


def main():
    profile = json.load(open(sys.argv[1]))
    if "archMap" in profile:
        sys.exit("profile_to_bpf: archMap profiles are resolved by the runtime; give `architectures`")
    default = action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(default)
    arches = []
    for name in profile.get("architectures", []):
        short = RUNC_ARCHES.get(name) or NEWER_ARCHES.get(name)
        if short is None:
            sys.exit(f"profile_to_bpf: unknown architecture {name}")
        arches.append(getattr(seccomp.Arch, short))
    if arches:
        f.remove_arch(seccomp.Arch.NATIVE)
    for a in arches:
        f.add_arch(a)
    for entry in profile.get("syscalls", []):
        act = action(entry["action"], entry.get("errnoRet"))
        if entry["action"] == profile["defaultAction"] and entry.get("errnoRet") == profile.get("defaultErrnoRet"):
            continue
        args = entry.get("args") or []
        conds = []
        for a in args:
            op = OPS[a["op"]]
            if op == seccomp.MASKED_EQ:
                conds.append(seccomp.Arg(a["index"], op, a["value"], a.get("valueTwo", 0)))
            else:
                conds.append(seccomp.Arg(a["index"], op, a["value"]))
        indexes = [a["index"] for a in args]
        groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
        for name in entry.get("names", []):
            try:
                seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
            except Exception:
                continue  # runc: "unknown seccomp syscall ... ignored"
            for g in groups:
                f.add_rule(act, name, *g)
    with open(sys.argv[2], "wb") as out:
        f.export_bpf(out)


main()
