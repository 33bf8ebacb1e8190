//! The YAML backend, behind one function: typed parse, duplicate-key rejection, line lookup.

use crate::diag::{Diagnostic, Errors};
use crate::files::MAX_YAML_BYTES;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;

/// A parsed YAML document and the source lines, to point later errors at a line.
pub(crate) struct Parsed<T> {
    pub value: T,
    pub lines: Lines,
}

/// Deepest flow nesting (`[` / `{`) accepted. The backend's scanner costs time
/// proportional to the nesting depth for every token (100k nested `[` took 70 s), and its
/// own limit is 128 levels; no table or policy needs more than a few.
pub(crate) const MAX_FLOW_DEPTH: usize = 64;

/// Parses `text` (from `file`) into `T`. Duplicate keys at any depth, unknown fields and
/// type errors are reported as `file:line: ...`. Oversized texts and deep flow nesting are
/// refused before the backend sees them, so parsing takes time linear in the text.
pub(crate) fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<Parsed<T>, Errors> {
    if text.len() as u64 > MAX_YAML_BYTES {
        return Err(Diagnostic::at(file, None, format!("{} bytes, over the limit of {MAX_YAML_BYTES} for a YAML input", text.len())).into());
    }
    if let Some(line) = too_deep(text) {
        return Err(Diagnostic::at(
            file,
            Some(line),
            format!("flow collections (`[` and `{{`) nested deeper than {MAX_FLOW_DEPTH} levels"),
        )
        .into());
    }
    // Typed maps keep the last of two equal keys; an untyped pass rejects them. The typed
    // value is then taken from the untyped one. When that fails the text is parsed again
    // as `T`: it decides (a plain `1.0` is a string there, a number in the untyped value)
    // and its error has the line.
    let untyped = serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| located(file, text, &e))?;
    let value = match serde_yaml::from_value::<T>(untyped) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_str::<T>(text).map_err(|e| located(file, text, &e))?,
    };
    Ok(Parsed { value, lines: Lines::new(text) })
}

/// The 1-based line where flow nesting first exceeds [`MAX_FLOW_DEPTH`], if it does.
/// Brackets inside quoted scalars and comments do not count; a quote only opens a scalar
/// where a token may start, as in YAML (`don't` is a plain scalar).
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut quote: Option<u8> = None;
    let mut prev = b'\n';
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\n' {
            line += 1;
        }
        match quote {
            Some(b'"') if b == b'\\' => {
                if bytes.next() == Some(b'\n') {
                    line += 1;
                }
                prev = b'a';
                continue;
            }
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'#' if prev.is_ascii_whitespace() => {
                    while bytes.peek().is_some_and(|&c| c != b'\n') {
                        bytes.next();
                    }
                }
                b'\'' | b'"' if matches!(prev, b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b':' | b'-' | b'?') => quote = Some(b),
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some(line);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = b;
    }
    None
}

