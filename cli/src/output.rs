//! Standard output of every subcommand, kept like C's stdio: the first failed write (a
//! closed pipe, a full disk) is remembered and later output dropped, and [`finish`] turns
//! it into one error line and exit status 1, never a panic.

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
