//! Diagnostics: errors that name a file, a line and what is wrong, collected and shown together.

use std::fmt;
use std::path::{Path, PathBuf};

/// One error in an input file (or in the generated program, with no file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The data file the error is in, if any.
    pub file: Option<PathBuf>,
    /// 1-based line in `file`, if known.
    pub line: Option<usize>,
    /// What is wrong, naming the syscall or ABI concerned.
    pub message: String,
}

impl Diagnostic {
    /// An error at `file:line`.
    pub fn at(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Diagnostic { file: Some(file.to_path_buf()), line, message: message.into() }
    }

    /// An error with no file (e.g. in a generated program).
    pub fn bare(message: impl Into<String>) -> Self {
        Diagnostic { file: None, line: None, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{}: {}", file.display(), line, self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Every error found in one pass, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Errors(pub Vec<Diagnostic>);

impl Errors {
    /// Adds one error.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when empty, the errors otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Errors> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl From<Diagnostic> for Errors {
    fn from(d: Diagnostic) -> Self {
        Errors(vec![d])
    }
}

/// Errors shown per class (same message up to the names and numbers in it); the rest of
/// a class is counted in one summary line, so a hostile input cannot flood the output.
pub const SHOWN_PER_CLASS: usize = 20;

impl Errors {
    /// The lines to show: every error, except that past [`SHOWN_PER_CLASS`] errors of one
    /// class the rest is summed up in one line (`... and 1980 more errors like the one at
    /// x.yaml:12`), placed where that class's last shown error is.
    pub fn shown(&self) -> Vec<String> {
        let classes: Vec<String> = self.0.iter().map(|d| class_of(&d.message)).collect();
        let mut total: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for c in &classes {
            *total.entry(c.as_str()).or_default() += 1;
        }
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (d, c) in self.0.iter().zip(&classes) {
            let n = seen.entry(c.as_str()).or_default();
            *n += 1;
            if *n <= SHOWN_PER_CLASS {
                out.push(d.to_string());
            }
            let all = total[c.as_str()];
            if *n == SHOWN_PER_CLASS && all > SHOWN_PER_CLASS {
                let at = match (&d.file, d.line) {
                    (Some(f), Some(l)) => format!(" at {}:{l}", f.display()),
                    (Some(f), None) => format!(" in {}", f.display()),
                    _ => String::new(),
                };
                out.push(format!("... and {} more errors like the one{at}", all - SHOWN_PER_CLASS));
            }
        }
        out
    }
}

/// A message with its names (`...`), quoted strings and numbers blanked, and without a
/// did-you-mean: errors that differ only in those are one class.
fn class_of(message: &str) -> String {
    let message = message.split(" (did you mean ").next().unwrap_or(message);
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    let mut number = false;
    for c in message.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
                out.push(c);
            }
            continue;
        }
        if number && c.is_ascii_alphanumeric() {
            continue;
        }
        number = c.is_ascii_digit() && !out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_');
        if number {
            out.push('#');
        } else {
            if c == '`' || c == '"' {
                quote = Some(c);
            }
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown().join("\n"))
    }
}

impl std::error::Error for Errors {}

/// The closest candidate to `name` by edit distance, if close enough to suggest. Each
/// candidate costs at most O(len * limit) and no allocation: far ones are dropped by
/// length first, and the distance stops as soon as it exceeds the limit.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.len() / 3).max(2);
    let name: Vec<char> = name.chars().take(256).collect();
    let mut rows = Rows::default();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let len = if c.is_ascii() { c.len() } else { c.chars().count() };
        if len.abs_diff(name.len()) > limit {
            continue;
        }
        let bound = best.map_or(limit, |(d, _)| d);
        if let Some(d) = rows.distance_within(&name, c, bound) {
            if best.is_none_or(|(bd, bc)| (d, c) < (bd, bc)) {
                best = Some((d, c));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// The rows of one distance computation, reused from one candidate to the next.
#[derive(Default)]
struct Rows {
    b: Vec<char>,
    prev2: Vec<usize>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

impl Rows {
    /// Optimal string alignment distance (insertions, deletions, substitutions and
    /// transpositions of neighbours each cost 1) if it is at most `bound`, else `None`.
    fn distance_within(&mut self, a: &[char], b: &str, bound: usize) -> Option<usize> {
        self.b.clear();
        self.b.extend(b.chars().take(a.len() + bound + 1));
        let (n, m, b) = (a.len(), self.b.len(), &self.b);
        if n.abs_diff(m) > bound {
            return None;
        }
        for v in [&mut self.prev2, &mut self.prev, &mut self.cur] {
            v.clear();
            v.resize(m + 1, 0);
        }
        self.prev.iter_mut().enumerate().for_each(|(j, x)| *x = j);
        for i in 1..=n {
            self.cur[0] = i;
            let mut row_min = i;
            for j in 1..=m {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (self.prev[j] + 1).min(self.cur[j - 1] + 1).min(self.prev[j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(self.prev2[j - 2] + 1);
                }
                self.cur[j] = v;
                row_min = row_min.min(v);
            }
            if row_min > bound {
                return None;
            }
            std::mem::swap(&mut self.prev2, &mut self.prev);
            std::mem::swap(&mut self.prev, &mut self.cur);
        }
        Some(self.prev[m]).filter(|d| *d <= bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["chown", "fchown", "setuid", "mknodat"];
        assert_eq!(did_you_mean("chwon", names), Some("chown"));
        assert_eq!(did_you_mean("mknodt", names), Some("mknodat"));
        assert_eq!(did_you_mean("openat", names), None);
        assert_eq!(did_you_mean("setiud", ["setgid", "setuid"]), Some("setuid"), "a transposition is one edit");
        assert_eq!(did_you_mean("chown", ["chmod", "lchown", "fchown"]), Some("fchown"), "ties go to the first name in order");
        assert_eq!(class_of("x.yaml: `a1` has number 0x1f, like \"b\" 12"), "x.yaml: `` has number #, like \"\" #");
    }

    #[test]
    fn errors_past_the_cap_of_their_class_are_counted() {
        let mut e = Errors::default();
        for i in 0..SHOWN_PER_CLASS + 5 {
            e.push(Diagnostic::at(Path::new("t.yaml"), Some(i + 1), format!("syscall `s{i}` has number 7, already used by `s0`")));
            e.push(Diagnostic::bare(format!("unknown ABI `a{i}`")));
        }
        e.push(Diagnostic::bare("something else"));
        let lines = e.shown();
        assert_eq!(lines.len(), 2 * SHOWN_PER_CLASS + 3, "{lines:#?}");
        assert_eq!(lines[2 * SHOWN_PER_CLASS - 2], format!("t.yaml:{SHOWN_PER_CLASS}: syscall `s19` has number 7, already used by `s0`"));
        assert_eq!(lines[2 * SHOWN_PER_CLASS - 1], format!("... and 5 more errors like the one at t.yaml:{SHOWN_PER_CLASS}"));
        assert_eq!(lines[2 * SHOWN_PER_CLASS + 1], "... and 5 more errors like the one");
        assert_eq!(lines.last().unwrap(), "something else");
        assert_eq!(e.to_string().lines().count(), lines.len());
    }
}
