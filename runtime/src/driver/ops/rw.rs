//! Reads and writes shared by files and sockets: [`ReadAt`], [`WriteAt`], [`Recv`],
//! [`Send`], and the owned-buffer helpers built on them.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::SharedFd;
use crate::buf::{io_len, BufResult, IoBuf, IoBufMut};
use crate::driver::{CqeResult, Op, OpCode};

/// `read(2)` at an offset into a buffer's spare capacity (from its start).
pub(crate) struct ReadAt<B> {
    fd: SharedFd,
    buf: B,
    offset: u64,
}

// SAFETY: the entry points into `buf`'s stable memory (`IoBufMut`: valid for writes of
// `bytes_total` bytes, not moved when the buffer value moves) and uses the fd that `fd` keeps
// open.
unsafe impl<B: IoBufMut> OpCode for ReadAt<B> {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Read::new(
            types::Fd(self.fd.as_raw_fd()),
            self.buf.stable_mut_ptr(),
            io_len(self.buf.bytes_total()),
        )
        .offset(self.offset)
        .build()
    }
}

/// `write(2)` of `buf[start..]` at an offset.
pub(crate) struct WriteAt<B> {
    fd: SharedFd,
    buf: B,
    start: usize,
    offset: u64,
}

// SAFETY: the entry points into `buf`'s stable memory at `start <= bytes_init` (clamped in
// `write_at`), for `bytes_init - start` initialised bytes; the fd is kept open by `fd`.
unsafe impl<B: IoBuf> OpCode for WriteAt<B> {
    fn create_entry(&mut self) -> squeue::Entry {
        // SAFETY: `start <= bytes_init`, so the pointer stays inside the buffer.
        let ptr = unsafe { self.buf.stable_ptr().add(self.start) };
        opcode::Write::new(
            types::Fd(self.fd.as_raw_fd()),
            ptr,
            io_len(self.buf.bytes_init() - self.start),
        )
        .offset(self.offset)
        .build()
    }
}

/// `recv(2)` into a buffer's spare capacity (from its start). With `poll_first`
/// (`IORING_RECVSEND_POLL_FIRST`, Linux 5.19+), the kernel arms its readiness poll at once
/// instead of first trying a receive that the caller expects to find nothing: the case of a
/// request/response connection that has just sent its response.
pub(crate) struct Recv<B> {
    fd: SharedFd,
    buf: B,
    poll_first: bool,
}

impl<B> Recv<B> {
    /// The buffer, once the operation is over.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: as for `ReadAt`.
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Recv::new(
            types::Fd(self.fd.as_raw_fd()),
            self.buf.stable_mut_ptr(),
            io_len(self.buf.bytes_total()),
        )
        .ioprio(if self.poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        })
        .build()
    }
}

/// `send(2)` of `buf[start..]`, without SIGPIPE.
pub(crate) struct Send<B> {
    fd: SharedFd,
    buf: B,
    start: usize,
}

impl<B> Send<B> {
    /// The buffer, once the operation is over.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: as for `WriteAt`.
unsafe impl<B: IoBuf> OpCode for Send<B> {
    fn create_entry(&mut self) -> squeue::Entry {
        // SAFETY: `start <= bytes_init` (clamped in `send_op`).
        let ptr = unsafe { self.buf.stable_ptr().add(self.start) };
        opcode::Send::new(
            types::Fd(self.fd.as_raw_fd()),
            ptr,
            io_len(self.buf.bytes_init() - self.start),
        )
        .flags(libc::MSG_NOSIGNAL)
        .build()
    }
}

/// Turns a read-like completion into the byte count, marking the bytes initialised.
pub(crate) fn filled<B: IoBufMut>(result: CqeResult, mut buf: B) -> BufResult<usize, B> {
    match result.into_io() {
        Ok(n) => {
            // SAFETY: the kernel initialised the first n bytes; a read or receive returns at
            // most the length it was given, `bytes_total`.
            unsafe { buf.set_init(n as usize) };
            (Ok(n as usize), buf)
        }
        Err(e) => (Err(e), buf),
    }
}

/// Reads into `buf` (from its start, up to its capacity) at `offset`.
pub(crate) async fn read_at<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
    offset: u64,
) -> BufResult<usize, B> {
    let done = Op::submit(ReadAt {
        fd: fd.clone(),
        buf,
        offset,
    })
    .await;
    filled(done.result, done.data.buf)
}

/// Writes `buf[start..]` at `offset`; returns how many bytes were written.
pub(crate) async fn write_at<B: IoBuf>(
    fd: &SharedFd,
    buf: B,
    start: usize,
    offset: u64,
) -> BufResult<usize, B> {
    let start = start.min(buf.bytes_init());
    let done = Op::submit(WriteAt {
        fd: fd.clone(),
        buf,
        start,
        offset,
    })
    .await;
    (done.result.into_io().map(|n| n as usize), done.data.buf)
}

/// Receives into `buf` (from its start, up to its capacity) from a socket.
pub(crate) async fn recv<B: IoBufMut>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    let done = recv_op(fd, buf, false).await;
    filled(done.result, done.data.buf)
}

/// The op behind [`recv`], for callers that keep it in a struct; `poll_first` when the
/// caller expects no data yet (see [`Recv`]).
pub(crate) fn recv_op<B: IoBufMut>(fd: &SharedFd, buf: B, poll_first: bool) -> Op<Recv<B>> {
    Op::submit(Recv {
        fd: fd.clone(),
        buf,
        poll_first: poll_first && POLL_FIRST_WORKS.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// `IORING_RECVSEND_POLL_FIRST` (io_uring.h; io-uring's `sys` module is private).
const RECVSEND_POLL_FIRST: u16 = 1;

/// False once a kernel refused `IORING_RECVSEND_POLL_FIRST` (before 5.19: `EINVAL`).
static POLL_FIRST_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Called when a `poll_first` receive failed with `EINVAL`: later ones go without the flag.
/// Returns true if the flag was the likely cause (the caller then retries without it).
pub(crate) fn poll_first_refused<B>(op: &Recv<B>) -> bool {
    op.poll_first && POLL_FIRST_WORKS.swap(false, std::sync::atomic::Ordering::Relaxed)
}

/// Sends `buf[start..]` on a socket (without SIGPIPE); returns how many bytes were sent.
pub(crate) async fn send<B: IoBuf>(fd: &SharedFd, buf: B, start: usize) -> BufResult<usize, B> {
    let done = send_op(fd, buf, start).await;
    (done.result.into_io().map(|n| n as usize), done.data.buf)
}

/// The op behind [`send`], for callers that keep it in a struct.
pub(crate) fn send_op<B: IoBuf>(fd: &SharedFd, buf: B, start: usize) -> Op<Send<B>> {
    let start = start.min(buf.bytes_init());
    Op::submit(Send {
        fd: fd.clone(),
        buf,
        start,
    })
}

/// Sends all of `buf`, resubmitting after partial sends.
pub(crate) async fn send_all<B: IoBuf>(fd: &SharedFd, mut buf: B) -> BufResult<(), B> {
    let mut sent = 0;
    while sent < buf.bytes_init() {
        let (res, b) = send(fd, buf, sent).await;
        buf = b;
        match res {
            Ok(0) => return (Err(std::io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
