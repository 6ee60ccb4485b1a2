//! File-system operations: [`OpenAt`] (its result is a new fd), [`UnlinkAt`], [`Statx`]
//! (of an open file or of a path), [`RenameAt`], [`MkDirAt`], [`SymlinkAt`], [`LinkAt`],
//! [`Fsync`], [`Fallocate`], [`Ftruncate`].

use std::ffi::CString;
use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::SharedFd;
use crate::driver::{OpCode, ResultKind};

/// `openat(AT_FDCWD, path, flags, mode)`.
pub(crate) struct OpenAt {
    pub(crate) path: CString,
    pub(crate) flags: i32,
    pub(crate) mode: u32,
}

// SAFETY: the entry points at the CString's heap bytes (NUL-terminated, not moved when the
// CString moves); `AT_FDCWD` names no open fd. A successful openat returns a new fd that
// nothing else owns, so the result kind is `Fd`.
unsafe impl OpCode for OpenAt {
    const RESULT: ResultKind = ResultKind::Fd;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }
}

/// `unlinkat(AT_FDCWD, path, flags)`: a file, or with `AT_REMOVEDIR` an empty directory.
pub(crate) struct UnlinkAt {
    pub(crate) path: CString,
    pub(crate) flags: i32,
}

// SAFETY: the entry points at the CString's heap bytes; `AT_FDCWD` names no open fd.
unsafe impl OpCode for UnlinkAt {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .build()
    }
}

/// `renameat2(AT_FDCWD, from, AT_FDCWD, to, 0)`.
pub(crate) struct RenameAt {
    pub(crate) from: CString,
    pub(crate) to: CString,
}

// SAFETY: the entry points at the two CStrings' heap bytes; `AT_FDCWD` names no open fd.
unsafe impl OpCode for RenameAt {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::RenameAt::new(
            types::Fd(libc::AT_FDCWD),
            self.from.as_ptr(),
            types::Fd(libc::AT_FDCWD),
            self.to.as_ptr(),
        )
        .build()
    }
}

/// `mkdirat(AT_FDCWD, path, mode)`.
pub(crate) struct MkDirAt {
    pub(crate) path: CString,
    pub(crate) mode: u32,
}

// SAFETY: the entry points at the CString's heap bytes; `AT_FDCWD` names no open fd.
unsafe impl OpCode for MkDirAt {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .mode(self.mode)
            .build()
    }
}

/// `symlinkat(target, AT_FDCWD, link)`.
pub(crate) struct SymlinkAt {
    pub(crate) target: CString,
    pub(crate) link: CString,
}

// SAFETY: the entry points at the two CStrings' heap bytes; `AT_FDCWD` names no open fd.
unsafe impl OpCode for SymlinkAt {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::SymlinkAt::new(
            types::Fd(libc::AT_FDCWD),
            self.target.as_ptr(),
            self.link.as_ptr(),
        )
        .build()
    }
}

/// `linkat(AT_FDCWD, from, AT_FDCWD, to, 0)`.
pub(crate) struct LinkAt {
    pub(crate) from: CString,
    pub(crate) to: CString,
}

// SAFETY: the entry points at the two CStrings' heap bytes; `AT_FDCWD` names no open fd.
unsafe impl OpCode for LinkAt {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::LinkAt::new(
            types::Fd(libc::AT_FDCWD),
            self.from.as_ptr(),
            types::Fd(libc::AT_FDCWD),
            self.to.as_ptr(),
        )
        .build()
    }
}

/// `statx(STATX_BASIC_STATS)` of an open file (`fd, "", AT_EMPTY_PATH`) or of a path
/// (`AT_FDCWD, path, flags`, e.g. `AT_SYMLINK_NOFOLLOW`).
pub(crate) struct Statx {
    fd: Option<SharedFd>,
    path: Option<CString>,
    flags: i32,
    buf: Box<libc::statx>,
}

fn statx_buf() -> Box<libc::statx> {
    // SAFETY: libc::statx is plain old data; all-zero is a valid value. (io-uring's
    // `types::statx` is an opaque stand-in, so the buffer is libc's struct.)
    Box::new(unsafe { std::mem::zeroed() })
}

impl Statx {
    pub(crate) fn new(fd: SharedFd) -> Statx {
        Statx {
            fd: Some(fd),
            path: None,
            flags: libc::AT_EMPTY_PATH,
            buf: statx_buf(),
        }
    }

    /// A statx of `path`, relative to the working directory.
    pub(crate) fn path(path: CString, flags: i32) -> Statx {
        Statx {
            fd: None,
            path: Some(path),
            flags,
            buf: statx_buf(),
        }
    }

    /// The path, for error messages.
    pub(crate) fn path_ref(&self) -> Option<&CString> {
        self.path.as_ref()
    }

    /// What the kernel wrote (zeros until the operation succeeded).
    pub(crate) fn result(&self) -> &libc::statx {
        &self.buf
    }
}

/// The empty path of `AT_EMPTY_PATH`, in static memory.
static EMPTY_PATH: &[u8; 1] = b"\0";

// SAFETY: the entry points at the boxed statx buffer (heap, written by the kernel, sized for
// `struct statx`) and at the CString's heap bytes or a static empty path; the fd is kept
// open by `fd`, or is `AT_FDCWD`.
unsafe impl OpCode for Statx {
    fn create_entry(&mut self) -> squeue::Entry {
        let (dirfd, path) = match (&self.fd, &self.path) {
            (Some(fd), _) => (fd.as_raw_fd(), EMPTY_PATH.as_ptr().cast()),
            (None, Some(path)) => (libc::AT_FDCWD, path.as_ptr()),
            (None, None) => (libc::AT_FDCWD, EMPTY_PATH.as_ptr().cast()),
        };
        opcode::Statx::new(
            types::Fd(dirfd),
            path,
            (&mut *self.buf as *mut libc::statx).cast::<types::statx>(),
        )
        .flags(self.flags)
        .mask(libc::STATX_BASIC_STATS)
        .build()
    }
}

/// `fsync(2)`, or `fdatasync(2)` with `datasync`.
pub(crate) struct Fsync {
    pub(crate) fd: SharedFd,
    pub(crate) datasync: bool,
}

// SAFETY: the entry points at no memory; the fd is kept open by `fd`.
unsafe impl OpCode for Fsync {
    fn create_entry(&mut self) -> squeue::Entry {
        let mut op = opcode::Fsync::new(types::Fd(self.fd.as_raw_fd()));
        if self.datasync {
            op = op.flags(types::FsyncFlags::DATASYNC);
        }
        op.build()
    }
}

/// `fallocate(2)`.
pub(crate) struct Fallocate {
    pub(crate) fd: SharedFd,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) mode: i32,
}

// SAFETY: the entry points at no memory; the fd is kept open by `fd`.
unsafe impl OpCode for Fallocate {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Fallocate::new(types::Fd(self.fd.as_raw_fd()), self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build()
    }
}

/// `ftruncate(2)` (Linux 6.9+; older kernels answer `EINVAL`).
pub(crate) struct Ftruncate {
    pub(crate) fd: SharedFd,
    pub(crate) len: u64,
}

// SAFETY: the entry points at no memory; the fd is kept open by `fd`.
unsafe impl OpCode for Ftruncate {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Ftruncate::new(types::Fd(self.fd.as_raw_fd()), self.len).build()
    }
}
