//! `rootemu tables import`: regenerates the `source`, `syscalls` and `unimplemented`
//! parts of every ABI file from a kernel source tree, keeping each file's reviewed
//! header (`abi` .. `import`, with its comments) byte for byte.
//!
//! The importer holds no per-ABI knowledge: which file, which tags, which headers all
//! come from the ABI file's `import` recipe and from the tree itself (its
//! `scripts/Makefile.asm-headers` and the arch's `Makefile.syscalls` on 6.11+ trees,
//! asm-generic `unistd.h` with the arch's uapi `unistd.h` before that).

mod diff;
mod makefile;
mod tbl;
mod unistd;
mod write;

pub use diff::{AbiDiff, TablesDiff, diff};

use crate::diag::{Diagnostic, Errors};
use crate::table::{Abi, GenericRecipe, Tables};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The numbers read for one ABI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Imported {
    /// Tree-relative file the numbers were read from.
    pub file: String,
    /// The tags (or, before 6.11, the settings) applied.
    pub tags: Vec<String>,
    /// Name -> table number.
    pub syscalls: BTreeMap<String, u32>,
    /// Names numbered without an entry point.
    pub unimplemented: BTreeSet<String>,
    /// Names whose entry point takes 16-bit uids and gids (`sys_chown16`).
    pub id16: BTreeSet<String>,
    /// Name -> where its number was read (tree-relative file, 1-based line).
    pub origin: BTreeMap<String, (String, usize)>,
    /// Table number -> name.
    by_nr: BTreeMap<u32, String>,
}

impl Imported {
    fn name_of(&self, nr: u32) -> Option<&str> {
        self.by_nr.get(&nr).map(String::as_str)
    }

    fn insert(&mut self, name: &str, nr: u32, unimplemented: bool, origin: (String, usize)) {
        if let Some(old) = self.syscalls.insert(name.to_string(), nr) {
            self.by_nr.remove(&old);
        }
        self.by_nr.insert(nr, name.to_string());
        self.origin.insert(name.to_string(), origin);
        if unimplemented {
            self.unimplemented.insert(name.to_string());
        }
    }

    fn remove(&mut self, name: &str) -> Option<(u32, bool)> {
        let nr = self.syscalls.remove(name)?;
        self.by_nr.remove(&nr);
        self.origin.remove(name);
        self.id16.remove(name);
        Some((nr, self.unimplemented.remove(name)))
    }

    /// The numbers of an ABI file as imported earlier (to keep them).
    fn from_abi(abi: &Abi) -> Imported {
        let source = abi.source.as_ref();
        let mut out = Imported {
            file: source.map(|s| s.file.clone()).unwrap_or_default(),
            tags: source.map(|s| s.tags.clone()).unwrap_or_default(),
            ..Imported::default()
        };
        for (name, &nr) in &abi.syscalls {
            let line = abi.line_of(name).unwrap_or(0);
            out.insert(name, nr, abi.unimplemented.contains(name), (abi.file.display().to_string(), line));
        }
        out.id16 = abi.id16.iter().cloned().collect();
        out
    }
}

/// Syscalls whose renumbering an import accepts (Linux never renumbers a syscall of a
/// living ABI, so any other renumbering refuses the import).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `(abi, syscall)` pairs; `*` stands for every syscall (or every ABI).
    pub allow_renumber: Vec<(String, String)>,
}

impl ImportOptions {
    fn allows(&self, abi: &str, name: &str) -> bool {
        self.allow_renumber.iter().any(|(a, n)| (a == abi || a == "*") && (n == name || n == "*"))
    }
}

/// What one import did, per ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Kernel release of the tree (`6.12.117`).
    pub kernel: String,
    /// One entry per ABI, sorted by name.
    pub abis: Vec<AbiReport>,
}

/// One ABI's import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbiReport {
    /// ABI name.
    pub abi: String,
    /// Tree-relative file the numbers came from.
    pub file: String,
    /// Tags (or pre-6.11 settings) applied.
    pub tags: Vec<String>,
    /// Number of syscalls, unimplemented ones included.
    pub syscalls: usize,
    /// How many of them have no entry point.
    pub unimplemented: usize,
    /// The file written.
    pub written: PathBuf,
    /// Set when the tree does not provide this ABI: its numbers were kept.
    pub kept: Option<Kept>,
}

