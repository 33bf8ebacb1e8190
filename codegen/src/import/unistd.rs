//! C headers that number syscalls: asm-generic `unistd.h` (trees before 6.11) with the
//! arch's uapi `unistd.h` (its `__ARCH_WANT_*`, `__BITS_PER_LONG`, arch-private
//! `__NR_*`), and the arm `__ARM_NR_*` private calls.
//!
//! A small preprocessor: object-like `#define`/`#undef`, `#if/#ifdef/#ifndef/#elif/
//! #else/#endif` with integer expressions and `defined`, `#include <x>` resolved
//! against `include/uapi/` of the tree (headers generated at build time are absent
//! and skipped), and the asm-generic table macros `__SYSCALL`, `__SC_COMP`,
//! `__SC_3264`, `__SC_COMP_3264` (the native, non-compat entry point is recorded).

use crate::diag::{Diagnostic, Errors};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The state after preprocessing.
#[derive(Default, Debug)]
pub(crate) struct Cpp {
    /// Object-like macros in effect: name -> replacement text.
    pub macros: BTreeMap<String, String>,
    /// Where each macro was defined (tree-relative file, line).
    pub defined_at: BTreeMap<String, (String, usize)>,
    /// Macros removed with `#undef` and not defined again.
    pub undefined: BTreeSet<String>,
    /// `__SYSCALL`-family invocations in active code: (number expression, entry point, file, line).
    pub entries: Vec<(String, String, String, usize)>,
    /// Tree-relative files read, in order.
    pub files: Vec<String>,
    /// Bits of the ABI (selects the `_32` or `_64` entry of `__SC_3264`).
    pub bits: u32,
}

impl Cpp {
    /// A preprocessor for a `bits`-bit native ABI: `__BITS_PER_LONG` is `bits`, and
    /// `__LP64__` is defined on 64-bit (as the compiler does). `__SYSCALL_COMPAT` is not.
    pub fn new(bits: u32) -> Cpp {
        let mut c = Cpp { bits, ..Cpp::default() };
        c.macros.insert("__BITS_PER_LONG".into(), bits.to_string());
        if bits == 64 {
            c.macros.insert("__LP64__".into(), "1".into());
        }
        c
    }

