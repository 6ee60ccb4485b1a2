//! The server-wide budget for request buffers: Redis's `client-query-buffer-limit` per
//! connection (here `--max-request`) plus a total for all connections together
//! (`--max-request-memory`).
//!
//! Every connection reads into a buffer of 16 KiB (`connection::input::INPUT_BASE`) that
//! costs nothing from the budget, so small requests, and a fresh connection's `PING`, are
//! always served. A buffer grows past that only for a request that needs it, and only once the
//! connection holds a [`Grant`] for the growth: when the budget is spent, the request that
//! asked gets an error and its connection is closed, instead of the server's memory growing
//! with the number of clients sending large values slowly. A grant shrinks when the buffer
//! does, and is returned when the connection ends.

use std::cell::Cell;

/// The budget; one per server.
#[derive(Debug)]
pub(crate) struct RequestMemory {
    limit: usize,
    used: Cell<usize>,
    refused: Cell<u64>,
}

/// The budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted;

impl RequestMemory {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> RequestMemory {
        RequestMemory {
            limit,
            used: Cell::new(0),
            refused: Cell::new(0),
        }
    }

    /// An empty grant, for a new connection.
    pub(crate) fn grant(&self) -> Grant<'_> {
        Grant {
            budget: self,
            bytes: 0,
        }
    }

    /// Bytes granted now, to all connections.
    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }

    /// The limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Requests refused because the budget was spent.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.get()
    }
}

/// The part of the budget one connection holds; returned on drop.
#[derive(Debug)]
pub(crate) struct Grant<'b> {
    budget: &'b RequestMemory,
    bytes: usize,
}

impl Grant<'_> {
    /// Grows or shrinks the grant to `bytes`; growing fails (and changes nothing) if the
    /// budget cannot cover it.
    pub(crate) fn resize(&mut self, bytes: usize) -> Result<(), Exhausted> {
        let used = &self.budget.used;
        if bytes > self.bytes {
            let more = bytes - self.bytes;
            if used.get().saturating_add(more) > self.budget.limit {
                self.budget.refused.set(self.budget.refused.get() + 1);
                return Err(Exhausted);
            }
            used.set(used.get() + more);
        } else {
            used.set(used.get() - (self.bytes - bytes));
        }
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        let _ = self.resize(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_stay_within_the_limit_and_return_on_drop() {
        let budget = RequestMemory::new(100);
        let mut a = budget.grant();
        let mut b = budget.grant();
        assert_eq!(a.resize(60), Ok(()));
        assert_eq!(b.resize(50), Err(Exhausted));
        assert_eq!(budget.used(), 60);
        assert_eq!(b.resize(40), Ok(()));
        assert_eq!(a.resize(10), Ok(()));
        assert_eq!(b.resize(90), Ok(()));
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.refused(), 1);
    }
}