/// An ABI the imported tree does not provide, kept from an earlier import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Kernel release the kept numbers came from.
    pub from: String,
    /// What in the tree shows that the ABI is gone.
    pub reason: String,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kernel {}: {} ABIs", self.kernel, self.abis.len())?;
        let w = self.abis.iter().map(|a| a.abi.len()).max().unwrap_or(3).max(3);
        let fw = self.abis.iter().map(|a| a.file.len()).max().unwrap_or(4).max(4);
        writeln!(f, "{:w$}  {:>5}  {:>5}  {:fw$}  tags", "ABI", "calls", "ni", "file")?;
        for a in &self.abis {
            let kept = a.kept.as_ref().map_or(String::new(), |k| format!("  (kept from {})", k.from));
            writeln!(f, "{:w$}  {:>5}  {:>5}  {:fw$}  [{}]{kept}", a.abi, a.syscalls, a.unimplemented, a.file, a.tags.join(", "))?;
        }
        for a in &self.abis {
            if let Some(k) = &a.kept {
                writeln!(f, "{}: not in Linux {}: {}; numbers kept from Linux {}", a.abi, self.kernel, k.reason, k.from)?;
            }
        }
        Ok(())
    }
}

/// Imports every ABI of `tables` from the kernel tree `kernel` and writes
/// `<out>/<abi>.yaml`. Nothing is written unless every ABI imports and validates.
///
/// An ABI the tree no longer provides (its arch is gone, or its table no longer has rows
/// for it and the arch's syscall Makefile generates no header for it) keeps the numbers
/// of its earlier import, with that kernel as their source and `not_in` set to this one.
/// A syscall whose number differs from the one in `tables` is an error naming both
/// kernels, unless `opts` accepts it.
pub fn import_tree(kernel: &Path, tables: &Path, out: &Path, opts: &ImportOptions) -> Result<ImportReport, Errors> {
    let release = kernel_release(kernel)?;
    let texts = crate::files::yaml_texts(tables)?;
    // The shared files (struct layouts the headers name) load with every set of ABI files.
    let (shared, unread) = crate::table::shared_texts(tables);
    unread.into_result(())?;
    let with_shared = |files: &[(PathBuf, String)]| -> Vec<(PathBuf, String)> { files.iter().chain(&shared).cloned().collect() };
    let headers: Vec<(PathBuf, String)> = texts.iter().map(|(p, t)| (p.clone(), write::header_of(t))).collect();
    let parsed = Tables::parse(with_shared(&headers).iter().map(|(p, h)| (p.as_path(), h.as_str())))?;
    // The numbers imported before: what a renumbering is checked against and a gone ABI keeps.
    // Validation errors there (a hand-edited duplicate) are replaced by the import; a file
    // that does not parse at all leaves nothing to check against: refused.
    let existing = Tables::parse_lenient(with_shared(&texts).iter().map(|(p, t)| (p.as_path(), t.as_str())));
    if !existing.complete {
        return Err(existing.errors);
    }
    let existing = existing.tables;
    let mut errors = Errors::default();
    let mut outputs = Vec::new();
    for abi in &parsed.abis {
        let Some((_, header)) = headers.iter().find(|(p, _)| *p == abi.file) else { continue };
        let old = existing.get(&abi.name).filter(|o| o.source.is_some());
        let (imported, kept) = match import_abi(kernel, abi, &parsed, &mut errors) {
            Outcome::Imported(imp) => {
                if let Some(old) = old {
                    check_renumbering(kernel, &release, old, &imp, opts, &mut errors);
                }
                (imp, None)
            }
            Outcome::Gone(reason) => match old {
                Some(old) => (Imported::from_abi(old), Some(Kept { from: old.kernel().to_string(), reason })),
                None => {
                    errors.push(Diagnostic::at(
                        &abi.file,
                        None,
                        format!("ABI `{}`: not in Linux {release}: {reason}; and no earlier import of it to keep", abi.name),
                    ));
                    continue;
                }
            },
        };
        let text = match &kept {
            Some(k) => write::abi_file(header, &k.from, &imported, Some(&release)),
            None => write::abi_file(header, &release, &imported, None),
        };
        outputs.push((out.join(format!("{}.yaml", abi.name)), text, imported, kept, abi));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The written files must load: numbers within nr_limit, no duplicates.
    let written: Vec<(PathBuf, String)> = outputs.iter().map(|(p, t, ..)| (p.clone(), t.clone())).collect();
    Tables::parse(with_shared(&written).iter().map(|(p, t)| (p.as_path(), t.as_str())))?;
    std::fs::create_dir_all(out).map_err(|e| Diagnostic::at(out, None, format!("cannot create output directory: {e}")))?;
    // Another output directory gets the shared files too, so that it loads on its own.
    for (path, text) in &shared {
        let dst = out.join(path.strip_prefix(tables).unwrap_or(path));
        if dst != *path {
            let dir = dst.parent().unwrap_or(out);
            std::fs::create_dir_all(dir).map_err(|e| Diagnostic::at(dir, None, format!("cannot create directory: {e}")))?;
            std::fs::write(&dst, text).map_err(|e| Diagnostic::at(&dst, None, format!("cannot write: {e}")))?;
        }
    }
    let mut abis = Vec::new();
    for (path, text, imp, kept, abi) in outputs {
        std::fs::write(&path, &text).map_err(|e| Diagnostic::at(&path, None, format!("cannot write: {e}")))?;
        abis.push(AbiReport {
            abi: abi.name.clone(),
            file: imp.file,
            tags: imp.tags,
            syscalls: imp.syscalls.len(),
            unimplemented: imp.unimplemented.len(),
            written: path,
            kept,
        });
    }
    Ok(ImportReport { kernel: release, abis })
}

/// Errors for every syscall of `imp` whose number differs from `old`'s, unless accepted.
fn check_renumbering(kernel: &Path, release: &str, old: &Abi, imp: &Imported, opts: &ImportOptions, errors: &mut Errors) {
    for (name, &nr) in &imp.syscalls {
        let Some(&was) = old.syscalls.get(name) else { continue };
        if was == nr || opts.allows(&old.name, name) {
            continue;
        }
        let at = imp.origin.get(name).map_or(String::new(), |(f, l)| format!(" ({}:{l})", kernel.join(f).display()));
        errors.push(Diagnostic::at(
            &old.file,
            old.line_of(name),
            format!(
                "ABI `{}`: syscall `{name}` is {was} in Linux {} (this file) but {nr} in Linux {release}{at}; Linux never renumbers a syscall, so the import is refused unless the renumbering of `{}:{name}` is explicitly accepted",
                old.name,
                old.kernel(),
                old.name
            ),
        ));
    }
}

/// What a tree holds for one ABI.
enum Outcome {
    /// Its numbers.
    Imported(Imported),
    /// The tree no longer provides it, for this reason.
    Gone(String),
}

/// Reads a file of the kernel tree (regular, at most 64 MiB).
fn read_tree_file(path: &Path) -> Result<String, String> {
    let bytes = crate::files::read_regular(path, 64 << 20)?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 ({e})"))
}

/// `arch/<name>` of a tree-relative path under `arch/`.
fn arch_dir(rel: &str) -> Option<String> {
    let mut parts = rel.split('/');
    (parts.next() == Some("arch")).then(|| parts.next().map(|a| format!("arch/{a}"))).flatten()
}

/// `VERSION.PATCHLEVEL.SUBLEVEL` + `EXTRAVERSION` of the tree's top Makefile.
pub fn kernel_release(kernel: &Path) -> Result<String, Errors> {
    let path = kernel.join("Makefile");
    let text =
        std::fs::read_to_string(&path).map_err(|e| Diagnostic::at(&path, None, format!("cannot read the kernel's top Makefile: {e}")))?;
    let var = |name: &str| {
        text.lines().take(20).find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    match (var("VERSION"), var("PATCHLEVEL"), var("SUBLEVEL")) {
        (Some(v), Some(p), Some(s)) if !v.is_empty() && !p.is_empty() => {
            let mut r = format!("{v}.{p}");
            if !s.is_empty() {
                r.push_str(&format!(".{s}"));
            }
            r.push_str(&var("EXTRAVERSION").unwrap_or_default());
            Ok(r)
        }
        _ => Err(Diagnostic::at(&path, None, "no VERSION/PATCHLEVEL/SUBLEVEL: not a kernel tree's top Makefile").into()),
    }
}

/// Reads one ABI's numbers as its recipe says, or finds that the tree no longer provides it.
fn import_abi(kernel: &Path, abi: &Abi, all: &Tables, errors: &mut Errors) -> Outcome {
    let r = &abi.import;
    let recipe_file = r.table.as_deref().or(r.generic.as_ref().map(|g| g.makefile.as_str())).unwrap_or_default();
    if let Some(arch) = arch_dir(recipe_file).filter(|a| !kernel.join(a).is_dir()) {
        return Outcome::Gone(format!("the tree has no {arch}"));
    }
    let mut out = Imported::default();
    if let Some(g) = &r.generic {
        import_generic(kernel, g, &mut out, errors);
        return Outcome::Imported(out);
    }
    let Some(table) = &r.table else { return Outcome::Imported(out) };
    out.file = table.clone();
    out.tags = r.tags.clone();
    let path = kernel.join(table);
    match read_tree_file(&path) {
        Ok(text) => {
            let rows = tbl::parse(&path, &text, errors);
            if let Some(reason) = gone(kernel, abi, all, table, &rows) {
                return Outcome::Gone(reason);
            }
            tbl::select(&path, &rows, &r.tags, r.compat_entry, &mut out, errors);
            if rows.iter().all(|row| !r.tags.contains(&row.abi)) && !rows.is_empty() {
                errors.push(Diagnostic::at(&path, None, format!("ABI `{}`: no row has one of the tags [{}]", abi.name, r.tags.join(", "))));
            }
        }
        Err(e) => errors.push(Diagnostic::at(&path, None, format!("ABI `{}`: cannot read table: {e}", abi.name))),
    }
    if let Some(h) = &r.private_header {
        let hp = kernel.join(h);
        for (name, nr, line) in unistd::private_calls(kernel, h, errors) {
            if let Some(&n) = out.syscalls.get(&name) {
                errors.push(Diagnostic::at(&hp, Some(line), format!("private call `{name}` ({nr:#x}) is also in the table as {n}")));
            } else if let Some(other) = out.name_of(nr) {
                errors.push(Diagnostic::at(
                    &hp,
                    Some(line),
                    format!("private call `{name}` has number {nr:#x}, already used by `{other}`"),
                ));
            } else {
                out.insert(&name, nr, false, (h.clone(), line));
            }
        }
    }
    Outcome::Imported(out)
}

/// Why `table` (read by `abi` and maybe by other ABIs of `all`) no longer describes `abi`,
/// judged from the tree alone: the tags that set `abi` apart from the other ABIs of the
/// file tag no row any more (s390's `32` in Linux 7.x, where every row is `common`), and
/// the Makefile next to the table generates no `unistd_<tag>.h` (or `unistd-<tag>.h`)
/// for them. A file read by one ABI only, or whose distinguishing tags still tag rows,
/// describes it.
fn gone(kernel: &Path, abi: &Abi, all: &Tables, table: &str, rows: &[tbl::Row]) -> Option<String> {
    let others: BTreeSet<&str> = all
        .abis
        .iter()
        .filter(|o| o.import.table.as_deref() == Some(table) && o.import.tags != abi.import.tags)
        .flat_map(|o| o.import.tags.iter().map(String::as_str))
        .collect();
    if others.is_empty() {
        return None;
    }
    let own: Vec<&str> = abi.import.tags.iter().map(String::as_str).filter(|t| !others.contains(t)).collect();
    let present: BTreeSet<&str> = rows.iter().map(|r| r.abi.as_str()).collect();
    if own.is_empty() || own.iter().any(|t| present.contains(t)) {
        return None;
    }
    let dir = Path::new(table).parent().unwrap_or(Path::new(""));
    let makefile = dir.join("Makefile");
    let text = read_tree_file(&kernel.join(&makefile)).unwrap_or_default();
    let words: BTreeSet<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == '/' || c == ':' || c == '='))
        .collect();
    if own.iter().any(|t| words.contains(format!("unistd_{t}.h").as_str()) || words.contains(format!("unistd-{t}.h").as_str())) {
        return None;
    }
    let tags = |v: &mut dyn Iterator<Item = &str>| v.map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
    Some(format!(
        "{table} has no rows tagged {} (its tags: {}) and {} generates no {}",
        tags(&mut own.iter().copied()),
        tags(&mut present.iter().copied()),
        makefile.display(),
        own.iter().map(|t| format!("unistd_{t}.h")).collect::<Vec<_>>().join(" or ")
    ))
}

