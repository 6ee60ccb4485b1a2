//! [`Builder`]: spawn a task with a name.

use std::future::Future;

use super::id::TaskMeta;
use super::JoinHandle;
use crate::runtime::Runtime;

/// Spawns tasks with options (today: a name, shown by the handle's `Debug`, by
/// [`task::try_name`](crate::task::try_name) inside the task, and in `tracing` spans).
///
/// ```
/// use faultless_runtime::task;
///
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     let handle = task::Builder::new()
///         .name("worker-1")
///         .spawn(async { task::try_name() });
///     assert_eq!(handle.name(), Some("worker-1"));
///     assert_eq!(handle.await.unwrap().as_deref(), Some("worker-1"));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<Box<str>>,
}

impl Builder {
    /// A builder with no name set.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: &str) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Spawns `future` on the runtime running on this thread.
    ///
    /// # Panics
    /// If no faultless runtime is running on this thread.
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        crate::executor::current().spawn_with(future, TaskMeta::user(self.name))
    }

    /// Spawns `future` on `runtime`; it starts running at the runtime's next `block_on`.
    pub fn spawn_on<F>(self, runtime: &Runtime, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        runtime.spawn_with(future, TaskMeta::user(self.name))
    }
}
