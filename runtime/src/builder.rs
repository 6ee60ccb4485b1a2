//! [`Builder`]: the settings of a runtime (ring size and setup, poll budgets, blocking pool).

use std::io;

use crate::driver::RingMode;
use crate::executor::Executor;
use crate::runtime::Runtime;

/// Configures and builds a [`Runtime`].
#[derive(Clone, Debug)]
pub struct Builder {
    pub(crate) ring_entries: u32,
    pub(crate) ring_mode: RingMode,
    pub(crate) budget: usize,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_keep_alive: std::time::Duration,
    pub(crate) background_budget: usize,
}

impl Default for Builder {
    fn default() -> Self {
        let ring_mode = match std::env::var("FAULTLESS_RING_MODE").as_deref() {
            Ok("defer") => RingMode::DeferTaskrun,
            Ok("coop") => RingMode::CoopTaskrun,
            Ok("plain") => RingMode::Plain,
            _ => RingMode::Auto,
        };
        Builder {
            ring_entries: 256,
            ring_mode,
            budget: 128,
            max_blocking_threads: 64,
            blocking_keep_alive: std::time::Duration::from_secs(10),
            background_budget: 16,
        }
    }
}

impl Builder {
    /// A builder with the defaults: 256 submission entries, `RingMode::Auto` (or the mode
    /// named by the environment variable `FAULTLESS_RING_MODE`: `defer`, `coop` or `plain`,
    /// for experiments), poll budget 128, background budget 16.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Size of the submission queue (the completion queue is four times larger). More
    /// operations than this may be in flight; a full queue is flushed, not an error.
    pub fn ring_entries(&mut self, entries: u32) -> &mut Builder {
        self.ring_entries = entries.clamp(2, 32768).next_power_of_two();
        self
    }

    /// How to set the ring up; see [`RingMode`].
    pub fn ring_mode(&mut self, mode: RingMode) -> &mut Builder {
        self.ring_mode = mode;
        self
    }

    /// How many task polls one executor turn may run before it processes I/O completions and
    /// timers again. Lower values give I/O lower latency under load; higher values batch more.
    pub fn poll_budget(&mut self, budget: usize) -> &mut Builder {
        self.budget = budget.max(1);
        self
    }

    /// The most threads the blocking pool ([`spawn_blocking`](crate::spawn_blocking)) may
    /// run at once (default 64, at least 1); further jobs wait in its queue.
    pub fn max_blocking_threads(&mut self, threads: usize) -> &mut Builder {
        self.max_blocking_threads = threads.max(1);
        self
    }

    /// How long an idle blocking-pool thread waits for a job before it exits (default 10 s).
    pub fn blocking_keep_alive(&mut self, keep_alive: std::time::Duration) -> &mut Builder {
        self.blocking_keep_alive = keep_alive;
        self
    }

    /// How many tasks woken by background work (page-access completions) one turn may poll,
    /// after the tasks woken by anything else (sockets, timers, other threads). A flood of
    /// cold-page completions is spread over turns this way, and a request arriving meanwhile
    /// waits behind at most this many of them. Default 16.
    pub fn background_budget(&mut self, budget: usize) -> &mut Builder {
        self.background_budget = budget.max(1);
        self
    }

    /// Creates the runtime: an io_uring instance and an eventfd for cross-thread wakes.
    pub fn build(&self) -> io::Result<Runtime> {
        Ok(Runtime::from_executor(Executor::new(self)?))
    }
}
