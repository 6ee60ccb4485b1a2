//! The operations shared by files and sockets, each one io_uring entry owning its resources.

use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use io_uring::{opcode, types};

use crate::buf::{io_len, BufResult, IoBuf, IoBufMut};
use crate::op::Op;

/// An fd shared by a file or socket and the operations in flight on it. The fd is closed when
/// the last holder goes, so it stays open until the kernel has completed every operation.
pub(crate) type SharedFd = Rc<OwnedFd>;

/// Reads into `buf` (from its start, up to its capacity) at `offset`.
pub(crate) async fn read_at<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
    offset: u64,
) -> BufResult<usize, B> {
    // SAFETY: the entry points into `buf`'s stable memory and uses the fd, both owned by the
    // op's data until completion.
    let op = unsafe {
        Op::submit((fd.clone(), buf), |(fd, buf)| {
            opcode::Read::new(
                types::Fd(fd.as_raw_fd()),
                buf.stable_mut_ptr(),
                io_len(buf.bytes_total()),
            )
            .offset(offset)
            .build()
        })
    };
    let done = op.await;
    let (_, mut buf) = done.data;
    match done.result.into_io() {
        Ok(n) => {
            // SAFETY: the kernel initialised the first n bytes, n <= bytes_total.
            unsafe { buf.set_init(n as usize) };
            (Ok(n as usize), buf)
        }
        Err(e) => (Err(e), buf),
    }
}

/// Writes `buf[start..]` at `offset`; returns how many bytes were written.
pub(crate) async fn write_at<B: IoBuf>(
    fd: &SharedFd,
    buf: B,
    start: usize,
    offset: u64,
) -> BufResult<usize, B> {
    let start = start.min(buf.bytes_init());
    // SAFETY: as in read_at; `start <= bytes_init` keeps the pointer inside the buffer.
    let op = unsafe {
        Op::submit((fd.clone(), buf), |(fd, buf)| {
            opcode::Write::new(
                types::Fd(fd.as_raw_fd()),
                buf.stable_ptr().add(start),
                io_len(buf.bytes_init() - start),
            )
            .offset(offset)
            .build()
        })
    };
    let done = op.await;
    (done.result.into_io().map(|n| n as usize), done.data.1)
}

/// Receives into `buf` (from its start, up to its capacity) from a socket.
pub(crate) async fn recv<B: IoBufMut>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    let op = recv_op(fd, buf);
    let done = op.await;
    let (_, mut buf) = done.data;
    match done.result.into_io() {
        Ok(n) => {
            // SAFETY: the kernel initialised the first n bytes, n <= bytes_total.
            unsafe { buf.set_init(n as usize) };
            (Ok(n as usize), buf)
        }
        Err(e) => (Err(e), buf),
    }
}

/// The op behind [`recv`], for callers that keep it in a struct.
pub(crate) fn recv_op<B: IoBufMut>(fd: &SharedFd, buf: B) -> Op<(SharedFd, B)> {
    // SAFETY: the entry points into `buf`'s stable memory and uses the fd, both owned by the
    // op's data until completion.
    unsafe {
        Op::submit((fd.clone(), buf), |(fd, buf)| {
            opcode::Recv::new(
                types::Fd(fd.as_raw_fd()),
                buf.stable_mut_ptr(),
                io_len(buf.bytes_total()),
            )
            .build()
        })
    }
}

/// Sends `buf[start..]` on a socket (without SIGPIPE); returns how many bytes were sent.
pub(crate) async fn send<B: IoBuf>(fd: &SharedFd, buf: B, start: usize) -> BufResult<usize, B> {
    let done = send_op(fd, buf, start).await;
    (done.result.into_io().map(|n| n as usize), done.data.1)
}

/// The op behind [`send`], for callers that keep it in a struct.
pub(crate) fn send_op<B: IoBuf>(fd: &SharedFd, buf: B, start: usize) -> Op<(SharedFd, B)> {
    let start = start.min(buf.bytes_init());
    // SAFETY: as in recv_op; `start <= bytes_init` keeps the pointer inside the buffer.
    unsafe {
        Op::submit((fd.clone(), buf), |(fd, buf)| {
            opcode::Send::new(
                types::Fd(fd.as_raw_fd()),
                buf.stable_ptr().add(start),
                io_len(buf.bytes_init() - start),
            )
            .flags(libc::MSG_NOSIGNAL)
            .build()
        })
    }
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

/// Runs an entry that only needs the fd to stay open, and returns its result.
pub(crate) async fn fd_op(
    fd: &SharedFd,
    build: impl FnOnce(types::Fd) -> io_uring::squeue::Entry,
) -> std::io::Result<u32> {
    // SAFETY: the entry uses only the fd, which the op's data keeps open.
    let op = unsafe { Op::submit(fd.clone(), |fd| build(types::Fd(fd.as_raw_fd()))) };
    op.await.result.into_io()
}

/// Waits until `fd` is readable (one-shot `POLL_ADD` for `POLLIN`). The poll is not
/// exclusive, so cancelling it can never swallow a wakeup meant for another waiter.
pub(crate) async fn readable(fd: &SharedFd) -> std::io::Result<()> {
    fd_op(fd, |fd| {
        opcode::PollAdd::new(fd, libc::POLLIN as u32).build()
    })
    .await?;
    Ok(())
}
