//! The operation types: each holds what the kernel touches while it is in flight and
//! implements [`OpCode`](super::OpCode) once.
//!
//! * `rw.rs`: positional reads and writes, socket receives and sends, and the async helpers
//!   on top of them (`read_at`, `send_all`, ...) that files and sockets share;
//! * `fs.rs`: opening (its result is a new fd), unlinking, `statx`, syncs, space allocation;
//! * `net.rs`: connecting, shutting down, readiness polls, and the `msghdr` operations of UDP.
//!
//! The page-access layer's `madvise` operation lives with the mapping it points into
//! (`mem/backend/uring_madvise.rs`).

use std::os::fd::OwnedFd;
use std::rc::Rc;

pub(crate) mod fs;
pub(crate) mod net;
pub(crate) mod rw;

/// An fd shared by a file or socket and the operations in flight on it. The fd is closed when
/// the last holder goes, so it stays open until the kernel has completed every operation.
pub(crate) type SharedFd = Rc<OwnedFd>;
