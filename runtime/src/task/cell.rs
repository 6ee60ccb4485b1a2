//! [`TaskCell`]: one allocation per spawned future, holding its header, the future or its
//! output, and the waker of whoever awaits its join handle.
//!
//! The cell's [`Stage`] is the task's state machine:
//!
//! ```text
//!   Running(F) ──poll: Ready(out) / poll panicked / aborted / runtime shut down──▶ Finished(result)
//!       │                                                                            │
//!       │ (same, with the join handle already dropped)          JoinHandle takes it, │
//!       ▼                                                         or is dropped      ▼
//!   Consumed ◀──────────────────────────────────────────────────────────────── Consumed
//! ```
//!
//! Leaving `Running` drops the future in place (it is pinned), catching a panic of its
//! destructor, and then writes the next stage, so the result is never lost to an unwinding
//! destructor.
//!
//! Only the [`Header`] is touched by other threads (through wakers). Everything else, and in
//! particular the future and the output (which need not be `Send`), is touched on the thread
//! that spawned the task, which is the executor's. The executor and the join handle consume
//! the stage on that thread before they let go of the cell; a waker on another thread can
//! still end up holding the last reference (a join handle passed to `mem::forget` with the
//! output in it, say). So the cell records the thread that owns it and, dropped anywhere
//! else, leaks the output instead of dropping it there: the check async-task's `Checked`
//! wrapper makes, with a leak rather than a panic, because the foreign thread is usually a
//! helper thread that did nothing wrong.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;

use futures::task::{waker_ref, ArcWake};

use super::error::JoinError;
use super::id::{CurrentGuard, Id, TaskMeta};
use super::join::JoinTarget;
use super::waker::Header;
use super::Runnable;
use crate::executor::Shared;

/// Where a task is in its life; see the module docs.
enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// A spawned future together with its bookkeeping. Always lives inside an `Arc`.
pub(crate) struct TaskCell<F: Future> {
    header: Header,
    /// Id, name, internal or not; read on the owner thread only.
    meta: TaskMeta,
    /// The thread that spawned the task: the only one that may touch `stage`.
    owner: ThreadId,
    stage: RefCell<Stage<F>>,
    join_waker: Cell<Option<Waker>>,
    aborted: Cell<bool>,
    join_dropped: Cell<bool>,
}

// SAFETY: other threads reach a TaskCell only through its waker (`ArcWake`), which touches
// nothing but `header` (atomics and an `Arc<Shared>`, all `Send + Sync`). `stage`,
// `join_waker`, `aborted` and `join_dropped` are reached only through the executor's slab and
// the `JoinHandle`, both `!Send`, so only on the owner thread. When the last reference is
// released on another thread, `Drop` does not touch the future or the output there: it
// leaks them (see the module docs).
unsafe impl<F: Future> Send for TaskCell<F> {}
// SAFETY: as above.
unsafe impl<F: Future> Sync for TaskCell<F> {}

impl<F: Future + 'static> ArcWake for TaskCell<F> {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.header.wake();
    }
}

thread_local! {
    /// This thread's id, once it has spawned a task (a `const` thread-local with no
    /// destructor: readable at any time, also while the thread's locals are torn down).
    static THREAD_ID: Cell<Option<ThreadId>> = const { Cell::new(None) };
}

/// The calling thread's id, cached for `on_thread`. An executor takes it once, when it is
/// built, for every task it spawns (a runtime never leaves the thread that built it).
pub(crate) fn current_thread_id() -> ThreadId {
    THREAD_ID.with(|cached| match cached.get() {
        Some(id) => id,
        None => {
            let id = std::thread::current().id();
            cached.set(Some(id));
            id
        }
    })
}

/// True if the calling thread is `owner`. The owner cached its id when it spawned the task,
/// so a thread that never cached one is not the owner.
#[inline]
fn on_thread(owner: ThreadId) -> bool {
    THREAD_ID.with(|cached| cached.get() == Some(owner))
}

impl<F: Future + 'static> TaskCell<F> {
    /// A cell for `future`, spawned on the thread `owner` (which has called
    /// [`current_thread_id`]).
    pub(crate) fn new(
        future: F,
        key: usize,
        shared: Arc<Shared>,
        owner: ThreadId,
        meta: TaskMeta,
    ) -> Arc<TaskCell<F>> {
        crate::log::trace!(
            task.id = meta.id.as_u64(),
            task.name = meta.name.as_deref(),
            internal = meta.internal,
            "spawn"
        );
        Arc::new(TaskCell {
            header: Header::new(key, shared),
            meta,
            owner,
            stage: RefCell::new(Stage::Running(future)),
            join_waker: Cell::new(None),
            aborted: Cell::new(false),
            join_dropped: Cell::new(false),
        })
    }

    /// Leaves `Running`: drops the future in place, stores the task's result (or drops it at
    /// once if nobody will read it), and wakes the joiner.
    fn finish(&self, stage: &mut Stage<F>, result: Result<F::Output, JoinError>) {
        debug_assert!(matches!(stage, Stage::Running(_)));
        #[cfg(feature = "tracing")]
        if let Err(e) = &result {
            tracing::debug!(task.id = self.meta.id.as_u64(), "task ended: {e}");
        }
        let slot: *mut Stage<F> = stage;
        // The future is pinned, so it is dropped where it is, never moved out. A panic in its
        // destructor is caught and ignored (as tokio does): the task's result stands. Drop glue
        // still drops the remaining fields while unwinding, so the value is gone either way.
        // SAFETY: `slot` points at the live `Running` stage, which is not used again before
        // the write below.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            std::ptr::drop_in_place(slot)
        }));
        // SAFETY: the old stage was dropped above, so overwriting it without dropping it is
        // right; `slot` is valid for writes (it came from `&mut`).
        unsafe { std::ptr::write(slot, Stage::Finished(result)) };
        if self.join_dropped.get() {
            // Nobody will read the result: drop it now, on this thread. The stage is valid
            // (`Consumed`) before the output's destructor runs, so a panic there leaves it so.
            let result = std::mem::replace(stage, Stage::Consumed);
            let _ = catch_unwind(AssertUnwindSafe(move || drop(result)));
        }
        self.header.finished.store(true, Ordering::Release);
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }
}

