//! ABI syscall tables: one YAML file per ABI, loaded and validated.

use crate::diag::{Diagnostic, Errors};
use crate::shared::Shared;
use crate::yaml::{self, Lines};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Byte order of an ABI (and of its kernel's `struct seccomp_data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

/// Calling-convention flag folded into an AUDIT_ARCH value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    /// No flag.
    #[default]
    None,
    /// `__AUDIT_ARCH_CONVENTION_MIPS64_N32` (0x20000000).
    Mips64N32,
}

impl Convention {
    /// The ELF `e_flags` bit that marks a binary of this convention (0 for none):
    /// `EF_MIPS_ABI2` for n32.
    pub fn elf_flag(self) -> u32 {
        match self {
            Convention::None => 0,
            Convention::Mips64N32 => 0x20,
        }
    }
}

/// Where the importer finds an ABI's numbers in a kernel tree: either `table` + `tags`
/// (optionally `private_header`), or `generic`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRecipe {
    /// Path of a kernel `.tbl` file in the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Rows of `table` whose ABI column is one of these are taken.
    #[serde(default, deserialize_with = "scalars", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The ABI runs only as the compat ABI of a 64-bit kernel (s390's 31-bit one): its entry
    /// points are the table's compat column, which says whether a call is implemented.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compat_entry: bool,
    /// A uapi header whose `__ARM_NR_*` private calls are added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_header: Option<String>,
    /// An asm-generic ABI (arm64, riscv, loongarch, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<GenericRecipe>,
}

/// Deserializes a list of YAML scalars (`[common, 64]`) as strings.
pub(crate) fn scalars<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        N(u64),
    }
    let v: Vec<Scalar> = Vec::deserialize(d)?;
    Ok(v.into_iter()
        .map(|s| match s {
            Scalar::S(s) => s,
            Scalar::N(n) => n.to_string(),
        })
        .collect())
}

/// An asm-generic ABI's inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericRecipe {
    /// 32 or 64.
    pub bits: u32,
    /// `arch/<arch>/kernel/Makefile.syscalls` (6.11+ trees).
    pub makefile: String,
    /// `arch/<arch>/include/uapi/asm/unistd.h` (older trees: its `__ARCH_WANT_*`).
    pub uapi: String,
}

/// Provenance of an ABI's numbers, written by the importer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Kernel release of the tree, e.g. `6.12.117`.
    pub kernel: String,
    /// The file the numbers were read from.
    pub file: String,
    /// The ABI tags applied.
    #[serde(default, deserialize_with = "scalars")]
    pub tags: Vec<String>,
    /// The newest kernel release imported that no longer has this ABI (e.g. `7.3.4` for
    /// s390's 31-bit compat ABI): the numbers above were kept from `kernel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in: Option<String>,
}

/// One ABI file exactly as written in YAML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AbiFile {
    abi: String,
    audit_arch: u32,
    elf_machine: u32,
    bits: u32,
    endian: Endian,
    #[serde(default)]
    convention: Convention,
    #[serde(default = "yes")]
    audit_le_bit: bool,
    #[serde(default, deserialize_with = "scalars")]
    rust_arches: Vec<String>,
    #[serde(default, deserialize_with = "scalars")]
    rust_native: Vec<String>,
    #[serde(default)]
    elf_class: Option<u32>,
    #[serde(default)]
    oci_arch: Option<String>,
    #[serde(default)]
    structs: BTreeMap<String, String>,
    #[serde(default = "yes")]
    oci_arch_portable: bool,
    nr_base: u32,
    nr_limit: u32,
    import: ImportRecipe,
    source: Option<Source>,
    #[serde(default)]
    syscalls: BTreeMap<String, u32>,
    #[serde(default)]
    unimplemented: Vec<String>,
    #[serde(default)]
    id16: Vec<String>,
}

