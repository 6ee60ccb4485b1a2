//! TCP: [`TcpListener`] and [`TcpStream`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use socket2::{Protocol, SockAddr, Type};

use super::socket::{resolve, to_inet, try_each, Socket};
use crate::net::poll_io::PollIo;

/// A TCP socket listening for connections.
pub struct TcpListener {
    socket: Socket,
}

impl TcpListener {
    /// Binds to `addr` (the first of its resolved addresses that binds) and listens with a
    /// backlog of 1024. `SO_REUSEADDR` is set, as servers expect.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = resolve(addr)?;
        let mut last = None;
        for a in addrs {
            match Socket::bind(&SockAddr::from(a), Type::STREAM, Some(1024)) {
                Ok(socket) => return Ok(TcpListener { socket }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Waits for a connection and returns it with the peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = self.socket.accept().await?;
        Ok((TcpStream::from_socket(socket), to_inet(addr)?))
    }

    /// The address the listener is bound to (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.socket.local_addr()?)
    }
}

impl std::os::fd::AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.raw()
    }
}

/// A TCP connection.
///
/// Offers owned-buffer methods ([`recv`](Self::recv), [`send`](Self::send),
/// [`send_all`](Self::send_all)) that map directly to io_uring, and implements
/// `futures::io::AsyncRead`/`AsyncWrite`. Use one style per direction at a time.
pub struct TcpStream {
    socket: Socket,
    io: PollIo,
}

impl TcpStream {
    fn from_socket(socket: Socket) -> TcpStream {
        TcpStream {
            socket,
            io: PollIo::default(),
        }
    }

    /// Connects to `addr`, trying each resolved address in turn.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = resolve(addr)?;
        try_each(addrs, |a| async move {
            let addr = SockAddr::from(a);
            let socket = Socket::new(addr.domain(), Type::STREAM, Some(Protocol::TCP))?;
            socket.connect(&addr).await?;
            Ok(TcpStream::from_socket(socket))
        })
        .await
    }

    /// Enables or disables Nagle's algorithm (`TCP_NODELAY`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.with_sock(|s| s.set_tcp_nodelay(nodelay))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.with_sock(|s| s.tcp_nodelay())
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.socket.peer_addr()?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.socket.local_addr()?)
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.take_error()
    }
}

super::stream_impls!(TcpStream);
