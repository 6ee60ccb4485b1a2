//! Tasks: one allocation per spawned future, holding its header, the future or its output,
//! and the waker of whoever awaits its [`JoinHandle`].
//!
//! * `cell.rs`: `TaskCell`, the allocation, and the task's state machine
//!   (`Running` → `Finished` → `Consumed`);
//! * `waker.rs`: `Header`, the only part wakers touch, from any thread;
//! * `join.rs`, `error.rs`: [`JoinHandle`] and [`JoinError`];
//! * `yield_now.rs`: [`yield_now`];
//! * `id.rs`: task [`Id`]s and the thread's current task; `builder.rs`: named tasks;
//! * `join_set.rs`: [`JoinSet`].
//!
//! Tasks the runtime spawns for itself (page prefetches, the signal reader) go through
//! `spawn_internal`: the stats count them apart from the user's
//! (`RuntimeStats::internal_tasks_spawned`), so `tasks_spawned` and `tasks_alive` are the
//! program's own.
//!
//! A task lives in an `Arc<TaskCell<F>>`. The executor's slab holds one reference, the
//! `JoinHandle` another, and every clone of the task's waker one more. Wakers are
//! `Send + Sync` and may outlive the runtime, but they only ever touch the header (atomics and
//! an `Arc<Shared>`). The future and its output need not be `Send`: they are touched and
//! dropped only on the thread that spawned the task, by the executor when the task finishes
//! or is aborted, by the `JoinHandle` when it takes or discards the output, or by the runtime
//! when it shuts down. The cell checks this when it is freed: on any other thread it leaks
//! what it still holds rather than drop it there.

mod builder;
mod cell;
mod error;
mod id;
mod join;
mod join_set;
mod waker;
mod yield_now;

use std::future::Future;

pub use builder::Builder;
pub(crate) use cell::{current_thread_id, TaskCell};
pub use error::JoinError;
pub(crate) use id::TaskMeta;
pub use id::{id, try_id, try_name, Id};
pub use join::JoinHandle;
pub(crate) use join::JoinTarget;
pub use join_set::JoinSet;
pub(crate) use waker::Header;
pub use yield_now::{yield_now, YieldNow};

/// What the executor needs from a task, independent of its future's type.
pub(crate) trait Runnable {
    /// Polls the task once. Returns true when the task is finished and can leave the slab.
    fn run(&self) -> bool;
    /// The task's header.
    fn header(&self) -> &Header;
    /// The task's id, name, and whether it is internal.
    fn meta(&self) -> &TaskMeta;
    /// Drops the future (runtime shutdown). The JoinHandle, if any, sees `Cancelled`.
    fn shutdown(&self);
}

/// Spawns a task the runtime needs for itself (counted apart from the user's tasks).
///
/// # Panics
/// Outside a runtime.
pub(crate) fn spawn_internal<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    crate::executor::current().spawn_with(future, TaskMeta::internal())
}
