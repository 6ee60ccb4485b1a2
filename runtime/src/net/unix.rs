//! Unix-domain stream sockets: [`UnixListener`] and [`UnixStream`].

use std::io;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Type};

use super::socket::Socket;
use crate::net::poll_io::PollIo;

/// A Unix-domain socket listening for connections.
pub struct UnixListener {
    socket: Socket,
}

impl UnixListener {
    /// Binds to the filesystem path `path` and listens. Fails if the path exists.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let addr = SockAddr::unix(path)?;
        Ok(UnixListener {
            socket: Socket::bind(&addr, Type::STREAM, Some(1024))?,
        })
    }

    /// Waits for a connection.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        let (socket, _) = self.socket.accept().await?;
        Ok(UnixStream::from_socket(socket))
    }

    /// The path the listener is bound to, if it has one.
    pub fn local_path(&self) -> io::Result<Option<PathBuf>> {
        Ok(self
            .socket
            .local_addr()?
            .as_pathname()
            .map(Path::to_path_buf))
    }
}

impl UnixListener {
    fn from_socket(socket: Socket) -> UnixListener {
        UnixListener { socket }
    }

    fn into_socket(self) -> Socket {
        self.socket
    }
}

super::fd_impls!(
    UnixListener,
    std::os::unix::net::UnixListener,
    nonblocking = true
);

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.socket.raw())
            .finish()
    }
}

/// A Unix-domain stream connection; same interface as [`TcpStream`](super::TcpStream).
pub struct UnixStream {
    pub(super) socket: Socket,
    pub(super) io: PollIo,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.connect(&addr).await?;
        Ok(UnixStream::from_socket(socket))
    }

    /// A connected pair of streams (`socketpair`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = socket2::Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        Ok((
            UnixStream::from_socket(Socket::from_owned(a.into())),
            UnixStream::from_socket(Socket::from_owned(b.into())),
        ))
    }

    /// The peer's path, if it is bound to one.
    pub fn peer_path(&self) -> io::Result<Option<PathBuf>> {
        Ok(self
            .socket
            .peer_addr()?
            .as_pathname()
            .map(Path::to_path_buf))
    }
}

super::stream_impls!(UnixStream, std::os::unix::net::UnixStream);
