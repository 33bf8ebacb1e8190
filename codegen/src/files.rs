//! Reading input files: regular files only, of bounded size. A FIFO, a device or a huge
//! file given as a table, a policy or a binary is refused with an error instead of being
//! read forever (or into all memory).

use crate::diag::{Diagnostic, Errors};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest YAML input (a table or a policy) read; the biggest real table is about 12 KB.
pub const MAX_YAML_BYTES: u64 = 1 << 20;

/// Largest tables directory read: the sum of its `*.yaml` files (the real one is 0.5 MB).
pub const MAX_TABLES_BYTES: u64 = 4 << 20;

/// Most ABI files in a tables directory (Linux has about 40 ABIs).
pub const MAX_TABLE_FILES: usize = 128;

/// Reads a regular file of at most `limit` bytes. The error is the reason, without the path.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    check_kind(&meta, limit)?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // The file may have been replaced or grown since: check what was opened, read at most limit + 1.
    check_kind(&file.metadata().map_err(|e| e.to_string())?, limit)?;
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than the limit of {limit} bytes"));
    }
    Ok(bytes)
}

fn check_kind(meta: &std::fs::Metadata, limit: u64) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if !t.is_file() {
        "not a regular file"
    } else if meta.len() > limit {
        return Err(format!("{} bytes, over the limit of {limit}", meta.len()));
    } else {
        return Ok(());
    };
    Err(format!("{kind}, not a regular file"))
}

/// Reads a YAML input (a table or a policy): regular, at most [`MAX_YAML_BYTES`], UTF-8.
pub fn read_yaml(path: &Path, what: &str) -> Result<String, Diagnostic> {
    let bytes = read_regular(path, MAX_YAML_BYTES).map_err(|e| Diagnostic::at(path, None, format!("cannot read {what}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Diagnostic::at(path, None, format!("cannot read {what}: not UTF-8 ({e})")))
}

/// The `*.yaml` entries of `dir` (not its subdirectories), sorted. Entries that are
/// directories are skipped; anything else named `*.yaml` is returned, so that reading
/// it reports a FIFO or a device instead of passing over it silently.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir).map_err(|e| Diagnostic::at(dir, None, format!("cannot read tables directory: {e}")))?;
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "yaml") && !p.is_dir()).collect();
    files.sort();
    Ok(files)
}

/// `(path, text)` of every `*.yaml` file of a tables directory, sorted by path; an empty
/// directory, an unreadable or special file, more than [`MAX_TABLE_FILES`] files or more
/// than [`MAX_TABLES_BYTES`] in all is an error (all of them reported).
pub fn yaml_texts(dir: &Path) -> Result<Vec<(PathBuf, String)>, Errors> {
    let files = yaml_files(dir)?;
    if files.is_empty() {
        return Err(Diagnostic::at(dir, None, "no ABI tables (*.yaml) in this directory").into());
    }
    if files.len() > MAX_TABLE_FILES {
        let m = format!("{} ABI files (*.yaml), over the limit of {MAX_TABLE_FILES}: not a tables directory?", files.len());
        return Err(Diagnostic::at(dir, None, m).into());
    }
    let mut errors = Errors::default();
    let mut out = Vec::new();
    let mut total = 0u64;
    for f in files {
        match read_yaml(&f, "table") {
            Ok(t) => {
                total += t.len() as u64;
                if total > MAX_TABLES_BYTES {
                    let m = format!("the tables' *.yaml files hold over {} bytes: not a tables directory?", MAX_TABLES_BYTES);
                    return Err(Diagnostic::at(dir, None, m).into());
                }
                out.push((f, t));
            }
            Err(e) => errors.push(e),
        }
    }
    errors.into_result(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_oversized_files_are_refused() {
        assert_eq!(read_regular(Path::new("/dev/zero"), 10).unwrap_err(), "a character device, not a regular file");
        assert_eq!(read_regular(Path::new("/"), 10).unwrap_err(), "a directory, not a regular file");
        let dir = std::env::temp_dir().join(format!("rootemu-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("big.yaml");
        std::fs::write(&f, "x".repeat(11)).unwrap();
        assert_eq!(read_regular(&f, 10).unwrap_err(), "11 bytes, over the limit of 10");
        assert_eq!(read_regular(&f, 11).unwrap().len(), 11);
        let fifo = dir.join("fifo.yaml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; mkfifo touches only it.
        assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opening a FIFO for reading would block until a writer comes: it is never opened.
        assert_eq!(read_regular(&fifo, 10).unwrap_err(), "a FIFO, not a regular file");
        assert_eq!(yaml_files(&dir).unwrap(), [f, fifo]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    unsafe extern "C" {
        #[link_name = "mkfifo"]
        fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
    }
}
