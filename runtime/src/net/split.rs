//! [`OwnedReadHalf`] and [`OwnedWriteHalf`]: a stream split in two, for a reader task and a
//! writer task.
//!
//! Both halves hold the socket's fd (an `Rc`, the runtime is single-threaded); the fd is
//! closed when the last half (and the last operation in flight on it) is gone. Each half
//! takes its direction of the stream's poll-style state, so bytes already received into the
//! read buffer stay readable from the read half.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::poll_io::{PollIo, ReadIo, WriteIo};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::driver::ops::{rw, SharedFd};

/// The read half of a stream `S` ([`TcpStream`](super::TcpStream) or
/// [`UnixStream`](super::UnixStream)), from `into_split`.
pub struct OwnedReadHalf<S> {
    pub(super) fd: SharedFd,
    pub(super) io: ReadIo,
    _stream: PhantomData<fn() -> S>,
}

/// The write half of a stream `S`, from `into_split`. Dropping it shuts the write direction
/// down (`SHUT_WR`), as tokio's does: flush before dropping.
pub struct OwnedWriteHalf<S> {
    pub(super) fd: SharedFd,
    pub(super) io: WriteIo,
    shutdown_on_drop: bool,
    _stream: PhantomData<fn() -> S>,
}

/// The halves given to `reunite` came from different streams; here they are back.
pub struct ReuniteError<S>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

pub(super) fn split<S>(fd: SharedFd, io: PollIo) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    (
        OwnedReadHalf {
            fd: fd.clone(),
            io: io.read,
            _stream: PhantomData,
        },
        OwnedWriteHalf {
            fd,
            io: io.write,
            shutdown_on_drop: true,
            _stream: PhantomData,
        },
    )
}

// The error hands both halves back to the caller (as tokio's does): large, and rare.
#[allow(clippy::result_large_err)]
pub(super) fn reunite<S>(
    read: OwnedReadHalf<S>,
    mut write: OwnedWriteHalf<S>,
) -> Result<(SharedFd, PollIo), ReuniteError<S>> {
    if !Rc::ptr_eq(&read.fd, &write.fd) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    let io = PollIo {
        read: std::mem::take(&mut { read }.io),
        write: std::mem::take(&mut write.io),
    };
    Ok((write.fd.clone(), io))
}

impl<S> OwnedReadHalf<S> {
    /// Receives into `buf` (from its start, up to its capacity); 0 means the peer closed.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        rw::recv(&self.fd, buf).await
    }
}

impl<S> OwnedWriteHalf<S> {
    /// Sends some of `buf`; returns how many bytes were sent, with the buffer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        rw::send(&self.fd, buf, 0).await
    }

    /// Sends all of `buf`, resubmitting after partial sends.
    pub async fn send_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        rw::send_all(&self.fd, buf).await
    }
}

impl<S> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // SAFETY: shutdown(2) on the fd this half keeps open; no memory is passed. It
            // never blocks.
            unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
        }
    }
}

impl<S> futures::io::AsyncRead for OwnedReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.io.poll_read(&this.fd, cx, buf)
    }
}

impl<S> futures::io::AsyncWrite for OwnedWriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.io.poll_write(&this.fd, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.io.poll_write_vectored(&this.fd, cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.io.poll_drain(&this.fd, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.io.poll_close(&this.fd, cx)
    }
}

impl<S> AsRawFd for OwnedReadHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl<S> AsRawFd for OwnedWriteHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl<S> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadHalf")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl<S> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWriteHalf")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves of different streams")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}
