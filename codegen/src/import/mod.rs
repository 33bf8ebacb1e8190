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
}

impl Imported {
    fn name_of(&self, nr: u32) -> Option<&str> {
        self.syscalls.iter().find(|(_, v)| **v == nr).map(|(k, _)| k.as_str())
    }

    fn insert(&mut self, name: &str, nr: u32, unimplemented: bool) {
        self.syscalls.insert(name.to_string(), nr);
        if unimplemented {
            self.unimplemented.insert(name.to_string());
        }
    }

    fn remove(&mut self, name: &str) -> Option<(u32, bool)> {
        let nr = self.syscalls.remove(name)?;
        Some((nr, self.unimplemented.remove(name)))
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
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kernel {}: {} ABIs", self.kernel, self.abis.len())?;
        let w = self.abis.iter().map(|a| a.abi.len()).max().unwrap_or(3).max(3);
        let fw = self.abis.iter().map(|a| a.file.len()).max().unwrap_or(4).max(4);
        writeln!(f, "{:w$}  {:>5}  {:>5}  {:fw$}  tags", "ABI", "calls", "ni", "file")?;
        for a in &self.abis {
            writeln!(f, "{:w$}  {:>5}  {:>5}  {:fw$}  [{}]", a.abi, a.syscalls, a.unimplemented, a.file, a.tags.join(", "))?;
        }
        Ok(())
    }
}

/// Imports every ABI of `tables` from the kernel tree `kernel` and writes
/// `<out>/<abi>.yaml`. Nothing is written unless every ABI imports and validates.
pub fn import_tree(kernel: &Path, tables: &Path, out: &Path) -> Result<ImportReport, Errors> {
    let release = kernel_release(kernel)?;
    let headers = read_headers(tables)?;
    let parsed = Tables::parse(headers.iter().map(|(p, h)| (p.as_path(), h.as_str())))?;
    let mut errors = Errors::default();
    let mut outputs = Vec::new();
    for abi in &parsed.abis {
        let Some((_, header)) = headers.iter().find(|(p, _)| *p == abi.file) else { continue };
        let imported = import_abi(kernel, abi, &mut errors);
        let text = write::abi_file(header, &release, &imported);
        outputs.push((out.join(format!("{}.yaml", abi.name)), text, imported));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The written files must load: numbers within nr_limit, no duplicates.
    Tables::parse(outputs.iter().map(|(p, t, _)| (p.as_path(), t.as_str())))?;
    std::fs::create_dir_all(out).map_err(|e| Diagnostic::at(out, None, format!("cannot create output directory: {e}")))?;
    let mut abis = Vec::new();
    for ((path, text, imp), abi) in outputs.into_iter().zip(&parsed.abis) {
        std::fs::write(&path, &text).map_err(|e| Diagnostic::at(&path, None, format!("cannot write: {e}")))?;
        abis.push(AbiReport {
            abi: abi.name.clone(),
            file: imp.file,
            tags: imp.tags,
            syscalls: imp.syscalls.len(),
            unimplemented: imp.unimplemented.len(),
            written: path,
        });
    }
    Ok(ImportReport { kernel: release, abis })
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

/// The header of every `*.yaml` of `dir`: the file up to its generated part.
fn read_headers(dir: &Path) -> Result<Vec<(PathBuf, String)>, Errors> {
    let texts = crate::table::read_dir_texts(dir)?;
    Ok(texts.into_iter().map(|(f, t)| (f, write::header_of(&t))).collect())
}

/// Reads one ABI's numbers as its recipe says.
fn import_abi(kernel: &Path, abi: &Abi, errors: &mut Errors) -> Imported {
    let r = &abi.import;
    let mut out = Imported::default();
    if let Some(g) = &r.generic {
        import_generic(kernel, g, &mut out, errors);
        return out;
    }
    let Some(table) = &r.table else { return out };
    out.file = table.clone();
    out.tags = r.tags.clone();
    let path = kernel.join(table);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let rows = tbl::parse(&path, &text, errors);
            tbl::select(&path, &rows, &r.tags, &mut out, errors);
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
                out.insert(&name, nr, false);
            }
        }
    }
    out
}

/// An asm-generic ABI: `scripts/syscall.tbl` and Makefile tags when the arch has a
/// `Makefile.syscalls` (6.11+), asm-generic `unistd.h` through the arch's uapi header otherwise.
fn import_generic(kernel: &Path, g: &GenericRecipe, out: &mut Imported, errors: &mut Errors) {
    if kernel.join(&g.makefile).is_file() {
        let mut vars = makefile::Vars::default();
        for m in ["scripts/Makefile.asm-headers", g.makefile.as_str()] {
            let p = kernel.join(m);
            match std::fs::read_to_string(&p) {
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
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let rows = tbl::parse(&path, &text, errors);
                tbl::select(&path, &rows, &vars.tags, out, errors);
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
                Some(nr) if out.name_of(nr).is_none() => out.insert(name, nr, freed.get(&nr).copied().unwrap_or(false)),
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
                    out.insert(name, nr, ni);
                }
            },
            None => errors.push(Diagnostic::at(&p, Some(*line), format!("cannot evaluate `{m}` to a number"))),
        }
    }
}

#[cfg(test)]
mod tests;
