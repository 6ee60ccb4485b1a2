//! [`TaskCell`]: one allocation per spawned future, holding its header, the future or its
//! output, and the waker of whoever awaits its join handle.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::task::{waker_ref, ArcWake};

use super::error::JoinError;
use super::join::JoinTarget;
use super::waker::Header;
use super::Runnable;
use crate::executor::Shared;

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// A spawned future together with its bookkeeping. Always lives inside an `Arc`.
pub(crate) struct TaskCell<F: Future> {
    header: Header,
    stage: RefCell<Stage<F>>,
    join_waker: Cell<Option<Waker>>,
    aborted: Cell<bool>,
    join_dropped: Cell<bool>,
}

// SAFETY: see the module docs. Other threads reach a TaskCell only through its waker, which
// touches nothing but `header`; `stage`, `join_waker`, `aborted` and `join_dropped` are only
// accessed on the executor thread, and the future/output are dropped there before the
// executor and the JoinHandle release their references.
unsafe impl<F: Future> Send for TaskCell<F> {}
// SAFETY: as above.
unsafe impl<F: Future> Sync for TaskCell<F> {}

impl<F: Future + 'static> ArcWake for TaskCell<F> {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.header.wake();
    }
}

impl<F: Future + 'static> TaskCell<F> {
    pub(crate) fn new(future: F, key: usize, shared: Arc<Shared>) -> Arc<TaskCell<F>> {
        Arc::new(TaskCell {
            header: Header::new(key, shared),
            stage: RefCell::new(Stage::Running(future)),
            join_waker: Cell::new(None),
            aborted: Cell::new(false),
            join_dropped: Cell::new(false),
        })
    }

    /// Stores the task's result, drops it at once if nobody will read it, and wakes the joiner.
    fn finish(&self, stage: &mut Stage<F>, result: Result<F::Output, JoinError>) {
        // Assigning drops the old stage (the future) in place; it is never moved.
        let dropped = catch_unwind(AssertUnwindSafe(|| {
            *stage = if self.join_dropped.get() {
                Stage::Consumed
            } else {
                Stage::Finished(result)
            };
        }));
        if dropped.is_err() {
            // The future's destructor panicked; the stage slot was left unchanged by the
            // unwinding assignment, so make sure it no longer claims to be running.
            std::mem::forget(std::mem::replace(stage, Stage::Consumed));
        }
        self.header.finished.store(true, Ordering::Release);
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }
}

impl<F: Future + 'static> Runnable for TaskCell<F> {
    fn run(&self) -> bool {
        let mut stage = self.stage.borrow_mut();
        if self.aborted.get() {
            if matches!(*stage, Stage::Running(_)) {
                self.finish(&mut stage, Err(JoinError::Cancelled));
            }
            return true;
        }
        let Stage::Running(future) = &mut *stage else {
            return true;
        };
        // SAFETY: the future lives inside this Arc'd cell and is never moved out of it: it is
        // only dropped in place (by assigning a new stage), so it is pinned.
        let future = unsafe { Pin::new_unchecked(future) };
        // SAFETY: every TaskCell is created by `TaskCell::new` inside an Arc and `run` is only
        // called through that Arc, so `self` points into a live Arc allocation. ManuallyDrop
        // keeps us from releasing a reference we do not own.
        let this = ManuallyDrop::new(unsafe { Arc::from_raw(self as *const Self) });
        let waker = waker_ref(&this);
        let mut cx = Context::from_waker(&waker);
        match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(output)) => {
                self.finish(&mut stage, Ok(output));
                true
            }
            Err(payload) => {
                self.finish(&mut stage, Err(JoinError::Panicked(payload)));
                true
            }
        }
    }

    fn header(&self) -> &Header {
        &self.header
    }

    fn shutdown(&self) {
        // A task cannot be running while the runtime shuts down, so the borrow succeeds.
        if let Ok(mut stage) = self.stage.try_borrow_mut() {
            if matches!(*stage, Stage::Running(_)) {
                self.finish(&mut stage, Err(JoinError::Cancelled));
            }
        }
        self.header.finished.store(true, Ordering::Release);
    }
}

impl<F: Future + 'static> JoinTarget<F::Output> for TaskCell<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        let Ok(mut stage) = self.stage.try_borrow_mut() else {
            // The task is awaiting its own handle: it can never finish. Stay pending.
            return Poll::Pending;
        };
        match &*stage {
            Stage::Running(_) => {
                let replace = match self.join_waker.take() {
                    Some(w) if w.will_wake(cx.waker()) => Some(w),
                    _ => Some(cx.waker().clone()),
                };
                self.join_waker.set(replace);
                Poll::Pending
            }
            Stage::Finished(_) => match std::mem::replace(&mut *stage, Stage::Consumed) {
                Stage::Finished(result) => Poll::Ready(result),
                _ => unreachable!("stage was just matched as Finished"),
            },
            Stage::Consumed => Poll::Ready(Err(JoinError::Cancelled)),
        }
    }

    fn abort(&self) {
        if self.header.finished.load(Ordering::Acquire) {
            return;
        }
        self.aborted.set(true);
        self.header.wake();
    }

    fn is_finished(&self) -> bool {
        self.header.finished.load(Ordering::Acquire)
    }

    fn detach(&self) {
        self.join_dropped.set(true);
        self.join_waker.take();
        if let Ok(mut stage) = self.stage.try_borrow_mut() {
            if matches!(*stage, Stage::Finished(_)) {
                *stage = Stage::Consumed;
            }
        }
    }
}
