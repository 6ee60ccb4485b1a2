//! UDP: [`UdpSocket`].

use std::io;
use std::net::SocketAddr;

use socket2::{SockAddr, Type};

use super::addr::{resolve_now, ToSocketAddrs};
use super::socket::{to_inet, Socket};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::driver::ops::net::{RecvMsg, SendMsg};
use crate::driver::ops::rw;
use crate::driver::Op;

/// A UDP socket.
pub struct UdpSocket {
    socket: Socket,
}

impl UdpSocket {
    /// Binds to `addr` (the first of its addresses that binds; no host names inside a
    /// runtime, see [`TcpListener::bind`](super::TcpListener::bind)).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve_now(&addr)? {
            match Socket::bind(&SockAddr::from(a), Type::DGRAM, None) {
                Ok(socket) => return Ok(UdpSocket { socket }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sets the default peer for [`send`](Self::send) and the only source for
    /// [`recv`](Self::recv). Connecting a UDP socket sends nothing, so it never waits.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let mut last = None;
        for a in resolve_now(&addr)? {
            match self.socket.with_sock(|s| s.connect(&SockAddr::from(a))) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sends `buf` as one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        rw::send(&self.socket.fd, buf, 0).await
    }

    /// Receives one datagram from the connected peer into `buf`.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        rw::recv(&self.socket.fd, buf).await
    }

    /// Sends `buf` as one datagram to `addr`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> BufResult<usize, B> {
        let op = SendMsg::new(self.socket.fd.clone(), buf, &SockAddr::from(addr));
        let done = Op::submit(op).await;
        (done.result.into_io().map(|n| n as usize), done.data.buf)
    }

    /// Receives one datagram into `buf` and returns its length and sender.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let done = Op::submit(RecvMsg::new(self.socket.fd.clone(), buf)).await;
        let source = done.data.msg.source();
        match rw::filled(done.result, done.data.buf) {
            (Ok(n), buf) => match to_inet(source) {
                Ok(a) => (Ok((n, a)), buf),
                Err(e) => (Err(e), buf),
            },
            (Err(e), buf) => (Err(e), buf),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.socket.local_addr()?)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.socket.peer_addr()?)
    }
}

impl UdpSocket {
    fn from_socket(socket: Socket) -> UdpSocket {
        UdpSocket { socket }
    }

    fn into_socket(self) -> Socket {
        self.socket
    }
}

super::fd_impls!(UdpSocket, std::net::UdpSocket, nonblocking = false);

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.socket.raw())
            .finish()
    }
}
