#!/usr/bin/python3
"""File manifests of a root filesystem, and their comparison (tests/e2e/run.sh uses it).

  manifest.py list ROOT > FILE
      One line per path under ROOT, sorted: path, type (f d l c b p s), mode with the
      setuid/setgid/sticky bits (4 octal digits), symlink target, device major:minor,
      and the security-relevant xattrs (file capabilities decoded, POSIX ACLs present).
      Ownership is left out on purpose: rootemu flattens it (every file belongs to the
      building user; nothing is recorded). Mount points the runners cover (proc, sys,
      dev, tmp) are listed but not their contents; see SKIP for the per-run noise.

  manifest.py owners ROOT > FILE
      The same with owners (uid, gid), hard links (the first path of each group of
      paths sharing an inode) and every xattr decoded (ACL entries with their ids, other
      xattrs by name and digest): real root's tree, for comparison with an export.

  manifest.py tar FILE > FILE
      The same listing of a tar archive (`rootemu export`'s layer): PAX xattrs
      (SCHILY.xattr.*), numeric owners, device entries, hard links.

  manifest.py diff EXPECTED_TSV REFERENCE OTHER
      Prints each difference between two manifests, marked `expected: <why>` when a
      rule of EXPECTED_TSV (regex on path <TAB> field <TAB> explanation) covers it and
      `UNEXPECTED` otherwise. Exit status: 0 when every difference is expected, 1 if not.
"""
import hashlib
import os
import re
import stat
import struct
import sys

# Contents not compared: what the runner mounts over, and files whose presence or mode
# depends on the run rather than on the package (logs of this very run, apt's download
# area holding the shared .debs, debconf's backup copies).
SKIP_CONTENTS = {"proc", "sys", "dev", "tmp"}
SKIP = [
    re.compile(r"^var/cache/apt/archives/"),
    re.compile(r"^var/cache/apt/[^/]*\.bin$"),
    re.compile(r"^var/log/apt/"),
    re.compile(r"^var/log/(dpkg|alternatives)\.log$"),
    re.compile(r"^var/cache/debconf/[^/]*-old$"),
    re.compile(r"^etc/apt/apt\.conf\.d/00rootemu-sandbox$"),
]

TYPES = {
    stat.S_IFREG: "f",
    stat.S_IFDIR: "d",
    stat.S_IFLNK: "l",
    stat.S_IFCHR: "c",
    stat.S_IFBLK: "b",
    stat.S_IFIFO: "p",
    stat.S_IFSOCK: "s",
}

CAP_NAMES = [
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
    "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
    "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
    "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
    "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
]


def decode_caps(raw):
    """security.capability as `cap_a,cap_b=e(v2)` or `...=e(v3,rootid=N)`."""
    if len(raw) < 4:
        return "caps:short"
    magic = struct.unpack("<I", raw[:4])[0]
    version, effective = magic & 0xFF000000, magic & 1
    words = (len(raw) - 4) // 8
    permitted = 0
    for i in range(min(words, 2)):
        lo = struct.unpack("<I", raw[4 + 8 * i : 8 + 8 * i])[0]
        permitted |= lo << (32 * i)
    names = [CAP_NAMES[b] if b < len(CAP_NAMES) else f"cap{b}" for b in range(64) if permitted >> b & 1]
    text = ",".join(names) + ("=ep" if effective else "=p")
    if version == 0x03000000 and len(raw) >= 24:
        rootid = struct.unpack("<I", raw[20:24])[0]
        return f"caps:{text}(v3,rootid={rootid})"
    return f"caps:{text}(v{version >> 24})"


def xattrs(path):
    out = []
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return ""
    for name in names:
        if name == "security.capability":
            out.append(decode_caps(os.getxattr(path, name, follow_symlinks=False)))
        elif name.startswith("system.posix_acl_"):
            out.append("acl:" + name[len("system.posix_acl_") :])
        elif name.startswith("security.") or name.startswith("trusted."):
            out.append("xattr:" + name)
    return ",".join(out)


