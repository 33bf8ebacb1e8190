//! Oracle: every struct layout an ABI file names (`structs:`, from
//! `shared/struct-layouts.yaml`) and the universal `statx` layout, against the uapi
//! `<asm/stat.h>` and `<linux/stat.h>` of Debian's cross toolchains, laid out by each ABI's
//! own cross gcc. The compiler only translates to assembly (`-S`, nothing runs): offsets and
//! sizes are read back from the data it emits. Nothing that wrote the layouts reads these
//! headers, so a wrong offset or size in a layout disagrees here.

use rootemu_codegen::Tables;
use rootemu_codegen::shared::{FieldKind, Layout};
use rootemu_tests::{broken_tables, need, par_map, tables_dir, write_report};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the truth of one ABI is compiled.
struct Target {
    abi: &'static str,
    cc: &'static str,
    flags: &'static [&'static str],
    /// No Debian cross headers for the ABI: its `asm/*.h` are made here as the kernel makes
    /// them for an asm-generic architecture (`#include <asm-generic/...>`), over the host's
    /// `/usr/include/asm-generic`.
    generic: bool,
    /// Why this compiler and header are the ABI's truth, when they are not plainly its own.
    note: &'static str,
}

const fn t(abi: &'static str, cc: &'static str, flags: &'static [&'static str]) -> Target {
    Target { abi, cc, flags, generic: false, note: "" }
}

const TARGETS: &[Target] = &[
    t("x86_64", "x86_64-linux-gnu-gcc", &[]),
    t("x32", "x86_64-linux-gnux32-gcc", &[]),
    t("i386", "i686-linux-gnu-gcc", &[]),
    t("aarch64", "aarch64-linux-gnu-gcc", &[]),
    t("arm", "arm-linux-gnueabihf-gcc", &[]),
    t("s390x", "s390x-linux-gnu-gcc", &[]),
    t("s390", "s390x-linux-gnu-gcc", &["-m31"]),
    t("ppc64le", "powerpc64le-linux-gnu-gcc", &[]),
    t("ppc64", "powerpc64-linux-gnu-gcc", &[]),
    t("ppc", "powerpc-linux-gnu-gcc", &[]),
    t("riscv64", "riscv64-linux-gnu-gcc", &[]),
    t("mips", "mips-linux-gnu-gcc", &[]),
    t("mipsel", "mipsel-linux-gnu-gcc", &[]),
    t("mips64", "mips64-linux-gnuabi64-gcc", &[]),
    t("mips64el", "mips64el-linux-gnuabi64-gcc", &[]),
    Target {
        note: "n64's struct stat: n32's stat calls are the 64-bit kernel's sys_newstat (syscall_n32.tbl); \
               the uapi header's n32 struct stat is o32's, which the kernel never writes for n32",
        ..t("mips64n32", "mips64-linux-gnuabi64-gcc", &["-mabi=64"])
    },
    Target { note: "as mips64n32", ..t("mips64n32el", "mips64el-linux-gnuabi64-gcc", &["-mabi=64"]) },
    t("m68k", "m68k-linux-gnu-gcc", &[]),
    t("sh", "sh4-linux-gnu-gcc", &["-ml"]),
    t("sheb", "sh4-linux-gnu-gcc", &["-mb"]),
    t("alpha", "alpha-linux-gnu-gcc", &[]),
    t("parisc", "hppa-linux-gnu-gcc", &[]),
    Target {
        note: "no Debian hppa64 gcc: hppa's stands in (parisc's uapi stat structs have no long or pointer member)",
        ..t("parisc64", "hppa-linux-gnu-gcc", &[])
    },
    t("sparc64", "sparc64-linux-gnu-gcc", &[]),
    t("sparc", "sparc64-linux-gnu-gcc", &["-m32"]),
    Target { generic: true, note: "bare-metal or1k gcc, asm-generic headers", ..t("openrisc", "or1k-elf-gcc", &[]) },
    Target {
        generic: true,
        note: "no Debian microblaze gcc: or1k's stands in (asm-generic structs of int, long and long long, \
               naturally aligned, lay out alike on every 32-bit gcc)",
        ..t("microblaze", "or1k-elf-gcc", &[])
    },
];

