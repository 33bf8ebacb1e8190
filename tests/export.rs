//! `rootemu export` end to end, as an unprivileged user: a tree built under
//! `rootemu run --consistent` becomes a tar layer (and an OCI image) whose owners, modes,
//! device nodes, hard links, ACLs and file capabilities are what real root's build has;
//! a second consistent run continues from the first one's records; unreadable trees and
//! full disks give one clear line and leave no output behind; podman runs the image and
//! fuse-overlayfs presents the tree with the recorded owners.

use rootemu_tests::{UserEnv, in_ci, need, output_text};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn env() -> Option<&'static UserEnv> {
    static ENV: OnceLock<Option<UserEnv>> = OnceLock::new();
    ENV.get_or_init(|| UserEnv::new("export-tests")).as_ref()
}

/// `sh -c SCRIPT` as the test user under `rootemu run --consistent`, in `cwd`; must succeed.
fn consistent(env: &UserEnv, cwd: &Path, script: &str) -> String {
    let o = env.run(cwd, &["--consistent", "--", "sh", "-c", script]);
    assert!(o.status.success(), "consistent run failed:\n{}", output_text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `rootemu export ARGS` as the test user.
fn export(env: &UserEnv, cwd: &Path, args: &[&str]) -> Output {
    let bin = env.bin.to_str().unwrap();
    let mut full = vec![bin, "export"];
    full.extend_from_slice(args);
    env.as_user(cwd, &full).output().unwrap()
}

/// One tar entry, as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    dev: (u32, u32),
    link: String,
    xattrs: BTreeMap<String, Vec<u8>>,
    mtime: u64,
}

fn read_tar(bytes: &[u8]) -> BTreeMap<String, Seen> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                let x = x.unwrap();
                if let Some(n) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(n.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let h = e.header();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            t => panic!("unexpected entry type {t:?}"),
        };
        let seen = Seen {
            kind,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            dev: (h.device_major().unwrap().unwrap_or(0), h.device_minor().unwrap().unwrap_or(0)),
            link: e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default(),
            xattrs,
            mtime: h.mtime().unwrap(),
        };
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, seen);
    }
    out
}

/// cap_net_raw+ep as real root stores it: revision 2, effective, permitted bit 13.
fn v2_net_raw() -> Vec<u8> {
    let mut v = 0x0200_0001u32.to_le_bytes().to_vec();
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&[0; 12]);
    v
}

/// The named entries (tag, id) of a POSIX ACL xattr.
fn acl_named(v: &[u8]) -> Vec<(u16, u32)> {
    v[4..]
        .chunks_exact(8)
        .map(|e| (u16::from_le_bytes([e[0], e[1]]), u32::from_le_bytes([e[4], e[5], e[6], e[7]])))
        .filter(|(t, _)| *t == 2 || *t == 8)
        .collect()
}

const BUILD: &str = "set -e; mkdir -p t/etc t/dev t/bin t/var/log/journal
touch t/etc/shadow && chown 0:42 t/etc/shadow && chmod 640 t/etc/shadow
ln t/etc/shadow t/etc/shadow.hard
ln -s shadow t/etc/sym && chown -h 5:6 t/etc/sym
mknod -m 600 t/dev/mem c 1 1 && mknod -m 660 t/dev/sda b 8 0 && chown 0:6 t/dev/sda
mkfifo -m 620 t/fifo && chown 7:8 t/fifo
cp /bin/true t/bin/ping && setcap cap_net_raw+ep t/bin/ping
setfacl -m g:adm:rx t/var/log/journal
touch t/bin/sudo && chown 0:0 t/bin/sudo && chmod 4755 t/bin/sudo
mkdir t/var/mail && chown 0:8 t/var/mail && chmod 2775 t/var/mail
setfacl -m u:0:r t/etc/shadow";