/// A validated ABI: its AUDIT_ARCH facts and every syscall name -> number. Its serde form
/// (JSON of these fields) is how the macros carry validated tables from their build script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abi {
    /// The ABI's name (also its file name), e.g. `x86_64`, `x32`, `mips64n32el`.
    pub name: String,
    /// The AUDIT_ARCH value seccomp reports.
    pub audit_arch: u32,
    /// ELF `e_machine`.
    pub elf_machine: u32,
    /// 32 or 64.
    pub bits: u32,
    /// Byte order of `struct seccomp_data` for this ABI.
    pub endian: Endian,
    /// AUDIT_ARCH convention flag.
    pub convention: Convention,
    /// Whether the kernel's AUDIT_ARCH sets the little-endian bit for this ABI (false for
    /// xtensa, microblaze and hexagon, whose constants never do).
    pub audit_le_bit: bool,
    /// Rust `target_arch` values of a binary that may run on a kernel delivering this ABI
    /// (an `x86` binary on an x86_64 kernel sees x86_64 and x32 children too); empty when
    /// Rust has no such target. `root_emulation!()` in a binary covers exactly these ABIs.
    pub rust_arches: Vec<String>,
    /// Rust `target_arch` values of a binary that runs *as* this ABI, given also its byte
    /// order (`endian`) and pointer width (`elf_class`): what `rootemu::install::running_abi()`
    /// answers on such a target. Empty when Rust has no such target.
    pub rust_native: Vec<String>,
    /// ELF class (and pointer width) of this ABI's binaries: `bits`, except for the ILP32
    /// ABIs of a 64-bit kernel ABI (x32, mips n32), whose binaries are ELFCLASS32.
    pub elf_class: u32,
    /// The architecture's name in an OCI runtime spec's `linux.seccomp.architectures`
    /// (libseccomp's, e.g. `SCMP_ARCH_X86_64`); `None` when the spec has none.
    pub oci_arch: Option<String>,
    /// C struct name -> the name of its layout in `shared/struct-layouts.yaml`, for the
    /// structs consistent mode writes (`stat`, `stat64`, ...; universal ones need no entry).
    pub structs: BTreeMap<String, String>,
    /// Whether every runtime in use takes `oci_arch` (false: older ones such as runc 1.1
    /// reject the name, so exports list it only when the ABI is asked for by name).
    pub oci_arch_portable: bool,
    /// Added to each table number to get what seccomp sees.
    pub nr_base: u32,
    /// Every table number is below this.
    pub nr_limit: u32,
    /// How to re-import the numbers.
    pub import: ImportRecipe,
    /// Where the numbers came from.
    pub source: Option<Source>,
    /// Syscall name -> table number (seccomp sees `nr_base + n`).
    pub syscalls: BTreeMap<String, u32>,
    /// Names numbered in the kernel table without an entry point.
    pub unimplemented: Vec<String>,
    /// Names whose entry point takes 16-bit user and group ids (the kernel's `sys_*16`).
    pub id16: Vec<String>,
    /// The file this ABI was loaded from.
    pub file: PathBuf,
    #[serde(skip)]
    pub(crate) lines: Lines,
}

impl Abi {
    /// The number seccomp sees for `name`, if this ABI has it.
    pub fn nr(&self, name: &str) -> Option<u32> {
        self.syscalls.get(name).map(|n| self.nr_base + n)
    }

    /// The numbers seccomp may see for this ABI: `[nr_base, nr_base + nr_limit)`.
    pub fn nr_range(&self) -> std::ops::Range<u64> {
        u64::from(self.nr_base)..u64::from(self.nr_base) + u64::from(self.nr_limit)
    }

    /// The AUDIT_ARCH implied by the ELF facts.
    pub fn derived_audit_arch(&self) -> u32 {
        derive_audit_arch(self.elf_machine, self.bits, self.endian, self.convention, self.audit_le_bit)
    }

    /// 1-based line of a syscall's entry.
    pub fn line_of(&self, name: &str) -> Option<usize> {
        self.lines.word_in("syscalls", name)
    }

    /// Kernel release the numbers were imported from, or `unknown`.
    pub fn kernel(&self) -> &str {
        self.source.as_ref().map_or("unknown", |s| s.kernel.as_str())
    }
}

/// `AUDIT_ARCH_* = EM_* | 64-bit | little-endian | convention`, as `include/uapi/linux/audit.h`;
/// `le_bit` false: the constant has no little-endian bit whatever the byte order.
pub fn derive_audit_arch(elf_machine: u32, bits: u32, endian: Endian, convention: Convention, le_bit: bool) -> u32 {
    let mut v = elf_machine;
    if bits == 64 {
        v |= 0x8000_0000;
    }
    if endian == Endian::Little && le_bit {
        v |= 0x4000_0000;
    }
    if convention == Convention::Mips64N32 {
        v |= 0x2000_0000;
    }
    v
}