/// An asm-generic ABI: `scripts/syscall.tbl` and Makefile tags when the arch has a
/// `Makefile.syscalls` (6.11+), asm-generic `unistd.h` through the arch's uapi header otherwise.
fn import_generic(kernel: &Path, g: &GenericRecipe, out: &mut Imported, errors: &mut Errors) {
    if kernel.join(&g.makefile).is_file() {
        let mut vars = makefile::Vars::default();
        for m in ["scripts/Makefile.asm-headers", g.makefile.as_str()] {
            let p = kernel.join(m);
            match read_tree_file(&p) {
                Ok(t) => makefile::apply(&mut vars, &p, &t, g.bits, errors),
                Err(e) => errors.push(Diagnostic::at(&p, None, format!("cannot read: {e}"))),
            }
        }
        let Some(table) = vars.table.clone() else {
            let p = kernel.join("scripts/Makefile.asm-headers");
            return errors.push(Diagnostic::at(&p, None, "no `syscalltbl` set: cannot find the generic syscall table"));
        };
        out.file = table.clone();
        out.tags = vars.tags.clone();
        let path = kernel.join(&table);
        match read_tree_file(&path) {
            Ok(text) => {
                let rows = tbl::parse(&path, &text, errors);
                tbl::select(&path, &rows, &vars.tags, false, out, errors);
            }
            Err(e) => return errors.push(Diagnostic::at(&path, None, format!("cannot read generic syscall table: {e}"))),
        }
        // The uapi header may rename numbers after including the generated list
        // (csky, hexagon: `#define __NR_sync_file_range2 84` + `#undef __NR_sync_file_range`).
        let mut cpp = unistd::Cpp::new(g.bits);
        cpp.run(kernel, &g.uapi, errors);
        let mut freed = BTreeMap::new();
        for u in &cpp.undefined {
            if let Some((nr, ni)) = u.strip_prefix("__NR_").and_then(|n| out.remove(n)) {
                freed.insert(nr, ni);
            }
        }
        for (m, (file, line)) in &cpp.defined_at {
            let Some(name) = m.strip_prefix("__NR_") else { continue };
            if out.syscalls.contains_key(name) || !cpp.macros.contains_key(m) {
                continue;
            }
            match cpp.value(m).and_then(|v| u32::try_from(v).ok()) {
                Some(nr) if out.name_of(nr).is_none() => {
                    out.insert(name, nr, freed.get(&nr).copied().unwrap_or(false), (file.clone(), *line))
                }
                Some(_) => {} // an alias of a numbered call
                None => errors.push(Diagnostic::at(&kernel.join(file), Some(*line), format!("cannot evaluate `{m}` to a number"))),
            }
        }
        return;
    }
    let mut cpp = unistd::Cpp::new(g.bits);
    cpp.run(kernel, &g.uapi, errors);
    out.file = cpp.files.get(1).or(cpp.files.first()).cloned().unwrap_or_default();
    out.tags = std::iter::once(format!("__BITS_PER_LONG={}", g.bits))
        .chain(cpp.macros.keys().filter(|k| k.starts_with("__ARCH_WANT_")).cloned())
        .collect();
    let mut entries: BTreeMap<u32, String> = BTreeMap::new();
    for (expr, entry, file, line) in &cpp.entries {
        match cpp.eval(expr).and_then(|v| u32::try_from(v).ok()) {
            Some(n) => {
                entries.insert(n, entry.clone());
            }
            None => errors.push(Diagnostic::at(&kernel.join(file), Some(*line), format!("cannot evaluate syscall number `{expr}`"))),
        }
    }
    // `__NR_syscalls` counts and `__NR_arch_specific_syscall` is the base of the
    // arch-private window: asm-generic's two `__NR_` macros that are no syscall.
    for (m, (file, line)) in &cpp.defined_at {
        let Some(name) = m.strip_prefix("__NR_") else { continue };
        if name == "syscalls" || name == "arch_specific_syscall" || !cpp.macros.contains_key(m) {
            continue;
        }
        let p = kernel.join(file);
        match cpp.value(m).and_then(|v| u32::try_from(v).ok()) {
            Some(nr) => match out.name_of(nr) {
                Some(other) => errors.push(Diagnostic::at(&p, Some(*line), format!("`{name}` has number {nr}, already used by `{other}`"))),
                None => {
                    let ni = entries.get(&nr).is_none_or(|e| e == "sys_ni_syscall");
                    out.insert(name, nr, ni, (file.clone(), *line));
                }
            },
            None => errors.push(Diagnostic::at(&p, Some(*line), format!("cannot evaluate `{m}` to a number"))),
        }
    }
}

#[cfg(test)]
mod tests;
