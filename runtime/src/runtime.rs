//! The public face of the executor: [`Runtime`], and the free functions that reach the
//! runtime running on the current thread.

use std::fmt;
use std::future::Future;
use std::io;
use std::rc::Rc;

use crate::builder::Builder;
use crate::driver::RingMode;
use crate::executor::{current, try_with_current, Executor};
use crate::stats::RuntimeStats;
use crate::task::JoinHandle;

/// A single-threaded io_uring executor.
///
/// `block_on` runs a future to completion on the calling thread and drives every task
/// spawned meanwhile. Tasks are `!Send` futures; wakers are `Send` and may be woken from any
/// thread. Dropping the runtime drops every unfinished task and waits for the kernel to
/// finish with every operation still in flight.
pub struct Runtime {
    executor: Rc<Executor>,
}

impl Runtime {
    pub(crate) fn from_executor(executor: Rc<Executor>) -> Runtime {
        Runtime { executor }
    }

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
        self.executor.block_on(future)
    }

    /// Spawns a task on this runtime; it starts running at the next `block_on`.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.executor.spawn(future)
    }

    /// Counters describing what the runtime has done so far.
    pub fn stats(&self) -> RuntimeStats {
        self.executor.stats()
    }

    /// Registers `hook` to run at the end of every executor turn (the quiescent point: no
    /// task is being polled, so no task holds a borrowed reference across it).
    pub fn on_turn_end(&self, hook: impl FnMut() + 'static) {
        self.executor.add_turn_hook(Box::new(hook));
    }

    /// The ring setup the runtime ended up with.
    pub fn ring_mode(&self) -> RingMode {
        self.executor.driver.borrow().mode
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.executor.shutdown();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("ring_mode", &self.ring_mode())
            .field("live_tasks", &self.executor.live_tasks())
            .finish()
    }
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
