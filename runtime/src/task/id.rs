//! [`Id`]: a task's identity, and the "current task" of the thread.
//!
//! Ids come from one process-wide counter, so they are unique across runtimes and never
//! reused. While a task is polled, its id (and its name, if it was given one) is the
//! thread's "current task": [`id`], [`try_id`] and [`try_name`] read it.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identity: unique in the process for as long as it runs, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(NonZeroU64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Id {
    pub(crate) fn next() -> Id {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Id(NonZeroU64::new(n).expect("task ids start at 1 and a u64 does not wrap"))
    }

    /// The id as a number.
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a task is, apart from its future: its id, its optional name, and whether the runtime
/// spawned it for itself (an internal task, such as a page prefetch, which the stats count
/// apart from the user's).
#[derive(Debug)]
pub(crate) struct TaskMeta {
    pub(crate) id: Id,
    pub(crate) name: Option<Box<str>>,
    pub(crate) internal: bool,
}

impl TaskMeta {
    pub(crate) fn user(name: Option<Box<str>>) -> TaskMeta {
        TaskMeta {
            id: Id::next(),
            name,
            internal: false,
        }
    }

    pub(crate) fn internal() -> TaskMeta {
        TaskMeta {
            id: Id::next(),
            name: None,
            internal: true,
        }
    }
}

thread_local! {
    /// The task being polled on this thread, if any: a pointer to its meta, which the task
    /// cell keeps alive for at least the poll.
    static CURRENT: Cell<*const TaskMeta> = const { Cell::new(std::ptr::null()) };
}

/// Makes `meta` the thread's current task until dropped (restoring the previous one).
pub(crate) struct CurrentGuard {
    prev: *const TaskMeta,
}

impl CurrentGuard {
    pub(crate) fn enter(meta: &TaskMeta) -> CurrentGuard {
        CurrentGuard {
            prev: CURRENT.with(|c| c.replace(meta)),
        }
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

fn with_current<R>(f: impl FnOnce(Option<&TaskMeta>) -> R) -> R {
    CURRENT.with(|c| {
        let p = c.get();
        // SAFETY: CURRENT is non-null only while a `CurrentGuard` for that meta is alive, and
        // the guard lives inside the poll of the task that owns the meta (`TaskCell::run`).
        f(unsafe { p.as_ref() })
    })
}

/// The id of the task being polled on this thread.
///
/// # Panics
/// Outside a spawned task (the future passed to `block_on` is not a task).
///
/// ```
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     let handle = faultless_runtime::spawn(async { faultless_runtime::task::id() });
///     let id = handle.id();
///     assert_eq!(handle.await.unwrap(), id);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn id() -> Id {
    try_id().expect("task::id() called outside a spawned task")
}

/// The id of the task being polled on this thread, if any.
pub fn try_id() -> Option<Id> {
    with_current(|m| m.map(|m| m.id))
}

/// The name of the task being polled on this thread, if it has one.
pub fn try_name() -> Option<String> {
    with_current(|m| m.and_then(|m| m.name.as_deref().map(str::to_owned)))
}