#[test]
fn the_tar_layer_has_what_root_would_have_built() {
    let Some(env) = env() else { return };
    if !(need("setcap", "sets a file capability") && need("setfacl", "sets an ACL") && need("tar", "GNU tar reads the layer")) {
        return;
    }
    let w = env.workdir("layer");
    consistent(env, &w, BUILD);
    let o = export(env, &w, &["t", "-o", "t.tar"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let seen = read_tar(&std::fs::read(w.join("t.tar")).unwrap());
    let e = |p: &str| seen.get(p).unwrap_or_else(|| panic!("{p} missing from the layer: {:?}", seen.keys().collect::<Vec<_>>())).clone();
    // Owners and modes from the records; the building user's own files belong to root.
    assert_eq!((e("etc/shadow").kind, e("etc/shadow").uid, e("etc/shadow").gid, e("etc/shadow").mode), ('f', 0, 42, 0o640));
    assert_eq!((e("etc/shadow.hard").kind, e("etc/shadow.hard").link.as_str()), ('h', "etc/shadow"));
    assert_eq!((e("etc/sym").kind, e("etc/sym").uid, e("etc/sym").gid, e("etc/sym").link.as_str()), ('l', 5, 6, "shadow"));
    assert_eq!((e("dev/mem").kind, e("dev/mem").dev, e("dev/mem").mode, e("dev/mem").uid), ('c', (1, 1), 0o600, 0));
    assert_eq!((e("dev/sda").kind, e("dev/sda").dev, e("dev/sda").mode, e("dev/sda").gid), ('b', (8, 0), 0o660, 6));
    assert_eq!((e("fifo").kind, e("fifo").uid, e("fifo").gid, e("fifo").mode), ('p', 7, 8, 0o620));
    assert_eq!((e("bin/sudo").uid, e("bin/sudo").mode), (0, 0o4755));
    assert_eq!((e("var/mail").gid, e("var/mail").mode), (8, 0o2775));
    assert_eq!((e("./").kind, e("./").uid, e("./").gid), ('d', 0, 0), "the top directory");
    // A file capability as real root writes it, ACLs with namespace ids.
    assert_eq!(e("bin/ping").xattrs.get("security.capability"), Some(&v2_net_raw()));
    let acl = e("var/log/journal").xattrs.get("system.posix_acl_access").cloned().expect("the journal ACL");
    assert_eq!(acl_named(&acl), [(8, 4)], "group adm (4)");
    let acl = e("etc/shadow").xattrs.get("system.posix_acl_access").cloned().expect("the shadow ACL");
    assert_eq!(acl_named(&acl), [(2, 0)], "user root: the building user's host uid mapped back");
    // rootemu's own xattrs never leave.
    for (p, s) in &seen {
        for n in s.xattrs.keys() {
            assert!(!n.starts_with("user.rootemu.") && n != "user.containers.override_stat", "{p}: {n} exported");
        }
    }
    // GNU tar reads the same owners and devices.
    let o = Command::new("tar").args(["--numeric-owner", "-tvf"]).arg(w.join("t.tar")).output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", output_text(&o));
    for want in [
        "-rw-r----- 0/42",
        "crw------- 0/0",
        "1,1",
        "brw-rw---- 0/6",
        "8,0",
        "prw--w---- 7/8",
        "lrwxrwxrwx 5/6",
        "etc/shadow.hard link to etc/shadow",
    ] {
        assert!(list.contains(want), "GNU tar's listing has no {want:?}:\n{list}");
    }
}

#[test]
fn a_second_run_continues_from_the_first_ones_records() {
    let Some(env) = env() else { return };
    let w = env.workdir("two-runs");
    consistent(env, &w, "mkdir -p t/dev t/srv && touch t/srv/a && chown 10:20 t/srv/a && mknod -m 600 t/dev/null c 1 3");
    let out = consistent(
        env,
        &w,
        "stat -c '%u:%g %a %F %t:%T' t/srv/a t/dev/null && chmod 664 t/dev/null && chmod 4711 t/srv/a \
         && touch t/srv/b && chown 30:40 t/srv/b && stat -c '%u:%g %a' t/srv/a t/dev/null",
    );
    assert_eq!(out, "10:20 644 regular empty file 0:0\n0:0 600 character special file 1:3\n10:20 4711\n0:0 664\n");
    let o = export(env, &w, &["t", "-o", "t.tar"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let seen = read_tar(&std::fs::read(w.join("t.tar")).unwrap());
    let a = &seen["srv/a"];
    assert_eq!((a.uid, a.gid, a.mode), (10, 20, 0o4711));
    let n = &seen["dev/null"];
    assert_eq!((n.kind, n.dev, n.mode), ('c', (1, 3), 0o664));
    let b = &seen["srv/b"];
    assert_eq!((b.uid, b.gid), (30, 40));
}

#[test]
fn reproducible_exports_are_byte_identical_and_clamped() {
    let Some(env) = env() else { return };
    let w = env.workdir("repro");
    consistent(env, &w, "mkdir -p t/a && echo hi > t/a/f && chown 3:4 t/a/f && ln -s f t/a/l && mknod t/c c 5 1");
    let run = |args: &[&str]| {
        let bin = env.bin.to_str().unwrap();
        let mut full = vec![bin, "export"];
        full.extend_from_slice(args);
        let o = env.as_user(&w, &full).env("SOURCE_DATE_EPOCH", "1000").output().unwrap();
        assert!(o.status.success(), "{}", output_text(&o));
    };
    run(&["t", "-o", "1.tar"]);
    // Newer mtimes, same clamped result.
    let o = env.as_user(&w, &["touch", "t/a/f"]).output().unwrap();
    assert!(o.status.success());
    run(&["t", "-o", "2.tar"]);
    let (one, two) = (std::fs::read(w.join("1.tar")).unwrap(), std::fs::read(w.join("2.tar")).unwrap());
    assert!(one == two, "two exports of the same tree differ");
    assert!(read_tar(&one).values().all(|s| s.mtime <= 1000), "mtimes clamped to SOURCE_DATE_EPOCH");
    run(&["t", "--format", "oci", "-o", "1.oci"]);
    run(&["t", "--format", "oci", "-o", "2.oci"]);
    let index = |d: &str| std::fs::read(w.join(d).join("index.json")).unwrap();
    assert_eq!(index("1.oci"), index("2.oci"), "the OCI image's digest");
}

/// The OCI layout: index -> manifest -> config (diff_ids) and the gzip layer, each blob
/// named by its digest; `skopeo inspect` reads it.
#[test]
fn the_oci_layout_holds_together() {
    let Some(env) = env() else { return };
    let w = env.workdir("oci");
    consistent(env, &w, "mkdir -p t/etc && touch t/etc/x && chown 1:2 t/etc/x");
    let o = export(env, &w, &["t", "--format", "oci", "--tag", "v1", "-o", "img"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let img = w.join("img");
    let json = |p: PathBuf| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let blob = |d: &serde_json::Value| img.join("blobs/sha256").join(d["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap());
    assert_eq!(json(img.join("oci-layout"))["imageLayoutVersion"], "1.0.0");
    let index = json(img.join("index.json"));
    let m = &index["manifests"][0];
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");
    let manifest = json(blob(m));
    let config = json(blob(&manifest["config"]));
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let gz = std::fs::read(blob(layer)).unwrap();
    assert_eq!(gz.len() as u64, layer["size"].as_u64().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
    let sha = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        sha.stdin.as_ref().unwrap().write_all(&tar).unwrap();
    }
    let sum = String::from_utf8(sha.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0].as_str().unwrap(), format!("sha256:{}", &sum[..64]));
    assert_eq!(read_tar(&tar)["etc/x"].uid, 1);
    if need("skopeo", "reads the OCI layout") {
        let o = Command::new("skopeo").arg("inspect").arg(format!("oci:{}:v1", img.display())).output().unwrap();
        assert!(o.status.success(), "skopeo inspect: {}", output_text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("\"Layers\""), "{}", output_text(&o));
    }
}

fn one_line_error(o: &Output, want: &str) {
    assert!(!o.status.success(), "export succeeded:\n{}", output_text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    assert!(err.starts_with("rootemu: ") && err.contains(want), "want {want:?}:\n{err}");
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn an_unreadable_entry_fails_cleanly_and_leaves_nothing() {
    let Some(env) = env() else { return };
    let w = env.workdir("unreadable");
    consistent(env, &w, "mkdir -p t/secret && touch t/secret/f t/g && chmod 000 t/secret t/g");
    for (fmt, out) in [("tar", "t.tar"), ("oci", "img"), ("oci-archive", "img.tar")] {
        let o = export(env, &w, &["t", "--format", fmt, "-o", out]);
        one_line_error(&o, "Permission denied");
        assert_eq!(names(&w), ["t"], "{fmt}: nothing left behind");
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_leaves_nothing() {
    let Some(env) = env() else { return };
    let w = env.workdir("full");
    let full = w.join("small");
    std::fs::create_dir(&full).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size=256k,uid={},gid={}", env.uid, env.gid), "rootemu-export-test"])
        .arg(&full)
        .status();
    if !st.is_ok_and(|s| s.success()) {
        assert!(!in_ci(), "CI=true: mounting a small tmpfs failed");
        eprintln!("SKIPPED: cannot mount a tmpfs");
        return;
    }
    consistent(env, &w, "mkdir t && head -c 2000000 /dev/urandom > t/big && chown 1:1 t/big");
    let mut results = Vec::new();
    for (fmt, out) in [("tar", "small/t.tar"), ("oci", "small/img"), ("oci-archive", "small/img.tar")] {
        results.push((fmt, export(env, &w, &["t", "--format", fmt, "-o", out]), names(&full)));
    }
    let _ = Command::new("umount").arg(&full).status();
    for (fmt, o, left) in results {
        one_line_error(&o, "No space left on device");
        assert!(left.is_empty(), "{fmt}: left behind {left:?}");
    }
}

#[test]
fn bad_arguments_get_one_line() {
    let Some(env) = env() else { return };
    let w = env.workdir("args");
    one_line_error(&export(env, &w, &["missing", "-o", "x.tar"]), "missing: cannot read the tree");
    std::fs::write(w.join("file"), "").unwrap();
    one_line_error(&export(env, &w, &["file", "-o", "x.tar"]), "Not a directory");
    consistent(env, &w, "mkdir t");
    one_line_error(&export(env, &w, &["t", "--builder", "x", "-o", "x.tar"]), "expected UID:GID");
    std::fs::create_dir_all(w.join("busy/x")).unwrap();
    one_line_error(&export(env, &w, &["t", "--format", "oci", "-o", "busy"]), "not empty");
    let o = env.as_user(&w, &[env.bin.to_str().unwrap(), "export", "t", "-o", "x.tar"]).env("SOURCE_DATE_EPOCH", "soon").output().unwrap();
    one_line_error(&o, "SOURCE_DATE_EPOCH");
}

/// Gives the test user a subordinate id range (rootless podman needs one).
fn subids(user: &str) {
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{user}:"))) {
            let mut text = text;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{user}:231072:65536\n"));
            std::fs::write(f, text).unwrap();
        }
    }
}

/// Rootless podman (vfs storage, runc: crun refuses this machine's hybrid cgroups) pulls
/// the exported OCI image as it is and `stat` in a container shows the recorded owners
/// and modes.
#[test]
fn podman_runs_the_image_with_the_recorded_owners() {
    let Some(env) = env() else { return };
    if !need("podman", "runs the exported image")
        || !need("runc", "podman's runtime here")
        || !need("newuidmap", "rootless podman (uidmap)")
        || !rootemu_tests::need_path(Path::new("/bin/busybox"), "a static shell for the image (busybox-static)")
    {
        return;
    }
    subids("rootemu-test");
    let w = env.workdir("podman");
    consistent(
        env,
        &w,
        "set -e; mkdir -p t/bin t/etc t/var/mail && cp /bin/busybox t/bin/busybox
         touch t/etc/shadow && chown 0:42 t/etc/shadow && chmod 640 t/etc/shadow
         ln -s shadow t/etc/sym && chown -h 5:6 t/etc/sym
         chown 0:8 t/var/mail && chmod 2775 t/var/mail
         touch t/bin/su && chmod 4755 t/bin/su",
    );
    let o = export(env, &w, &["t", "--format", "oci", "-o", "img"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let ws = w.to_str().unwrap();
    let podman = |args: &[&str]| -> Output {
        let (root, run) = (format!("{ws}/storage"), format!("{ws}/run"));
        let mut full = vec!["podman", "--root", &root, "--runroot", &run, "--storage-driver", "vfs", "--events-backend", "file"];
        full.extend_from_slice(&["--cgroup-manager", "cgroupfs", "--runtime", "runc"]);
        full.extend_from_slice(args);
        env.as_user(&w, &full).env("XDG_RUNTIME_DIR", format!("{ws}/run")).output().unwrap()
    };
    let img = format!("oci:{ws}/img:latest");
    let o = podman(&["pull", "-q", &img]);
    assert!(o.status.success(), "podman pull {img}: {}", output_text(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().lines().last().unwrap_or_default().to_string();
    let o = podman(&[
        "run",
        "--rm",
        "--net",
        "none",
        &id,
        "/bin/busybox",
        "stat",
        "-c",
        "%u:%g %a %F %n",
        "/etc/shadow",
        "/etc/sym",
        "/var/mail",
        "/bin/su",
    ]);
    assert!(o.status.success(), "podman run: {}", output_text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "0:42 640 regular empty file /etc/shadow\n5:6 777 symbolic link /etc/sym\n0:8 2775 directory /var/mail\n0:0 4755 regular empty file /bin/su\n"
    );
}
