//! `tokio::io::AsyncRead`/`AsyncWrite` for the stream sockets and their halves (the
//! `tokio-io` feature), so the tokio I/O ecosystem runs on faultless: hyper (through
//! hyper-util's `TokioIo`), tokio-util codecs, tokio-rustls, `tokio::io::copy` ...
//!
//! Only tokio's traits are used: no tokio runtime is started, and none is needed. The
//! implementations share the `futures::io` ones' buffers (`poll_io.rs`): a read copies out of
//! the stream's receive buffer straight into the caller's unfilled `ReadBuf` (no zeroing), a
//! vectored write gathers the slices into one send.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::poll_io::{ReadIo, WriteIo};
use super::split::{OwnedReadHalf, OwnedWriteHalf};
use super::{TcpStream, UnixStream};
use crate::driver::ops::SharedFd;

fn poll_read_buf(
    io: &mut ReadIo,
    fd: &SharedFd,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let want = buf.remaining();
    if want == 0 {
        return Poll::Ready(Ok(()));
    }
    let avail = ready!(io.poll_fill(fd, cx, want))?;
    let n = avail.len().min(want);
    buf.put_slice(&avail[..n]);
    io.consume(n);
    Poll::Ready(Ok(()))
}

macro_rules! tokio_read {
    ([$($g:ident)?] $ty:ty, |$this:ident| $io:expr, $fd:expr) => {
        impl$(<$g>)? AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $this = self.get_mut();
                poll_read_buf(&mut $io, &$fd, cx, buf)
            }
        }
    };
}

macro_rules! tokio_write {
    ([$($g:ident)?] $ty:ty, |$this:ident| $io:expr, $fd:expr) => {
        impl$(<$g>)? AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $this = self.get_mut();
                WriteIo::poll_write(&mut $io, &$fd, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let $this = self.get_mut();
                WriteIo::poll_write_vectored(&mut $io, &$fd, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $this = self.get_mut();
                WriteIo::poll_drain(&mut $io, &$fd, cx)
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                let $this = self.get_mut();
                WriteIo::poll_close(&mut $io, &$fd, cx)
            }
        }
    };
}

tokio_read!([] TcpStream, |this| this.io.read, this.socket.fd);
tokio_write!([] TcpStream, |this| this.io.write, this.socket.fd);
tokio_read!([] UnixStream, |this| this.io.read, this.socket.fd);
tokio_write!([] UnixStream, |this| this.io.write, this.socket.fd);
tokio_read!([S] OwnedReadHalf<S>, |this| this.io, this.fd);
tokio_write!([S] OwnedWriteHalf<S>, |this| this.io, this.fd);
