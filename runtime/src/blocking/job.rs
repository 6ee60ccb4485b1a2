//! One blocking job: the closure's result slot, shared by the worker thread that fills it
//! and the [`JoinHandle`](crate::JoinHandle) that reads it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::task::{Id, JoinError, JoinTarget};

/// Where a job is in its life.
enum Stage<R> {
    /// In the queue; `abort` can still cancel it.
    Queued,
    /// A worker is running it.
    Running,
    /// Its result, until the handle takes it.
    Done(Result<R, JoinError>),
    /// Taken, or discarded because the handle is gone.
    Consumed,
}

struct Slot<R> {
    stage: Stage<R>,
    waker: Option<Waker>,
    detached: bool,
}

/// A job's result slot. `Send + Sync` (for `R: Send`): the worker and the handle meet
/// under the mutex.
pub(super) struct JobCell<R> {
    id: Id,
    slot: Mutex<Slot<R>>,
    finished: AtomicBool,
}

impl<R: Send + 'static> JobCell<R> {
    pub(super) fn new() -> Arc<JobCell<R>> {
        Arc::new(JobCell {
            id: Id::next(),
            slot: Mutex::new(Slot {
                stage: Stage::Queued,
                waker: None,
                detached: false,
            }),
            finished: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<R>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the calling (worker) thread unless the job was cancelled, calls `ran`
    /// (before anyone can see the result), stores the result, and wakes the awaiting task.
    pub(super) fn run(&self, f: impl FnOnce() -> R, ran: impl FnOnce()) {
        {
            let mut slot = self.lock();
            if !matches!(slot.stage, Stage::Queued) {
                return; // aborted while queued
            }
            slot.stage = Stage::Running;
        }
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(|p| JoinError::panicked(self.id, p));
        ran();
        self.complete(result);
    }

    /// Stores `result` (dropping it here if nobody will read it) and wakes the joiner.
    pub(super) fn complete(&self, result: Result<R, JoinError>) {
        let (waker, discard) = {
            let mut slot = self.lock();
            if matches!(slot.stage, Stage::Done(_) | Stage::Consumed) {
                return;
            }
            if slot.detached {
                slot.stage = Stage::Consumed;
                (None, Some(result))
            } else {
                slot.stage = Stage::Done(result);
                (slot.waker.take(), None)
            }
        };
        self.finished.store(true, Ordering::Release);
        drop(discard); // outside the lock: R's destructor may take its time
        if let Some(w) = waker {
            w.wake(); // the remote-wake path: remote queue, eventfd if the executor sleeps
        }
    }
}

/// Owned by the queued job: if the job is dropped without running (the runtime shut down),
/// the handle learns that it was cancelled instead of waiting forever.
pub(super) struct CancelOnDrop<R: Send + 'static>(pub(super) Arc<JobCell<R>>);

impl<R: Send + 'static> Drop for CancelOnDrop<R> {
    fn drop(&mut self) {
        let id = self.0.id;
        self.0.complete(Err(JoinError::cancelled(id)));
    }
}

impl<R: Send + 'static> JoinTarget<R> for JobCell<R> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<R, JoinError>> {
        let mut slot = self.lock();
        match std::mem::replace(&mut slot.stage, Stage::Consumed) {
            Stage::Done(result) => Poll::Ready(result),
            Stage::Consumed => Poll::Ready(Err(JoinError::cancelled(self.id))),
            stage => {
                slot.stage = stage;
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    fn abort(&self) {
        // Under the lock, so a worker cannot start the job in between.
        let waker = {
            let mut slot = self.lock();
            if !matches!(slot.stage, Stage::Queued) {
                return; // running jobs cannot be interrupted; finished ones are done
            }
            slot.stage = if slot.detached {
                Stage::Consumed
            } else {
                Stage::Done(Err(JoinError::cancelled(self.id)))
            };
            slot.waker.take()
        };
        self.finished.store(true, Ordering::Release);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    fn detach(&self) {
        let result = {
            let mut slot = self.lock();
            slot.detached = true;
            slot.waker = None;
            match slot.stage {
                Stage::Done(_) => Some(std::mem::replace(&mut slot.stage, Stage::Consumed)),
                _ => None,
            }
        };
        drop(result);
    }

    fn id(&self) -> Id {
        self.id
    }

    fn name(&self) -> Option<&str> {
        None
    }
}