/// The C member a field is, in a stat-like struct and in `struct statx`.
fn member(kind: FieldKind, statx: bool) -> String {
    match (kind, statx) {
        (FieldKind::InoTrunc, _) => "__st_ino".into(),
        (k, true) => format!("stx_{}", k.name()),
        (k, false) => format!("st_{}", k.name()),
    }
}

/// The fields to compare in `l`: every one a stat-like struct may have (`rdev_major` and
/// `rdev_minor` are statx's), or a universal layout's own (statx: those a record changes).
fn kinds(l: &Layout) -> Vec<FieldKind> {
    if l.universal {
        l.fields.iter().map(|f| f.kind).collect()
    } else {
        FieldKind::all().filter(|k| !matches!(k, FieldKind::RdevMajor | FieldKind::RdevMinor)).collect()
    }
}

/// The C struct the kernel writes for a struct name of the ABI file, when it is not the
/// header's struct of that name.
fn c_struct<'a>(abi: &str, name: &'a str) -> &'a str {
    match (abi, name) {
        // arch/sparc/kernel/syscalls/syscall.tbl: oldlstat is sys_newlstat (compat_sys_newlstat).
        ("sparc" | "sparc64", "__old_kernel_stat") => "stat",
        _ => name,
    }
}

/// A member the header has and the kernel leaves zero, so the layout rightly lacks it.
fn unfilled(abi: &str, layout: &Layout, kind: FieldKind, broken_st_ino: bool) -> Option<&'static str> {
    match (abi, layout.struct_name.as_str(), kind) {
        // fs/stat.c fills __st_ino only under STAT64_HAS_BROKEN_ST_INO (parisc's stays zero).
        (_, _, FieldKind::InoTrunc) if !broken_st_ino => Some("STAT64_HAS_BROKEN_ST_INO is not defined"),
        // arch/s390/kernel/compat_linux.c: struct stat64_emu31 has padding where the uapi
        // struct has the *_nsec words, and cp_stat64 leaves it zero.
        ("s390", "stat64", FieldKind::AtimeNsec | FieldKind::MtimeNsec | FieldKind::CtimeNsec) => {
            Some("s390's compat cp_stat64 leaves it zero")
        }
        _ => None,
    }
}

/// One value asked of the compiler.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ask {
    /// `sizeof(struct s)`.
    Size(String),
    /// `offsetof(struct s, m)`.
    Offset(String, String),
    /// `sizeof(((struct s *)0)->m)`.
    MemberSize(String, String),
    /// Whether `STAT64_HAS_BROKEN_ST_INO` is defined.
    BrokenStIno,
}

impl Ask {
    fn expr(&self) -> String {
        match self {
            Ask::Size(s) => format!("sizeof(struct {s})"),
            Ask::Offset(s, m) => format!("__builtin_offsetof(struct {s}, {m})"),
            Ask::MemberSize(s, m) => format!("sizeof(((struct {s} *)0)->{m})"),
            Ask::BrokenStIno => "ROOTEMU_BROKEN_ST_INO".into(),
        }
    }
}

const PRELUDE: &str = "#include <asm/stat.h>\n#include <linux/stat.h>\n\
    #ifdef STAT64_HAS_BROKEN_ST_INO\n#define ROOTEMU_BROKEN_ST_INO 1\n#else\n#define ROOTEMU_BROKEN_ST_INO 0\n#endif\n";

/// The asm-generic `asm/*.h` an architecture without its own gets from the kernel build,
/// in a directory of `abi`'s own (targets compile in parallel).
fn generic_headers(dir: &Path, abi: &str) -> PathBuf {
    let asm = dir.join(abi).join("asm");
    std::fs::create_dir_all(&asm).unwrap();
    for h in ["stat.h", "bitsperlong.h", "types.h", "posix_types.h"] {
        std::fs::write(asm.join(h), format!("#include <asm-generic/{h}>\n")).unwrap();
    }
    dir.join(abi)
}

