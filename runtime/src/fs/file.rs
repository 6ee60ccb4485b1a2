//! [`File`]: an open file; positional reads and writes, syncs, metadata, space allocation.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;

use super::{Metadata, OpenOptions};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::driver::ops::fs::{Fallocate, Fsync, Ftruncate, Statx};
use crate::driver::ops::{rw, SharedFd};
use crate::driver::Op;

/// An open file. Reads and writes name their offset and move owned buffers to the kernel
/// and back.
///
/// ```
/// use faultless_runtime::fs::File;
///
/// let rt = faultless_runtime::Runtime::new()?;
/// let path = std::env::temp_dir().join(format!("faultless-file-doc-{}", std::process::id()));
/// rt.block_on(async {
///     let file = File::create(&path).await?;
///     let (res, _buf) = file.write_all_at(b"hello, world".to_vec(), 0).await;
///     res?;
///     file.sync_data().await?;
///     let (n, buf) = file.read_at(Vec::with_capacity(5), 7).await;
///     assert_eq!(&buf[..n?], b"world");
///     assert_eq!(file.metadata().await?.len(), 12);
///     faultless_runtime::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct File {
    pub(super) fd: SharedFd,
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
        Ok(Metadata::from_statx(done.data.result()))
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
