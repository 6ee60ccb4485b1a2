//! Networking: TCP, UDP and Unix-domain sockets driven by io_uring.
//!
//! Each socket type offers two interfaces:
//!
//! * owned-buffer methods (`recv`, `send`, `send_all`, `send_to`, ...) that map one-to-one
//!   onto io_uring operations: the buffer moves into the operation and comes back with the
//!   result, so no copy is made;
//! * the `futures::io::AsyncRead` / `AsyncWrite` traits (on stream sockets), so the futures
//!   ecosystem's combinators work; these copy through internal buffers (see `poll_io`).
//!   The owned methods are named `recv`/`send` so they never shadow `AsyncReadExt::read`
//!   or `AsyncWriteExt::write_all`.
//!
//! Socket setup that never blocks (socket, bind, listen, setsockopt) uses plain syscalls;
//! everything that may wait (accept, connect, send, receive, shutdown) is an io_uring
//! operation, and dropping its future cancels it safely.

mod poll_io;
mod socket;
mod tcp;
mod udp;
mod unix;

pub use std::net::Shutdown;
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

/// The methods and trait impls every stream socket shares. The type needs fields
/// `socket: Socket` and `io: PollIo`.
macro_rules! stream_impls {
    ($ty:ident) => {
        impl $ty {
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
        }

        impl futures::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                this.io.poll_read(&this.socket.fd, cx, buf)
            }
        }

        impl futures::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                this.io.poll_write(&this.socket.fd, cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.io.poll_drain(&this.socket.fd, cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.io.poll_close(&this.socket.fd, cx)
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.socket.raw()
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