ACL_TAGS = {0x01: "user:", 0x02: "user:{}", 0x04: "group:", 0x08: "group:{}", 0x10: "mask:", 0x20: "other:"}


def decode_acl(raw):
    """A POSIX ACL xattr as `user::rwx,group:4:r-x,...` (numeric ids)."""
    out = []
    for i in range(4, len(raw) - 7, 8):
        tag, perm, ident = struct.unpack("<HHI", raw[i : i + 8])
        rwx = "".join(c if perm & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))
        out.append(ACL_TAGS.get(tag, f"tag{tag}:").format(ident) + ":" + rwx)
    return ",".join(out)


def full_xattrs(pairs):
    """Every xattr, decoded: capabilities, ACLs, others by name and value digest."""
    out = []
    for name, value in sorted(pairs):
        if name == "security.capability":
            out.append(decode_caps(value))
        elif name.startswith("system.posix_acl_"):
            out.append(f"acl:{name[len('system.posix_acl_'):]}={decode_acl(value)}")
        else:
            out.append(f"xattr:{name}={hashlib.sha256(value).hexdigest()[:12]}")
    return ";".join(out)


def skipped(rel):
    top = rel.split("/", 1)[0]
    return (top in SKIP_CONTENTS and "/" in rel) or any(p.search(rel) for p in SKIP)


def with_links(entries):
    """Rows from {path: (fields..., inode key)}; a group of paths sharing an inode names
    its first path (in byte order) in the last column."""
    groups = {}
    for path, e in entries.items():
        if e[-1] is not None:
            groups.setdefault(e[-1], []).append(path)
    rows = []
    for path, e in entries.items():
        g = groups.get(e[-1], []) if e[-1] is not None else []
        link = min(g, key=lambda p: p.encode("utf-8", "surrogateescape")) if len(g) > 1 else ""
        rows.append("\t".join([path, *e[:-1], link]))
    rows.sort()
    return rows


def walk(root, skip):
    """(relative path, full path, lstat) of every path under ROOT, the mount points'
    contents and what `skip(rel)` names left out."""
    root = os.path.abspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        if rel_dir in SKIP_CONTENTS:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if skip(rel):
                continue
            full = os.path.join(dirpath, name)
            yield rel, full, os.lstat(full)


def owners_listing(root):
    entries = {}
    for rel, full, st in walk(root, skipped):
        kind = TYPES.get(stat.S_IFMT(st.st_mode), "?")
        if kind == "s":
            continue  # an archive cannot hold a socket
        target = os.readlink(full) if kind == "l" else ""
        dev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" if kind in "cb" else ""
        try:
            pairs = [(n, os.getxattr(full, n, follow_symlinks=False)) for n in os.listxattr(full, follow_symlinks=False)]
        except OSError:
            pairs = []
        key = (st.st_dev, st.st_ino) if kind != "d" and st.st_nlink > 1 else None
        entries[rel] = (kind, f"{stat.S_IMODE(st.st_mode):04o}", target, dev, full_xattrs(pairs), str(st.st_uid), str(st.st_gid), key)
    return with_links(entries)


TAR_TYPES = {b"0": "f", b"\0": "f", b"7": "f", b"5": "d", b"2": "l", b"3": "c", b"4": "b", b"6": "p"}


