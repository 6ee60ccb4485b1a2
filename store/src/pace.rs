//! [`Pace`]: yields a long background job (a checkpoint) to the other tasks by the clock.
//!
//! The store's thread is the runtime's one thread: a checkpoint that merges, serialises or
//! frees for 20 ms without yielding holds every client for those 20 ms (the server's SET
//! p99). Counting items between yields does not bound that: an item's cost varies a
//! hundredfold (a leaf with one change or a hundred, a key of 10 bytes or 500, an
//! allocator that chooses that moment to consolidate). So long loops call
//! [`Pace::step`] per item, which yields once [`SLICE`] has passed since the last yield.

use std::time::{Duration, Instant};

/// The longest a background job runs between two yields.
pub(crate) const SLICE: Duration = Duration::from_micros(500);

/// A clock for yielding; see the module docs.
pub(crate) struct Pace {
    since: Instant,
}

impl Pace {
    /// Starts the clock now.
    pub(crate) fn new() -> Pace {
        Pace {
            since: Instant::now(),
        }
    }

    /// Yields to the other tasks if [`SLICE`] has passed since the last yield.
    pub(crate) async fn step(&mut self) {
        if self.since.elapsed() >= SLICE {
            faultless_runtime::yield_now().await;
            self.since = Instant::now();
        }
    }
}
