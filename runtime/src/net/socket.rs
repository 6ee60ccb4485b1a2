//! The socket type under every public socket: an fd shared with the operations in flight.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use socket2::{Domain, Protocol, SockAddr, Type};

use crate::driver::ops::net::{Connect, PollAdd, Shutdown};
use crate::driver::ops::SharedFd;
use crate::driver::Op;

/// A socket fd shared with the operations in flight on it.
pub(crate) struct Socket {
    pub(crate) fd: SharedFd,
}

impl Socket {
    /// Creates a socket (close-on-exec, blocking: io_uring polls it without blocking the thread).
    pub(crate) fn new(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
        let s = socket2::Socket::new(domain, ty, protocol)?;
        Ok(Socket {
            fd: Rc::new(OwnedFd::from(s)),
        })
    }

    pub(crate) fn from_owned(fd: OwnedFd) -> Socket {
        Socket { fd: Rc::new(fd) }
    }

    /// The fd, owned: taken if nothing else holds it, otherwise (an operation in flight
    /// still does, until its cancellation completes) a `dup` of it.
    pub(crate) fn into_owned(self) -> io::Result<OwnedFd> {
        match Rc::try_unwrap(self.fd) {
            Ok(fd) => Ok(fd),
            Err(shared) => shared.try_clone(),
        }
    }

    /// A borrowed socket2 view for synchronous setup calls.
    pub(crate) fn with_sock<R>(&self, f: impl FnOnce(&socket2::Socket) -> R) -> R {
        let sock = socket2::SockRef::from(&*self.fd);
        f(&sock)
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Binds a new socket of type `ty` for `addr`'s family; `listen` backlog if given.
    pub(crate) fn bind(addr: &SockAddr, ty: Type, listen: Option<i32>) -> io::Result<Socket> {
        let socket = Socket::new(addr.domain(), ty, None)?;
        socket.with_sock(|s| -> io::Result<()> {
            if listen.is_some() && addr.domain() != Domain::UNIX {
                s.set_reuse_address(true)?;
            }
            s.bind(addr)?;
            if let Some(backlog) = listen {
                s.listen(backlog)?;
                s.set_nonblocking(true)?;
            }
            Ok(())
        })?;
        Ok(socket)
    }

    /// Accepts one connection; the new socket is close-on-exec.
    ///
    /// Listening sockets are non-blocking, and accepting is readiness-based: try `accept4`,
    /// and if no connection is queued, wait for a one-shot io_uring poll and try again. An
    /// `IORING_OP_ACCEPT` would save the retry syscall, but dropping one while in flight can
    /// consume a connection that then has to be closed, and it waits exclusively, so a cancel
    /// racing with a new connection can lose the wakeup for a second accept on the same
    /// listener (observed on Linux 6.18). A dropped poll loses nothing.
    pub(crate) async fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        loop {
            match self.with_sock(|s| s.accept()) {
                Ok((s, addr)) => return Ok((Socket::from_owned(s.into()), addr)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                Err(e) => return Err(e),
            }
            self.readable().await?;
        }
    }

    /// Connects to `addr`.
    pub(crate) async fn connect(&self, addr: &SockAddr) -> io::Result<()> {
        let op = Connect {
            fd: self.fd.clone(),
            addr: Box::new(addr.clone()),
        };
        Op::submit(op).await.result.into_io().map(|_| ())
    }

    pub(crate) async fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        let op = Shutdown {
            fd: self.fd.clone(),
            how,
        };
        Op::submit(op).await.result.into_io().map(|_| ())
    }

    /// Waits until the socket is readable (a one-shot, non-exclusive `POLLIN` poll).
    async fn readable(&self) -> io::Result<()> {
        let op = PollAdd {
            fd: self.fd.clone(),
            events: libc::POLLIN as u32,
        };
        Op::submit(op).await.result.into_io().map(|_| ())
    }

    pub(crate) fn local_addr(&self) -> io::Result<SockAddr> {
        self.with_sock(|s| s.local_addr())
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SockAddr> {
        self.with_sock(|s| s.peer_addr())
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.with_sock(|s| s.take_error())
    }
}

/// Converts an inet `SockAddr` into a `SocketAddr`.
pub(crate) fn to_inet(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "not an IPv4 or IPv6 socket address",
        )
    })
}

/// Tries `f` on each address in turn and returns the first success or the last error.
pub(crate) async fn try_each<T, Fut>(
    addrs: Vec<SocketAddr>,
    mut f: impl FnMut(SocketAddr) -> Fut,
) -> io::Result<T>
where
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last = None;
    for a in addrs {
        match f(a).await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
}
