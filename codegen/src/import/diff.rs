//! Differences between two sets of tables (e.g. two kernel releases), for review.

use crate::table::{Abi, Tables};
use std::fmt;

/// What changed between two `Tables`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TablesDiff {
    /// ABIs only in the new tables.
    pub added_abis: Vec<String>,
    /// ABIs only in the old tables.
    pub removed_abis: Vec<String>,
    /// ABIs in both with a change, sorted by name.
    pub abis: Vec<AbiDiff>,
}

/// What changed in one ABI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AbiDiff {
    /// ABI name.
    pub abi: String,
    /// Kernel release of the old and the new numbers.
    pub kernels: (String, String),
    /// New syscalls: (name, table number).
    pub added: Vec<(String, u32)>,
    /// Syscalls gone: (name, old table number).
    pub removed: Vec<(String, u32)>,
    /// Same name, another number: (name, old, new).
    pub renumbered: Vec<(String, u32, u32)>,
    /// Still numbered, but no longer have an entry point.
    pub now_unimplemented: Vec<String>,
    /// Had no entry point, now have one.
    pub now_implemented: Vec<String>,
}

impl AbiDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.renumbered.is_empty()
            && self.now_unimplemented.is_empty()
            && self.now_implemented.is_empty()
    }
}

impl TablesDiff {
    /// True when the two tables define the same ABIs with the same numbers.
    pub fn is_empty(&self) -> bool {
        self.added_abis.is_empty() && self.removed_abis.is_empty() && self.abis.is_empty()
    }

    /// Every syscall name added, removed, renumbered or whose implementation changed,
    /// in any ABI (each name once, sorted): what a policy check should look at.
    pub fn names_touched(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = Vec::new();
        for a in &self.abis {
            names.extend(a.added.iter().map(|(n, _)| n.as_str()));
            names.extend(a.removed.iter().map(|(n, _)| n.as_str()));
            names.extend(a.renumbered.iter().map(|(n, _, _)| n.as_str()));
            names.extend(a.now_unimplemented.iter().map(String::as_str));
            names.extend(a.now_implemented.iter().map(String::as_str));
        }
        names.sort_unstable();
        names.dedup();
        names.into_iter()
    }
}

/// Compares `old` with `new`.
pub fn diff(old: &Tables, new: &Tables) -> TablesDiff {
    let mut d = TablesDiff::default();
    for a in &new.abis {
        match old.get(&a.name) {
            None => d.added_abis.push(a.name.clone()),
            Some(o) => {
                let ad = diff_abi(o, a);
                if !ad.is_empty() {
                    d.abis.push(ad);
                }
            }
        }
    }
    d.removed_abis = old.abis.iter().filter(|a| new.get(&a.name).is_none()).map(|a| a.name.clone()).collect();
    d
}

fn diff_abi(old: &Abi, new: &Abi) -> AbiDiff {
    let mut d = AbiDiff { abi: new.name.clone(), kernels: (old.kernel().to_string(), new.kernel().to_string()), ..AbiDiff::default() };
    for (name, &n) in &new.syscalls {
        match old.syscalls.get(name) {
            None => d.added.push((name.clone(), n)),
            Some(&o) if o != n => d.renumbered.push((name.clone(), o, n)),
            Some(_) => {
                let (was, is) = (old.unimplemented.contains(name), new.unimplemented.contains(name));
                if is && !was {
                    d.now_unimplemented.push(name.clone());
                } else if was && !is {
                    d.now_implemented.push(name.clone());
                }
            }
        }
    }
    for (name, &n) in &old.syscalls {
        if !new.syscalls.contains_key(name) {
            d.removed.push((name.clone(), n));
        }
    }
    d.added.sort_by_key(|(n, v)| (*v, n.clone()));
    d.removed.sort_by_key(|(n, v)| (*v, n.clone()));
    d
}

impl fmt::Display for TablesDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no differences");
        }
        for a in &self.added_abis {
            writeln!(f, "+ ABI {a} (new)")?;
        }
        for a in &self.removed_abis {
            writeln!(f, "- ABI {a} (removed)")?;
        }
        for a in &self.abis {
            writeln!(
                f,
                "ABI {} ({} -> {}): {} added, {} removed, {} renumbered, {} now unimplemented, {} now implemented",
                a.abi,
                a.kernels.0,
                a.kernels.1,
                a.added.len(),
                a.removed.len(),
                a.renumbered.len(),
                a.now_unimplemented.len(),
                a.now_implemented.len()
            )?;
            for (n, v) in &a.added {
                writeln!(f, "  + {n} {v}")?;
            }
            for (n, v) in &a.removed {
                writeln!(f, "  - {n} {v}")?;
            }
            for (n, o, v) in &a.renumbered {
                writeln!(f, "  ~ {n} {o} -> {v}")?;
            }
            for n in &a.now_unimplemented {
                writeln!(f, "  ! {n} now unimplemented")?;
            }
            for n in &a.now_implemented {
                writeln!(f, "  ! {n} now implemented")?;
            }
        }
        Ok(())
    }
}
