//! Tasks: one allocation per spawned future, holding its header, the future or its output,
//! and the waker of whoever awaits its [`JoinHandle`].
//!
//! A task lives in an `Arc<TaskCell<F>>`. The executor's slab holds one reference, the
//! `JoinHandle` another, and every clone of the task's waker one more. Wakers are
//! `Send + Sync` and may outlive the runtime, but they only ever touch the [`Header`]
//! (atomics and an `Arc<Shared>`). The future and its output are `!Send` and are touched only
//! on the executor's thread; they are always dropped there, by the executor when the task
//! finishes or is aborted, by the `JoinHandle` when it takes or discards the output, or by the
//! runtime when it shuts down. So when the last reference is a waker on a foreign thread, the
//! cell it frees holds no future and no output. That invariant is what makes the
//! `unsafe impl Send/Sync` below sound.

mod cell;
mod error;
mod join;
mod waker;
mod yield_now;

pub(crate) use cell::TaskCell;
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