fn compile(target: &Target, dir: &Path, name: &str, c: &str, syntax_only: bool) -> std::process::Output {
    let file = dir.join(format!("{}-{name}.c", target.abi));
    std::fs::write(&file, c).unwrap();
    let mut cmd = Command::new(target.cc);
    cmd.args(target.flags);
    if target.generic {
        cmd.arg("-nostdinc").arg("-I").arg(generic_headers(dir, target.abi)).args(["-I", "/usr/include"]);
    }
    if syntax_only {
        cmd.arg("-fsyntax-only");
    } else {
        cmd.args(["-S", "-o", "-"]);
    }
    cmd.arg(&file).output().unwrap_or_else(|e| panic!("{}: cannot run {}: {e}", target.abi, target.cc))
}

/// What the compiler says of each question: `None` where the header lacks the struct or
/// member (probed first: gcc names the line of each missing one).
fn ask(target: &Target, dir: &Path, asks: &[Ask]) -> BTreeMap<Ask, Option<u64>> {
    let first_line = PRELUDE.lines().count() + 1;
    let mut probe = String::from(PRELUDE);
    for (i, a) in asks.iter().enumerate() {
        probe.push_str(&format!("extern char rootemu_probe{i}[{} + 1];\n", a.expr()));
    }
    let out = compile(target, dir, "probe", &probe, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = format!("{}-probe.c:", target.abi);
    let mut missing = vec![false; asks.len()];
    for l in stderr.lines().filter(|l| l.contains(": error: ")) {
        let line = l.split_once(&file).and_then(|(_, r)| r.split(':').next()).and_then(|n| n.parse::<usize>().ok());
        match line.and_then(|n| n.checked_sub(first_line)).filter(|i| *i < asks.len()) {
            Some(i) => missing[i] = true,
            None => panic!("{}: {} cannot compile the headers:\n{stderr}", target.abi, target.cc),
        }
    }
    let present: Vec<&Ask> = asks.iter().zip(&missing).filter(|(_, m)| !**m).map(|(a, _)| a).collect();
    // Each value + 1: gcc writes a run of zeros as `.zero`, never a zero as a number.
    let mut c = String::from(PRELUDE);
    c.push_str("const unsigned int rootemu_values[] = {\n");
    for a in &present {
        c.push_str(&format!("  1 + {},\n", a.expr()));
    }
    c.push_str("  1\n};\n");
    let out = compile(target, dir, "values", &c, false);
    let asm = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {} -S failed:\n{}", target.abi, target.cc, String::from_utf8_lossy(&out.stderr));
    let values: Vec<u64> = asm
        .lines()
        .skip_while(|l| !l.starts_with("rootemu_values:"))
        .skip(1)
        .map_while(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .collect();
    assert_eq!(values.len(), present.len() + 1, "{}: cannot read the values back from:\n{asm}", target.abi);
    let mut got: BTreeMap<Ask, Option<u64>> = asks.iter().map(|a| (a.clone(), None)).collect();
    for (a, v) in present.into_iter().zip(values) {
        got.insert(a.clone(), Some(v - 1));
    }
    got
}

/// The layouts to check on `abi`: (struct name in the ABI file, layout), universal ones too.
fn layouts_of<'t>(tables: &'t Tables, abi: &str) -> Vec<(String, &'t Layout)> {
    let a = tables.get(abi).unwrap_or_else(|| panic!("no ABI {abi} in the tables"));
    let mut out: Vec<(String, &Layout)> = a.structs.iter().map(|(s, l)| (s.clone(), &tables.shared.layouts[l])).collect();
    out.extend(tables.shared.layouts.values().filter(|l| l.universal).map(|l| (l.struct_name.clone(), l)));
    out
}

#[derive(Default)]
struct Report {
    cells: usize,
    bad: Vec<String>,
    /// (layout, why a member the header has is rightly absent).
    unfilled: Vec<String>,
}

/// Checks every layout `abi` names against what `target.cc` makes of the headers.
fn check(tables: &Tables, target: &Target, dir: &Path) -> Report {
    let abi = target.abi;
    let layouts = layouts_of(tables, abi);
    let mut asks = vec![Ask::BrokenStIno];
    for (name, l) in &layouts {
        let s = c_struct(abi, name).to_string();
        asks.push(Ask::Size(s.clone()));
        for k in kinds(l) {
            let m = member(k, l.universal);
            asks.push(Ask::Offset(s.clone(), m.clone()));
            asks.push(Ask::MemberSize(s.clone(), m));
        }
    }
    asks.sort();
    asks.dedup();
    let got = ask(target, dir, &asks);
    let broken_st_ino = got[&Ask::BrokenStIno] == Some(1);
    let mut r = Report::default();
    for (name, l) in &layouts {
        let s = c_struct(abi, name);
        let what = format!("{abi}: layout `{}` (struct {s})", l.name);
        r.cells += 1;
        match got[&Ask::Size(s.to_string())] {
            None => {
                r.bad.push(format!("{what}: the header has no struct {s}"));
                continue;
            }
            Some(h) if h != u64::from(l.size) => r.bad.push(format!("{what}: sizeof: table {}, header {h}", l.size)),
            Some(_) => {}
        }
        for k in kinds(l) {
            let m = member(k, l.universal);
            let at = got[&Ask::Offset(s.to_string(), m.clone())];
            let size = got[&Ask::MemberSize(s.to_string(), m.clone())];
            let ours = l.fields.iter().find(|f| f.kind == k);
            let field = format!("{what} field `{}` ({m})", k.name());
            match (ours, at.zip(size)) {
                (None, None) => {}
                (Some(f), None) => {
                    r.cells += 1;
                    r.bad.push(format!("{field}: table at {} size {}, but the header has no such member", f.at, f.size));
                }
                (None, Some((at, size))) => match unfilled(abi, l, k, broken_st_ino) {
                    Some(why) => r.unfilled.push(format!("{} {m} ({why})", l.name)),
                    None => {
                        r.cells += 1;
                        r.bad.push(format!("{field}: missing from the table, header at {at} size {size}"));
                    }
                },
                (Some(f), Some((at, size))) => {
                    r.cells += 2;
                    if u64::from(f.at) != at {
                        r.bad.push(format!("{field}: offset: table {}, header {at}", f.at));
                    }
                    if u64::from(f.size) != size {
                        r.bad.push(format!("{field}: size: table {}, header {size}", f.size));
                    }
                    if k == FieldKind::InoTrunc && !broken_st_ino {
                        r.bad.push(format!("{field}: in the table, but the kernel fills it only under STAT64_HAS_BROKEN_ST_INO"));
                    }
                }
            }
        }
    }
    r
}

/// The targets whose compiler is here (under CI every one must be).
fn available() -> Vec<&'static Target> {
    let mut out = Vec::new();
    for t in TARGETS {
        if need(t.cc, "Debian cross gcc for the struct-layout oracle") {
            out.push(t);
        }
    }
    out
}

