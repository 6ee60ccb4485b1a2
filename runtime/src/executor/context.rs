//! The thread-local context: which executor, if any, is running on this thread.
//!
//! `Runtime::block_on` (and the runtime's shutdown) enter their executor for as long as they
//! run; free functions such as [`spawn`](crate::spawn), the I/O types and the timers find it
//! here. A wake on the executor's own thread pushes the task straight onto its run queue;
//! any other wake goes through the remote queue of [`Shared`].
//!
//! Every wake also has a [`WakeClass`], read from a thread-local of the *waking* thread:
//! wakes made inside a [`background_wakes`] scope (page-access completions, on the executor
//! or on a helper thread) land on the background queue, every other wake on the foreground
//! queue. The executor polls foreground tasks first and only a bounded number of background
//! ones per turn, so a flood of cold-page completions cannot delay a request that a socket or
//! a timer woke.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

use super::park::Shared;
use super::Executor;

thread_local! {
    /// The executor whose `block_on` (or shutdown) is running on this thread.
    static CURRENT: Cell<*const Executor> = const { Cell::new(ptr::null()) };
    /// The class of the wakes this thread makes now.
    static WAKE_CLASS: Cell<WakeClass> = const { Cell::new(WakeClass::Foreground) };
    /// Set while a task yields (`yield_now`): its own wake is deferred to the end of the turn.
    static YIELDING: Cell<bool> = const { Cell::new(false) };
}

/// Which run queue a wake puts its task on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WakeClass {
    /// Wakes by sockets, timers, other tasks, other threads: polled first.
    Foreground,
    /// Wakes by page-access completions: polled after the foreground, a bounded number per
    /// turn.
    Background,
    /// A task's wake of itself as it yields ([`yield_now`](crate::yield_now)): it joins the
    /// foreground queue at the end of the turn, behind what I/O, timers and other threads
    /// woke meanwhile (a local wake only; from another thread it is a foreground wake).
    Deferred,
}

/// Runs `wake` (a yielding task waking itself) with its wake deferred to the end of the
/// turn: the task runs again after the I/O completions, timers and other threads' wakes
/// that the turn finds, instead of before them.
///
/// Every wake `wake` makes on this thread is deferred, not only the yielding task's own: a
/// combinator's waker that wakes other tasks of this runtime defers them too (by one turn;
/// none is lost).
pub(crate) fn deferred_wake(wake: impl FnOnce()) {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            YIELDING.with(|y| y.set(self.0));
        }
    }
    let _restore = Restore(YIELDING.with(|y| y.replace(true)));
    wake();
}

/// While alive, wakes made by this thread are [`WakeClass::Background`].
pub(crate) struct BackgroundWakes {
    prev: WakeClass,
}

/// Makes this thread's wakes background wakes until the guard is dropped.
pub(crate) fn background_wakes() -> BackgroundWakes {
    BackgroundWakes {
        prev: WAKE_CLASS.with(|c| c.replace(WakeClass::Background)),
    }
}

impl Drop for BackgroundWakes {
    fn drop(&mut self) {
        WAKE_CLASS.with(|c| c.set(self.prev));
    }
}

/// Sets this thread's current executor for the guard's lifetime.
pub(super) struct Enter {
    prev: *const Executor,
}

impl Enter {
    /// Enters `executor`. With `nested == false` (block_on) it is a programming error to be
    /// inside a runtime already; shutdown may nest (a runtime dropped inside a task).
    pub(super) fn new(executor: &Rc<Executor>, nested: bool) -> Enter {
        let prev = CURRENT.with(|c| c.get());
        if !nested && !prev.is_null() {
            if prev == Rc::as_ptr(executor) {
                panic!(
                    "Runtime::block_on called from within the same runtime; use spawn or .await"
                );
            }
            panic!("cannot run a faultless runtime inside another one on the same thread");
        }
        CURRENT.with(|c| c.set(Rc::as_ptr(executor)));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Queues task `key` of the runtime that owns `shared`: directly on the local run queue when
/// called on that runtime's thread while it runs, through the remote queue otherwise.
#[inline]
pub(crate) fn schedule(shared: &Arc<Shared>, key: usize) {
    let class = if YIELDING.with(|y| y.get()) {
        WakeClass::Deferred
    } else {
        WAKE_CLASS.with(|c| c.get())
    };
    let local = CURRENT.with(|c| {
        let executor = c.get();
        if executor.is_null() {
            return false;
        }
        // SAFETY: CURRENT is non-null only while an `Enter` guard for that executor is alive,
        // and the guard's owner holds an Rc to the executor for at least that long.
        let executor = unsafe { &*executor };
        executor.shared.id == shared.id && executor.push_local(key, class)
    });
    if !local {
        shared.push_remote(key, class);
    }
}

/// Runs `f` with the current thread's executor, if a runtime is running on it.
pub(crate) fn try_with_current<R>(f: impl FnOnce(&Rc<Executor>) -> R) -> Option<R> {
    CURRENT.with(|c| {
        let executor = c.get();
        if executor.is_null() {
            return None;
        }
        // SAFETY: as in `schedule`; the pointer came from `Rc::as_ptr` of an Rc that the
        // guard's owner holds for as long as CURRENT points at it. ManuallyDrop keeps us from
        // releasing a count we did not take.
        let rc = std::mem::ManuallyDrop::new(unsafe { Rc::from_raw(executor) });
        Some(f(&rc))
    })
}

/// The current executor as an `Rc`; panics outside a runtime.
pub(crate) fn current() -> Rc<Executor> {
    try_with_current(|c| c.clone()).unwrap_or_else(|| no_runtime())
}

#[cold]
fn no_runtime() -> ! {
    panic!("this function must be called from within a faultless runtime (inside Runtime::block_on or a task it runs)")
}
