//! [`Header`]: the part of a task that wakers touch, from any thread.
//!
//! A task's waker is built from its `Arc` and only ever reads or writes the header: two
//! atomic flags and the runtime's [`Shared`]. A wake sets `scheduled` (so a second wake of a
//! queued task is free) and hands the key to [`schedule`], which picks the local run queue on
//! the executor's thread and the remote queue anywhere else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::task::ArcWake;

use crate::executor::{schedule, Shared};

/// The part of a task that wakers on any thread may touch.
pub(crate) struct Header {
    /// The task's key in the executor's slab.
    pub(crate) key: usize,
    /// True while the task sits in a run queue; makes repeated wakes cheap.
    pub(crate) scheduled: AtomicBool,
    /// True once the future is gone; wakes after that are ignored.
    pub(crate) finished: AtomicBool,
    pub(crate) shared: Arc<Shared>,
}

impl Header {
    pub(crate) fn new(key: usize, shared: Arc<Shared>) -> Header {
        Header {
            key,
            scheduled: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            shared,
        }
    }

    /// Puts the task on a run queue unless it is already on one or has finished.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.finished.load(Ordering::Acquire) {
            return;
        }
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            schedule(&self.shared, self.key);
        }
    }
}

impl ArcWake for Header {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        Header::wake(arc_self);
    }
}
