//! `futures::io::AsyncRead` / `AsyncWrite` on top of completion-based io_uring operations.
//!
//! The poll-style traits lend the caller's buffer only for the duration of one call, while an
//! io_uring operation needs a buffer it owns until completion. So the stream keeps its own
//! buffers:
//!
//! * reads go into an internal buffer (16 KiB, or the caller's length if larger), and
//!   `poll_read` copies out of it;
//! * writes copy the caller's bytes (up to 64 KiB) into an internal buffer, submit a send, and
//!   report the bytes as written at once (write-behind). The next `poll_write`, `poll_flush`
//!   or `poll_close` first waits for that send to finish, resubmitting after partial sends,
//!   and reports its error, if any. `poll_flush` returning `Ready(Ok)` means every byte
//!   reported written has been handed to the kernel.
//!
//! An operation in flight stays in the stream between calls; dropping the stream cancels it
//! and the driver keeps its buffer until the kernel is done.

use std::future::Future;
use std::io;
use std::task::{ready, Context, Poll};

use crate::driver::ops::net::Shutdown;
use crate::driver::ops::rw::{filled, recv_op, send_op, Recv, Send};
use crate::driver::ops::SharedFd;
use crate::driver::Op;

const READ_BUF: usize = 16 * 1024;
const WRITE_BUF: usize = 64 * 1024;

/// Buffers and in-flight operations behind a stream's `AsyncRead`/`AsyncWrite`.
#[derive(Default)]
pub(crate) struct PollIo {
    read_buf: Vec<u8>,
    read_pos: usize,
    read_op: Option<Op<Recv<Vec<u8>>>>,
    write_op: Option<Op<Send<Vec<u8>>>>,
    write_sent: usize,
    write_spare: Vec<u8>,
    shutdown_op: Option<Op<Shutdown>>,
}

impl PollIo {
    pub(crate) fn poll_read(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if self.read_pos < self.read_buf.len() {
                let avail = &self.read_buf[self.read_pos..];
                let n = avail.len().min(out.len());
                out[..n].copy_from_slice(&avail[..n]);
                self.read_pos += n;
                return Poll::Ready(Ok(n));
            }
            let op = match &mut self.read_op {
                Some(op) => op,
                None => {
                    let mut buf = std::mem::take(&mut self.read_buf);
                    buf.clear();
                    buf.reserve(READ_BUF.max(out.len()));
                    self.read_pos = 0;
                    self.read_op.insert(recv_op(fd, buf))
                }
            };
            let done = ready!(std::pin::Pin::new(op).poll(cx));
            self.read_op = None;
            let (res, buf) = filled(done.result, done.data.into_buf());
            self.read_buf = buf;
            match res {
                Ok(0) => return Poll::Ready(Ok(0)),
                Ok(_) => {}
                Err(e) => {
                    self.read_buf.clear();
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// Waits until no send is in flight, resubmitting the rest after partial sends.
    pub(crate) fn poll_drain(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while let Some(op) = &mut self.write_op {
            let done = ready!(std::pin::Pin::new(op).poll(cx));
            self.write_op = None;
            let buf = done.data.into_buf();
            match done.result.into_io() {
                Ok(0) => {
                    self.recycle(buf);
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => {
                    self.write_sent += n as usize;
                    if self.write_sent < buf.len() {
                        self.write_op = Some(send_op(fd, buf, self.write_sent));
                    } else {
                        self.recycle(buf);
                    }
                }
                Err(e) => {
                    self.recycle(buf);
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.write_spare = buf;
        self.write_sent = 0;
    }

    pub(crate) fn poll_write(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(fd, cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(WRITE_BUF);
        let mut buf = std::mem::take(&mut self.write_spare);
        buf.clear();
        buf.extend_from_slice(&data[..n]);
        self.write_sent = 0;
        // Nobody waits on this send until the next drain, which registers the waker.
        self.write_op = Some(send_op(fd, buf, 0));
        Poll::Ready(Ok(n))
    }

    pub(crate) fn poll_close(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(fd, cx))?;
        let op = self.shutdown_op.get_or_insert_with(|| {
            Op::submit(Shutdown {
                fd: fd.clone(),
                how: libc::SHUT_WR,
            })
        });
        let done = ready!(std::pin::Pin::new(op).poll(cx));
        self.shutdown_op = None;
        match done.result.into_io() {
            Ok(_) => Poll::Ready(Ok(())),
            // Already shut down or disconnected: closing is done either way.
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
