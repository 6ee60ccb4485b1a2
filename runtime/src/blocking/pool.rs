//! [`BlockingPool`]: threads started on demand, up to a bound, that run queued jobs.
//!
//! The queue is a mutex-protected `VecDeque` with a condition variable. A submit hands the
//! job to an idle thread if there is one (claiming it, so two submits never count on the
//! same idle thread), starts a new thread if the pool is below its bound, and otherwise
//! leaves the job queued for the next thread that finishes. Idle threads exit after the
//! keep-alive. Threads are started from the executor's thread, so they inherit its signal
//! mask (signals the runtime reads from a signalfd stay blocked on them).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::job::{CancelOnDrop, JobCell};
use crate::task::{JoinError, JoinHandle};

type Job = Box<dyn FnOnce() + Send>;

struct State {
    jobs: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for a job and not yet claimed by a submit.
    idle: usize,
    /// Wake-ups handed out to idle threads and not yet taken.
    notified: usize,
    shutdown: bool,
}

struct Inner {
    state: Mutex<State>,
    cond: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    spawned: AtomicU64,
    completed: AtomicU64,
}

/// A runtime's blocking pool.
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

/// What the stats report about the pool.
pub(crate) struct PoolStats {
    pub(crate) threads: usize,
    pub(crate) queued: usize,
    pub(crate) spawned: u64,
    pub(crate) completed: u64,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> BlockingPool {
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    notified: 0,
                    shutdown: false,
                }),
                cond: Condvar::new(),
                max_threads: max_threads.max(1),
                keep_alive,
                spawned: AtomicU64::new(0),
                completed: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `f` and returns the handle to its result.
    pub(crate) fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let cell = JobCell::<R>::new();
        let handle = JoinHandle::from_target(cell.clone());
        self.inner.spawned.fetch_add(1, Ordering::Relaxed);
        let guard = CancelOnDrop(cell.clone());
        let inner = self.inner.clone();
        let job: Job = Box::new(move || {
            guard
                .0
                .run(f, || _ = inner.completed.fetch_add(1, Ordering::Relaxed))
        });
        let mut state = self.lock();
        if state.shutdown {
            drop(state);
            cell.complete(Err(JoinError::cancelled(handle.id())));
            return handle;
        }
        state.jobs.push_back(job);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            drop(state);
            self.inner.cond.notify_one();
        } else if state.threads < self.inner.max_threads {
            state.threads += 1;
            let n = state.threads;
            drop(state);
            if let Err(e) = self.start_thread(n) {
                let mut state = self.lock();
                state.threads -= 1;
                if state.threads == 0 {
                    // Nobody will ever run the job: fail it rather than leave it queued.
                    let job = state.jobs.pop_back();
                    drop(state);
                    drop(job);
                    crate::log::warning!("could not start a blocking-pool thread: {e}");
                    cell.complete(Err(JoinError::panicked(
                        handle.id(),
                        Box::new(format!("could not start a blocking-pool thread: {e}")),
                    )));
                }
            }
        }
        handle
    }

    fn start_thread(&self, n: usize) -> io::Result<()> {
        crate::log::debug!(thread = n, "starting a blocking-pool thread");
        let inner = self.inner.clone();
        thread::Builder::new()
            .name(format!("faultless-blocking-{n}"))
            .spawn(move || worker(&inner))
            .map(drop)
    }

    /// Drops every queued job (their handles see `Cancelled`) and lets the threads exit once
    /// their current job is done.
    pub(crate) fn shutdown(&self) {
        let jobs = {
            let mut state = self.lock();
            state.shutdown = true;
            std::mem::take(&mut state.jobs)
        };
        self.inner.cond.notify_all();
        // Each job's `CancelOnDrop` tells its handle that it was cancelled.
        drop(jobs);
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            threads: state.threads,
            queued: state.jobs.len(),
            spawned: self.inner.spawned.load(Ordering::Relaxed),
            completed: self.inner.completed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(inner: &Inner) {
    let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            job();
            state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        if state.shutdown {
            break;
        }
        state.idle += 1;
        let (next, timeout) = inner
            .cond
            .wait_timeout(state, inner.keep_alive)
            .unwrap_or_else(|e| e.into_inner());
        state = next;
        if state.notified > 0 {
            state.notified -= 1; // a submit claimed this thread (idle was decremented)
        } else {
            state.idle -= 1;
            if timeout.timed_out() && state.jobs.is_empty() {
                break;
            }
        }
    }
    state.threads -= 1;
}
