//! [`JoinHandle`]: the owned permission to await, detach or abort a task.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::cell::TaskCell;
use super::error::JoinError;
use super::id::Id;

/// The JoinHandle's view of a task.
pub(crate) trait JoinTarget<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(&self);
    fn is_finished(&self) -> bool;
    fn detach(&self);
    fn id(&self) -> Id;
    fn name(&self) -> Option<&str>;
}

/// An owned permission to await, detach or abort a spawned task.
///
/// Awaiting it yields the task's output, or a [`JoinError`] if the task was aborted or
/// panicked. Dropping it detaches the task, which keeps running. `JoinHandle` is `!Send`: the
/// task and its output belong to the runtime's thread.
///
/// ```
/// use std::time::Duration;
///
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     let forever = faultless_runtime::spawn(faultless_runtime::time::sleep(Duration::MAX));
///     forever.abort();
///     assert!(forever.await.unwrap_err().is_cancelled());
///
///     let failing = faultless_runtime::spawn(async { panic!("oops") });
///     let err = failing.await.unwrap_err(); // the panic stays in its task
///     assert!(err.is_panic());
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping a JoinHandle detaches the task; call .detach() to make that explicit"]
pub struct JoinHandle<T> {
    target: Option<Arc<dyn JoinTarget<T>>>,
    id: Id,
    _not_send: PhantomData<Rc<()>>,
}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn new<F: Future<Output = T> + 'static>(cell: Arc<TaskCell<F>>) -> JoinHandle<T> {
        JoinHandle::from_target(cell)
    }

    /// A handle on anything that produces a `T` (a task, a blocking job).
    pub(crate) fn from_target(target: Arc<dyn JoinTarget<T>>) -> JoinHandle<T> {
        let id = target.id();
        JoinHandle {
            target: Some(target),
            id,
            _not_send: PhantomData,
        }
    }
}

impl<T> JoinHandle<T> {
    /// Cancels the task: its future is dropped at the executor's next turn without being
    /// polled again, and awaiting this handle gives a cancelled [`JoinError`] (unless the task
    /// finished first). Aborting a finished task does nothing.
    pub fn abort(&self) {
        if let Some(t) = &self.target {
            t.abort();
        }
    }

    /// The task's id (also [`task::id`](crate::task::id) inside the task).
    pub fn id(&self) -> Id {
        self.id
    }

    /// The name the task was spawned with ([`task::Builder::name`](crate::task::Builder::name)).
    pub fn name(&self) -> Option<&str> {
        self.target.as_ref().and_then(|t| t.name())
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
            None => Poll::Ready(Err(JoinError::cancelled(self.id))),
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
            .field("id", &self.id)
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}