/// All ABIs of a tables directory, sorted by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tables {
    /// The ABIs, sorted by name.
    pub abis: Vec<Abi>,
    /// The facts shared by ABIs (`shared/`): syscall signatures and struct layouts.
    pub shared: Shared,
}

impl Tables {
    /// Loads and validates every `*.yaml` file of `dir` (not its subdirectories), and the
    /// shared files `shared/syscall-args.yaml` and `shared/struct-layouts.yaml` if present.
    pub fn load_dir(dir: &Path) -> Result<Tables, Errors> {
        Tables::load_dir_lenient(dir).into_result()
    }

    /// Parses and validates ABI files given as (path, text), and the shared files among
    /// them (a path whose directory is `shared`); all errors at once.
    pub fn parse<'a>(files: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Result<Tables, Errors> {
        Tables::parse_lenient(files).into_result()
    }

    /// Like [`Tables::load_dir`], but keeps what loaded next to the errors.
    pub(crate) fn load_dir_lenient(dir: &Path) -> Loaded {
        let mut texts = match crate::files::yaml_texts(dir) {
            Ok(texts) => texts,
            Err(errors) => return Loaded { tables: Tables::default(), errors, complete: false },
        };
        let (shared, unread) = shared_texts(dir);
        texts.extend(shared);
        let mut loaded = Tables::parse_lenient(texts.iter().map(|(f, t)| (f.as_path(), t.as_str())));
        if !unread.is_empty() {
            loaded.complete = false;
            loaded.errors.0.extend(unread.0);
        }
        loaded
    }

    /// Like [`Tables::parse`], but keeps what loaded next to the errors.
    pub(crate) fn parse_lenient<'a>(files: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Loaded {
        let mut errors = Errors::default();
        let mut abis = Vec::new();
        let mut shared = Shared::default();
        let mut complete = true;
        for (path, text) in files {
            if Shared::is_shared_file(path) {
                shared.add(path, text, &mut errors);
                continue;
            }
            match yaml::parse::<AbiFile>(path, text) {
                Ok(p) => abis.push(validate_abi(path, p.value, p.lines, &mut errors)),
                Err(e) => {
                    complete = false;
                    errors.0.extend(e.0);
                }
            }
        }
        abis.sort_by(|a, b| a.name.cmp(&b.name));
        check_across(&abis, &mut errors);
        check_structs(&abis, &shared, &mut errors);
        Loaded { tables: Tables { abis, shared }, errors, complete }
    }

    /// The ABI called `name`.
    pub fn get(&self, name: &str) -> Option<&Abi> {
        self.abis.iter().find(|a| a.name == name)
    }

    /// Keeps only the named ABIs; an unknown name is an error with a suggestion.
    pub fn select(&self, names: &[String]) -> Result<Tables, Errors> {
        let mut errors = Errors::default();
        let mut abis = Vec::new();
        for n in names {
            match self.get(n) {
                Some(a) if !abis.iter().any(|b: &Abi| b.name == a.name) => abis.push(a.clone()),
                Some(_) => {}
                None => errors.push(Diagnostic::bare(unknown_abi_message(n, self))),
            }
        }
        abis.sort_by(|a, b| a.name.cmp(&b.name));
        errors.into_result(Tables { abis, shared: self.shared.clone() })
    }

    /// The syscall name that `(audit_arch, nr)` denotes, with its ABI.
    pub fn lookup(&self, audit_arch: u32, nr: u32) -> Option<(&Abi, &str)> {
        self.abis.iter().filter(|a| a.audit_arch == audit_arch).find_map(|a| {
            let n = nr.checked_sub(a.nr_base)?;
            a.syscalls.iter().find(|(_, v)| **v == n).map(|(k, _)| (a, k.as_str()))
        })
    }

    /// The ABIs a binary must cover per Rust `target_arch`, grouped: `(target_arch values,
    /// ABI names)`, one entry per distinct ABI set, sorted by the first `target_arch`.
    pub fn by_rust_arch(&self) -> Vec<(Vec<String>, Vec<String>)> {
        let mut arches: Vec<&str> = self.abis.iter().flat_map(|a| a.rust_arches.iter().map(String::as_str)).collect();
        arches.sort_unstable();
        arches.dedup();
        let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for arch in arches {
            let abis: Vec<String> = self.abis.iter().filter(|a| a.rust_arches.iter().any(|r| r == arch)).map(|a| a.name.clone()).collect();
            match groups.iter_mut().find(|(_, g)| *g == abis) {
                Some((archs, _)) => archs.push(arch.to_string()),
                None => groups.push((vec![arch.to_string()], abis)),
            }
        }
        groups
    }

    /// The ABI a binary of Rust `target_arch` `arch` runs as, given its byte order and
    /// pointer width: the one whose `rust_native`, `endian` and `elf_class` match (unique,
    /// as validation checks). What `rootemu::install::running_abi()` answers per target.
    pub fn native_abi(&self, arch: &str, endian: Endian, pointer_width: u32) -> Option<&Abi> {
        self.abis.iter().find(|a| a.endian == endian && a.elf_class == pointer_width && a.rust_native.iter().any(|r| r == arch))
    }

    /// The one ABI whose ELF facts match an ELF header: `e_machine`, class (32 or 64),
    /// byte order, and the calling-convention flag of `e_flags` (MIPS n32). The error
    /// says why none or several match.
    pub fn abi_of_elf(&self, machine: u16, class: u32, endian: Endian, flags: u32) -> Result<&Abi, String> {
        let same_machine = || self.abis.iter().filter(|a| a.elf_machine == u32::from(machine));
        // The convention the ELF declares: one of its machine's tables whose e_flags bit it has.
        let declared = same_machine().map(|a| a.convention).find(|c| c.elf_flag() & flags != 0).unwrap_or_default();
        let hits: Vec<&Abi> = same_machine().filter(|a| a.endian == endian && a.elf_class == class && a.convention == declared).collect();
        let order = if endian == Endian::Big { "big" } else { "little" };
        match hits.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("no table matches this ELF (e_machine {machine}, {class}-bit, {order}-endian, e_flags {flags:#x})")),
            many => Err(format!(
                "several tables match this ELF (e_machine {machine}, {class}-bit, {order}-endian): {}",
                many.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The distinct AUDIT_ARCH values, in ABI-name order of first appearance.
    pub fn audit_arches(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for a in &self.abis {
            if !out.contains(&a.audit_arch) {
                out.push(a.audit_arch);
            }
        }
        out
    }
}

/// Tables as far as they loaded: the ABI files that parsed (valid or not) and every error.
pub(crate) struct Loaded {
    pub tables: Tables,
    pub errors: Errors,
    /// Every file was read and parsed: the tables hold every syscall name the files name,
    /// so a policy's names can be checked against them even when validation failed.
    pub complete: bool,
}

impl Loaded {
    pub(crate) fn into_result(self) -> Result<Tables, Errors> {
        self.errors.into_result(self.tables)
    }
}

/// `(path, text)` of the shared files (`shared/*.yaml`) a tables directory has, and the
/// errors of those it has but cannot read.
pub fn shared_texts(dir: &Path) -> (Vec<(PathBuf, String)>, Errors) {
    let mut texts = Vec::new();
    let mut errors = Errors::default();
    for name in [crate::shared::SIGNATURES_FILE, crate::shared::LAYOUTS_FILE] {
        let p = dir.join(name);
        if p.symlink_metadata().is_ok() {
            match crate::files::read_yaml(&p, "shared") {
                Ok(t) => texts.push((p, t)),
                Err(e) => errors.push(e),
            }
        }
    }
    (texts, errors)
}

fn yes() -> bool {
    true
}

/// `unknown ABI "x"`, with the closest name.
pub(crate) fn unknown_abi_message(name: &str, tables: &Tables) -> String {
    let mut m = format!("unknown ABI `{name}`");
    if let Some(s) = crate::diag::did_you_mean(name, tables.abis.iter().map(|a| a.name.as_str())) {
        m.push_str(&format!(" (did you mean `{s}`?)"));
    }
    m
}

fn validate_abi(path: &Path, f: AbiFile, lines: Lines, errors: &mut Errors) -> Abi {
    let at = |key: &str| Some(lines.key_line(key));
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if f.abi != stem {
        errors.push(Diagnostic::at(path, at("abi"), format!("ABI `{}` is in a file named `{stem}.yaml`", f.abi)));
    }
    if f.bits != 32 && f.bits != 64 {
        errors.push(Diagnostic::at(path, at("bits"), format!("ABI `{}`: bits must be 32 or 64, not {}", f.abi, f.bits)));
    }
    let derived = derive_audit_arch(f.elf_machine, f.bits, f.endian, f.convention, f.audit_le_bit);
    if derived != f.audit_arch {
        errors.push(Diagnostic::at(
            path,
            at("audit_arch"),
            format!(
                "ABI `{}`: audit_arch {:#x} disagrees with its ELF facts (elf_machine {}, {}-bit, {}-endian{} give {:#x})",
                f.abi,
                f.audit_arch,
                f.elf_machine,
                f.bits,
                if f.endian == Endian::Big { "big" } else { "little" },
                match (f.convention == Convention::Mips64N32, f.audit_le_bit) {
                    (true, _) => ", mips64_n32",
                    (false, false) => ", no LE bit",
                    _ => "",
                },
                derived
            ),
        ));
    }
    for (i, arch) in f.rust_arches.iter().enumerate() {
        let ok = !arch.is_empty() && arch.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            errors.push(Diagnostic::at(path, at("rust_arches"), format!("ABI `{}`: `{arch}` is not a Rust target_arch name", f.abi)));
        } else if f.rust_arches[..i].contains(arch) {
            errors.push(Diagnostic::at(path, at("rust_arches"), format!("ABI `{}`: rust_arches lists `{arch}` twice", f.abi)));
        }
    }
    for (i, arch) in f.rust_native.iter().enumerate() {
        let at_native = Some(lines.key_line("rust_native"));
        if !f.rust_arches.contains(arch) {
            errors.push(Diagnostic::at(
                path,
                at_native,
                format!("ABI `{}`: rust_native `{arch}` is not in rust_arches (a binary of this ABI runs on its kernel)", f.abi),
            ));
        } else if f.rust_native[..i].contains(arch) {
            errors.push(Diagnostic::at(path, at_native, format!("ABI `{}`: rust_native lists `{arch}` twice", f.abi)));
        }
    }
    if let Some(c) = f.elf_class.filter(|c| *c != 32 && *c != 64) {
        errors.push(Diagnostic::at(path, at("elf_class"), format!("ABI `{}`: elf_class must be 32 or 64, not {c}", f.abi)));
    }
    if let Some(oci) = &f.oci_arch {
        let ok = oci
            .strip_prefix("SCMP_ARCH_")
            .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
        if !ok {
            errors.push(Diagnostic::at(
                path,
                at("oci_arch"),
                format!("ABI `{}`: oci_arch `{oci}` is not of the form SCMP_ARCH_<NAME>", f.abi),
            ));
        }
    }
    if !f.oci_arch_portable && f.oci_arch.is_none() {
        errors.push(Diagnostic::at(path, at("oci_arch_portable"), format!("ABI `{}`: oci_arch_portable without an oci_arch", f.abi)));
    }
    if u64::from(f.nr_base) + u64::from(f.nr_limit) > 1 << 31 {
        errors.push(Diagnostic::at(path, at("nr_limit"), format!("ABI `{}`: nr_base + nr_limit exceeds 2^31", f.abi)));
    }
    // An empty range could share its base with another ABI of the AUDIT_ARCH and shadow it
    // in the compiler's `jge base` dispatch (found by `cargo fuzz run differential`).
    if f.nr_limit == 0 {
        errors.push(Diagnostic::at(path, at("nr_limit"), format!("ABI `{}`: nr_limit must be at least 1", f.abi)));
    }
    let recipe_ok = match (&f.import.table, &f.import.generic) {
        (Some(_), None) => !f.import.tags.is_empty(),
        (None, Some(_)) => f.import.tags.is_empty() && f.import.private_header.is_none() && !f.import.compat_entry,
        _ => false,
    };
    if !recipe_ok {
        errors.push(Diagnostic::at(
            path,
            at("import"),
            format!(
                "ABI `{}`: import needs either `table` with `tags` (and optionally `private_header`, `compat_entry`), or `generic`",
                f.abi
            ),
        ));
    }
    let mut by_nr: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, &n) in &f.syscalls {
        if n >= f.nr_limit {
            errors.push(Diagnostic::at(
                path,
                lines.word_in("syscalls", name).or(at("syscalls")),
                format!("ABI `{}`: syscall `{name}` has number {n}, outside the ABI's range 0..{}", f.abi, f.nr_limit),
            ));
        }
        if let Some(first) = by_nr.insert(n, name) {
            // Report on the later line of the two.
            let (l1, l2) = (lines.word_in("syscalls", first), lines.word_in("syscalls", name));
            let (a, b) = if l1 <= l2 { (first, name.as_str()) } else { (name.as_str(), first) };
            errors.push(Diagnostic::at(
                path,
                l1.max(l2).or(at("syscalls")),
                format!("ABI `{}`: syscall `{b}` has number {n}, already used by `{a}`", f.abi),
            ));
        }
    }
    for name in &f.id16 {
        if !f.syscalls.contains_key(name) {
            errors.push(Diagnostic::at(
                path,
                lines.word_in("id16", name).or(at("id16")),
                format!("ABI `{}`: id16 syscall `{name}` is not in `syscalls`", f.abi),
            ));
        }
    }
    for name in &f.unimplemented {
        if !f.syscalls.contains_key(name) {
            errors.push(Diagnostic::at(
                path,
                lines.word_in("unimplemented", name).or(at("unimplemented")),
                format!("ABI `{}`: unimplemented syscall `{name}` is not in `syscalls`", f.abi),
            ));
        }
    }
    Abi {
        name: f.abi,
        audit_arch: f.audit_arch,
        elf_machine: f.elf_machine,
        bits: f.bits,
        endian: f.endian,
        convention: f.convention,
        audit_le_bit: f.audit_le_bit,
        rust_arches: f.rust_arches,
        rust_native: f.rust_native,
        elf_class: f.elf_class.unwrap_or(f.bits),
        oci_arch: f.oci_arch,
        structs: f.structs,
        oci_arch_portable: f.oci_arch_portable,
        nr_base: f.nr_base,
        nr_limit: f.nr_limit,
        import: f.import,
        source: f.source,
        syscalls: f.syscalls,
        unimplemented: f.unimplemented,
        id16: f.id16,
        file: path.to_path_buf(),
        lines,
    }
}

