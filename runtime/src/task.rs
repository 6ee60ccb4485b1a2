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

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::task::{waker_ref, ArcWake};

use crate::core::schedule;
use crate::wake::Shared;

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

/// Why a task did not produce its output.
pub enum JoinError {
    /// The task was aborted, or the runtime shut down before it finished.
    Cancelled,
    /// The task panicked; the payload is the panic's.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// True if the task was aborted or dropped at shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
            JoinError::Panicked(_) => f.write_str("JoinError::Panicked(..)"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(non-string payload)");
                write!(f, "task panicked: {msg}")
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

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

/// What the executor needs from a task, independent of its future's type.
pub(crate) trait Runnable {
    /// Polls the task once. Returns true when the task is finished and can leave the slab.
    fn run(&self) -> bool;
    /// The task's header.
    fn header(&self) -> &Header;
    /// Drops the future (runtime shutdown). The JoinHandle, if any, sees `Cancelled`.
    fn shutdown(&self);
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

/// The JoinHandle's view of a task.
trait JoinTarget<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(&self);
    fn is_finished(&self) -> bool;
    fn detach(&self);
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

/// An owned permission to await, detach or abort a spawned task.
///
/// Awaiting it yields the task's output, or a [`JoinError`] if the task was aborted or
/// panicked. Dropping it detaches the task, which keeps running. `JoinHandle` is `!Send`: the
/// task and its output belong to the runtime's thread.
#[must_use = "dropping a JoinHandle detaches the task; call .detach() to make that explicit"]
pub struct JoinHandle<T> {
    target: Option<Arc<dyn JoinTarget<T>>>,
    _not_send: PhantomData<Rc<()>>,
}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn new<F: Future<Output = T> + 'static>(cell: Arc<TaskCell<F>>) -> JoinHandle<T> {
        JoinHandle {
            target: Some(cell),
            _not_send: PhantomData,
        }
    }
}

impl<T> JoinHandle<T> {
    /// Cancels the task: its future is dropped at the executor's next turn without being
    /// polled again, and awaiting this handle gives `JoinError::Cancelled` (unless the task
    /// finished first). Aborting a finished task does nothing.
    pub fn abort(&self) {
        if let Some(t) = &self.target {
            t.abort();
        }
    }

    /// True once the task has finished, been aborted, or the runtime shut it down.
    pub fn is_finished(&self) -> bool {
        self.target.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Lets the task run on with nobody awaiting it; its output is dropped when it finishes.
    pub fn detach(mut self) {
        if let Some(t) = self.target.take() {
            t.detach();
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &self.target {
            Some(t) => t.poll_join(cx),
            None => Poll::Ready(Err(JoinError::Cancelled)),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(t) = self.target.take() {
            t.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Yields once to the executor: the calling task goes to the back of the run queue, so every
/// other ready task runs (and, once the poll budget is spent, I/O and timers are processed)
/// before it continues.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Future returned by [`yield_now`].
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
