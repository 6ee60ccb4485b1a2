//! Socket operations: [`Connect`], [`Shutdown`], [`PollAdd`], and the `msghdr` operations
//! [`SendMsg`] and [`RecvMsg`] (UDP's `send_to`/`recv_from`).

use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};
use socket2::{SockAddr, SockAddrStorage};

use super::SharedFd;
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::OpCode;

/// `connect(2)`.
pub(crate) struct Connect {
    pub(crate) fd: SharedFd,
    pub(crate) addr: Box<SockAddr>,
}

// SAFETY: the entry points into the boxed address (heap, `addr.len()` bytes); the fd is kept
// open by `fd`.
unsafe impl OpCode for Connect {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd.as_raw_fd()),
            self.addr.as_ptr().cast(),
            self.addr.len(),
        )
        .build()
    }
}

/// `shutdown(2)`.
pub(crate) struct Shutdown {
    pub(crate) fd: SharedFd,
    pub(crate) how: i32,
}

// SAFETY: the entry points at no memory; the fd is kept open by `fd`.
unsafe impl OpCode for Shutdown {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Shutdown::new(types::Fd(self.fd.as_raw_fd()), self.how).build()
    }
}

/// A one-shot readiness poll. Not exclusive, so cancelling it can never swallow a wakeup
/// meant for another waiter.
pub(crate) struct PollAdd {
    pub(crate) fd: SharedFd,
    pub(crate) events: u32,
}

// SAFETY: the entry points at no memory; the fd is kept open by `fd`.
unsafe impl OpCode for PollAdd {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd.as_raw_fd()), self.events).build()
    }
}

/// A `msghdr` with its iovec and address, boxed so the kernel's pointers into it stay valid
/// when the operation value moves.
pub(crate) struct MsgHeader {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: MaybeUninit<SockAddrStorage>,
}

impl MsgHeader {
    /// A header with room for any socket address, or holding `addr`.
    fn new(addr: Option<&SockAddr>) -> Box<MsgHeader> {
        let mut m = Box::new(MsgHeader {
            // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
            hdr: unsafe { std::mem::zeroed() },
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            addr: MaybeUninit::zeroed(),
        });
        let addr_len = match addr {
            Some(a) => {
                // SAFETY: a SockAddr's `len()` bytes fit a sockaddr_storage by construction,
                // and the two do not overlap.
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
        m.hdr.msg_namelen = addr_len;
        m.hdr.msg_iovlen = 1;
        m
    }

    /// Points the header at its own iovec and address, and the iovec at `ptr..ptr + len`.
    fn aim(&mut self, ptr: *mut u8, len: usize) -> *mut libc::msghdr {
        self.iov = libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
        self.hdr.msg_name = self.addr.as_mut_ptr().cast();
        self.hdr.msg_iov = &mut self.iov;
        &mut self.hdr
    }

    /// The sender's address a completed `recvmsg` wrote.
    pub(crate) fn source(&self) -> SockAddr {
        // SAFETY: the storage was zero-initialised and the kernel wrote `msg_namelen` bytes
        // of address into it; a sockaddr_storage is plain old data, so copying it out is a
        // valid read of an initialised value.
        let storage = unsafe { self.addr.as_ptr().read() };
        // SAFETY: `msg_namelen` bytes of `storage` are the address the kernel wrote.
        unsafe { SockAddr::new(storage, self.hdr.msg_namelen) }
    }
}

/// `sendmsg(2)` of a buffer's initialised bytes to an address, without SIGPIPE.
pub(crate) struct SendMsg<B> {
    fd: SharedFd,
    pub(crate) buf: B,
    msg: Box<MsgHeader>,
}

impl<B: IoBuf> SendMsg<B> {
    pub(crate) fn new(fd: SharedFd, buf: B, to: &SockAddr) -> SendMsg<B> {
        SendMsg {
            fd,
            buf,
            msg: MsgHeader::new(Some(to)),
        }
    }
}

// SAFETY: the entry points at the boxed header, whose iovec and name point into the same box
// and into `buf`'s stable memory (`bytes_init` initialised bytes, which the kernel only
// reads); the fd is kept open by `fd`.
unsafe impl<B: IoBuf> OpCode for SendMsg<B> {
    fn create_entry(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_init();
        let hdr = self.msg.aim(self.buf.stable_ptr().cast_mut(), len);
        opcode::SendMsg::new(types::Fd(self.fd.as_raw_fd()), hdr)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }
}

/// `recvmsg(2)` of one datagram into a buffer's spare capacity, with its sender's address.
pub(crate) struct RecvMsg<B> {
    fd: SharedFd,
    pub(crate) buf: B,
    pub(crate) msg: Box<MsgHeader>,
}

impl<B: IoBufMut> RecvMsg<B> {
    pub(crate) fn new(fd: SharedFd, buf: B) -> RecvMsg<B> {
        RecvMsg {
            fd,
            buf,
            msg: MsgHeader::new(None),
        }
    }
}

// SAFETY: as for `SendMsg`, with the iovec covering `bytes_total` writable bytes of `buf`.
unsafe impl<B: IoBufMut> OpCode for RecvMsg<B> {
    fn create_entry(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_total();
        let hdr = self.msg.aim(self.buf.stable_mut_ptr(), len);
        opcode::RecvMsg::new(types::Fd(self.fd.as_raw_fd()), hdr).build()
    }
}
