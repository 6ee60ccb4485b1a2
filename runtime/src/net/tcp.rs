//! TCP: [`TcpListener`] and [`TcpStream`].

use std::io;
use std::net::SocketAddr;

use socket2::{Protocol, SockAddr, Type};

use super::addr::{resolve_async, resolve_now, ToSocketAddrs};
use super::socket::{to_inet, try_each, Socket};
use crate::net::poll_io::PollIo;

/// A TCP socket listening for connections.
///
/// ```
/// use faultless_runtime::net::{TcpListener, TcpStream};
///
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let client = faultless_runtime::spawn(async move {
///         let stream = TcpStream::connect(addr).await?;
///         let (res, _) = stream.send_all(b"hello".to_vec()).await;
///         res
///     });
///     let (stream, _peer) = listener.accept().await?;
///     let (n, buf) = stream.recv(Vec::with_capacity(16)).await;
///     assert_eq!(&buf[..n?], b"hello");
///     client.await??;
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    socket: Socket,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that binds) and listens with a backlog of
    /// 1024. `SO_REUSEADDR` is set, as servers expect; [`TcpSocket`](super::TcpSocket) sets
    /// other options (`SO_REUSEPORT`, buffer sizes) before binding.
    ///
    /// Binding does not wait, so this is not `async`, and so it resolves no host name inside
    /// a runtime (that would block the executor thread): give an address, an IP literal or
    /// `localhost`, or resolve the name first with [`lookup_host`](super::lookup_host).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve_now(&addr)? {
            match Socket::bind(&SockAddr::from(a), Type::STREAM, Some(1024)) {
                Ok(socket) => return Ok(TcpListener { socket }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    pub(super) fn from_socket(socket: Socket) -> TcpListener {
        TcpListener { socket }
    }

    fn into_socket(self) -> Socket {
        self.socket
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

super::fd_impls!(TcpListener, std::net::TcpListener, nonblocking = true);

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.socket.raw())
            .finish()
    }
}

/// A TCP connection.
///
/// Offers owned-buffer methods ([`recv`](Self::recv), [`send`](Self::send),
/// [`send_all`](Self::send_all)) that map directly to io_uring, and implements
/// `futures::io::AsyncRead`/`AsyncWrite` (and, with the `tokio-io` feature, tokio's). Use one
/// style per direction at a time.
pub struct TcpStream {
    pub(super) socket: Socket,
    pub(super) io: PollIo,
}

impl TcpStream {
    /// Connects to `addr`, trying each of its addresses in turn. A host name is resolved on
    /// the blocking pool.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = resolve_async(&addr).await?;
        try_each(addrs, |a| async move {
            let addr = SockAddr::from(a);
            let socket = Socket::new(addr.domain(), Type::STREAM, Some(Protocol::TCP))?;
            socket.connect(&addr).await?;
            Ok(TcpStream::from_socket(socket))
        })
        .await
    }

    pub(super) fn from_connected(socket: Socket) -> TcpStream {
        TcpStream::from_socket(socket)
    }

    /// Enables or disables Nagle's algorithm (`TCP_NODELAY`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.with_sock(|s| s.set_tcp_nodelay(nodelay))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.with_sock(|s| s.tcp_nodelay())
    }

    /// Enables or disables TCP keepalive probes (`SO_KEEPALIVE`).
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.socket.with_sock(|s| s.set_keepalive(keepalive))
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

super::stream_impls!(TcpStream, std::net::TcpStream);
