//! Counters the server keeps about itself, shown by INFO.

use std::cell::Cell;

/// The server's own counters (the store and the runtime keep theirs).
#[derive(Default)]
pub(crate) struct Stats {
    /// Connections being served.
    pub(crate) connected: Cell<u64>,
    /// Connections accepted since start.
    pub(crate) accepted: Cell<u64>,
    /// Connections turned away with the max-clients error.
    pub(crate) rejected_connections: Cell<u64>,
    /// Connections closed for being idle longer than `--timeout`.
    pub(crate) idle_timeouts: Cell<u64>,
    /// Times a connection yielded to the loop in the middle of its work (see `work`).
    pub(crate) work_yields: Cell<u64>,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}
