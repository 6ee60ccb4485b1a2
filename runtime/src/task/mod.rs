//! Tasks: one allocation per spawned future, holding its header, the future or its output,
//! and the waker of whoever awaits its [`JoinHandle`].
//!
//! * `cell.rs`: [`TaskCell`], the allocation, and the task's state machine
//!   (`Running` → `Finished` → `Consumed`);
//! * `waker.rs`: [`Header`], the only part wakers touch, from any thread;
//! * `join.rs`, `error.rs`: [`JoinHandle`] and [`JoinError`];
//! * `yield_now.rs`: [`yield_now`].
//!
//! A task lives in an `Arc<TaskCell<F>>`. The executor's slab holds one reference, the
//! `JoinHandle` another, and every clone of the task's waker one more. Wakers are
//! `Send + Sync` and may outlive the runtime, but they only ever touch the header (atomics and
//! an `Arc<Shared>`). The future and its output need not be `Send`: they are touched and
//! dropped only on the thread that spawned the task, by the executor when the task finishes
//! or is aborted, by the `JoinHandle` when it takes or discards the output, or by the runtime
//! when it shuts down. The cell checks this when it is freed: on any other thread it leaks
//! what it still holds rather than drop it there.

mod cell;
mod error;
mod join;
mod waker;
mod yield_now;

pub(crate) use cell::{current_thread_id, TaskCell};
pub use error::JoinError;
pub use join::JoinHandle;
pub(crate) use waker::Header;
pub use yield_now::{yield_now, YieldNow};

/// What the executor needs from a task, independent of its future's type.
pub(crate) trait Runnable {
    /// Polls the task once. Returns true when the task is finished and can leave the slab.
    fn run(&self) -> bool;
    /// The task's header.
    fn header(&self) -> &Header;
    /// Drops the future (runtime shutdown). The JoinHandle, if any, sees `Cancelled`.
    fn shutdown(&self);
}
