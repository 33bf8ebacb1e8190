//! The policy as a libseccomp profile for container runtimes: an OCI runtime spec's
//! `linux.seccomp` object (runc, crun) or a Docker seccomp profile (docker and podman
//! `--security-opt seccomp=`, a Kubernetes `Localhost` profile, read by CRI-O through the
//! same containers/common code as podman and by containerd as the OCI object).
//!
//! A runtime compiles the profile with libseccomp itself, so this is the policy by name,
//! not our program: libseccomp resolves each name per architecture and skips names an
//! architecture lacks. What the two must agree on, and how:
//! - Argument tests compare the low 32 bits, as the kernel and our program do. Every test
//!   becomes `SCMP_CMP_MASKED_EQ` with a mask below 2^32, which libseccomp applies to the
//!   low half on 64-bit ABIs (the high half is masked to 0) and to the only half on 32-bit
//!   ones. A `ne` becomes one alternative per bit of its mask (`(arg & 1<<b) == (!v & 1<<b)`):
//!   libseccomp's `SCMP_CMP_NE` compares all 64 bits, and no fewer entries can say "some
//!   bit differs" with equality tests.
//! - runc turns two conditions on one argument into alternatives, so each entry has at
//!   most one condition per argument (conditions on the same argument are merged).
//! - OCI rules have no order: a policy whose verdict depends on rule order is refused.
//! - libseccomp refuses to mix byte orders in one filter.
//! - An architecture the profile does not list gets the runtime's bad-architecture action
//!   (libseccomp's default, SCMP_ACT_KILL_THREAD, in runc and crun): no profile field sets it.

use crate::bpf::Action;
use crate::diag::{Diagnostic, Errors};
use crate::filter::Filter;
use crate::policy::{Atom, Cmp};
use crate::table::{Abi, Endian};
use serde_json::{Value, json};

/// Most entries one rule may become: a `ne` is one entry per bit of its mask, and several
/// in one conjunction multiply.
const MAX_ENTRIES: usize = 1024;

/// Which document of the libseccomp profile family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileForm {
    /// The runtime spec's `linux.seccomp` object, for `config.json` (runc, crun): spec
    /// fields only.
    Oci,
    /// A Docker seccomp profile file (docker/podman `--security-opt seccomp=FILE`, a
    /// Kubernetes `Localhost` profile): the same fields, plus a `comment` per entry naming
    /// the policy rule.
    Docker,
}

/// Which ABIs the profile lists.
#[derive(Clone, Copy, Debug)]
pub enum AbiChoice<'a> {
    /// Every ABI of the filter, named by the user: each needs an `oci_arch`, all of one
    /// byte order.
    Named,
    /// Of the filter's ABIs, those a kernel running a binary built for this Rust
    /// `target_arch` delivers (the tables' `rust_arches`, as `root_emulation!()` chooses),
    /// in this byte order; ABIs without a portable `oci_arch` are left out with a note.
    Host {
        /// Rust `target_arch` of the machine, e.g. `x86_64`.
        target_arch: &'a str,
        /// Its byte order.
        endian: Endian,
    },
}

/// A profile, and what it leaves to the runtime.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The JSON document.
    pub json: String,
    /// One line per ABI left out and per policy meaning the profile cannot carry.
    pub notes: Vec<String>,
}

/// One libseccomp test `(arg & mask) == value`, `mask` below 2^32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Masked {
    arg: u32,
    mask: u32,
    value: u32,
}

