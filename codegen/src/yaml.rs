//! The YAML backend, behind one function: typed parse, duplicate-key rejection, line lookup.

use crate::diag::{Diagnostic, Errors};
use serde::de::DeserializeOwned;
use std::path::Path;

/// A parsed YAML document and the source lines, to point later errors at a line.
pub(crate) struct Parsed<T> {
    pub value: T,
    pub lines: Lines,
}

/// Parses `text` (from `file`) into `T`. Duplicate keys at any depth, unknown fields and
/// type errors are reported as `file:line: ...`.
pub(crate) fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<Parsed<T>, Errors> {
    // Typed maps keep the last of two equal keys; an untyped pass rejects them.
    if let Err(e) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        return Err(located(file, text, &e).into());
    }
    match serde_yaml::from_str::<T>(text) {
        Ok(value) => Ok(Parsed { value, lines: Lines::new(text) }),
        Err(e) => Err(located(file, text, &e).into()),
    }
}

fn located(file: &Path, text: &str, e: &serde_yaml::Error) -> Diagnostic {
    let mut line = e.location().map(|l| l.line());
    let mut message = e.to_string();
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    // The backend points at the map; point at the second occurrence of the key instead.
    if let (Some(l), Some(key)) = (line, message.split("duplicate entry with key \"").nth(1)) {
        let key = key.trim_end_matches('"');
        let is_key = |s: &str| s.trim_start().trim_start_matches("- ").strip_prefix(key).is_some_and(|r| r.starts_with(':'));
        line = text.lines().enumerate().skip(l - 1).filter(|(_, s)| is_key(s)).nth(1).map(|(i, _)| i + 1).or(line);
    }
    // A few backend errors have no location (e.g. a second document): point at the
    // second document's start, else at line 1, so that every error names a line.
    let line = line.or_else(|| second_document(text)).unwrap_or(1);
    Diagnostic::at(file, Some(line), message)
}

/// 1-based line of a `---` that follows content, i.e. starts a second document.
fn second_document(text: &str) -> Option<usize> {
    let mut content = false;
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("---") && content {
            return Some(i + 1);
        }
        content |= !l.trim().is_empty() && !l.trim_start().starts_with('#') && !l.starts_with("---");
    }
    None
}

/// Source lines of a YAML file, for pointing at the line a key or a name stands on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    lines: Vec<String>,
}

impl Lines {
    fn new(text: &str) -> Self {
        Lines { lines: text.lines().map(|l| strip_comment(l).to_string()).collect() }
    }

    /// 1-based line of the top-level key `key:`.
    pub(crate) fn top_key(&self, key: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.starts_with(key) && l[key.len()..].starts_with(':')).map(|i| i + 1)
    }

    /// 1-based line of the top-level key `key:`, or 1 when it is not written that way
    /// (flow style, a quoted key): a diagnostic always names a line.
    pub(crate) fn key_line(&self, key: &str) -> usize {
        self.top_key(key).unwrap_or(1)
    }

    /// 1-based lines of the items of the top-level sequence under `key`.
    pub(crate) fn items_of(&self, key: &str) -> Vec<usize> {
        let Some(start) = self.top_key(key) else { return Vec::new() };
        let mut indent = None;
        let mut out = Vec::new();
        for (i, l) in self.lines.iter().enumerate().skip(start) {
            if !l.trim().is_empty() && !l.starts_with([' ', '-']) {
                break;
            }
            let trimmed = l.trim_start();
            if trimmed.starts_with("- ") || trimmed == "-" {
                let col = l.len() - trimmed.len();
                if *indent.get_or_insert(col) == col {
                    out.push(i + 1);
                }
            }
        }
        out
    }

    /// 1-based line of the first whole-word `word` at or after line `from`, within the
    /// block that starts there (until the next top-level key).
    pub(crate) fn word_from(&self, from: usize, word: &str) -> Option<usize> {
        let start = from.saturating_sub(1);
        for (i, l) in self.lines.iter().enumerate().skip(start) {
            if i > start && !l.is_empty() && !l.starts_with([' ', '-']) {
                return None;
            }
            if has_word(l, word) {
                return Some(i + 1);
            }
        }
        None
    }

    /// 1-based line of `word` inside the block of top-level key `key`.
    pub(crate) fn word_in(&self, key: &str, word: &str) -> Option<usize> {
        self.word_from(self.top_key(key)?, word)
    }
}

fn strip_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => &line[..i],
        None if line.trim_start().starts_with('#') => "",
        None => line,
    }
}

fn has_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        map: BTreeMap<String, u32>,
    }

    #[test]
    fn rejects_duplicate_keys_in_typed_maps() {
        let err = parse::<Doc>(Path::new("t.yaml"), "map:\n  a: 1\n  b: 2\n  a: 3\n").err().unwrap();
        let msg = err.to_string();
        assert!(msg.starts_with("t.yaml:"), "{msg}");
        assert!(msg.contains("duplicate") && msg.contains("\"a\""), "{msg}");
    }

    #[test]
    fn reports_unknown_fields_with_line() {
        let err = parse::<Doc>(Path::new("t.yaml"), "map: {}\nextra: 1\n").err().unwrap();
        assert_eq!(err.0[0].line, Some(2), "{err}");
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn finds_lines_of_words_and_items() {
        let lines = Lines::new("a: 1\nrules:\n  - x: [chown, fchown] # chmod\n  - y: 2\nz:\n  chown: 3\n");
        assert_eq!(lines.items_of("rules"), vec![3, 4]);
        assert_eq!(lines.word_in("rules", "fchown"), Some(3));
        assert_eq!(lines.word_in("rules", "chmod"), None);
        assert_eq!(lines.word_in("z", "chown"), Some(6));
        assert_eq!((lines.key_line("z"), lines.key_line("nope")), (5, 1));
    }

    /// Found by `cargo fuzz run tables`: a second document had no line.
    #[test]
    fn every_parse_error_has_a_line() {
        let err = parse::<Doc>(
            Path::new("t.yaml"),
            "# c
map: {}
---
map: {}
",
        )
        .err()
        .unwrap();
        assert_eq!(err.0[0].line, Some(3), "{err}");
        assert!(err.to_string().contains("more than one document"), "{err}");
    }
}
