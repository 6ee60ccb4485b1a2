//! A prefetch request: a run of pages being made resident, shared by every task waiting on
//! it and by the thread (helper, or the executor's own completion task) that completes it.
//!
//! Completion stores the result and wakes every waiter. Wakers from the runtime go through its
//! cross-thread wake path, so a helper thread that completes a request while the executor
//! sleeps writes the eventfd once, and requests completed while it runs cost no syscall.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

const PENDING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;

/// How a completed request tells the world, besides waking waiters.
pub(crate) enum Notify {
    /// Only wake the registered wakers (runtime use).
    Wakers,
    /// The raw `mlock_eventfd`-style API: push `(token, result)` to a completion list and
    /// write `eventfd` (see `mem::raw`).
    Eventfd {
        eventfd: std::os::fd::RawFd,
        token: u64,
        completions: std::sync::Arc<Mutex<Vec<(u64, i32)>>>,
    },
}

pub(crate) struct Request {
    state: AtomicU8,
    errno: AtomicI32,
    wakers: Mutex<Vec<Waker>>,
    notify: Notify,
    /// First page index of the run (relative to the mapping).
    pub(crate) first_page: u64,
    /// Number of pages in the run.
    pub(crate) pages: u64,
    /// Set by the executor once it has marked the pages resident.
    pub(crate) applied: AtomicBool,
}

impl Request {
    pub(crate) fn new(first_page: u64, pages: u64, notify: Notify) -> Request {
        Request {
            state: AtomicU8::new(PENDING),
            errno: AtomicI32::new(0),
            wakers: Mutex::new(Vec::new()),
            notify,
            first_page,
            pages,
            applied: AtomicBool::new(false),
        }
    }

    /// Records the outcome (`Err(errno)` on failure) and wakes every waiter.
    pub(crate) fn complete(&self, result: Result<(), i32>) {
        match result {
            Ok(()) => self.state.store(DONE, Ordering::Release),
            Err(errno) => {
                self.errno.store(errno, Ordering::Relaxed);
                self.state.store(FAILED, Ordering::Release);
            }
        }
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        // Page completions are background work: the woken tasks queue behind those that
        // sockets and timers woke (see `executor/context.rs`).
        let _background = crate::executor::background_wakes();
        for w in wakers {
            w.wake();
        }
        if let Notify::Eventfd {
            eventfd,
            token,
            completions,
        } = &self.notify
        {
            let errno = result.err().unwrap_or(0);
            completions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((*token, errno));
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to the caller's eventfd, which the raw
            // API's contract keeps open until the completion is taken.
            unsafe { libc::write(*eventfd, (&one as *const u64).cast(), 8) };
        }
    }

    /// The outcome, if the request has completed.
    pub(crate) fn outcome(&self) -> Option<Result<(), i32>> {
        match self.state.load(Ordering::Acquire) {
            DONE => Some(Ok(())),
            FAILED => Some(Err(self.errno.load(Ordering::Relaxed))),
            _ => None,
        }
    }

    /// Ready with the outcome, or registers the waker.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<(), i32>> {
        if let Some(out) = self.outcome() {
            return Poll::Ready(out);
        }
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        // Re-check under the lock: `complete` stores the state before taking the lock.
        if let Some(out) = self.outcome() {
            return Poll::Ready(out);
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
