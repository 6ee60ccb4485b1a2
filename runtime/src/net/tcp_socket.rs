//! [`TcpSocket`]: a TCP socket before it is bound or connected, for the options that must
//! be set first.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Type};

use super::socket::{to_inet, Socket};
use super::{TcpListener, TcpStream};

/// A TCP socket not yet listening or connected: set `SO_REUSEADDR`, `SO_REUSEPORT`,
/// `TCP_NODELAY`, keepalive and buffer sizes, then [`listen`](Self::listen) or
/// [`connect`](Self::connect).
///
/// ```
/// use faultless_runtime::net::TcpSocket;
///
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     // Two listeners on one port: the kernel spreads connections between them.
///     let a = TcpSocket::new_v4()?;
///     a.set_reuseport(true)?;
///     a.bind("127.0.0.1:0".parse().unwrap())?;
///     let addr = a.local_addr()?;
///     let b = TcpSocket::new_v4()?;
///     b.set_reuseport(true)?;
///     b.bind(addr)?;
///     let (_la, _lb) = (a.listen(128)?, b.listen(128)?);
///
///     let client = TcpSocket::new_v4()?;
///     client.set_nodelay(true)?;
///     client.set_send_buffer_size(1 << 20)?;
///     let stream = client.connect(addr).await?;
///     assert!(stream.nodelay()?);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpSocket {
    socket: Socket,
}

impl TcpSocket {
    /// A new IPv4 TCP socket.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV4)
    }

    /// A new IPv6 TCP socket.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV6)
    }

    /// A TCP socket of `addr`'s family.
    pub fn new_for(addr: SocketAddr) -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::for_address(addr))
    }

    fn new(domain: Domain) -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            socket: Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?,
        })
    }

    /// `SO_REUSEADDR`: bind a listening port that connections in `TIME_WAIT` still use.
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.socket.with_sock(|s| s.set_reuse_address(on))
    }

    /// Whether `SO_REUSEADDR` is set.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.socket.with_sock(|s| s.reuse_address())
    }

    /// `SO_REUSEPORT`: several sockets (of this user) bind the same address, and the kernel
    /// spreads incoming connections between their listeners.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.socket.with_sock(|s| s.set_reuse_port(on))
    }

    /// Whether `SO_REUSEPORT` is set.
    pub fn reuseport(&self) -> io::Result<bool> {
        self.socket.with_sock(|s| s.reuse_port())
    }

    /// `TCP_NODELAY` (inherited by accepted connections on Linux).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket.with_sock(|s| s.set_tcp_nodelay(on))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.with_sock(|s| s.tcp_nodelay())
    }

    /// `SO_KEEPALIVE`: probe idle connections.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.socket.with_sock(|s| s.set_keepalive(on))
    }

    /// Whether `SO_KEEPALIVE` is set.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.socket.with_sock(|s| s.keepalive())
    }

    /// `SO_SNDBUF` (the kernel doubles the value and clamps it to `wmem_max`).
    pub fn set_send_buffer_size(&self, bytes: u32) -> io::Result<()> {
        self.socket
            .with_sock(|s| s.set_send_buffer_size(bytes as usize))
    }

    /// The send buffer size the kernel uses.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.socket
            .with_sock(|s| s.send_buffer_size())
            .map(|n| n as u32)
    }

    /// `SO_RCVBUF` (the kernel doubles the value and clamps it to `rmem_max`).
    pub fn set_recv_buffer_size(&self, bytes: u32) -> io::Result<()> {
        self.socket
            .with_sock(|s| s.set_recv_buffer_size(bytes as usize))
    }

    /// The receive buffer size the kernel uses.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.socket
            .with_sock(|s| s.recv_buffer_size())
            .map(|n| n as u32)
    }

    /// Binds to `addr` (no host names: binding never waits, see [`TcpListener::bind`]).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.socket.with_sock(|s| s.bind(&SockAddr::from(addr)))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.socket.local_addr()?)
    }

    /// Starts listening with `backlog` pending connections.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        self.socket.with_sock(|s| -> io::Result<()> {
            s.listen(backlog.min(i32::MAX as u32) as i32)?;
            s.set_nonblocking(true)
        })?;
        Ok(TcpListener::from_socket(self.socket))
    }

    /// Connects to `addr` (an io_uring connect).
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.socket.connect(&SockAddr::from(addr)).await?;
        Ok(TcpStream::from_connected(self.socket))
    }
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.raw()
    }
}

impl std::fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpSocket")
            .field("fd", &self.socket.raw())
            .finish()
    }
}
