//! Policies: which syscalls get which action, by name (never by number), and their meaning.

use crate::bpf::Action;
use crate::diag::{Diagnostic, Errors, did_you_mean};
use crate::table::Tables;
use crate::yaml::{self, Lines};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    policy: String,
    #[serde(default)]
    description: Option<String>,
    default: String,
    unknown_abi: String,
    #[serde(default)]
    constants: BTreeMap<String, u32>,
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    action: String,
    syscalls: Vec<String>,
    #[serde(default)]
    when_any: Vec<Vec<AtomFile>>,
    #[serde(default)]
    added_in: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AtomFile {
    arg: u32,
    #[serde(default)]
    mask: Option<Operand>,
    #[serde(default)]
    eq: Option<Operand>,
    #[serde(default)]
    ne: Option<Operand>,
}

/// A number, or the name of one of the policy's `constants`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Operand {
    Number(u32),
    Name(String),
}

/// How an atom compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `(arg & mask) == value`.
    Eq,
    /// `(arg & mask) != value`.
    Ne,
}

/// One test of a syscall argument's low 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Atom {
    /// Argument index, 0..6.
    pub arg: u32,
    /// Bits compared.
    pub mask: u32,
    /// Comparison.
    pub cmp: Cmp,
    /// Value compared with.
    pub value: u32,
}

impl Atom {
    /// Whether the atom holds for an argument (only its low 32 bits count).
    pub fn holds(&self, arg: u64) -> bool {
        let v = (arg as u32) & self.mask;
        (v == self.value) == (self.cmp == Cmp::Eq)
    }
}

/// One rule: an action for some syscalls, optionally only when a condition holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What happens.
    pub action: Action,
    /// Syscall names the rule covers.
    pub syscalls: Vec<String>,
    /// Alternatives (any may hold) of conjunctions (all must hold); empty: always.
    pub when_any: Vec<Vec<Atom>>,
    /// 1-based line of the rule in the policy file.
    pub line: Option<usize>,
}

impl Rule {
    /// Whether the rule's condition holds for these arguments.
    pub fn applies(&self, args: &[u64; 6]) -> bool {
        self.when_any.is_empty() || self.when_any.iter().any(|all| all.iter().all(|a| a.holds(args[a.arg as usize])))
    }
}

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The policy's name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Action for syscalls no rule covers.
    pub default: Action,
    /// Action for an AUDIT_ARCH the tables do not know.
    pub unknown_abi: Action,
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
    /// The file it was loaded from.
    pub file: PathBuf,
}

impl Policy {
    /// Loads a policy file and checks it against the tables; all errors at once.
    pub fn load(path: &Path, tables: &Tables) -> Result<Policy, Errors> {
        let text = crate::files::read_yaml(path, "policy")?;
        Policy::parse(path, &text, tables)
    }

    /// Parses a policy's text (from `path`) and checks it against the tables.
    pub fn parse(path: &Path, text: &str, tables: &Tables) -> Result<Policy, Errors> {
        Policy::parse_names(path, text, Some(&known_names(tables)))
    }

    /// Loads a tables directory and checks every policy against it, reporting the errors
    /// of both together (a policy's syscall names only when every table file parsed).
    pub fn check_all(tables: &Path, policies: &[PathBuf]) -> Result<(Tables, Vec<Policy>), Errors> {
        let loaded = Tables::load_dir_lenient(tables);
        let known = loaded.complete.then(|| known_names(&loaded.tables));
        let mut errors = loaded.errors;
        let mut out = Vec::new();
        for path in policies {
            match crate::files::read_yaml(path, "policy").map_err(Errors::from).and_then(|t| Policy::parse_names(path, &t, known.as_ref()))
            {
                Ok(p) => out.push(p),
                Err(e) => errors.0.extend(e.0),
            }
        }
        errors.into_result((loaded.tables, out))
    }

    /// Parses a policy; its syscall names are checked against `known` unless it is `None`
    /// (the tables did not load completely: every name would look unknown).
    pub(crate) fn parse_names(path: &Path, text: &str, known: Option<&Known>) -> Result<Policy, Errors> {
        let parsed = yaml::parse::<PolicyFile>(path, text)?;
        validate(path, parsed.value, &parsed.lines, known)
    }

    /// The rules that name `syscall`, in order.
    pub fn rules_for<'a>(&'a self, syscall: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.syscalls.iter().any(|s| s == syscall))
    }

    /// The policy's meaning for a syscall name (`None`: a number no table names) and its arguments.
    pub fn verdict(&self, syscall: Option<&str>, args: &[u64; 6]) -> Action {
        syscall.and_then(|name| self.rules_for(name).find(|r| r.applies(args))).map_or(self.default, |r| r.action)
    }

    /// Every syscall name the policy mentions.
    pub fn names(&self) -> BTreeSet<&str> {
        self.rules.iter().flat_map(|r| r.syscalls.iter().map(String::as_str)).collect()
    }

    /// Whether the verdict for `syscall` may depend on its arguments.
    pub fn looks_at_args(&self, syscall: &str) -> bool {
        self.rules_for(syscall).any(|r| !r.when_any.is_empty())
    }
}