def norm(name):
    """An archive path without `./` in front or `/` at the end."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def tar_listing(path):
    import tarfile

    members = {}
    with tarfile.open(path, "r:*") as tf:
        for m in tf:
            rel = norm(m.name)
            if rel in ("", "."):
                continue
            members[rel] = m
    entries = {}
    for rel, m in members.items():
        if skipped(rel):
            continue
        src = m
        key = None
        if m.islnk():
            first = norm(m.linkname)
            src = members.get(first, m)
            key = first
        kind = TAR_TYPES.get(src.type, "?")
        pairs = [(k[len("SCHILY.xattr."):], v.encode("utf-8", "surrogateescape")) for k, v in src.pax_headers.items() if k.startswith("SCHILY.xattr.")]
        entries[rel] = [kind, f"{src.mode & 0o7777:04o}", src.linkname if kind == "l" else "", f"{src.devmajor}:{src.devminor}" if kind in "cb" else "",
                        full_xattrs(pairs), str(src.uid), str(src.gid), key]
    # The first path of a hard-link group is the one the links name.
    firsts = {e[-1] for e in entries.values() if e[-1] is not None}
    for rel in firsts:
        if rel in entries:
            entries[rel][-1] = rel
    return with_links({p: tuple(e) for p, e in entries.items()})


def listing(root):
    rows = []
    for rel, full, st in walk(root, lambda rel: any(p.search(rel) for p in SKIP)):
        kind = TYPES.get(stat.S_IFMT(st.st_mode), "?")
        target = os.readlink(full) if kind == "l" else ""
        dev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" if kind in "cb" else ""
        rows.append("\t".join([rel, kind, f"{stat.S_IMODE(st.st_mode):04o}", target, dev, xattrs(full)]))
    # Directories that are symlinks are listed but not walked into (os.walk default).
    rows.sort()
    return rows


FIELDS = ["type", "mode", "target", "dev", "xattrs", "uid", "gid", "hardlink"]


def load(path):
    entries = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (1 + len(FIELDS) - len(parts))
            entries[parts[0]] = dict(zip(FIELDS, parts[1:]))
    return entries


def load_rules(path):
    rules = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            regex, field, why = line.rstrip("\n").split("\t", 2)
            rules.append((re.compile(regex), field, why))
    return rules


CAPS_VERSION = re.compile(r"\((v2|v3,rootid=\d+)\)")


def namespaced_caps(a, b):
    """`caps-namespaced` when two xattr fields differ only in the capability's version and
    rootid (same capability set): what a setcap inside a user namespace writes."""
    if a["xattrs"] != b["xattrs"] and "caps:" in a["xattrs"] and CAPS_VERSION.sub("", a["xattrs"]) == CAPS_VERSION.sub("", b["xattrs"]):
        return "caps-namespaced"
    return None


def diff(rules_path, ref_path, other_path):
    rules = load_rules(rules_path)
    ref, other = load(ref_path), load(other_path)
    unexpected = 0
    lines = []
    for path in sorted(set(ref) | set(other)):
        a, b = ref.get(path), other.get(path)
        if a == b:
            continue
        if a is None:
            changes = [("only-other", "", "present")]
        elif b is None:
            changes = [("only-reference", "present", "")]
        else:
            changes = [(namespaced_caps(a, b) or f, a[f], b[f]) for f in FIELDS if a[f] != b[f]]
        for field, va, vb in changes:
            why = next((w for r, f, w in rules if f == field and r.search(path)), None)
            if why is None:
                unexpected += 1
                lines.append(f"UNEXPECTED\t{path}\t{field}\treal root: {va or '-'}\tother: {vb or '-'}")
            else:
                lines.append(f"expected: {why}\t{path}\t{field}\treal root: {va or '-'}\tother: {vb or '-'}")
    print("\n".join(lines) if lines else "identical")
    return 1 if unexpected else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "list":
        sys.stdout.write("".join(r + "\n" for r in listing(argv[2])))
        return 0
    if len(argv) == 3 and argv[1] == "owners":
        sys.stdout.write("".join(r + "\n" for r in owners_listing(argv[2])))
        return 0
    if len(argv) == 3 and argv[1] == "tar":
        sys.stdout.write("".join(r + "\n" for r in tar_listing(argv[2])))
        return 0
    if len(argv) == 5 and argv[1] == "diff":
        return diff(argv[2], argv[3], argv[4])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