impl<F: Future> Drop for TaskCell<F> {
    fn drop(&mut self) {
        if on_thread(self.owner) {
            return; // the fields drop normally
        }
        match self.stage.get_mut() {
            Stage::Consumed => {}
            Stage::Finished(_) => {
                // The output may be `!Send`: it must not be dropped on this thread. It is not
                // pinned, so moving it out and leaking it is fine.
                std::mem::forget(std::mem::replace(self.stage.get_mut(), Stage::Consumed));
            }
            Stage::Running(_) => {
                // Cannot happen: a task leaves `Running` on its thread before the executor
                // releases it (`run`, `shutdown`). The future may be `!Send` and is pinned, so
                // neither dropping it here nor freeing its memory is allowed.
                crate::log::error!("a running task was released on a foreign thread; aborting");
                std::process::abort();
            }
        }
    }
}

impl<F: Future + 'static> Runnable for TaskCell<F> {
    fn run(&self) -> bool {
        let mut stage = self.stage.borrow_mut();
        if self.aborted.get() {
            if matches!(*stage, Stage::Running(_)) {
                self.finish(&mut stage, Err(JoinError::cancelled(self.meta.id)));
            }
            return true;
        }
        let Stage::Running(future) = &mut *stage else {
            return true;
        };
        // SAFETY: the future lives inside this Arc'd cell and is never moved out of it: it is
        // only dropped in place (`finish`), or leaked with its allocation, so it is pinned.
        let future = unsafe { Pin::new_unchecked(future) };
        // SAFETY: every TaskCell is created by `TaskCell::new` inside an Arc and `run` is only
        // called through that Arc, so `self` points into a live Arc allocation. ManuallyDrop
        // keeps us from releasing a reference we do not own.
        let this = ManuallyDrop::new(unsafe { Arc::from_raw(self as *const Self) });
        let waker = waker_ref(&this);
        let mut cx = Context::from_waker(&waker);
        let _current = CurrentGuard::enter(&self.meta);
        #[cfg(feature = "tracing")]
        let _span = tracing::trace_span!(
            "poll",
            task.id = self.meta.id.as_u64(),
            task.name = self.meta.name.as_deref(),
            internal = self.meta.internal
        )
        .entered();
        match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(output)) => {
                self.finish(&mut stage, Ok(output));
                true
            }
            Err(payload) => {
                self.finish(&mut stage, Err(JoinError::panicked(self.meta.id, payload)));
                true
            }
        }
    }

    fn header(&self) -> &Header {
        &self.header
    }

    fn meta(&self) -> &TaskMeta {
        &self.meta
    }

    fn shutdown(&self) {
        match self.stage.try_borrow_mut() {
            Ok(mut stage) => {
                if matches!(*stage, Stage::Running(_)) {
                    self.finish(&mut stage, Err(JoinError::cancelled(self.meta.id)));
                }
            }
            Err(_) => {
                // The task is being polled (a runtime cannot be dropped inside its own
                // `block_on`, so this does not happen): its future cannot be dropped now, and
                // it must never be freed while pinned, so keep the cell alive for good.
                // SAFETY: as in `run`, `self` is inside a live Arc allocation.
                let this = ManuallyDrop::new(unsafe { Arc::from_raw(self as *const Self) });
                std::mem::forget(Arc::clone(&this));
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
            Stage::Consumed => Poll::Ready(Err(JoinError::cancelled(self.meta.id))),
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

    fn id(&self) -> Id {
        self.meta.id
    }

    fn name(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }

    fn detach(&self) {
        self.join_dropped.set(true);
        self.join_waker.take();
        let Ok(mut stage) = self.stage.try_borrow_mut() else {
            return;
        };
        if matches!(*stage, Stage::Finished(_)) {
            // Moved out first, so the stage is valid before the output's destructor runs.
            let result = std::mem::replace(&mut *stage, Stage::Consumed);
            drop(stage);
            drop(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    /// A finished task whose output nobody consumed, released last by a waker on another
    /// thread: the `!Send` output must not be dropped there.
    #[test]
    fn output_is_never_dropped_on_a_foreign_thread() {
        let shared = Arc::new(Shared::new().unwrap());
        let output = Rc::new(());
        let out = output.clone();
        let cell = TaskCell::new(
            async move { out },
            0,
            shared,
            current_thread_id(),
            TaskMeta::user(None),
        );
        assert!(cell.run(), "the future is ready at its first poll");
        assert_eq!(Rc::strong_count(&output), 2, "the output sits in the cell");
        let waker = futures::task::waker(cell);
        std::thread::spawn(move || drop(waker)).join().unwrap();
        assert_eq!(
            Rc::strong_count(&output),
            2,
            "the output was leaked, not dropped (racing on its count) on the other thread"
        );
    }

    /// The same cell released on its own thread drops the output.
    #[test]
    fn output_is_dropped_on_the_owner_thread() {
        let shared = Arc::new(Shared::new().unwrap());
        let output = Rc::new(());
        let out = output.clone();
        let cell = TaskCell::new(
            async move { out },
            0,
            shared,
            current_thread_id(),
            TaskMeta::user(None),
        );
        assert!(cell.run());
        drop(futures::task::waker(cell));
        assert_eq!(Rc::strong_count(&output), 1);
    }
}