/// The policy as a seccomp profile over the chosen ABIs; every reason it cannot be said
/// in this form is an error.
pub fn profile(f: &Filter, form: ProfileForm, choice: AbiChoice) -> Result<Profile, Errors> {
    let mut notes = Vec::new();
    let mut errors = Errors::default();
    // On an error here the rules are still checked (over every ABI), so all errors show.
    let abis = choose(f, choice, &mut notes).unwrap_or_else(|e| {
        errors.0.extend(e.0);
        f.tables.abis.iter().collect()
    });
    let file = f.policy.file.as_path();
    let default = action(f.policy.default).unwrap_or_else(|m| {
        errors.push(Diagnostic::at(file, None, format!("default: {m}")));
        ("", None)
    });
    let known = |name: &str| abis.iter().any(|a| a.syscalls.contains_key(name));
    let mut syscalls = Vec::new();
    for (i, rule) in f.policy.rules.iter().enumerate() {
        let at = |m: String| Diagnostic::at(file, rule.line, m);
        for earlier in &f.policy.rules[..i] {
            if earlier.action != rule.action {
                if let Some(n) = rule.syscalls.iter().find(|n| earlier.syscalls.contains(n)) {
                    errors.push(at(format!("`{n}` has rules with different actions: their order matters, and OCI rules have none")));
                }
            }
        }
        let (name, errno) = match action(rule.action) {
            Ok(a) => a,
            Err(m) => {
                errors.push(at(m));
                continue;
            }
        };
        let names: Vec<&str> = rule.syscalls.iter().map(String::as_str).filter(|n| known(n)).collect();
        // A rule with the default action changes nothing without order (runc skips it,
        // libseccomp refuses it).
        if names.is_empty() || rule.action == f.policy.default {
            continue;
        }
        let count: usize = rule.when_any.iter().map(|all| entries_of(all)).fold(0, usize::saturating_add);
        if count > MAX_ENTRIES {
            errors.push(at(format!(
                "the conditions become {count} OCI entries (a `ne` is one per bit of its mask), over the {MAX_ENTRIES} exported: use masked `eq` tests"
            )));
            continue;
        }
        let mut alternatives: Vec<Vec<Masked>> =
            if rule.when_any.is_empty() { vec![Vec::new()] } else { rule.when_any.iter().flat_map(|all| conjunction(all)).collect() };
        alternatives.sort();
        alternatives.dedup();
        let implied: Vec<bool> =
            alternatives.iter().enumerate().map(|(i, b)| alternatives.iter().enumerate().any(|(j, a)| i != j && implies(b, a))).collect();
        let mut implied = implied.into_iter();
        alternatives.retain(|_| !implied.next().unwrap_or(false));
        for all in alternatives {
            let mut entry = json!({"names": names, "action": name});
            if let Some(e) = errno {
                entry["errnoRet"] = json!(e);
            }
            if !all.is_empty() {
                let args: Vec<Value> =
                    all.iter().map(|m| json!({"index": m.arg, "value": m.mask, "valueTwo": m.value, "op": "SCMP_CMP_MASKED_EQ"})).collect();
                entry["args"] = json!(args);
            }
            if form == ProfileForm::Docker {
                entry["comment"] = json!(format!("rootemu policy `{}`, {}: {}", f.policy.name, place(file, rule.line), rule.action));
            }
            syscalls.push(entry);
        }
    }
    let mut value = json!({
        "defaultAction": default.0,
        "architectures": abis.iter().filter_map(|a| a.oci_arch.as_deref()).collect::<Vec<_>>(),
        "syscalls": syscalls,
    });
    if let Some(e) = default.1 {
        value["defaultErrnoRet"] = json!(e);
        if form == ProfileForm::Docker && e != 1 {
            notes.push(format!("Docker 20.10 ignores defaultErrnoRet: its default errno is EPERM, not {e}"));
        }
    }
    if abis.is_empty() {
        notes.push("no architecture listed: the runtime filters its native architecture only".to_string());
    }
    if f.policy.unknown_abi != Action::KillThread {
        notes.push(format!(
            "an architecture the profile does not list gets the runtime's bad-architecture action (SCMP_ACT_KILL_THREAD in runc and crun), not the policy's unknown_abi ({}): profiles cannot set it",
            f.policy.unknown_abi
        ));
    }
    errors.into_result(Profile { json: serde_json::to_string_pretty(&value).expect("JSON values serialize") + "\n", notes })
}

fn place(file: &std::path::Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", file.display()),
        None => file.display().to_string(),
    }
}