/// Finds the lines of words that stand in the text in the order they are looked up: each
/// from where the previous one stood, and a word seen before after its previous line (a
/// repeated word on one line stays on it).
struct Cursor<'a> {
    lines: &'a Lines,
    at: Option<usize>,
    seen: BTreeMap<String, usize>,
}

impl<'a> Cursor<'a> {
    fn new(lines: &'a Lines, from: Option<usize>) -> Self {
        Cursor { lines, at: from, seen: BTreeMap::new() }
    }

    fn find(&mut self, word: &str) -> Option<usize> {
        let before = self.seen.get(word).copied();
        let from = before.map(|l| l + 1).or(self.at)?;
        let found = self.lines.word_from(from, word).or(before)?;
        self.at = Some(found);
        self.seen.insert(word.to_string(), found);
        Some(found)
    }
}

/// Unknown syscall names that get a did-you-mean suggestion; past them a policy is not
/// one with a few typos, and the rest are reported without one.
const SUGGESTED: usize = crate::diag::SHOWN_PER_CLASS;

/// Every syscall name of any ABI.
/// The syscall names of a set of tables, and the newest kernel release they were imported
/// from (`None`: no ABI says).
pub(crate) struct Known<'a> {
    names: BTreeSet<&'a str>,
    newest: Option<(u32, u32)>,
}

/// `MAJOR.MINOR` of a release like `6.12.117` or `7.3`.
fn release(s: &str) -> Option<(u32, u32)> {
    let mut p = s.split('.');
    Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
}

pub(crate) fn known_names(tables: &Tables) -> Known<'_> {
    Known {
        names: tables.abis.iter().flat_map(|a| a.syscalls.keys().map(String::as_str)).collect(),
        newest: tables.abis.iter().filter_map(|a| a.source.as_ref().and_then(|s| release(&s.kernel))).max(),
    }
}