/// Each ABI's `structs` names a layout of that struct in the shared layouts.
/// Without a layouts file (a tables directory of ABI files only) nothing is checked: the
/// ABIs then have no layouts, which consistent mode reports when asked to serve them.
fn check_structs(abis: &[Abi], shared: &Shared, errors: &mut Errors) {
    if shared.layouts_file.is_none() {
        return;
    }
    for a in abis {
        for (st, layout) in &a.structs {
            let line = a.lines.word_in("structs", st).or(Some(a.lines.key_line("structs")));
            let problem = match shared.layouts.get(layout) {
                None => {
                    let mut m = format!("no layout `{layout}` in {}", crate::shared::LAYOUTS_FILE);
                    if let Some(s) = crate::diag::did_you_mean(layout, shared.layouts.keys().map(String::as_str)) {
                        m.push_str(&format!(" (did you mean `{s}`?)"));
                    }
                    m
                }
                Some(l) if l.struct_name != *st => format!("layout `{layout}` is of struct `{}`", l.struct_name),
                Some(l) if l.universal => format!("layout `{layout}` is universal: leave `{st}` out"),
                Some(_) => continue,
            };
            errors.push(Diagnostic::at(&a.file, line, format!("ABI `{}`: struct `{st}`: {problem}", a.name)));
        }
    }
}

