//! A per-connection budget of CPU work between yields to the event loop.
//!
//! The runtime is single-threaded and cooperative: a task that never awaits anything pending
//! keeps the thread. A hot `GET` never waits, so a request that does a lot of work (a pipeline
//! of many thousands of commands, `MGET` of a million keys, `SCAN` with a huge `COUNT` or an
//! expensive `MATCH`) would hold every other client up for its whole duration. So long
//! operations [`spend`](Work::spend) units of work as they go, and when a connection has spent
//! [`SLICE`] units since it last waited, it yields until the event loop has completed a turn
//! (processed I/O and timers), then goes on. A unit is roughly a microsecond of work: one
//! command, one key read or written, about a thousand glob steps.

use std::cell::Cell;

/// Units of work a connection may do between yields (about a millisecond).
pub(crate) const SLICE: u64 = 1000;

/// Glob steps per unit of work.
pub(crate) const GLOB_STEPS_PER_UNIT: u64 = 1000;

/// A connection's work budget; see the module docs.
pub(crate) struct Work<'s> {
    left: u64,
    /// Shared count of yields, for INFO.
    yields: &'s Cell<u64>,
}

impl<'s> Work<'s> {
    /// A full budget; each yield is counted in `yields`.
    pub(crate) fn new(yields: &'s Cell<u64>) -> Work<'s> {
        Work {
            left: SLICE,
            yields,
        }
    }

    /// Accounts for `units` of work; once the slice is spent, lets the event loop run a turn
    /// first.
    pub(crate) async fn spend(&mut self, units: u64) {
        if units < self.left {
            self.left -= units;
            return;
        }
        self.yields.set(self.yields.get() + 1);
        yield_turn().await;
        self.left = SLICE;
    }

    /// A fresh slice: the connection just waited for I/O, so others have run.
    pub(crate) fn refill(&mut self) {
        self.left = SLICE;
    }
}

/// Yields until the event loop has finished a turn: other ready tasks have run, and I/O
/// completions and timers have been processed (a plain yield may be polled again within the
/// same turn, before any I/O is looked at).
async fn yield_turn() {
    let start = faultless_runtime::current_turn();
    loop {
        faultless_runtime::yield_now().await;
        if faultless_runtime::current_turn() != start {
            return;
        }
    }
}
