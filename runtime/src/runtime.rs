//! The public face of the executor: [`Runtime`], its [`Builder`], and the free functions
//! that reach the runtime running on the current thread.

use std::fmt;
use std::future::Future;
use std::io;
use std::rc::Rc;

use crate::core::{current, try_with_current, Core};
pub use crate::driver::RingMode;
use crate::task::JoinHandle;

/// Configures and builds a [`Runtime`].
#[derive(Clone, Debug)]
pub struct Builder {
    pub(crate) ring_entries: u32,
    pub(crate) ring_mode: RingMode,
    pub(crate) budget: usize,
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
        }
    }
}

impl Builder {
    /// A builder with the defaults: 256 submission entries, `RingMode::Auto` (or the mode
    /// named by the environment variable `FAULTLESS_RING_MODE`: `defer`, `coop` or `plain`,
    /// for experiments), budget 128.
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

    /// Creates the runtime: an io_uring instance and an eventfd for cross-thread wakes.
    pub fn build(&self) -> io::Result<Runtime> {
        Ok(Runtime {
            core: Core::new(self)?,
        })
    }
}

/// A single-threaded io_uring executor.
///
/// `block_on` runs a future to completion on the calling thread and drives every task
/// spawned meanwhile. Tasks are `!Send` futures; wakers are `Send` and may be woken from any
/// thread. Dropping the runtime drops every unfinished task and waits for the kernel to
/// finish with every operation still in flight.
pub struct Runtime {
    core: Rc<Core>,
}

impl Runtime {
    /// A runtime with the default settings.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder to configure a runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `future` to completion, running spawned tasks, I/O and timers meanwhile. Tasks
    /// still unfinished when it returns stay in the runtime and continue on the next
    /// `block_on`.
    ///
    /// # Panics
    /// If called from inside a runtime on this thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.core.block_on(future)
    }

    /// Spawns a task on this runtime; it starts running at the next `block_on`.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.core.spawn(future)
    }

    /// Counters describing what the runtime has done so far.
    pub fn stats(&self) -> RuntimeStats {
        self.core.stats()
    }

    /// Registers `hook` to run at the end of every executor turn (the quiescent point: no
    /// task is being polled, so no task holds a borrowed reference across it).
    pub fn on_turn_end(&self, hook: impl FnMut() + 'static) {
        self.core.add_turn_hook(Box::new(hook));
    }

    /// The ring setup the runtime ended up with.
    pub fn ring_mode(&self) -> RingMode {
        self.core.driver.borrow().mode
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("ring_mode", &self.ring_mode())
            .field("live_tasks", &self.core.live_tasks())
            .finish()
    }
}

/// What a runtime has done, as counters since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Executor turns completed; each end of turn is a quiescent point.
    pub turns: u64,
    /// Task polls, including the `block_on` future.
    pub polls: u64,
    /// Tasks spawned.
    pub tasks_spawned: u64,
    /// Tasks not yet finished.
    pub tasks_alive: usize,
    /// Times the executor parked in `io_uring_enter` with nothing to run.
    pub parks: u64,
    /// io_uring operations submitted (excluding the runtime's own eventfd reads and cancels).
    pub ops_submitted: u64,
    /// Completions reaped for those operations.
    pub ops_completed: u64,
    /// Operations cancelled because their future was dropped while in flight.
    pub ops_cancelled: u64,
    /// Operations whose completion has not been reaped yet.
    pub ops_in_flight: usize,
    /// `io_uring_enter` calls.
    pub submit_calls: u64,
    /// Wakes that came from other threads.
    pub remote_wakes: u64,
    /// eventfd writes made to wake a parked executor.
    pub eventfd_signals: u64,
    /// Timers registered and not yet fired or dropped.
    pub timers_pending: usize,
    /// Fds that operations created (an open, an accept) after their futures were dropped,
    /// closed by the runtime since nobody was left to own them.
    pub orphan_fds_closed: u64,
}

/// Spawns a task on the runtime running on this thread.
///
/// # Panics
/// If no faultless runtime is running on this thread.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    current().spawn(future)
}

/// The stats of the runtime running on this thread, if any.
pub fn stats() -> Option<RuntimeStats> {
    try_with_current(|c| c.stats())
}

/// The number of turns the runtime running on this thread has completed (its quiescent-point
/// epoch), if any runtime is running.
pub fn current_turn() -> Option<u64> {
    try_with_current(|c| c.counters.turns.get())
}

/// Registers a hook on the runtime running on this thread; see [`Runtime::on_turn_end`].
///
/// # Panics
/// If no faultless runtime is running on this thread.
pub fn on_turn_end(hook: impl FnMut() + 'static) {
    current().add_turn_hook(Box::new(hook));
}
