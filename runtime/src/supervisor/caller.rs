//! The process whose call is being handled: its memory, read and written as the kernel
//! would copy from and to user space (`process_vm_readv`/`process_vm_writev`, else
//! `/proc/PID/mem`).

use std::ffi::CString;
use std::os::unix::fs::FileExt;

/// The longest path the kernel accepts (`PATH_MAX`, with the NUL).
const PATH_MAX: usize = 4096;
/// The longest xattr name (`XATTR_NAME_MAX`).
pub(crate) const XATTR_NAME_MAX: usize = 255;
/// The largest xattr value (`XATTR_SIZE_MAX`).
pub(crate) const XATTR_SIZE_MAX: usize = 65536;

/// A caller, by its pid in the handler's PID namespace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller {
    pub(crate) pid: u32,
}

/// A failed copy: the errno the kernel would give the caller (EFAULT for a bad pointer),
/// or `Unreachable` when its memory cannot be reached at all (ptrace rules, a dead caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopyError {
    /// The kernel would fail the call with this errno.
    Errno(i32),
    /// The caller's memory is out of reach; the reason as an errno.
    Unreachable(i32),
}

impl Caller {
    /// Reads `len` bytes at `addr`.
    pub(crate) fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, CopyError> {
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = self.read_some(addr + done as u64, &mut buf[done..])?;
            if n == 0 {
                return Err(CopyError::Errno(libc::EFAULT));
            }
            done += n;
        }
        Ok(buf)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (NUL included) at `addr`:
    /// ENAMETOOLONG / ERANGE beyond, as the kernel's `strncpy_from_user` callers say.
    pub(crate) fn read_cstr(&self, addr: u64, max: usize, too_long: i32) -> Result<CString, CopyError> {
        if addr == 0 {
            return Err(CopyError::Errno(libc::EFAULT));
        }
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        while out.len() < max {
            // Stay within the page: the next one may be unmapped.
            let a = addr + out.len() as u64;
            let to_page = 4096 - (a % 4096) as usize;
            let want = chunk.len().min(to_page).min(max - out.len());
            let n = self.read_some(a, &mut chunk[..want])?;
            if n == 0 {
                return Err(CopyError::Errno(libc::EFAULT));
            }
            if let Some(z) = chunk[..n].iter().position(|b| *b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(CString::new(out).expect("no NUL before the end"));
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Err(CopyError::Errno(too_long))
    }

    /// Reads a path argument (`PATH_MAX`, ENAMETOOLONG).
    pub(crate) fn read_path(&self, addr: u64) -> Result<CString, CopyError> {
        self.read_cstr(addr, PATH_MAX, libc::ENAMETOOLONG)
    }

    /// Writes `data` at `addr`.
    pub(crate) fn write(&self, addr: u64, data: &[u8]) -> Result<(), CopyError> {
        let local = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
        let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: data.len() };
        // SAFETY: both iovecs describe valid ranges (ours is `data`; theirs is checked by the kernel).
        let n = unsafe { libc::process_vm_writev(self.pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        if n as usize == data.len() {
            return Ok(());
        }
        if n >= 0 {
            return Err(CopyError::Errno(libc::EFAULT));
        }
        match errno() {
            libc::EFAULT => Err(CopyError::Errno(libc::EFAULT)),
            libc::ENOSYS | libc::EPERM => {
                let mem = self.mem(true)?;
                mem.write_all_at(data, addr).map_err(|e| CopyError::Errno(e.raw_os_error().unwrap_or(libc::EFAULT)))
            }
            e => Err(CopyError::Unreachable(e)),
        }
    }

    /// Writes each `(offset, bytes)` at `addr + offset`, leaving the bytes between as they
    /// are (one `process_vm_writev` with an iovec per part).
    pub(crate) fn write_parts(&self, addr: u64, parts: &[(u64, &[u8])]) -> Result<(), CopyError> {
        let local: Vec<libc::iovec> =
            parts.iter().map(|(_, d)| libc::iovec { iov_base: d.as_ptr() as *mut libc::c_void, iov_len: d.len() }).collect();
        let remote: Vec<libc::iovec> =
            parts.iter().map(|(off, d)| libc::iovec { iov_base: (addr + off) as *mut libc::c_void, iov_len: d.len() }).collect();
        let total: usize = parts.iter().map(|(_, d)| d.len()).sum();
        // SAFETY: the local iovecs describe our slices; the kernel checks the remote ones.
        let n = unsafe {
            libc::process_vm_writev(self.pid as libc::pid_t, local.as_ptr(), local.len() as _, remote.as_ptr(), remote.len() as _, 0)
        };
        if n >= 0 && n as usize == total {
            return Ok(());
        }
        // A partial write, or process_vm_writev refused: one part at a time (with its fallback).
        for (off, data) in parts {
            self.write(addr + off, data)?;
        }
        Ok(())
    }

    fn read_some(&self, addr: u64, buf: &mut [u8]) -> Result<usize, CopyError> {
        let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
        // SAFETY: both iovecs describe valid ranges (ours is `buf`; theirs is checked by the kernel).
        let n = unsafe { libc::process_vm_readv(self.pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match errno() {
            libc::EFAULT => Err(CopyError::Errno(libc::EFAULT)),
            libc::ENOSYS | libc::EPERM => {
                let mem = self.mem(false)?;
                mem.read_at(buf, addr).map_err(|e| CopyError::Errno(e.raw_os_error().unwrap_or(libc::EFAULT)))
            }
            e => Err(CopyError::Unreachable(e)),
        }
    }

    /// `/proc/PID/mem` (the fallback where process_vm_* is missing or refused); relative
    /// to the handler's cwd, which is the host's /proc.
    fn mem(&self, write: bool) -> Result<std::fs::File, CopyError> {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open(format!("{}/mem", self.pid))
            .map_err(|e| CopyError::Unreachable(e.raw_os_error().unwrap_or(libc::EPERM)))
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