    /// Preprocesses `rel` (relative to `tree`), following includes found under `include/uapi/`.
    pub fn run(&mut self, tree: &Path, rel: &str, errors: &mut Errors) {
        let path = tree.join(rel);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => return errors.push(Diagnostic::at(&path, None, format!("cannot read: {e}"))),
        };
        if self.files.iter().filter(|f| *f == rel).count() > 8 {
            return errors.push(Diagnostic::at(&path, None, "include nesting too deep"));
        }
        self.files.push(rel.to_string());
        // (active, some branch taken, parent active)
        let mut stack: Vec<(bool, bool, bool)> = Vec::new();
        let active = |s: &Vec<(bool, bool, bool)>| s.last().is_none_or(|t| t.0);
        for (line_no, line) in logical_lines(&text) {
            let at = |m: String| Diagnostic::at(&path, Some(line_no), m);
            let t = line.trim();
            if let Some(d) = t.strip_prefix('#') {
                let d = d.trim_start();
                let (kw, rest) = d.split_once(|c: char| c.is_whitespace()).unwrap_or((d, ""));
                let rest = rest.trim();
                match kw {
                    "if" | "ifdef" | "ifndef" => {
                        let parent = active(&stack);
                        let cond = parent
                            && match kw {
                                "ifdef" => self.macros.contains_key(rest),
                                "ifndef" => !self.macros.contains_key(rest),
                                _ => self.cond(rest).unwrap_or_else(|m| {
                                    errors.push(at(m));
                                    false
                                }),
                            };
                        stack.push((cond, cond, parent));
                    }
                    "elif" => match stack.last_mut() {
                        Some(top) => {
                            let c = top.2 && !top.1 && self.cond_quiet(rest, errors, &path, line_no);
                            top.0 = c;
                            top.1 |= c;
                        }
                        None => errors.push(at("#elif without #if".into())),
                    },
                    "else" => match stack.last_mut() {
                        Some(top) => {
                            top.0 = top.2 && !top.1;
                            top.1 = true;
                        }
                        None => errors.push(at("#else without #if".into())),
                    },
                    "endif" => match stack.pop() {
                        Some(_) => {}
                        None => errors.push(at("#endif without #if".into())),
                    },
                    _ if !active(&stack) => {}
                    "define" => {
                        let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                        let (name, body) = rest.split_at(name_end);
                        if body.starts_with('(') {
                            continue; // function-like: the table macros are handled below
                        }
                        self.undefined.remove(name);
                        self.macros.insert(name.to_string(), body.trim().to_string());
                        self.defined_at.insert(name.to_string(), (rel.to_string(), line_no));
                    }
                    "undef" => {
                        self.macros.remove(rest);
                        self.undefined.insert(rest.to_string());
                    }
                    "include" => {
                        let inc = rest.trim_matches(|c| c == '<' || c == '>' || c == '"');
                        let cand = format!("include/uapi/{inc}");
                        if tree.join(&cand).is_file() {
                            self.run(tree, &cand, errors);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            if !active(&stack) {
                continue;
            }
            if let Some((nr, entry)) = self.table_macro(t) {
                self.entries.push((nr, entry, rel.to_string(), line_no));
            }
        }
        if !stack.is_empty() {
            errors.push(Diagnostic::at(&path, None, "unterminated #if"));
        }
    }

    fn cond_quiet(&self, e: &str, errors: &mut Errors, path: &Path, line: usize) -> bool {
        self.cond(e).unwrap_or_else(|m| {
            errors.push(Diagnostic::at(path, Some(line), m));
            false
        })
    }

    /// Evaluates an `#if` expression (unknown identifiers are 0, as in C).
    pub fn cond(&self, e: &str) -> Result<bool, String> {
        Ok(Expr { toks: tokens(e)?, pos: 0, cpp: self, in_if: true, depth: 0 }.full()? != 0)
    }

    /// The value of macro `name`, fully expanded; `None` when it is not a number.
    pub fn value(&self, name: &str) -> Option<i64> {
        self.eval(self.macros.get(name)?)
    }

    /// The value of an expression over the macros; `None` when it is not a number.
    pub fn eval(&self, expr: &str) -> Option<i64> {
        Expr { toks: tokens(expr).ok()?, pos: 0, cpp: self, in_if: false, depth: 0 }.full().ok()
    }

    /// `__SYSCALL(nr, entry)` and friends -> (number expression, native entry point).
    fn table_macro(&self, line: &str) -> Option<(String, String)> {
        let open = line.find('(')?;
        let name = line[..open].trim();
        let close = line.rfind(')')?;
        let args: Vec<&str> = line[open + 1..close].split(',').map(str::trim).collect();
        let pick = |i: usize| args.get(i).map(|s| s.to_string());
        let entry = match (name, args.len()) {
            ("__SYSCALL", 2) | ("__SC_COMP", 3) => pick(1)?,
            ("__SC_3264", 3) | ("__SC_COMP_3264", 4) => pick(if self.bits == 32 { 1 } else { 2 })?,
            _ => return None,
        };
        Some((args[0].to_string(), entry))
    }
}

/// Lines with comments removed and `\`-continuations and open parentheses joined;
/// each with the 1-based number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_comment = false;
    let mut cur = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        let mut s = String::new();
        let mut rest = raw;
        loop {
            if in_comment {
                match rest.find("*/") {
                    Some(e) => {
                        rest = &rest[e + 2..];
                        in_comment = false;
                        s.push(' ');
                    }
                    None => break,
                }
            } else {
                let c = rest.find("/*");
                let l = rest.find("//");
                match (c, l) {
                    (Some(c), l) if l.is_none_or(|l| c < l) => {
                        s.push_str(&rest[..c]);
                        rest = &rest[c + 2..];
                        in_comment = true;
                    }
                    (_, Some(l)) => {
                        s.push_str(&rest[..l]);
                        break;
                    }
                    _ => {
                        s.push_str(rest);
                        break;
                    }
                }
            }
        }
        let continued = s.trim_end().ends_with('\\');
        cur.push_str(s.trim_end().trim_end_matches('\\'));
        cur.push(' ');
        let open = cur.matches('(').count() > cur.matches(')').count();
        if continued || in_comment || (open && !cur.trim_start().starts_with('#')) {
            continue;
        }
        out.push((start, std::mem::take(&mut cur)));
    }
    if !cur.trim().is_empty() {
        out.push((start, cur));
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(i64),
    Id(String),
    Op(&'static str),
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    const OPS: [&str; 20] = ["<<", ">>", "==", "!=", "<=", ">=", "&&", "||", "(", ")", "+", "-", "*", "|", "&", "!", "<", ">", "~", "/"];
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let j = i + s[i..].find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(s.len() - i);
            let lit = s[i..j].trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = lit.strip_prefix("0x").or_else(|| lit.strip_prefix("0X")) {
                i64::from_str_radix(h, 16)
            } else if lit.len() > 1 && lit.starts_with('0') {
                i64::from_str_radix(&lit[1..], 8)
            } else {
                lit.parse()
            };
            out.push(Tok::Num(v.map_err(|_| format!("bad number `{}`", &s[i..j]))?));
            i = j;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let j = i + s[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len() - i);
            out.push(Tok::Id(s[i..j].to_string()));
            i = j;
        } else {
            let op = OPS.iter().find(|o| s[i..].starts_with(**o)).ok_or_else(|| format!("unexpected `{c}` in `{}`", s.trim()))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

struct Expr<'a> {
    toks: Vec<Tok>,
    pos: usize,
    cpp: &'a Cpp,
    in_if: bool,
    depth: usize,
}

impl Expr<'_> {
    fn full(mut self) -> Result<i64, String> {
        let v = self.binary(0)?;
        match self.toks.get(self.pos) {
            None => Ok(v),
            Some(t) => Err(format!("unexpected {t:?} in expression")),
        }
    }

    fn prec(op: &str) -> Option<u8> {
        Some(match op {
            "||" => 1,
            "&&" => 2,
            "|" => 3,
            "&" => 5,
            "==" | "!=" => 6,
            "<" | ">" | "<=" | ">=" => 7,
            "<<" | ">>" => 8,
            "+" | "-" => 9,
            "*" | "/" => 10,
            _ => return None,
        })
    }

    fn binary(&mut self, min: u8) -> Result<i64, String> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(op)) = self.toks.get(self.pos).cloned() {
            let Some(p) = Self::prec(op) else { break };
            if p < min {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(p + 1)?;
            lhs = match op {
                "||" => i64::from(lhs != 0 || rhs != 0),
                "&&" => i64::from(lhs != 0 && rhs != 0),
                "|" => lhs | rhs,
                "&" => lhs & rhs,
                "==" => i64::from(lhs == rhs),
                "!=" => i64::from(lhs != rhs),
                "<" => i64::from(lhs < rhs),
                ">" => i64::from(lhs > rhs),
                "<=" => i64::from(lhs <= rhs),
                ">=" => i64::from(lhs >= rhs),
                "<<" => lhs.checked_shl(rhs as u32).ok_or("bad shift")?,
                ">>" => lhs.checked_shr(rhs as u32).ok_or("bad shift")?,
                "+" => lhs.wrapping_add(rhs),
                "-" => lhs.wrapping_sub(rhs),
                "*" => lhs.wrapping_mul(rhs),
                "/" => lhs.checked_div(rhs).ok_or("division by zero")?,
                _ => unreachable!(),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<i64, String> {
        let t = self.toks.get(self.pos).cloned().ok_or("expression ends early")?;
        self.pos += 1;
        match t {
            Tok::Num(n) => Ok(n),
            Tok::Op("!") => Ok(i64::from(self.unary()? == 0)),
            Tok::Op("-") => Ok(-self.unary()?),
            Tok::Op("~") => Ok(!self.unary()?),
            Tok::Op("(") => {
                let v = self.binary(0)?;
                match self.toks.get(self.pos) {
                    Some(Tok::Op(")")) => {
                        self.pos += 1;
                        Ok(v)
                    }
                    _ => Err("missing `)`".into()),
                }
            }
            Tok::Id(id) if id == "defined" => {
                let paren = self.toks.get(self.pos) == Some(&Tok::Op("("));
                if paren {
                    self.pos += 1;
                }
                let Some(Tok::Id(name)) = self.toks.get(self.pos).cloned() else { return Err("`defined` needs a name".into()) };
                self.pos += 1;
                if paren {
                    if self.toks.get(self.pos) != Some(&Tok::Op(")")) {
                        return Err("missing `)` after defined(".into());
                    }
                    self.pos += 1;
                }
                Ok(i64::from(self.cpp.macros.contains_key(&name)))
            }
            Tok::Id(id) => match self.cpp.macros.get(&id) {
                Some(body) if self.depth < 32 => {
                    let toks = tokens(body)?;
                    if toks.is_empty() {
                        return if self.in_if { Ok(0) } else { Err(format!("`{id}` is empty")) };
                    }
                    Expr { toks, pos: 0, cpp: self.cpp, in_if: self.in_if, depth: self.depth + 1 }.full()
                }
                Some(_) => Err(format!("`{id}` expands recursively")),
                None if self.in_if => Ok(0),
                None => Err(format!("`{id}` is not defined")),
            },
            Tok::Op(o) => Err(format!("unexpected `{o}`")),
        }
    }
}

/// The `__ARM_NR_*` private calls of `rel`: name (prefix removed) -> number relative to
/// the ABI's syscall base (`__NR_SYSCALL_BASE` counts as 0: `nr_base` adds it), with line.
pub(crate) fn private_calls(tree: &Path, rel: &str, errors: &mut Errors) -> Vec<(String, u32, usize)> {
    let path: PathBuf = tree.join(rel);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            errors.push(Diagnostic::at(&path, None, format!("cannot read private_header: {e}")));
            return Vec::new();
        }
    };
    let mut cpp = Cpp::new(32);
    let mut defs = Vec::new();
    for (line, l) in logical_lines(&text) {
        let t = l.trim();
        let Some(d) = t.strip_prefix('#') else { continue };
        let Some(rest) = d.trim_start().strip_prefix("define") else { continue };
        let rest = rest.trim();
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let (name, body) = rest.split_at(end);
        if body.starts_with('(') || name == "__NR_SYSCALL_BASE" {
            continue;
        }
        cpp.macros.insert(name.to_string(), body.trim().to_string());
        defs.push((name.to_string(), line));
    }
    cpp.macros.insert("__NR_SYSCALL_BASE".into(), "0".into());
    let mut out = Vec::new();
    for (name, line) in defs {
        let Some(short) = name.strip_prefix("__ARM_NR_") else { continue };
        if short == "BASE" {
            continue;
        }
        match cpp.value(&name).and_then(|v| u32::try_from(v).ok()) {
            Some(v) => out.push((short.to_string(), v, line)),
            None => errors.push(Diagnostic::at(&path, Some(line), format!("cannot evaluate `{name}` to a number"))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!("rootemu-unistd-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&d);
        for (p, t) in files {
            let f = d.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        }
        d
    }

    #[test]
    fn conditions_defines_and_includes() {
        let generic = "#include <asm/bitsperlong.h>\n/* multi\n line */\n#if __BITS_PER_LONG == 32 || defined(__SYSCALL_COMPAT)\n#define __SC_3264(_nr, _32, _64) __SYSCALL(_nr, _32)\n#endif\n#define __NR_a 1\n__SYSCALL(__NR_a, sys_a)\n#ifdef __ARCH_WANT_X\n#define __NR_x 2\n__SYSCALL(__NR_x, sys_x)\n#else\n#define __NR_y 2\n#endif\n#define __NR3264_fcntl 3\n__SC_3264(__NR3264_fcntl, sys_fcntl64,\n\t  sys_fcntl)\n#if __BITS_PER_LONG == 64 && !defined(__SYSCALL_COMPAT)\n#define __NR_fcntl __NR3264_fcntl\n#else\n#define __NR_fcntl64 __NR3264_fcntl\n#endif\n#define __NR_arch_specific_syscall 244\n";
        let arch =
            "#define __ARCH_WANT_X\n#include <asm-generic/unistd.h>\n#define __NR_cacheflush (__NR_arch_specific_syscall + 1) // comment\n";
        let t = tree(&[("include/uapi/asm-generic/unistd.h", generic), ("arch/a/include/uapi/asm/unistd.h", arch)]);
        let mut e = Errors::default();
        let mut c = Cpp::new(32);
        c.run(&t, "arch/a/include/uapi/asm/unistd.h", &mut e);
        assert!(e.is_empty(), "{e}");
        assert_eq!(c.value("__NR_x"), Some(2));
        assert!(!c.macros.contains_key("__NR_y"));
        assert_eq!(c.value("__NR_fcntl64"), Some(3));
        assert_eq!(c.value("__NR_cacheflush"), Some(245));
        assert_eq!(c.files, ["arch/a/include/uapi/asm/unistd.h", "include/uapi/asm-generic/unistd.h"]);
        let entries: Vec<(&str, &str)> = c.entries.iter().map(|(n, e, _, _)| (n.as_str(), e.as_str())).collect();
        assert_eq!(entries, [("__NR_a", "sys_a"), ("__NR_x", "sys_x"), ("__NR3264_fcntl", "sys_fcntl64")]);
        let mut c64 = Cpp::new(64);
        c64.run(&t, "arch/a/include/uapi/asm/unistd.h", &mut e);
        assert_eq!(c64.value("__NR_fcntl"), Some(3));
        assert!(!c64.macros.contains_key("__NR_fcntl64"));
        assert_eq!(c64.entries[2].1, "sys_fcntl");
        std::fs::remove_dir_all(t).unwrap();
    }

    #[test]
    fn arm_private_calls_are_relative_to_the_abi_base() {
        let h = "#define __NR_OABI_SYSCALL_BASE\t0x900000\n#if defined(__thumb__) || defined(__ARM_EABI__)\n#define __NR_SYSCALL_BASE\t0\n#else\n#define __NR_SYSCALL_BASE\t__NR_OABI_SYSCALL_BASE\n#endif\n#define __ARM_NR_BASE\t\t\t(__NR_SYSCALL_BASE+0x0f0000)\n#define __ARM_NR_breakpoint\t\t(__ARM_NR_BASE+1)\n#define __ARM_NR_set_tls\t\t(__ARM_NR_BASE+5)\n";
        let t = tree(&[("arch/arm/include/uapi/asm/unistd.h", h)]);
        let mut e = Errors::default();
        let calls = private_calls(&t, "arch/arm/include/uapi/asm/unistd.h", &mut e);
        assert!(e.is_empty(), "{e}");
        assert_eq!(calls, [("breakpoint".to_string(), 0x0f0001, 8), ("set_tls".to_string(), 983045, 9)]);
        std::fs::remove_dir_all(t).unwrap();
    }

    #[test]
    fn unbalanced_conditionals_are_reported() {
        let t = tree(&[("a.h", "#if 1\n#define X 1\n#else\n#else\n")]);
        let mut e = Errors::default();
        Cpp::new(64).run(&t, "a.h", &mut e);
        assert!(e.to_string().contains("unterminated #if"), "{e}");
        std::fs::remove_dir_all(t).unwrap();
    }
}
