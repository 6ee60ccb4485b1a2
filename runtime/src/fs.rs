//! Files: [`File`] with positional reads and writes, syncs, metadata and space allocation,
//! every one an io_uring operation.
//!
//! There is no cursor: every read and write names its offset (`read_at`, `write_at`), which
//! is what a storage engine wants and what io_uring does best.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::driver::ops::fs::{Fallocate, Fsync, Ftruncate, OpenAt, Statx, UnlinkAt};
use crate::driver::ops::{rw, SharedFd};
use crate::driver::Op;

/// Options for opening a file, like `std::fs::OpenOptions`.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off; mode 0o666 (before the umask).
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }
    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }
    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }
    /// Open in append mode.
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }
    /// Truncate to zero length on open.
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }
    /// Create the file if it does not exist.
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }
    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }
    /// Permission bits for a created file.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }
    /// Extra `open(2)` flags, such as `libc::O_DIRECT`.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    fn flags(&self) -> io::Result<i32> {
        let access = match (self.read, self.write || self.append) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "open options allow neither reading nor writing",
                ))
            }
        };
        let mut flags = access | libc::O_CLOEXEC | self.custom_flags;
        if self.append {
            flags |= libc::O_APPEND;
        }
        if self.truncate {
            flags |= libc::O_TRUNC;
        }
        if self.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        } else if self.create {
            flags |= libc::O_CREAT;
        }
        Ok(flags)
    }

    /// Opens `path` with these options.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let path = cstring(path.as_ref())?;
        let open = OpenAt {
            path,
            flags,
            mode: self.mode,
        };
        let (fd, open) = Op::submit(open).await.into_fd();
        let fd = fd.map_err(|e| with_path(e, &open.path))?;
        Ok(File { fd: Rc::new(fd) })
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path contains a NUL byte: {}", path.display()),
        )
    })
}

/// Adds the path to an error, keeping its kind and OS code visible in the message.
fn with_path(e: io::Error, path: &CString) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.to_string_lossy()))
}

/// An open file.
#[derive(Debug)]
pub struct File {
    fd: SharedFd,
}

/// Size, type and times of a file, from `statx`.
#[derive(Clone, Copy, Debug)]
pub struct Metadata {
    len: u64,
    mode: u32,
    blocks: u64,
    block_size: u32,
    modified: SystemTime,
}

impl Metadata {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True if the length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    /// Permission and type bits (`st_mode`).
    pub fn mode(&self) -> u32 {
        self.mode
    }
    /// Bytes of storage allocated (512-byte blocks times 512): less than `len` for a sparse
    /// file.
    pub fn allocated(&self) -> u64 {
        self.blocks * 512
    }
    /// The filesystem's preferred I/O block size.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }
    /// Last modification time.
    pub fn modified(&self) -> SystemTime {
        self.modified
    }
}

impl File {
    /// Opens `path` read-only.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates (or truncates) `path` for reading and writing.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Wraps an fd opened elsewhere.
    pub fn from_std(file: std::fs::File) -> File {
        File {
            fd: Rc::new(OwnedFd::from(file)),
        }
    }

    /// Reads into `buf` (from its start, up to its capacity) at `offset`; returns the byte
    /// count, 0 at end of file.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, offset: u64) -> BufResult<usize, B> {
        rw::read_at(&self.fd, buf, offset).await
    }

    /// Reads exactly `len` bytes at `offset`, or fails with `UnexpectedEof`.
    pub async fn read_exact_at(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
        let mut out: Vec<u8> = Vec::new();
        while out.len() < len {
            let chunk = Vec::with_capacity(len - out.len());
            let (res, chunk) = self.read_at(chunk, offset + out.len() as u64).await;
            match res {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) if out.is_empty() => out = chunk,
                Ok(_) => out.extend_from_slice(&chunk),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Writes `buf` at `offset`; returns how many bytes were written (possibly fewer).
    pub async fn write_at<B: IoBuf>(&self, buf: B, offset: u64) -> BufResult<usize, B> {
        rw::write_at(&self.fd, buf, 0, offset).await
    }

    /// Writes all of `buf` at `offset`, resubmitting after short writes.
    pub async fn write_all_at<B: IoBuf>(&self, mut buf: B, offset: u64) -> BufResult<(), B> {
        let mut done = 0;
        while done < buf.bytes_init() {
            let (res, b) = rw::write_at(&self.fd, buf, done, offset + done as u64).await;
            buf = b;
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Flushes data and metadata to stable storage (`fsync`).
    pub async fn sync_all(&self) -> io::Result<()> {
        self.fsync(false).await
    }

    /// Flushes data, and only the metadata needed to read it back, to stable storage
    /// (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        self.fsync(true).await
    }

    /// Allocates (or, with a `mode` such as `FALLOC_FL_PUNCH_HOLE`, deallocates) storage for
    /// `len` bytes at `offset` (`fallocate(2)`). Mode 0 also extends the file size.
    pub async fn fallocate(&self, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        let op = Fallocate {
            fd: self.fd.clone(),
            offset,
            len,
            mode,
        };
        Op::submit(op).await.result.into_io()?;
        Ok(())
    }

    /// Truncates or extends the file to `len` bytes (extension reads as zeros).
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        let op = Ftruncate {
            fd: self.fd.clone(),
            len,
        };
        match Op::submit(op).await.result.into_io() {
            Ok(_) => Ok(()),
            // Kernels before 6.9 lack IORING_OP_FTRUNCATE: do the (fast) syscall instead.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // SAFETY: ftruncate on an fd we own; no memory is passed.
                let r = unsafe { libc::ftruncate(self.fd.as_raw_fd(), len as libc::off_t) };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn fsync(&self, datasync: bool) -> io::Result<()> {
        let op = Fsync {
            fd: self.fd.clone(),
            datasync,
        };
        Op::submit(op).await.result.into_io()?;
        Ok(())
    }

    /// Size, type and times of the open file.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let done = Op::submit(Statx::new(self.fd.clone())).await;
        done.result.into_io()?;
        let st: &libc::statx = done.data.result();
        let modified = SystemTime::UNIX_EPOCH
            + Duration::new(st.stx_mtime.tv_sec.max(0) as u64, st.stx_mtime.tv_nsec);
        Ok(Metadata {
            len: st.stx_size,
            mode: st.stx_mode as u32,
            blocks: st.stx_blocks,
            block_size: st.stx_blksize,
            modified,
        })
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Removes the file at `path`.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = cstring(path.as_ref())?;
    let done = Op::submit(UnlinkAt { path }).await;
    done.result
        .into_io()
        .map(|_| ())
        .map_err(|e| with_path(e, &done.data.path))
}
