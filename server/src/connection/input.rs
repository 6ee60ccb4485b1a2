//! A connection's request buffer: the kernel receives straight into its spare capacity, it
//! grows to exactly the size a large request announces, and it shrinks back once that request
//! is done. Growth past [`INPUT_BASE`] is paid for from the server-wide request budget
//! (see `memory`).
//!
//! A large `SET` thus costs one copy in the server, the kernel's, into a buffer allocated once
//! at its final size; the store then copies the value into its write. (Before, every read was
//! copied from a 16 KiB receive buffer into a request buffer that grew by doubling, and the
//! arguments were copied again before execution.)

use std::io;

use faultless_runtime::net::TcpStream;
use faultless_runtime::{IoBuf, IoBufMut};

use crate::memory::{Exhausted, Grant};

/// A connection's request buffer's normal capacity, free of the request budget.
pub(crate) const INPUT_BASE: usize = 16 * 1024;

/// Least free space a receive is given.
const MIN_READ: usize = 4 * 1024;

/// Parser memory (its table of argument positions) free of the request budget.
const PARSER_BASE: usize = 8 * 1024;

/// A connection's request buffer; see the module docs.
pub(crate) struct Input<'b> {
    buf: Vec<u8>,
    grant: Grant<'b>,
}

impl<'b> Input<'b> {
    /// An empty buffer whose growth is charged to `grant`.
    pub(crate) fn new(grant: Grant<'b>) -> Input<'b> {
        Input {
            buf: Vec::with_capacity(INPUT_BASE),
            grant,
        }
    }

    /// The bytes received and not yet consumed.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the first `n` bytes (requests that were executed).
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
    }

    /// Sizes the buffer for the next receive, given that the request in progress needs the
    /// buffer to hold `need` bytes before it can go on (its full size, once a bulk string's
    /// header announced one): exactly that when it is large, else by doubling when the
    /// buffer is full; never more than `limit` (the largest request) plus a few KiB; and
    /// back to [`INPUT_BASE`] once a large request is done. `parser_memory` is charged to
    /// the budget with the buffer. Fails, leaving the buffer as it was, if the budget cannot
    /// pay for the growth.
    pub(crate) fn prepare(
        &mut self,
        need: usize,
        limit: usize,
        parser_memory: usize,
    ) -> Result<(), Exhausted> {
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let must = need.saturating_sub(len).max(1);
        let target = if cap - len >= must {
            if cap > 4 * INPUT_BASE && need.max(len) + MIN_READ <= INPUT_BASE {
                INPUT_BASE
            } else {
                cap
            }
        } else if must > MIN_READ {
            need
        } else {
            (cap * 2)
                .max(INPUT_BASE)
                .min(limit.max(need) + MIN_READ)
                .max(len + must)
        };
        let charge = target.saturating_sub(INPUT_BASE) + parser_memory.saturating_sub(PARSER_BASE);
        if target > cap {
            self.grant.resize(charge)?;
            self.buf.reserve_exact(target - len);
        } else {
            self.buf.shrink_to(target);
            self.grant.resize(charge)?;
        }
        Ok(())
    }

    /// Receives into the free capacity; `Ok(0)` when the peer closed its side.
    pub(crate) async fn recv(&mut self, stream: &TcpStream) -> io::Result<usize> {
        debug_assert!(self.buf.capacity() > self.buf.len(), "prepare first");
        let spare = Spare {
            start: self.buf.len(),
            vec: std::mem::take(&mut self.buf),
        };
        let (res, spare) = stream.recv(spare).await;
        self.buf = spare.vec;
        res
    }
}

/// The free capacity of a `Vec`, as a buffer that a receive fills: the kernel writes after
/// the bytes already there, which then grow by what was received.
struct Spare {
    vec: Vec<u8>,
    /// Where the free capacity starts: the vector's length when the receive began.
    start: usize,
}

// SAFETY: the pointer is into the vector's heap allocation (`start <= capacity`), which stays
// in place when the vector or this struct is moved, and lives as long as the struct. No bytes
// are claimed initialised through it (`bytes_init` is 0).
unsafe impl IoBuf for Spare {
    fn stable_ptr(&self) -> *const u8 {
        self.vec.as_ptr().wrapping_add(self.start)
    }
    fn bytes_init(&self) -> usize {
        0
    }
}

// SAFETY: as above; `start..capacity` is the vector's own unused allocation, valid for writes
// of `bytes_total` bytes, and nothing else reads or writes it while the receive runs (the
// vector is moved into the operation).
unsafe impl IoBufMut for Spare {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.vec.as_mut_ptr().wrapping_add(self.start)
    }
    fn bytes_total(&self) -> usize {
        self.vec.capacity() - self.start
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: the caller promises that the `n <= bytes_total()` bytes after `start` were
        // initialised (the kernel wrote them), so the first `start + n` bytes all are.
        unsafe { self.vec.set_len(self.start + n) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RequestMemory;

    #[test]
    fn sized_exactly_for_large_requests_and_shrunk_after() {
        let budget = RequestMemory::new(4 << 20);
        let mut input = Input::new(budget.grant());
        input.prepare(1, 64 << 20, 0).unwrap();
        assert_eq!(input.buf.capacity(), INPUT_BASE);
        assert_eq!(budget.used(), 0);
        // A bulk string announced 3 MB: the buffer is sized for it at once, and paid for.
        input.buf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
        input.prepare(3_000_000, 64 << 20, 0).unwrap();
        assert_eq!(input.buf.capacity(), 3_000_000);
        assert_eq!(budget.used(), 3_000_000 - INPUT_BASE);
        // A second one does not fit in the budget: refused, nothing changes.
        let mut other = Input::new(budget.grant());
        assert_eq!(other.prepare(3_000_000, 64 << 20, 0), Err(Exhausted));
        assert_eq!(other.buf.capacity(), INPUT_BASE);
        // Done with the request: back to the base size, budget returned.
        let len = input.buf.len();
        input.consume(len);
        input.prepare(1, 64 << 20, 0).unwrap();
        assert_eq!(input.buf.capacity(), INPUT_BASE);
        assert_eq!(budget.used(), 0);
        assert_eq!(other.prepare(3_000_000, 64 << 20, 0), Ok(()));
    }

    #[test]
    fn grows_by_doubling_when_the_size_is_unknown() {
        let budget = RequestMemory::new(1 << 30);
        let mut input = Input::new(budget.grant());
        input.prepare(1, 64 << 20, 0).unwrap();
        // Room left: no growth.
        input.buf.resize(INPUT_BASE - 100, b'a');
        input.prepare(INPUT_BASE - 99, 64 << 20, 0).unwrap();
        assert_eq!(input.buf.capacity(), INPUT_BASE);
        // Full: doubled.
        input.buf.resize(INPUT_BASE, b'a');
        input.prepare(INPUT_BASE + 1, 64 << 20, 0).unwrap();
        assert_eq!(input.buf.capacity(), 2 * INPUT_BASE);
        // Never past the request limit (plus room for one read).
        input.buf.resize(2 * INPUT_BASE, b'a');
        input.prepare(2 * INPUT_BASE + 1, 40_000, 0).unwrap();
        assert_eq!(input.buf.capacity(), 40_000 + MIN_READ);
        // A known size that is all but there: no growth for its last byte.
        let mut sized = Input::new(budget.grant());
        sized.prepare(100_000, 64 << 20, 0).unwrap();
        sized.buf.resize(99_999, b'a');
        sized.prepare(100_000, 64 << 20, 0).unwrap();
        assert_eq!(sized.buf.capacity(), 100_000);
    }
}
