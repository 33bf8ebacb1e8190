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

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

/// The closest candidate to `name` by edit distance, if close enough to suggest.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.len() / 3).max(2);
    candidates.into_iter().map(|c| (edit_distance(name, c), c)).filter(|(d, _)| *d <= limit).min().map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and
/// transpositions of neighbours each cost 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
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
    }
}