/// The ABIs the profile lists, or why the named ones cannot be listed together.
fn choose<'a>(f: &'a Filter, choice: AbiChoice, notes: &mut Vec<String>) -> Result<Vec<&'a Abi>, Errors> {
    let all = &f.tables.abis;
    match choice {
        AbiChoice::Named => {
            let nameless: Vec<&str> = all.iter().filter(|a| a.oci_arch.is_none()).map(|a| a.name.as_str()).collect();
            if !nameless.is_empty() {
                return Err(Diagnostic::bare(format!(
                    "no OCI architecture (oci_arch) for ABI {}: OCI cannot name it",
                    nameless.join(", ")
                ))
                .into());
            }
            let of = |e: Endian| all.iter().filter(|a| a.endian == e).map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ");
            let (little, big) = (of(Endian::Little), of(Endian::Big));
            if !little.is_empty() && !big.is_empty() {
                return Err(Diagnostic::bare(format!(
                    "ABIs of both byte orders (little-endian: {little}; big-endian: {big}): libseccomp builds a filter for one byte order and runtimes fail on a mix (`seccomp adding architecture: Numerical argument out of domain`): export each byte order separately"
                ))
                .into());
            }
            for a in all.iter().filter(|a| !a.oci_arch_portable) {
                notes.push(format!(
                    "{} ({}): older runtimes (runc 1.1) reject this architecture name",
                    a.oci_arch.as_deref().unwrap_or_default(),
                    a.name
                ));
            }
            Ok(all.iter().collect())
        }
        AbiChoice::Host { target_arch, endian } => {
            let delivered: Vec<&Abi> = all.iter().filter(|a| a.rust_arches.iter().any(|r| r == target_arch)).collect();
            if delivered.is_empty() {
                return Err(Diagnostic::bare(format!(
                    "no ABI table lists this machine's target_arch `{target_arch}` in rust_arches: name the ABIs with --abi"
                ))
                .into());
            }
            let mut chosen = Vec::new();
            for a in delivered.into_iter().filter(|a| a.endian == endian) {
                match &a.oci_arch {
                    None => notes.push(format!("left out ABI {}: OCI has no architecture name for it", a.name)),
                    Some(name) if !a.oci_arch_portable => notes.push(format!(
                        "left out ABI {} ({name}): older runtimes (runc 1.1) reject the name; `--abi {}` lists it",
                        a.name, a.name
                    )),
                    Some(_) => chosen.push(a),
                }
            }
            Ok(chosen)
        }
    }
}

/// The profile's action for a policy action, with `errnoRet`.
fn action(a: Action) -> Result<(&'static str, Option<u16>), String> {
    let ret = a.to_ret();
    // By the kernel's return value, so an action added to the language later is refused
    // here until it is mapped.
    match ret & 0xffff_0000 {
        0x7fff_0000 => Ok(("SCMP_ACT_ALLOW", None)),
        0x0005_0000 => Ok(("SCMP_ACT_ERRNO", Some((ret & 0xffff) as u16))),
        0x8000_0000 => Ok(("SCMP_ACT_KILL_PROCESS", None)),
        0x0000_0000 => Ok(("SCMP_ACT_KILL_THREAD", None)),
        0x0003_0000 => Ok(("SCMP_ACT_TRAP", None)),
        0x7ffc_0000 => Ok(("SCMP_ACT_LOG", None)),
        0x7ff0_0000 => Err(format!("`{a}` has no OCI form (its message value cannot be given)")),
        0x7fc0_0000 => Err(format!(
            "`{a}` has no OCI form here: SCMP_ACT_NOTIFY needs a seccomp agent at the spec's listenerPath, and rootemu's supervisor is not one"
        )),
        _ => Err(format!("`{a}` has no OCI form")),
    }
}

/// The masked tests one atom may become: any of them holds exactly when the atom does.
fn choices(a: &Atom) -> Vec<Masked> {
    match a.cmp {
        Cmp::Eq => vec![Masked { arg: a.arg, mask: a.mask, value: a.value & a.mask }],
        Cmp::Ne => (0..32)
            .map(|b| 1u32 << b)
            .filter(|bit| a.mask & bit != 0)
            .map(|bit| Masked { arg: a.arg, mask: bit, value: !a.value & bit })
            .collect(),
    }
}

