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
use crate::task::{JoinHandle, TaskMeta};

/// A single-threaded io_uring executor.
///
/// `block_on` runs a future to completion on the calling thread and drives every task
/// spawned meanwhile. Tasks are `!Send` futures; wakers are `Send` and may be woken from any
/// thread. Dropping the runtime drops every unfinished task and waits for the kernel to
/// finish with every operation still in flight.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let rt = faultless_runtime::Runtime::new()?;
/// let counter = Rc::new(Cell::new(0)); // tasks share state without locks: one thread
/// let total = rt.block_on(async {
///     let tasks: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = counter.clone();
///             faultless_runtime::spawn(async move {
///                 faultless_runtime::yield_now().await;
///                 counter.set(counter.get() + 1);
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.expect("no task panicked");
///     }
///     counter.get()
/// });
/// assert_eq!(total, 10);
/// assert_eq!(rt.stats().tasks_spawned, 10);
/// # Ok::<(), std::io::Error>(())
/// ```
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

    pub(crate) fn spawn_with<F>(&self, future: F, meta: TaskMeta) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.executor.spawn_with(future, meta)
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
/// ```
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     let handle = faultless_runtime::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
///     // Dropping (or `detach`ing) a handle lets the task run on by itself.
///     faultless_runtime::spawn(async {}).detach();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
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