/// Checks between ABIs: unique names, OCI names and native Rust targets, and disjoint
/// number ranges under one AUDIT_ARCH. Each ABI is compared with the first holder of a
/// name (or its neighbour in number order), so the check is O(n log n) in the ABIs and
/// reports each offending file once.
fn check_across(abis: &[Abi], errors: &mut Errors) {
    use std::collections::HashMap;
    let mut names: HashMap<&str, &Abi> = HashMap::new();
    let mut oci: HashMap<&str, &Abi> = HashMap::new();
    let mut native: HashMap<(&str, Endian, u32), &Abi> = HashMap::new();
    let mut by_arch: BTreeMap<u32, Vec<&Abi>> = BTreeMap::new();
    for b in abis {
        if let Some(a) = names.get(b.name.as_str()) {
            errors.push(Diagnostic::at(
                &b.file,
                Some(b.lines.key_line("abi")),
                format!("ABI `{}` is also defined in {}", b.name, a.file.display()),
            ));
            continue;
        }
        names.insert(&b.name, b);
        if let Some(o) = b.oci_arch.as_deref() {
            match oci.get(o) {
                Some(a) => errors.push(Diagnostic::at(
                    &b.file,
                    Some(b.lines.key_line("oci_arch")),
                    format!("ABI `{}`: oci_arch {o} is also the one of `{}`", b.name, a.name),
                )),
                None => {
                    oci.insert(o, b);
                }
            }
        }
        for arch in &b.rust_native {
            match native.get(&(arch.as_str(), b.endian, b.elf_class)) {
                Some(a) => errors.push(Diagnostic::at(
                    &b.file,
                    Some(b.lines.key_line("rust_native")),
                    format!(
                        "ABI `{}`: a {}-bit {}-endian `{arch}` binary is already the native one of `{}` (rust_native, endian, elf_class)",
                        b.name,
                        b.elf_class,
                        if b.endian == Endian::Big { "big" } else { "little" },
                        a.name
                    ),
                )),
                None => {
                    native.insert((arch, b.endian, b.elf_class), b);
                }
            }
        }
        by_arch.entry(b.audit_arch).or_default().push(b);
    }
    for group in by_arch.values_mut() {
        group.sort_by_key(|a| (a.nr_range().start, a.name.as_str()));
        // The ABI reaching furthest so far: any later one starting below its end overlaps it.
        let mut reach: Option<&Abi> = None;
        // An empty range (nr_limit 0, an error of its own) overlaps nothing.
        for &b in group.iter().filter(|b| !b.nr_range().is_empty()) {
            if let Some(a) = reach.filter(|a| b.nr_range().start < a.nr_range().end) {
                let (ra, rb) = (a.nr_range(), b.nr_range());
                errors.push(Diagnostic::at(
                    &b.file,
                    Some(b.lines.key_line("nr_base")),
                    format!(
                        "ABI `{}` shares AUDIT_ARCH {:#x} with `{}` and their number ranges overlap ({:#x}..{:#x} and {:#x}..{:#x})",
                        b.name, b.audit_arch, a.name, rb.start, rb.end, ra.start, ra.end
                    ),
                ));
            }
            if reach.is_none_or(|a| b.nr_range().end > a.nr_range().end) {
                reach = Some(b);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const X86_64: &str = "abi: x86_64\naudit_arch: 0xc000003e\nelf_machine: 62\nbits: 64\nendian: little\nnr_base: 0\nnr_limit: 1024\nimport:\n  table: arch/x86/entry/syscalls/syscall_64.tbl\n  tags: [common, 64]\nsyscalls:\n  read: 0\n  chown: 92\n  setuid: 105\n";

    fn parse_one(name: &str, text: &str) -> Result<Tables, Errors> {
        Tables::parse([(Path::new(name), text)])
    }

    #[test]
    fn loads_a_valid_table() {
        let t = parse_one("x86_64.yaml", X86_64).unwrap();
        assert_eq!(t.abis[0].nr("chown"), Some(92));
        assert_eq!(t.lookup(0xc000003e, 105).map(|(_, n)| n), Some("setuid"));
    }

    #[test]
    fn duplicate_number_names_file_line_and_both_syscalls() {
        let text = X86_64.replace("setuid: 105", "setuid: 92");
        let err = parse_one("x86_64.yaml", &text).unwrap_err();
        assert_eq!(err.to_string(), "x86_64.yaml:14: ABI `x86_64`: syscall `setuid` has number 92, already used by `chown`");
    }

    #[test]
    fn number_outside_range_and_bad_audit_arch_are_all_reported() {
        let text = X86_64.replace("setuid: 105", "setuid: 4000").replace("0xc000003e", "0x4000003e");
        let err = parse_one("x86_64.yaml", &text).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0[0].to_string().starts_with("x86_64.yaml:2: ABI `x86_64`: audit_arch 0x4000003e disagrees"), "{err}");
        assert_eq!(err.0[1].to_string(), "x86_64.yaml:14: ABI `x86_64`: syscall `setuid` has number 4000, outside the ABI's range 0..1024");
    }

    #[test]
    fn duplicate_key_is_rejected() {
        let text = X86_64.replace("setuid: 105", "setuid: 105\n  chown: 93");
        let err = parse_one("x86_64.yaml", &text).unwrap_err();
        assert_eq!(err.to_string(), "x86_64.yaml:15: syscalls: duplicate entry with key \"chown\"");
    }

    /// Found by `cargo fuzz run differential`: an empty range (nr_limit 0) at the base of
    /// another ABI of the same AUDIT_ARCH shadowed it in the program.
    #[test]
    fn empty_number_range_is_rejected() {
        let err = parse_one(
            "x86_64.yaml",
            &X86_64.replace("nr_limit: 1024", "nr_limit: 0").replace("syscalls:\n  read: 0\n  chown: 92\n  setuid: 105\n", ""),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "x86_64.yaml:7: ABI `x86_64`: nr_limit must be at least 1");
    }

    /// Found by `cargo fuzz run tables`: errors in flow-style YAML had no line.
    #[test]
    fn errors_in_flow_style_still_name_a_line() {
        let text = "{abi: x86_64, audit_arch: 0x4000003e, elf_machine: 62, bits: 64, endian: little, nr_base: 0, nr_limit: 10,\n import: {table: t, tags: [a]}, syscalls: {\"read\": 0, \"chown\": 12}}\n";
        let err = parse_one("x86_64.yaml", text).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0.iter().all(|d| d.line == Some(1)), "{err}");
    }

    #[test]
    fn overlapping_ranges_under_one_audit_arch() {
        let x32 = X86_64.replace("abi: x86_64", "abi: x32").replace("nr_base: 0", "nr_base: 512");
        let err = Tables::parse([(Path::new("x86_64.yaml"), X86_64), (Path::new("x32.yaml"), x32.as_str())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x32.yaml:6: ABI `x32` shares AUDIT_ARCH 0xc000003e with `x86_64` and their number ranges overlap (0x200..0x600 and 0x0..0x400)"
        );
    }

    #[test]
    fn rust_arches_group_the_abis_a_binary_must_cover() {
        let with = |abi: &str, base: &str, arches: &str| {
            X86_64.replace("abi: x86_64", &format!("abi: {abi}")).replace("nr_base: 0", &format!("rust_arches: {arches}\nnr_base: {base}"))
        };
        let (a, b) = (with("x86_64", "0", "[x86, x86_64]"), with("x32", "0x40000000", "[x86_64, x86]"));
        let c = with("other", "0", "[]").replace("0xc000003e", "0xc00000b7").replace("elf_machine: 62", "elf_machine: 183");
        let t = Tables::parse([
            (Path::new("x86_64.yaml"), a.as_str()),
            (Path::new("x32.yaml"), b.as_str()),
            (Path::new("other.yaml"), c.as_str()),
        ])
        .unwrap();
        let groups = t.by_rust_arch();
        assert_eq!(groups, [(vec!["x86".to_string(), "x86_64".to_string()], vec!["x32".to_string(), "x86_64".to_string()])]);
        let bad = with("x86_64", "0", "[x86, X86, x86]");
        let err = parse_one("x86_64.yaml", &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x86_64.yaml:6: ABI `x86_64`: `X86` is not a Rust target_arch name\nx86_64.yaml:6: ABI `x86_64`: rust_arches lists `x86` twice"
        );
    }

    #[test]
    fn oci_arch_portable_needs_an_oci_arch() {
        let with = |fields: &str| X86_64.replace("nr_base: 0", &format!("{fields}nr_base: 0"));
        let t = parse_one("x86_64.yaml", &with("oci_arch: SCMP_ARCH_X86_64\noci_arch_portable: false\n")).unwrap();
        let ok = &t.abis[0];
        assert!(!ok.oci_arch_portable && ok.oci_arch.as_deref() == Some("SCMP_ARCH_X86_64"));
        assert!(parse_one("x86_64.yaml", &with("oci_arch: SCMP_ARCH_X86_64\n")).unwrap().abis[0].oci_arch_portable);
        let err = parse_one("x86_64.yaml", &with("oci_arch_portable: false\n")).unwrap_err();
        assert_eq!(err.to_string(), "x86_64.yaml:6: ABI `x86_64`: oci_arch_portable without an oci_arch");
    }
}
