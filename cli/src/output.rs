//! What every subcommand shares on its way out. Standard output is kept like C's stdio:
//! the first failed write (a closed pipe, a full disk) is remembered and later output
//! dropped, and [`finish`] turns it into one error line and exit status 1, never a panic.
//! The reporting commands also share `--format text|json`, numbers as people write them,
//! and "did you mean" for an unknown name.

use clap::ValueEnum;
use std::io::Write;
use std::sync::OnceLock;

static FAILED: OnceLock<String> = OnceLock::new();

/// `print!` that never panics: see the module doc.
macro_rules! out {
    ($($t:tt)*) => { $crate::output::write(format_args!($($t)*)) };
}

/// `println!` that never panics: see the module doc.
macro_rules! outln {
    ($($t:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($t)*))) };
}

/// Writes to standard output unless a write failed before.
pub(crate) fn write(args: std::fmt::Arguments<'_>) {
    if FAILED.get().is_none() {
        if let Err(e) = std::io::stdout().lock().write_fmt(args) {
            fail(&e);
        }
    }
}

/// Writes bytes to standard output unless a write failed before.
pub(crate) fn write_bytes(bytes: &[u8]) {
    if FAILED.get().is_none() {
        if let Err(e) = std::io::stdout().lock().write_all(bytes) {
            fail(&e);
        }
    }
}

fn fail(e: &std::io::Error) {
    let why = e.raw_os_error().map_or_else(|| e.to_string(), rootemu::install::errno_text);
    let _ = FAILED.set(format!("cannot write to standard output: {why}"));
}

/// Flushes standard output; the first write error, if any.
pub(crate) fn finish() -> Result<(), String> {
    if FAILED.get().is_none() {
        if let Err(e) = std::io::stdout().lock().flush() {
            fail(&e);
        }
    }
    FAILED.get().map_or(Ok(()), |e| Err(e.clone()))
}

/// How `filter stats`, `filter sim`, `tables show|diff|check` and `inspect` print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object on standard output, for scripts.
    Json,
}

/// Prints `value` as pretty JSON on standard output.
pub(crate) fn print_json(value: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

/// ` (did you mean `x`?)` when a candidate is close to `name`, else nothing.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    rootemu_codegen::diag::did_you_mean(name, candidates).map_or(String::new(), |s| format!(" (did you mean `{s}`?)"))
}

/// An unsigned integer as C and the README write it: decimal, `0x` hex, `0o` or C's leading
/// `0` octal, `0b` binary. A leading zero followed by digits that are not all octal (`0189`)
/// reads differently in C and in decimal: it is refused, never guessed.
pub(crate) fn parse_number(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let (digits, radix, what) = match lower.get(..2) {
        Some("0x") => (&s[2..], 16, "a hexadecimal"),
        Some("0o") => (&s[2..], 8, "an octal"),
        Some("0b") => (&s[2..], 2, "a binary"),
        _ if s.len() > 1 && s.starts_with('0') => {
            if s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                (&s[1..], 8, "an octal")
            } else {
                return Err(format!(
                    "`{s}` is ambiguous: a leading 0 means octal (as in C), but it is not octal; \
                     write `{}` for decimal or 0o... for octal",
                    s.trim_start_matches('0')
                ));
            }
        }
        _ => (s, 10, "a decimal"),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("`{s}` is not a number (decimal, 0x hex, 0o or leading-0 octal, 0b binary)"));
    }
    u64::from_str_radix(digits, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => format!("`{s}` does not fit in 64 bits"),
        _ => format!("`{s}` is not {what} number"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_in_c_and_ambiguous_ones_are_refused() {
        for (text, want) in [
            ("0", 0),
            ("17", 17),
            ("020644", 0o20644),
            ("0o20644", 0o20644),
            ("0O755", 0o755),
            ("0x103", 0x103),
            ("0XfF", 0xff),
            ("0b101", 5),
            ("00", 0),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_number(text), Ok(want), "{text}");
        }
        assert_eq!(
            parse_number("0189").unwrap_err(),
            "`0189` is ambiguous: a leading 0 means octal (as in C), but it is not octal; write `189` for decimal or 0o... for octal"
        );
        assert_eq!(parse_number("0o8").unwrap_err(), "`0o8` is not an octal number");
        assert_eq!(parse_number("-1").unwrap_err(), "`-1` is not a number (decimal, 0x hex, 0o or leading-0 octal, 0b binary)");
        assert_eq!(parse_number("0x").unwrap_err(), "`0x` is not a number (decimal, 0x hex, 0o or leading-0 octal, 0b binary)");
        assert_eq!(parse_number("18446744073709551616").unwrap_err(), "`18446744073709551616` does not fit in 64 bits");
        assert_eq!(parse_number("12abc").unwrap_err(), "`12abc` is not a decimal number");
    }
}
