//! [`JoinSet`]: a set of tasks awaited in the order they finish.
//!
//! The set is a `FuturesUnordered` of join handles: a task that finishes wakes only its own
//! entry, so `join_next` costs the same however many tasks the set holds. Dropping the set
//! aborts every task still in it (as tokio's `JoinSet` does); `detach_all` lets them run on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, Stream};

use super::id::Id;
use super::{JoinError, JoinHandle};

/// A set of spawned tasks, awaited in the order they finish.
///
/// ```
/// use faultless_runtime::task::JoinSet;
///
/// let rt = faultless_runtime::Runtime::new()?;
/// let total = rt.block_on(async {
///     let mut set = JoinSet::new();
///     for i in 1..=10u64 {
///         set.spawn(async move { i * i });
///     }
///     let mut total = 0;
///     while let Some(result) = set.join_next().await {
///         total += result.expect("no task panicked");
///     }
///     total
/// });
/// assert_eq!(total, 385);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinSet<T> {
    tasks: FuturesUnordered<JoinHandle<T>>,
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: FuturesUnordered::new(),
        }
    }

    /// Number of tasks in the set (finished tasks stay until `join_next` returns them).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True if the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Spawns `future` on the current runtime into the set; returns the task's id.
    ///
    /// # Panics
    /// If no faultless runtime is running on this thread.
    pub fn spawn<F>(&mut self, future: F) -> Id
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(crate::spawn(future))
    }

    /// Adds a task spawned elsewhere (e.g. with [`Builder`](super::Builder)) to the set.
    pub fn insert(&mut self, handle: JoinHandle<T>) -> Id {
        let id = handle.id();
        self.tasks.push(handle);
        id
    }

    /// Waits for the next task to finish and returns its result; `None` once the set is
    /// empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next finished task: `Ready(None)` when the set is empty.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        Pin::new(&mut self.tasks).poll_next(cx)
    }

    /// The result of a task that has already finished, if any, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        match self.poll_join_next(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => None,
        }
    }

    /// Aborts every task in the set; they stay in it until `join_next` returns their
    /// (cancelled) results.
    pub fn abort_all(&mut self) {
        for handle in self.tasks.iter() {
            handle.abort();
        }
    }

    /// Empties the set, letting its tasks run on.
    pub fn detach_all(&mut self) {
        for handle in std::mem::take(&mut self.tasks) {
            handle.detach();
        }
    }

    /// Aborts every task and waits until each has stopped.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for handle in self.tasks.iter() {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}