/// Runs the oracle on `tables`: (markdown report, every disagreement).
fn run(tables: &Tables, tag: &str) -> (String, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("rootemu-oracle-structs-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = available();
    let reports = par_map(&targets, 2, |t| check(tables, t, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    let mut summary = String::from(
        "## Oracle: struct layouts against the cross toolchains' uapi headers (gcc -S)\n\n\
         | ABI | layouts | cells | disagreements | compiler | note |\n|---|---|---:|---:|---|---|\n",
    );
    let mut bad = Vec::new();
    let mut checked: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unfilled = Vec::new();
    let mut cells = 0;
    for (t, r) in targets.iter().zip(reports) {
        let names: Vec<String> = layouts_of(tables, t.abi).iter().map(|(_, l)| l.name.clone()).collect();
        for (_, l) in layouts_of(tables, t.abi) {
            checked.entry(l.name.as_str()).or_default().push(t.abi);
        }
        summary.push_str(&format!(
            "| {} | {} | {} | {} | `{} {}` | {} |\n",
            t.abi,
            names.join(", "),
            r.cells,
            r.bad.len(),
            t.cc,
            t.flags.join(" "),
            t.note
        ));
        cells += r.cells;
        bad.extend(r.bad);
        unfilled.extend(r.unfilled.into_iter().map(|u| format!("{}: {u}", t.abi)));
    }
    summary.push_str(&format!("\n{cells} cells compared, {} disagreements\n", bad.len()));
    unfilled.sort();
    unfilled.dedup();
    summary.push_str(&format!("\nHeader members the kernel leaves zero (rightly not in the layout): {}\n", unfilled.join("; ")));
    let unchecked: Vec<String> = tables
        .shared
        .layouts
        .keys()
        .filter(|l| !checked.contains_key(l.as_str()))
        .map(|l| {
            let users: Vec<&str> = tables.abis.iter().filter(|a| a.structs.values().any(|v| v == l)).map(|a| a.name.as_str()).collect();
            format!("{l} (used by {})", if users.is_empty() { "no ABI".to_string() } else { users.join(", ") })
        })
        .collect();
    summary.push_str(&format!(
        "\nLayouts no compiler here checks: {}\n",
        if unchecked.is_empty() { "none".into() } else { unchecked.join("; ") }
    ));
    (summary, bad)
}

#[test]
fn every_struct_layout_agrees_with_the_cross_headers() {
    let t0 = std::time::Instant::now();
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let (mut summary, bad) = run(&tables, "bundled");
    summary.push_str(&format!("\n(in {:.1?})\n", t0.elapsed()));
    write_report("structs", &summary);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_wrong_offset_a_wrong_size_and_a_missing_field_are_caught() {
    let ccs = ["i686-linux-gnu-gcc", "aarch64-linux-gnu-gcc", "riscv64-linux-gnu-gcc", "powerpc-linux-gnu-gcc"];
    if !ccs.iter().all(|cc| need(cc, "Debian cross gcc for the struct-layout oracle")) {
        return;
    }
    let layouts = "shared/struct-layouts.yaml";
    let edits = [
        // stat.generic64 (aarch64, riscv64): st_blksize moved onto the padding after it.
        (
            layouts,
            "      blksize: {at: 56, size: 4}\n      blocks: {at: 64, size: 8}\n      atime: {at: 72, size: 8}\n",
            "      blksize: {at: 60, size: 4}\n      blocks: {at: 64, size: 8}\n      atime: {at: 72, size: 8}\n",
        ),
        // stat.ppc: a 4-byte st_nlink (compat_stat's is 2 bytes).
        (
            layouts,
            "      nlink: {at: 12, size: 2}\n      uid: {at: 16, size: 4}\n",
            "      nlink: {at: 12, size: 4}\n      uid: {at: 16, size: 4}\n",
        ),
        // stat64.i386 (the first layout with it): the kernel's truncated __st_ino forgotten.
        (layouts, "      ino_trunc: {at: 12, size: 4}\n", ""),
    ];
    let dir = broken_tables("oracle-structs", &edits);
    let broken = Tables::load_dir(&dir).unwrap();
    let (_, bad) = run(&broken, "broken");
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(
        bad,
        [
            "i386: layout `stat64.i386` (struct stat64) field `ino_trunc` (__st_ino): missing from the table, header at 12 size 4",
            "aarch64: layout `stat.generic64` (struct stat) field `blksize` (st_blksize): offset: table 60, header 56",
            "ppc: layout `stat.ppc` (struct stat) field `nlink` (st_nlink): size: table 4, header 2",
            "riscv64: layout `stat.generic64` (struct stat) field `blksize` (st_blksize): offset: table 60, header 56",
        ],
        "the oracle must name each broken cell, and nothing else"
    );
}