/// How many entries a conjunction may become (before contradictions are dropped).
fn entries_of(all: &[Atom]) -> usize {
    all.iter().map(|a| choices(a).len()).fold(1, usize::saturating_mul)
}

/// A conjunction of atoms as alternatives of masked tests, one test per argument.
fn conjunction(all: &[Atom]) -> Vec<Vec<Masked>> {
    let mut out: Vec<Vec<Masked>> = vec![Vec::new()];
    for a in all {
        let c = choices(a);
        out = out.iter().flat_map(|conj| c.iter().filter_map(move |m| and(conj, *m))).collect();
    }
    for conj in &mut out {
        conj.retain(|m| m.mask != 0);
    }
    out
}

/// Whether every argument vector passing `b` passes `a` (so `b` adds nothing next to `a`).
fn implies(b: &[Masked], a: &[Masked]) -> bool {
    a.iter().all(|t| b.iter().any(|u| u.arg == t.arg && u.mask & t.mask == t.mask && u.value & t.mask == t.value))
}

/// `conj` and `m`, merged on `m`'s argument; `None` when they contradict.
fn and(conj: &[Masked], m: Masked) -> Option<Vec<Masked>> {
    let mut v = conj.to_vec();
    match v.iter_mut().find(|x| x.arg == m.arg) {
        Some(x) => {
            if (x.value ^ m.value) & x.mask & m.mask != 0 {
                return None;
            }
            x.mask |= m.mask;
            x.value |= m.value;
        }
        None => {
            v.push(m);
            v.sort();
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(arg: u32, mask: u32, cmp: Cmp, value: u32) -> Atom {
        Atom { arg, mask, cmp, value }
    }

    /// The alternatives hold exactly when the conjunction does, over values around each
    /// mask bit; one test per argument in every alternative.
    #[test]
    fn masked_alternatives_mean_the_conjunction() {
        let cases = [
            vec![atom(2, 0o170000, Cmp::Eq, 0o020000), atom(3, u32::MAX, Cmp::Ne, 0)],
            vec![atom(1, 0xf0, Cmp::Eq, 0x30), atom(1, 0x0f, Cmp::Ne, 0x5)],
            vec![atom(1, 0xff, Cmp::Eq, 0x30), atom(1, 0x0f, Cmp::Eq, 0x1)],
            vec![atom(0, 0x3, Cmp::Ne, 0x1), atom(0, 0x6, Cmp::Ne, 0x6)],
        ];
        for all in &cases {
            let alts = conjunction(all);
            for alt in &alts {
                let mut args: Vec<u32> = alt.iter().map(|m| m.arg).collect();
                args.dedup();
                assert_eq!(args.len(), alt.len(), "{alt:?}");
            }
            for v in (0u64..0x200).chain([0xdead_0000_0000, 0xdead_0000_0001, 0x1_0000_2000, u64::MAX]) {
                for w in [0u64, 1, 0x5_0000_0000, 0o020000, 0o060000] {
                    let args = |i: u32| [w, v, v, v.rotate_left(3)][i as usize];
                    let want = all.iter().all(|a| a.holds(args(a.arg)));
                    let got = alts.iter().any(|alt| alt.iter().all(|m| (args(m.arg) as u32) & m.mask == m.value));
                    assert_eq!(got, want, "{all:?} at {v:#x}");
                }
            }
        }
        assert!(conjunction(&cases[2]).is_empty(), "contradiction");
        assert_eq!(conjunction(&[atom(3, u32::MAX, Cmp::Ne, 0)]).len(), 32);
    }

    #[test]
    fn actions_map_by_kernel_value() {
        assert_eq!(action(Action::Errno(0)), Ok(("SCMP_ACT_ERRNO", Some(0))));
        assert_eq!(action(Action::KillThread), Ok(("SCMP_ACT_KILL_THREAD", None)));
        assert!(action(Action::Trace(3)).unwrap_err().contains("no OCI form"));
    }
}