fn validate(path: &Path, f: PolicyFile, lines: &Lines, known: Option<&Known>) -> Result<Policy, Errors> {
    let mut errors = Errors::default();
    let action = |s: &str, line: Option<usize>, errors: &mut Errors| {
        Action::parse(s).unwrap_or_else(|| {
            errors.push(Diagnostic::at(
                path,
                line,
                format!(
                    "unknown action `{s}` (expected allow, fake_success, errno N, kill_process, kill_thread, trap, log, trace N or notify)"
                ),
            ));
            Action::Allow
        })
    };
    let default = action(&f.default, Some(lines.key_line("default")), &mut errors);
    let unknown_abi = action(&f.unknown_abi, Some(lines.key_line("unknown_abi")), &mut errors);
    let item_lines = lines.items_of("rules");
    let mut unknown = 0usize;
    let mut rules = Vec::new();
    for (i, r) in f.rules.into_iter().enumerate() {
        // Flow-style rules have no item lines: fall back to the `rules:` line.
        let line = item_lines.get(i).copied().or(Some(lines.key_line("rules")));
        let rule_action = action(&r.action, line, &mut errors);
        // Names stand in the text in the order listed: each is looked up from where the
        // previous one stood, so an error names the offending occurrence, not the first.
        let mut cursor = Cursor::new(lines, line);
        let mut seen = BTreeSet::new();
        // `added_in: MAJOR.MINOR`: the rule's calls are that recent; tables imported from an
        // older kernel lack them, and then they are left out instead of being an error.
        let added_in = r.added_in.as_deref().map(|v| {
            release(v).filter(|_| v.split('.').count() == 2).unwrap_or_else(|| {
                errors.push(Diagnostic::at(path, line, format!("`added_in: {v}`: expected a kernel release MAJOR.MINOR, e.g. 6.13")));
                (0, 0)
            })
        });
        let predates = |k: &Known| added_in.is_some_and(|v| k.newest.is_none_or(|n| n < v));
        for name in &r.syscalls {
            let at = cursor.find(name).or(line);
            if !seen.insert(name.as_str()) {
                errors.push(Diagnostic::at(path, at, format!("syscall `{name}` is listed twice in this rule")));
            } else if let Some(known) = known.filter(|k| !k.names.contains(name.as_str()) && !predates(k)) {
                let mut m = format!("syscall `{name}` exists on no ABI in the tables");
                unknown += 1;
                // Suggestions cost a pass over every known name: only for the first few.
                if let Some(s) = (unknown <= SUGGESTED).then(|| did_you_mean(name, known.names.iter().copied())).flatten() {
                    m.push_str(&format!(" (did you mean `{s}`?)"));
                }
                errors.push(Diagnostic::at(path, at, m));
            }
        }
        let mut when_any = Vec::new();
        let mut constant_cursor = Cursor::new(lines, line);
        for all in r.when_any {
            let mut conj = Vec::new();
            for a in all {
                let mut operand = |o: Operand, what: &str| match o {
                    Operand::Number(n) => Some(n),
                    Operand::Name(n) => f.constants.get(&n).copied().or_else(|| {
                        let mut m = format!("unknown constant `{n}` in `{what}`");
                        if let Some(s) = did_you_mean(&n, f.constants.keys().map(String::as_str)) {
                            m.push_str(&format!(" (did you mean `{s}`?)"));
                        }
                        errors.push(Diagnostic::at(path, constant_cursor.find(&n).or(line), m));
                        None
                    }),
                };
                let mask = a.mask.map_or(Some(u32::MAX), |m| operand(m, "mask"));
                let (cmp, value) = match (a.eq, a.ne) {
                    (Some(v), None) => (Cmp::Eq, operand(v, "eq")),
                    (None, Some(v)) => (Cmp::Ne, operand(v, "ne")),
                    _ => {
                        errors.push(Diagnostic::at(path, line, "a condition needs exactly one of `eq` and `ne`"));
                        continue;
                    }
                };
                if a.arg > 5 {
                    errors.push(Diagnostic::at(path, line, format!("argument index {} is out of range (syscalls have args 0..5)", a.arg)));
                    continue;
                }
                let (Some(mask), Some(value)) = (mask, value) else { continue };
                if value & !mask != 0 {
                    errors.push(Diagnostic::at(
                        path,
                        line,
                        format!("condition on arg {}: value {value:#o} has bits outside mask {mask:#o}, so it never matches", a.arg),
                    ));
                }
                conj.push(Atom { arg: a.arg, mask, cmp, value });
            }
            when_any.push(conj);
        }
        rules.push(Rule { action: rule_action, syscalls: r.syscalls, when_any, line });
    }
    errors.into_result(Policy { name: f.policy, description: f.description, default, unknown_abi, rules, file: path.to_path_buf() })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::table::Tables;

    pub(crate) const POLICY: &str = "\
policy: test
default: allow
unknown_abi: kill_process
constants:
  S_IFMT: 0o170000
  S_IFCHR: 0o020000
  S_IFBLK: 0o060000
rules:
  - action: fake_success
    syscalls: [chown, setuid]
  - action: fake_success
    syscalls: [mknod]
    when_any:
      - [{arg: 1, mask: S_IFMT, eq: S_IFBLK}]
      - [{arg: 1, mask: S_IFMT, eq: S_IFCHR}, {arg: 2, ne: 0}]
";

    pub(crate) fn tables() -> Tables {
        let x86 = crate::table::tests::X86_64.replace("  setuid: 105\n", "  setuid: 105\n  mknod: 133\n");
        Tables::parse([(Path::new("x86_64.yaml"), x86.as_str())]).unwrap()
    }

    #[test]
    fn meaning_of_the_mknod_rule() {
        let p = Policy::parse(Path::new("p.yaml"), POLICY, &tables()).unwrap();
        let args = |mode: u64, dev: u64| [0, mode, dev, 0, 0, 0];
        assert_eq!(p.verdict(Some("mknod"), &args(0o020644, 0x0103)), Action::Errno(0));
        assert_eq!(p.verdict(Some("mknod"), &args(0o060600, 0)), Action::Errno(0));
        assert_eq!(p.verdict(Some("mknod"), &args(0o020000, 0)), Action::Allow, "whiteout goes to the kernel");
        assert_eq!(p.verdict(Some("mknod"), &args(0o010644, 7)), Action::Allow, "FIFO goes to the kernel");
        assert_eq!(
            p.verdict(Some("mknod"), &args(0xdead_beef_0000_0000 | 0o020644, 0xffff_ffff_0000_0000)),
            Action::Allow,
            "only the low half counts"
        );
        assert_eq!(p.verdict(Some("chown"), &[0; 6]), Action::Errno(0));
        assert_eq!(p.verdict(None, &[0; 6]), Action::Allow);
    }

    #[test]
    fn unknown_names_are_reported_with_line_and_suggestion() {
        let text = POLICY.replace("[chown, setuid]", "[chown, setiud]").replace("mask: S_IFMT, eq: S_IFBLK", "mask: S_IFMTT, eq: S_IFBLK");
        let err = Policy::parse(Path::new("p.yaml"), &text, &tables()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yaml:10: syscall `setiud` exists on no ABI in the tables (did you mean `setuid`?)\n\
             p.yaml:14: unknown constant `S_IFMTT` in `mask` (did you mean `S_IFMT`?)"
        );
    }

    /// A rule's `added_in` release: its names may be missing from tables of an older
    /// kernel, never from tables of that release or newer (a typo stays an error).
    #[test]
    fn added_in_names_are_left_out_only_for_older_tables() {
        let text = "policy: p\ndefault: allow\nunknown_abi: trap\nrules:\n  - action: notify\n    added_in: \"REL\"\n    syscalls: [chown, setxattrat]\n";
        let x86 =
            crate::table::tests::X86_64.replace("syscalls:\n", "source:\n  kernel: 6.12.117\n  file: x\nsyscalls:\n  setxattr: 188\n");
        let t = Tables::parse([(Path::new("x86_64.yaml"), x86.as_str())]).unwrap();
        let p = Policy::parse(Path::new("p.yaml"), &text.replace("REL", "6.13"), &t).unwrap();
        assert_eq!(p.rules[0].syscalls, ["chown", "setxattrat"]);
        let err = Policy::parse(Path::new("p.yaml"), &text.replace("REL", "6.12"), &t).unwrap_err();
        assert_eq!(err.to_string(), "p.yaml:7: syscall `setxattrat` exists on no ABI in the tables (did you mean `setxattr`?)");
        let err = Policy::parse(Path::new("p.yaml"), &text.replace("REL", "soon"), &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yaml:5: `added_in: soon`: expected a kernel release MAJOR.MINOR, e.g. 6.13\n\
             p.yaml:7: syscall `setxattrat` exists on no ABI in the tables (did you mean `setxattr`?)"
        );
    }

    /// Found by `cargo fuzz run tables`: errors in flow-style rules had no line.
    #[test]
    fn errors_in_flow_style_rules_still_name_a_line() {
        let text = "policy: p\ndefault: allow\nunknown_abi: trap\nrules: [{action: alow, syscalls: [chwon]}]\n";
        let err = Policy::parse(Path::new("p.yaml"), text, &tables()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yaml:4: unknown action `alow` (expected allow, fake_success, errno N, kill_process, kill_thread, trap, log, trace N or notify)\np.yaml:4: syscall `chwon` exists on no ABI in the tables (did you mean `chown`?)"
        );
    }

    #[test]
    fn bad_actions_and_conditions_are_all_reported() {
        let text = POLICY.replace("default: allow", "default: alow").replace("{arg: 2, ne: 0}", "{arg: 7, ne: 0}");
        let err = Policy::parse(Path::new("p.yaml"), &text, &tables()).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0[0].to_string().starts_with("p.yaml:2: unknown action `alow`"), "{err}");
        assert!(err.0[1].to_string().starts_with("p.yaml:11: argument index 7 is out of range"), "{err}");
    }

    /// An error names the occurrence at fault: the second listing of a name, the second
    /// use of an unknown constant, not the first line the word appears on.
    #[test]
    fn errors_point_at_the_offending_occurrence() {
        let text = "policy: p\ndefault: allow\nunknown_abi: trap\nconstants: {A: 1}\nrules:\n  - action: fake_success\n    syscalls:\n      - chown\n      - setuid\n      - chown\n    when_any:\n      - [{arg: 1, eq: A}]\n      - [{arg: 1, eq: B}]\n      - [{arg: 2, eq: B}]\n";
        let err = Policy::parse(Path::new("p.yaml"), text, &tables()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yaml:10: syscall `chown` is listed twice in this rule\np.yaml:13: unknown constant `B` in `eq` (did you mean `A`?)\np.yaml:14: unknown constant `B` in `eq` (did you mean `A`?)"
        );
    }

    /// Table errors do not hide policy errors (issue 20): both come back together.
    #[test]
    fn table_and_policy_errors_come_together() {
        let dir = std::env::temp_dir().join(format!("rootemu-policy-both-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("policy")).unwrap();
        let x86 = crate::table::tests::X86_64.replace("setuid: 105", "setuid: 92\n  mknod: 133");
        std::fs::write(dir.join("x86_64.yaml"), x86).unwrap();
        let policy = dir.join("policy/p.yaml");
        std::fs::write(&policy, POLICY.replace("[chown, setuid]", "[chown, setiud]")).unwrap();
        let err = crate::Filter::build(&crate::Inputs { tables: &dir, policy: &policy, abis: &[] }).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("x86_64.yaml:14: ABI `x86_64`: syscall `setuid` has number 92, already used by `chown`"), "{text}");
        assert!(text.contains("p.yaml:10: syscall `setiud` exists on no ABI in the tables (did you mean `setuid`?)"), "{text}");
        let err = Policy::check_all(&dir, &[policy]).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
