//! Networking: TCP, UDP and Unix-domain sockets driven by io_uring.
//!
//! Each stream socket offers two interfaces:
//!
//! * owned-buffer methods (`recv`, `send`, `send_all`, `send_to`, ...) that map one-to-one
//!   onto io_uring operations: the buffer moves into the operation and comes back with the
//!   result, so no copy is made;
//! * the poll-style I/O traits: `futures::io::AsyncRead`/`AsyncWrite`, and with the
//!   `tokio-io` feature `tokio::io::AsyncRead`/`AsyncWrite` (so hyper, tokio-util codecs and
//!   the TLS stacks run on faultless); these copy through internal buffers (see `poll_io`).
//!   The owned methods are named `recv`/`send` so they never shadow `AsyncReadExt::read`
//!   or `AsyncWriteExt::write_all`.
//!
//! Socket setup that never blocks (socket, bind, listen, setsockopt) uses plain syscalls;
//! everything that may wait (accept, connect, send, receive, shutdown) is an io_uring
//! operation, and dropping its future cancels it safely. Host names are resolved on the
//! blocking pool (see [`lookup_host`] and [`ToSocketAddrs`]), never on the executor thread.
//!
//! The files: `tcp.rs`, `udp.rs`, `unix.rs` (the socket types), `tcp_socket.rs` (the
//! [`TcpSocket`] builder: socket options before bind or connect), `socket.rs` (the shared
//! socket: bind, accept, connect), `split.rs` (owned read and write halves), `addr.rs`
//! (address resolution), `poll_io.rs` (poll-style I/O over completions), `tokio_io.rs`
//! (the `tokio-io` feature).

mod addr;
mod poll_io;
mod socket;
mod split;
mod tcp;
mod tcp_socket;
#[cfg(feature = "tokio-io")]
mod tokio_io;
mod udp;
mod unix;

pub use addr::{lookup_host, ToSocketAddrs};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use std::net::Shutdown;
pub use tcp::{TcpListener, TcpStream};
pub use tcp_socket::TcpSocket;
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

/// The fd conversions every socket type shares: `AsRawFd`, `AsFd`, `FromRawFd`,
/// `IntoRawFd`, `from_std` and `into_std`. The type needs `from_socket(Socket) -> Self` and
/// `into_socket(self) -> Socket`; `$nonblocking` is the mode the runtime keeps the fd in
/// (listeners are non-blocking, since accepting tries `accept4` first; every other socket is
/// blocking, so io_uring waits for it instead of answering `EAGAIN`).
macro_rules! fd_impls {
    ($ty:ident, $std:ty, nonblocking = $nonblocking:expr) => {
        impl $ty {
            #[doc = concat!("Wraps a `", stringify!($std), "` (in any blocking mode: the runtime sets the one it needs).")]
            pub fn from_std(socket: $std) -> std::io::Result<$ty> {
                let fd = std::os::fd::OwnedFd::from(socket);
                socket2::SockRef::from(&fd).set_nonblocking($nonblocking)?;
                Ok($ty::from_socket($crate::net::socket::Socket::from_owned(fd)))
            }

            #[doc = concat!("Turns this socket into a `", stringify!($std), "` in blocking mode. Operations in flight are cancelled; if one still holds the fd, the socket is `dup`ed.")]
            pub fn into_std(self) -> std::io::Result<$std> {
                let fd = self.into_socket().into_owned()?;
                socket2::SockRef::from(&fd).set_nonblocking(false)?;
                Ok(<$std>::from(fd))
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.socket.raw()
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&*self.socket.fd)
            }
        }

        impl std::os::fd::FromRawFd for $ty {
            /// Takes ownership of `fd`, an open socket of the right kind, and sets the
            /// blocking mode the runtime needs.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller promises that `fd` is an open socket it owns.
                let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                // Setting O_NONBLOCK on a valid fd cannot fail.
                let _ = socket2::SockRef::from(&fd).set_nonblocking($nonblocking);
                $ty::from_socket($crate::net::socket::Socket::from_owned(fd))
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            /// The fd, in the runtime's blocking mode.
            ///
            /// # Panics
            /// If an operation in flight still holds the fd and `dup` fails (out of fds).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                let fd = self
                    .into_socket()
                    .into_owned()
                    .expect("IntoRawFd: could not dup an fd still held by an operation in flight");
                std::os::fd::IntoRawFd::into_raw_fd(fd)
            }
        }
    };
}
pub(crate) use fd_impls;

/// The methods and trait impls every stream socket shares. The type needs fields
/// `socket: Socket` and `io: PollIo`.
macro_rules! stream_impls {
    ($ty:ident, $std:ty) => {
        impl $ty {
            fn from_socket(socket: $crate::net::socket::Socket) -> $ty {
                $ty {
                    socket,
                    io: Default::default(),
                }
            }

            fn into_socket(self) -> $crate::net::socket::Socket {
                let $ty { socket, io } = self;
                drop(io); // cancels the operations in flight
                socket
            }

            /// Receives into `buf` (from its start, up to its capacity) and returns the byte
            /// count with the buffer; 0 means the peer closed its side.
            pub async fn recv<B: $crate::IoBufMut>(&self, buf: B) -> $crate::BufResult<usize, B> {
                $crate::driver::ops::rw::recv(&self.socket.fd, buf).await
            }

            /// Sends some of `buf` and returns how many bytes were sent, with the buffer.
            pub async fn send<B: $crate::IoBuf>(&self, buf: B) -> $crate::BufResult<usize, B> {
                $crate::driver::ops::rw::send(&self.socket.fd, buf, 0).await
            }

            /// Sends all of `buf`, resubmitting after partial sends.
            pub async fn send_all<B: $crate::IoBuf>(&self, buf: B) -> $crate::BufResult<(), B> {
                $crate::driver::ops::rw::send_all(&self.socket.fd, buf).await
            }

            /// Shuts down the read half, the write half, or both.
            pub async fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                self.socket.shutdown(how).await
            }

            /// Splits the stream into a read half and a write half that can move into
            /// different tasks. Bytes already buffered by the poll-style traits go with
            /// their half. Dropping the write half shuts the write direction down (flush it
            /// first); `reunite` puts the two back together.
            pub fn into_split(
                self,
            ) -> (
                $crate::net::OwnedReadHalf<$ty>,
                $crate::net::OwnedWriteHalf<$ty>,
            ) {
                let $ty { socket, io } = self;
                $crate::net::split::split(socket.fd, io)
            }
        }

        impl $crate::net::OwnedReadHalf<$ty> {
            /// Puts the halves back together; fails (returning them) if they come from
            /// different streams.
            #[allow(clippy::result_large_err)] // the error hands the halves back
            pub fn reunite(
                self,
                write: $crate::net::OwnedWriteHalf<$ty>,
            ) -> Result<$ty, $crate::net::ReuniteError<$ty>> {
                let (fd, io) = $crate::net::split::reunite(self, write)?;
                Ok($ty {
                    socket: $crate::net::socket::Socket { fd },
                    io,
                })
            }
        }

        $crate::net::fd_impls!($ty, $std, nonblocking = false);

        impl futures::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                this.io.read.poll_read(&this.socket.fd, cx, buf)
            }
        }

        impl futures::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                this.io.write.poll_write(&this.socket.fd, cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                this.io.write.poll_write_vectored(&this.socket.fd, cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.io.write.poll_drain(&this.socket.fd, cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.io.write.poll_close(&this.socket.fd, cx)
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.socket.raw())
                    .finish()
            }
        }
    };
}
pub(crate) use stream_impls;
