//! Poll-style reads and writes (`futures::io` and, with the `tokio-io` feature, `tokio::io`
//! traits) on top of completion-based io_uring operations.
//!
//! The poll-style traits lend the caller's buffer only for the duration of one call, while an
//! io_uring operation needs a buffer it owns until completion. So the stream keeps its own
//! buffers, one per direction ([`ReadIo`], [`WriteIo`]: the two halves of `into_split` take
//! one each):
//!
//! * reads go into an internal buffer (16 KiB, or the caller's length if larger), and
//!   `poll_read` copies out of it;
//! * writes first offer the caller's bytes to the socket with one non-blocking `sendmsg`
//!   (gathering a vectored write's slices): what the kernel takes is written, no copy, no
//!   operation left in flight. This is the common case for a server's replies, and it is
//!   what lets a request/response protocol cost one ring receive and one syscall per
//!   request instead of two ring operations and two task polls. When the socket buffer is
//!   full, the write copies up to 64 KiB into an internal buffer, submits an io_uring send,
//!   and reports the bytes as written at once (write-behind). The next write, flush or close
//!   first waits for that send to finish, resubmitting after partial sends, and reports its
//!   error, if any. A flush returning `Ready(Ok)` means every byte reported written is in
//!   the kernel's socket buffer.
//!
//! An operation in flight stays in the stream between calls; dropping the stream cancels it
//! and the driver keeps its buffer until the kernel is done. A write-behind send that has not
//! completed when the stream is dropped may be cancelled: flush (or close) before dropping.

use std::future::Future;
use std::io;
use std::task::{ready, Context, Poll};

use crate::driver::ops::net::Shutdown;
use crate::driver::ops::rw::{filled, poll_first_refused, recv_op, send_op, Recv, Send};
use crate::driver::ops::SharedFd;
use crate::driver::Op;

const READ_BUF: usize = 16 * 1024;
const WRITE_BUF: usize = 64 * 1024;

/// Both directions of a stream.
#[derive(Default)]
pub(crate) struct PollIo {
    pub(crate) read: ReadIo,
    pub(crate) write: WriteIo,
}

/// The read direction: a buffer of received bytes and the receive in flight.
#[derive(Default)]
pub(crate) struct ReadIo {
    buf: Vec<u8>,
    pos: usize,
    op: Option<Op<Recv<Vec<u8>>>>,
    /// True when the last receive returned data but did not fill the buffer: the socket was
    /// drained, and in request/response rhythm the peer's next message is usually not there
    /// yet, so the next receive waits for readiness first (`poll_first`). After a full
    /// buffer (a stream of data), the next receive tries at once.
    drained: bool,
}

impl ReadIo {
    /// Waits until received bytes are buffered (receiving at least `want` bytes' room) and
    /// returns them; an empty slice means end of stream. Call [`consume`](Self::consume)
    /// with what was used.
    pub(crate) fn poll_fill(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<&[u8]>> {
        loop {
            if self.pos < self.buf.len() {
                return Poll::Ready(Ok(&self.buf[self.pos..]));
            }
            let op = match &mut self.op {
                Some(op) => op,
                None => {
                    let mut buf = std::mem::take(&mut self.buf);
                    buf.clear();
                    buf.reserve(READ_BUF.max(want));
                    self.pos = 0;
                    self.op.insert(recv_op(fd, buf, self.drained))
                }
            };
            let done = ready!(std::pin::Pin::new(op).poll(cx));
            self.op = None;
            if done.result.res == -libc::EINVAL && poll_first_refused(&done.data) {
                self.buf = done.data.into_buf();
                continue; // an old kernel: again, without the flag
            }
            let (res, buf) = filled(done.result, done.data.into_buf());
            self.buf = buf;
            match res {
                Ok(0) => return Poll::Ready(Ok(&[])),
                Ok(n) => self.drained = n < self.buf.capacity(),
                Err(e) => {
                    self.buf.clear();
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// Marks `n` buffered bytes as read.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// `futures::io::AsyncRead::poll_read`.
    pub(crate) fn poll_read(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let avail = ready!(self.poll_fill(fd, cx, out.len()))?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }
}

/// The write direction: the write-behind send in flight, a spare buffer, and a shutdown.
#[derive(Default)]
pub(crate) struct WriteIo {
    op: Option<Op<Send<Vec<u8>>>>,
    sent: usize,
    spare: Vec<u8>,
    shutdown_op: Option<Op<Shutdown>>,
}

impl WriteIo {
    /// Waits until no send is in flight, resubmitting the rest after partial sends.
    pub(crate) fn poll_drain(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while let Some(op) = &mut self.op {
            let done = ready!(std::pin::Pin::new(op).poll(cx));
            self.op = None;
            let buf = done.data.into_buf();
            match done.result.into_io() {
                Ok(0) => {
                    self.recycle(buf);
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => {
                    self.sent += n as usize;
                    if self.sent < buf.len() {
                        self.op = Some(send_op(fd, buf, self.sent));
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
        self.spare = buf;
        self.sent = 0;
    }

    /// `poll_write`, of one slice.
    pub(crate) fn poll_write(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(fd, cx, &[io::IoSlice::new(data)])
    }

    /// `poll_write_vectored`: once the previous write-behind send is done, offers `bufs` to
    /// the socket with one non-blocking `sendmsg`. Whatever the kernel takes is written, with
    /// no copy and nothing left in flight (so a flush right after is free). Only if the
    /// socket buffer is full does the write copy up to 64 KiB into the stream's buffer and
    /// hand it to an io_uring send (write-behind), which the next write, flush or close
    /// waits for.
    pub(crate) fn poll_write_vectored(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(fd, cx))?;
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        loop {
            match send_now(fd, bufs) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        for slice in bufs {
            let room = WRITE_BUF - buf.len();
            if room == 0 {
                break;
            }
            buf.extend_from_slice(&slice[..slice.len().min(room)]);
        }
        let n = buf.len();
        self.sent = 0;
        // Nobody waits on this send until the next drain, which registers the waker.
        self.op = Some(send_op(fd, buf, 0));
        Poll::Ready(Ok(n))
    }

    /// Drains, then shuts the write direction down (`SHUT_WR`).
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

/// One non-blocking `sendmsg` of `bufs` (at most `IOV_MAX` slices), without SIGPIPE.
fn send_now(fd: &SharedFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let bufs = &bufs[..bufs.len().min(1024)];
    // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix; the kernel only reads.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points at `bufs.len()` live iovecs of initialised bytes borrowed for the
    // duration of the call; the fd is kept open by `fd`. MSG_DONTWAIT: never blocks.
    let n = unsafe {
        libc::sendmsg(
            fd.as_raw_fd(),
            &msg,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
