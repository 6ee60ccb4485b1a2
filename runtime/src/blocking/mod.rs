//! The blocking pool: [`spawn_blocking`] runs a closure on a bounded pool of threads and
//! hands its result back to the awaiting task.
//!
//! This is the page helpers' `mlock_eventfd` idea generalised to any blocking call (a name
//! lookup, a directory listing, a library with no async API). A job's result travels back
//! through the task's waker: the worker stores it, then wakes the waker, which takes the
//! runtime's one cross-thread path (the remote queue, and an eventfd write only if the
//! executor is parked in `io_uring_enter` with a read armed on that eventfd). So a thousand
//! jobs finishing while the executor sleeps cost one eventfd write, and none while it runs.
//!
//! * `pool.rs`: the threads (started on demand up to `Builder::max_blocking_threads`, idle
//!   ones exit after `Builder::blocking_keep_alive`) and the job queue;
//! * `job.rs`: one job's result slot, which the task's [`JoinHandle`] reads.
//!
//! Dropping the runtime drops the queued jobs that have not started (their handles see a
//! cancelled [`JoinError`](crate::JoinError)); jobs already running finish on their threads,
//! which then exit. Nothing waits for them: a blocking call can take forever.

mod job;
mod pool;

use crate::task::JoinHandle;

pub(crate) use pool::BlockingPool;

/// Runs `f` on the runtime's blocking pool and returns a handle to await its result.
///
/// Use it for calls that block the thread: the executor thread must never wait, or every
/// task waits with it. The pool has at most `Builder::max_blocking_threads` threads (64 by
/// default); more jobs queue. Aborting the handle cancels a job that has not started; a
/// running job cannot be interrupted. A panic in `f` comes back as a panicked `JoinError`.
///
/// ```
/// let rt = faultless_runtime::Runtime::new()?;
/// let sum = rt.block_on(async {
///     let job = faultless_runtime::spawn_blocking(|| {
///         std::thread::sleep(std::time::Duration::from_millis(5)); // blocks a pool thread
///         (1..=100u64).sum::<u64>()
///     });
///     job.await.unwrap()
/// });
/// assert_eq!(sum, 5050);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
/// If no faultless runtime is running on this thread.
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    crate::executor::current().blocking.spawn(f)
}
