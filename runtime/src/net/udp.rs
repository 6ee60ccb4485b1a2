//! UDP: [`UdpSocket`].

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;

use io_uring::{opcode, types};
use socket2::{SockAddr, SockAddrStorage, Type};

use super::socket::{resolve, to_inet, Socket};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::io_ops::{self, SharedFd};
use crate::op::Op;

/// A UDP socket.
pub struct UdpSocket {
    socket: Socket,
}

/// A `msghdr` with its iovec and address, boxed so the kernel's pointers into it stay valid.
struct MsgState {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: MaybeUninit<SockAddrStorage>,
}

impl MsgState {
    fn new(ptr: *mut u8, len: usize, addr: Option<&SockAddr>) -> Box<MsgState> {
        // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
        let mut m = Box::new(MsgState {
            hdr: unsafe { std::mem::zeroed() },
            iov: libc::iovec {
                iov_base: ptr.cast(),
                iov_len: len,
            },
            addr: MaybeUninit::zeroed(),
        });
        let addr_len = match addr {
            Some(a) => {
                // SAFETY: a SockAddr's bytes fit a sockaddr_storage by construction.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        a.as_ptr().cast::<u8>(),
                        m.addr.as_mut_ptr().cast::<u8>(),
                        a.len() as usize,
                    )
                };
                a.len()
            }
            None => std::mem::size_of::<SockAddrStorage>() as libc::socklen_t,
        };
        m.hdr.msg_name = m.addr.as_mut_ptr().cast();
        m.hdr.msg_namelen = addr_len;
        m.hdr.msg_iov = &mut m.iov;
        m.hdr.msg_iovlen = 1;
        m
    }
}

impl UdpSocket {
    /// Binds to `addr` (the first resolved address that binds).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve(addr)? {
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
        for a in resolve(addr)? {
            match self.socket.with_sock(|s| s.connect(&SockAddr::from(a))) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sends `buf` as one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        io_ops::send(&self.socket.fd, buf, 0).await
    }

    /// Receives one datagram from the connected peer into `buf`.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        io_ops::recv(&self.socket.fd, buf).await
    }

    /// Sends `buf` as one datagram to `addr`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> BufResult<usize, B> {
        let addr = SockAddr::from(addr);
        let msg = MsgState::new(buf.stable_ptr() as *mut u8, buf.bytes_init(), Some(&addr));
        let op = Self::msg_op(&self.socket.fd, buf, msg, false);
        let done = op.await;
        (done.result.into_io().map(|n| n as usize), done.data.1)
    }

    /// Receives one datagram into `buf` and returns its length and sender.
    pub async fn recv_from<B: IoBufMut>(&self, mut buf: B) -> BufResult<(usize, SocketAddr), B> {
        let msg = MsgState::new(buf.stable_mut_ptr(), buf.bytes_total(), None);
        let op = Self::msg_op(&self.socket.fd, buf, msg, true);
        let done = op.await;
        let (_, mut buf, msg) = done.data;
        match done.result.into_io() {
            Ok(n) => {
                // SAFETY: the kernel initialised n bytes of the buffer.
                unsafe { buf.set_init(n as usize) };
                // SAFETY: the kernel wrote msg_namelen bytes of address into the zeroed
                // storage.
                let addr = unsafe { SockAddr::new(msg.addr.assume_init(), msg.hdr.msg_namelen) };
                match to_inet(addr) {
                    Ok(a) => (Ok((n as usize, a)), buf),
                    Err(e) => (Err(e), buf),
                }
            }
            Err(e) => (Err(e), buf),
        }
    }

    fn msg_op<B: 'static>(
        fd: &SharedFd,
        buf: B,
        msg: Box<MsgState>,
        recv: bool,
    ) -> Op<(SharedFd, B, Box<MsgState>)> {
        // SAFETY: the msghdr, its iovec and address live in the box, and the iovec points
        // into `buf`'s stable memory; the op's data owns all three and the fd.
        unsafe {
            Op::submit((fd.clone(), buf, msg), |(fd, _, msg)| {
                let fd = types::Fd(fd.as_raw_fd());
                if recv {
                    opcode::RecvMsg::new(fd, &mut msg.hdr).build()
                } else {
                    opcode::SendMsg::new(fd, &msg.hdr)
                        .flags(libc::MSG_NOSIGNAL as u32)
                        .build()
                }
            })
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

impl std::os::fd::AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.raw()
    }
}