fn located(file: &Path, text: &str, e: &serde_yaml::Error) -> Diagnostic {
    let mut line = e.location().map(|l| l.line());
    let full = e.to_string();
    let mut message = full.clone();
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    // A syntax error with a context (`..., while parsing a flow sequence at line 50 column
    // 9`): the context is where the construct that is never finished starts (the unclosed
    // `[`, the key without `:`); the problem position is only where the parser gave up.
    if let Some((_, context)) = full.split_once(", while ") {
        let context_line = context.rsplit_once(" at line ").and_then(|(_, l)| l.split(' ').next()?.parse::<usize>().ok());
        let what = context.rsplit_once(" at line ").map_or(context, |(w, _)| w);
        if let Some(cl) = context_line {
            message = match line {
                Some(l) if l != cl => format!("{message}, while {what} (the parser stopped at line {l})"),
                _ => format!("{message}, while {what}"),
            };
            line = Some(cl);
        }
    }
    // `a b` on one line and `c: d` on the next: the parser reads one plain scalar over
    // both lines and stops at the colon; the key that lacks its colon starts the scalar.
    if let (Some(l), true) = (line, message == "mapping values are not allowed in this context") {
        let plain = |s: &str| {
            let s = strip_comment(s).trim();
            !s.is_empty() && !s.contains(':') && !s.starts_with(['-', '[', '{', '"', '\'', '#'])
        };
        let above: Vec<&str> = text.lines().take(l - 1).collect();
        let run = above.iter().rev().take_while(|s| plain(s)).count();
        if run > 0 {
            message = format!("{message}: a key without `:`? (the parser stopped at line {l})");
            line = Some(l - run);
        }
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
/// Lookups of a word take logarithmic time (an index of where each word stands), so
/// pointing each of n errors at its line costs O(n log n), not O(n^2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    lines: Vec<String>,
    /// 0-based indices of the lines that start a top-level key (no indentation).
    tops: Vec<usize>,
    /// Word -> 0-based indices of the lines it stands on, ascending.
    words: HashMap<String, Vec<usize>>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let lines: Vec<String> = text.lines().map(|l| strip_comment(l).to_string()).collect();
        let mut tops = Vec::new();
        let mut words: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, l) in lines.iter().enumerate() {
            if !l.is_empty() && !l.starts_with([' ', '-']) {
                tops.push(i);
            }
            for w in l.split(|c: char| !is_ident(c)).filter(|w| !w.is_empty()) {
                let at = words.entry(w.to_string()).or_default();
                if at.last() != Some(&i) {
                    at.push(i);
                }
            }
        }
        Lines { lines, tops, words }
    }

    /// 1-based line of the top-level key `key:`.
    pub(crate) fn top_key(&self, key: &str) -> Option<usize> {
        self.tops.iter().find(|&&i| self.lines[i].strip_prefix(key).is_some_and(|r| r.starts_with(':'))).map(|i| i + 1)
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
        let end = self.tops.get(self.tops.partition_point(|&t| t <= start)).copied().unwrap_or(self.lines.len());
        let at = self.words.get(word)?;
        let i = at[at.partition_point(|&l| l < start)..].first().copied()?;
        (i < end).then_some(i + 1)
    }

    /// 1-based line of `word` inside the block of top-level key `key`.
    pub(crate) fn word_in(&self, key: &str, word: &str) -> Option<usize> {
        self.word_from(self.top_key(key)?, word)
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn strip_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => &line[..i],
        None if line.trim_start().starts_with('#') => "",
        None => line,
    }
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

    /// An unclosed `[` is reported on its own line, not where the parser gave up (issue 20:
    /// line 50 was reported at 55).
    #[test]
    fn unclosed_bracket_is_reported_on_its_line() {
        let mut text = String::from("map:\n");
        for i in 0..48 {
            text.push_str(&format!("  k{i}: 1\n"));
        }
        text.push_str("  open: [1, 2\n"); // line 50
        for i in 0..5 {
            text.push_str(&format!("  l{i}: 2\n"));
        }
        let err = parse::<Doc>(Path::new("t.yaml"), &text).err().unwrap();
        assert_eq!(err.0[0].line, Some(50), "{err}");
        assert!(err.to_string().contains("while parsing a flow sequence"), "{err}");
    }

    /// A key without its colon is reported on that key's line (line 27, not 28).
    #[test]
    fn missing_colon_is_reported_on_the_key() {
        let mut text = String::from("map:\n");
        for i in 2..27 {
            text.push_str(&format!("  k{i}: {i}\n"));
        }
        text.push_str("  broken 27\n  k28: 28\n  k29: 29\n");
        let err = parse::<Doc>(Path::new("t.yaml"), &text).err().unwrap();
        assert_eq!(err.0[0].line, Some(27), "{err}");
        assert_eq!(err.to_string(), "t.yaml:27: could not find expected ':', while scanning a simple key (the parser stopped at line 28)");
        // The first key of a document has no context in the backend's message.
        let err = parse::<Doc>(Path::new("t.yaml"), "# c\nmap {}\nother: 1\n").err().unwrap();
        assert_eq!(
            err.to_string(),
            "t.yaml:2: mapping values are not allowed in this context: a key without `:`? (the parser stopped at line 3)"
        );
    }

    /// 100k nested `[` took 70 s in the backend: refused first, in linear time.
    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let text = format!("map:\n  a: 1\n  b: {}\n", "[".repeat(100_000));
        let err = parse::<Doc>(Path::new("t.yaml"), &text).err().unwrap();
        assert_eq!(err.to_string(), "t.yaml:3: flow collections (`[` and `{`) nested deeper than 64 levels");
        // Brackets in quoted scalars and comments do not count; `don't` opens no quote.
        let quoted = format!("map: {{a: \"{0}\", b: '{0}'}} # {0}\n", "[".repeat(100));
        assert!(too_deep(&quoted).is_none());
        assert_eq!(too_deep(&format!("m: [don't {}\n", "[".repeat(100))), Some(1));
        assert!(too_deep(&format!("{}{}", "[".repeat(64), "]".repeat(64))).is_none());
        let big = "#".repeat(MAX_YAML_BYTES as usize + 1);
        assert!(parse::<Doc>(Path::new("t.yaml"), &big).err().unwrap().to_string().contains("over the limit"));
    }

    #[test]
    fn word_lookups_stay_in_their_block() {
        let lines = Lines::new("a:\n  x: 1\nb:\n  y: 2\n  x: 3\n");
        assert_eq!(lines.word_in("a", "x"), Some(2));
        assert_eq!(lines.word_in("b", "x"), Some(5));
        assert_eq!(lines.word_in("a", "y"), None);
        assert_eq!(lines.word_from(4, "x"), Some(5));
    }
}
