//! Addresses: [`ToSocketAddrs`] and [`lookup_host`].
//!
//! `std::net::ToSocketAddrs` resolves a host name with a blocking `getaddrinfo`; on the
//! executor thread that would stall every task for as long as DNS takes. This trait (sealed,
//! implemented for the same types as std's, as tokio does) tells the ones that need no lookup
//! (socket addresses, IP literals, `(IpAddr, u16)`) from host names, and host names are
//! resolved on the blocking pool ([`spawn_blocking`](crate::spawn_blocking)):
//!
//! * `TcpStream::connect` and [`lookup_host`] await the pool for a host name;
//! * the synchronous binds (`TcpListener::bind`, `UdpSocket::bind`/`connect`) accept
//!   addresses and `localhost` (RFC 6761: the loopback addresses, no lookup); another host
//!   name inside a runtime is an `InvalidInput` error that says to resolve it with
//!   `lookup_host(..).await` first. Outside a runtime (no executor to stall), they resolve
//!   host names as std does.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Something that names one or more socket addresses: a `SocketAddr`, `"host:port"`,
/// `(host, port)`, `(IpAddr, u16)`, a slice of addresses. Host names are resolved on the
/// blocking pool, never on the executor thread.
pub trait ToSocketAddrs: sealed::ToSocketAddrsPriv {}

pub(crate) mod sealed {
    use std::net::SocketAddr;

    /// How an address resolves: at once, or by a lookup of `host:port`.
    pub enum Resolve {
        /// No lookup needed.
        Ready(Vec<SocketAddr>),
        /// A host name: `host:port` for the system resolver.
        Lookup(String),
        /// The address is malformed.
        Invalid(String),
    }

    /// The hidden half of `ToSocketAddrs`.
    pub trait ToSocketAddrsPriv {
        /// Resolves without a lookup, or says which lookup is needed.
        fn resolve(&self) -> Resolve;
    }
}

use sealed::{Resolve, ToSocketAddrsPriv};

macro_rules! ready_impl {
    ($($ty:ty),*) => {$(
        impl ToSocketAddrs for $ty {}
        impl ToSocketAddrsPriv for $ty {
            fn resolve(&self) -> Resolve {
                Resolve::Ready(vec![SocketAddr::from(*self)])
            }
        }
    )*};
}
ready_impl!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for [SocketAddr] {}
impl ToSocketAddrsPriv for [SocketAddr] {
    fn resolve(&self) -> Resolve {
        Resolve::Ready(self.to_vec())
    }
}

impl ToSocketAddrs for Vec<SocketAddr> {}
impl ToSocketAddrsPriv for Vec<SocketAddr> {
    fn resolve(&self) -> Resolve {
        Resolve::Ready(self.clone())
    }
}

impl ToSocketAddrs for str {}
impl ToSocketAddrsPriv for str {
    fn resolve(&self) -> Resolve {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Resolve::Ready(vec![addr]);
        }
        match self.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
            Some((host, Ok(port))) => host_port(host, port),
            _ => Resolve::Invalid(format!(
                "invalid socket address {self:?} (expected host:port)"
            )),
        }
    }
}

impl ToSocketAddrs for String {}
impl ToSocketAddrsPriv for String {
    fn resolve(&self) -> Resolve {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl ToSocketAddrsPriv for (&str, u16) {
    fn resolve(&self) -> Resolve {
        host_port(self.0, self.1)
    }
}

impl ToSocketAddrs for (String, u16) {}
impl ToSocketAddrsPriv for (String, u16) {
    fn resolve(&self) -> Resolve {
        host_port(&self.0, self.1)
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrsPriv + ?Sized> ToSocketAddrsPriv for &T {
    fn resolve(&self) -> Resolve {
        (**self).resolve()
    }
}

/// `(host, port)`: an IP literal (IPv6 with or without brackets) or `localhost` resolve at
/// once; anything else needs a lookup.
fn host_port(host: &str, port: u16) -> Resolve {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Resolve::Ready(vec![SocketAddr::new(ip, port)]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Resolve::Ready(vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]);
    }
    if host.contains(':') {
        return Resolve::Lookup(format!("[{host}]:{port}"));
    }
    Resolve::Lookup(format!("{host}:{port}"))
}

fn nonempty(addrs: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "address resolved to no socket addresses",
        ));
    }
    Ok(addrs)
}

/// Resolves `addr` on the blocking pool if it names a host; at once otherwise.
pub(crate) async fn resolve_async(
    addr: &(impl ToSocketAddrs + ?Sized),
) -> io::Result<Vec<SocketAddr>> {
    match addr.resolve() {
        Resolve::Ready(addrs) => nonempty(addrs),
        Resolve::Invalid(msg) => Err(io::Error::new(io::ErrorKind::InvalidInput, msg)),
        Resolve::Lookup(name) => {
            crate::log::debug!(host = %name, "resolving on the blocking pool");
            let addrs = crate::spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&name).map(Iterator::collect)
            })
            .await??;
            nonempty(addrs)
        }
    }
}

/// Resolves `addr` without waiting: addresses and `localhost`; a host name is an error inside
/// a runtime (it would block the executor) and a std lookup outside one.
pub(crate) fn resolve_now(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    match addr.resolve() {
        Resolve::Ready(addrs) => nonempty(addrs),
        Resolve::Invalid(msg) => Err(io::Error::new(io::ErrorKind::InvalidInput, msg)),
        Resolve::Lookup(name) => {
            if crate::executor::try_with_current(|_| ()).is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{name}: a host name is not resolved on the executor thread (it would \
                         block every task); resolve it first with \
                         `faultless_runtime::net::lookup_host(..).await`"
                    ),
                ));
            }
            nonempty(std::net::ToSocketAddrs::to_socket_addrs(&name)?.collect())
        }
    }
}

/// Resolves a host name (`"host:port"`, `(host, port)`, ...) into socket addresses. The
/// system resolver (`getaddrinfo`) runs on the blocking pool, so the executor thread never
/// waits for DNS; addresses and IP literals resolve at once.
///
/// ```
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     let addrs: Vec<_> = faultless_runtime::net::lookup_host("127.0.0.1:80").await?.collect();
///     assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn lookup_host(host: impl ToSocketAddrs) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(resolve_async(&host).await?.into_iter())
}
