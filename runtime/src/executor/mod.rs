//! The executor: the task slab, the run queue, and the loop that drives them with the
//! driver (io_uring) and the timers.
//!
//! * `mod.rs` (this file): [`Executor`] and its loop;
//! * `context.rs`: the thread-local "current executor", [`spawn`](crate::spawn)'s way in, and
//!   [`schedule`], where a wake lands;
//! * `park.rs`: [`Shared`], the part other threads touch: the remote wake queue and the
//!   eventfd protocol that wakes a parked executor.
//!
//! There are two run queues. A wake lands on the foreground queue unless it was made inside a
//! background scope (page-access completions: see `context.rs`), which puts it on the
//! background queue. A task that yields (`yield_now`) waits in a third, deferred queue until
//! the end of the turn (step 4), so it runs after whatever the turn's I/O, timers and other
//! threads woke: a hot request that arrives while a hundred cold readers yield at their
//! request boundaries runs before them, not behind them. One turn of the loop:
//! 1. poll up to `budget` tasks from the foreground queue (the budget is what keeps an
//!    always-ready task from starving I/O completions and timers), then from the background
//!    queue up to `background_budget` or as many as the foreground just ran, whichever is
//!    more: a burst of hundreds of page completions is spread over several turns, and a task
//!    a socket or timer woke meanwhile runs at the start of the next one instead of behind
//!    the whole burst; yet when the foreground is busy too (a server whose every request
//!    reads cold pages), completions get an equal share of the thread and do not pile up
//!    behind new work;
//! 2. move wakes that arrived from other threads onto the run queues;
//! 3. submit queued io_uring entries and reap completions; if nothing is ready to run, this is
//!    where the thread parks, in one `io_uring_enter` that waits for a completion, the eventfd,
//!    or the next timer deadline;
//! 4. fire expired timers; move the deferred tasks to the back of the foreground queue;
//! 5. end the turn: the turn counter advances and the turn-end hooks run. No task is running
//!    here, so a task cannot hold a reference across this point: it is the loop's quiescent
//!    point, where deferred reclamation can safely happen.

mod context;
mod park;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::task::waker_ref;
use slab::Slab;

use context::Enter;
pub(crate) use context::{
    background_wakes, current, deferred_wake, schedule, try_with_current, WakeClass,
};
pub(crate) use park::Shared;

use crate::blocking::BlockingPool;
use crate::builder::Builder;
use crate::driver::Driver;
use crate::stats::RuntimeStats;
use crate::task::{current_thread_id, Header, JoinHandle, Runnable, TaskCell, TaskMeta};
use crate::time::Timers;

/// The run-queue key of the future passed to `block_on`.
const MAIN_KEY: usize = usize::MAX;

/// Counters kept by the executor, read by `Runtime::stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) turns: Cell<u64>,
    pub(crate) polls: Cell<u64>,
    pub(crate) background_polls: Cell<u64>,
    pub(crate) spawned: Cell<u64>,
    /// Tasks the runtime spawned for itself, and how many of them are alive.
    pub(crate) internal_spawned: Cell<u64>,
    pub(crate) internal_alive: Cell<usize>,
    pub(crate) parks: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Everything a runtime owns on its thread.
pub(crate) struct Executor {
    pub(crate) shared: Arc<Shared>,
    tasks: RefCell<Slab<Arc<dyn Runnable>>>,
    run_queue: RefCell<VecDeque<usize>>,
    /// Tasks woken by background work (page-access completions).
    background: RefCell<VecDeque<usize>>,
    /// Tasks that yielded this turn; they join `run_queue` at its end.
    deferred: RefCell<VecDeque<usize>>,
    pub(crate) driver: RefCell<Driver>,
    pub(crate) timers: RefCell<Timers>,
    /// The `spawn_blocking` pool; its jobs complete through the tasks' wakers.
    pub(crate) blocking: BlockingPool,
    pub(crate) counters: Counters,
    turn_hooks: RefCell<Vec<Box<dyn FnMut()>>>,
    /// Hooks registered while the hooks run; they join `turn_hooks` at the next turn end.
    new_turn_hooks: RefCell<Vec<Box<dyn FnMut()>>>,
    budget: usize,
    background_budget: usize,
    remote_scratch: RefCell<(Vec<usize>, Vec<usize>)>,
    /// The thread the runtime belongs to (a `Runtime` is `!Send`): every task's owner.
    thread: std::thread::ThreadId,
}

impl Executor {
    pub(crate) fn new(builder: &Builder) -> io::Result<Rc<Executor>> {
        let shared = Arc::new(Shared::new()?);
        let driver = Driver::new(builder.ring_entries, builder.ring_mode, shared.eventfd())?;
        Ok(Rc::new(Executor {
            shared,
            tasks: RefCell::new(Slab::with_capacity(64)),
            run_queue: RefCell::new(VecDeque::with_capacity(64)),
            background: RefCell::new(VecDeque::with_capacity(64)),
            deferred: RefCell::new(VecDeque::with_capacity(64)),
            driver: RefCell::new(driver),
            timers: RefCell::new(Timers::default()),
            blocking: BlockingPool::new(builder.max_blocking_threads, builder.blocking_keep_alive),
            counters: Counters::default(),
            turn_hooks: RefCell::new(Vec::new()),
            new_turn_hooks: RefCell::new(Vec::new()),
            budget: builder.budget.max(1),
            background_budget: builder.background_budget.max(1),
            remote_scratch: RefCell::new((Vec::new(), Vec::new())),
            thread: current_thread_id(),
        }))
    }

    /// Pushes `key` onto the local run queue of `class`; false if the queue is borrowed (the
    /// caller then takes the remote path).
    #[inline]
    fn push_local(&self, key: usize, class: WakeClass) -> bool {
        let queue = match class {
            WakeClass::Foreground => &self.run_queue,
            WakeClass::Background => &self.background,
            WakeClass::Deferred => &self.deferred,
        };
        match queue.try_borrow_mut() {
            Ok(mut q) => {
                q.push_back(key);
                true
            }
            Err(_) => false,
        }
    }

    /// Spawns a user task onto this executor.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_with(future, TaskMeta::user(None))
    }

    /// Spawns a future onto this executor, with its id, name and kind in `meta`.
    pub(crate) fn spawn_with<F>(&self, future: F, meta: TaskMeta) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if meta.internal {
            bump(&self.counters.internal_spawned);
            let alive = &self.counters.internal_alive;
            alive.set(alive.get() + 1);
        } else {
            bump(&self.counters.spawned);
        }
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let cell = TaskCell::new(future, entry.key(), self.shared.clone(), self.thread, meta);
        entry.insert(cell.clone());
        drop(tasks);
        cell.header().scheduled.store(true, Ordering::Relaxed);
        self.run_queue.borrow_mut().push_back(cell.header().key);
        JoinHandle::new(cell)
    }

    /// Number of tasks that have not finished.
    pub(crate) fn live_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    pub(crate) fn add_turn_hook(&self, hook: Box<dyn FnMut()>) {
        self.new_turn_hooks.borrow_mut().push(hook);
    }

    fn poll_task(&self, key: usize) {
        let task: *const dyn Runnable = match self.tasks.borrow().get(key) {
            Some(t) => Arc::as_ptr(t),
            None => return, // a stale key: the task already finished
        };
        // SAFETY: the slab holds an Arc to the task until the `remove` below, and nothing
        // else removes slab entries while a task is being polled (tasks can only insert by
        // spawning; a slab reallocation moves the Arc, not the task it points to).
        let task = unsafe { &*task };
        task.header().scheduled.store(false, Ordering::Release);
        bump(&self.counters.polls);
        if task.run() {
            let removed = self.tasks.borrow_mut().remove(key);
            if removed.meta().internal {
                let alive = &self.counters.internal_alive;
                alive.set(alive.get() - 1);
            }
            drop(removed);
        }
    }

    /// Runs `future` to completion on this thread, driving every spawned task meanwhile.
    pub(crate) fn block_on<F: Future>(self: &Rc<Self>, future: F) -> F::Output {
        let _enter = Enter::new(self, false);
        let mut future = std::pin::pin!(future);
        let main = Arc::new(Header::new(MAIN_KEY, self.shared.clone()));
        let main_waker = waker_ref(&main);
        let mut main_cx = Context::from_waker(&main_waker);
        main.scheduled.store(true, Ordering::Relaxed);
        self.run_queue.borrow_mut().push_back(MAIN_KEY);
        let _finish_main = FinishOnDrop(&main);
        loop {
            // 1. run ready tasks: the foreground up to its budget, then the background: at
            //    least its budget, and at least as many as the foreground just ran
            let mut foreground_polls = 0;
            for background in [false, true] {
                let (queue, budget) = if background {
                    (
                        &self.background,
                        self.background_budget.max(foreground_polls),
                    )
                } else {
                    (&self.run_queue, self.budget)
                };
                for _ in 0..budget {
                    let Some(key) = queue.borrow_mut().pop_front() else {
                        break;
                    };
                    if background {
                        bump(&self.counters.background_polls);
                    } else {
                        foreground_polls += 1;
                    }
                    if key == MAIN_KEY {
                        main.scheduled.store(false, Ordering::Release);
                        bump(&self.counters.polls);
                        if let Poll::Ready(out) = future.as_mut().poll(&mut main_cx) {
                            // What the future dropped on its way out (files) may still be
                            // held by the kernel's deferred completion work.
                            self.driver.borrow_mut().run_deferred_work();
                            return out;
                        }
                    } else {
                        self.poll_task(key);
                    }
                }
            }
            self.turn();
        }
    }

    /// Steps 2 to 5 of a turn: everything but running tasks.
    fn turn(&self) {
        // 2. wakes from other threads
        {
            let mut scratch = self.remote_scratch.borrow_mut();
            let (foreground, background) = &mut *scratch;
            self.shared.drain_remote(foreground, background);
            if !foreground.is_empty() {
                self.run_queue.borrow_mut().extend(foreground.drain(..));
            }
            if !background.is_empty() {
                self.background.borrow_mut().extend(background.drain(..));
            }
        }
        // 3. the driver: park only when there is nothing to run
        let mut may_block = self.run_queue.borrow().is_empty()
            && self.background.borrow().is_empty()
            && self.deferred.borrow().is_empty();
        let timeout = if may_block {
            self.timers
                .borrow()
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
        } else {
            None
        };
        if timeout.is_some_and(|t| t.is_zero()) {
            may_block = false;
        }
        if may_block && !self.shared.prepare_sleep() {
            may_block = false;
        }
        if may_block {
            bump(&self.counters.parks);
        }
        let graveyard = self.driver.borrow_mut().turn(may_block, timeout);
        if may_block {
            self.shared.end_sleep();
        }
        // What abandoned operations released is dropped outside the driver's borrow.
        drop(graveyard);
        // 4. timers
        self.timers.borrow_mut().fire_expired(Instant::now());
        // Tasks that yielded run after everything this turn woke.
        {
            let mut deferred = self.deferred.borrow_mut();
            if !deferred.is_empty() {
                self.run_queue.borrow_mut().extend(deferred.drain(..));
            }
        }
        // 5. quiescent point
        bump(&self.counters.turns);
        let mut hooks = self.turn_hooks.borrow_mut();
        hooks.append(&mut self.new_turn_hooks.borrow_mut());
        for hook in hooks.iter_mut() {
            hook();
        }
    }

    /// Drops every task's future and waits for the kernel to finish with every operation.
    pub(crate) fn shutdown(self: &Rc<Self>) {
        let _enter = Enter::new(self, true);
        self.blocking.shutdown();
        let tasks: Vec<Arc<dyn Runnable>> = self.tasks.borrow_mut().drain().collect();
        for task in &tasks {
            task.shutdown();
        }
        drop(tasks);
        self.counters.internal_alive.set(0);
        self.run_queue.borrow_mut().clear();
        self.background.borrow_mut().clear();
        self.deferred.borrow_mut().clear();
        self.turn_hooks.borrow_mut().clear();
        self.new_turn_hooks.borrow_mut().clear();
        let graveyard = self.driver.borrow_mut().shutdown();
        drop(graveyard);
    }

    pub(crate) fn stats(&self) -> RuntimeStats {
        let driver = self.driver.borrow();
        let blocking = self.blocking.stats();
        RuntimeStats {
            turns: self.counters.turns.get(),
            polls: self.counters.polls.get(),
            background_polls: self.counters.background_polls.get(),
            tasks_spawned: self.counters.spawned.get(),
            tasks_alive: self.tasks.borrow().len() - self.counters.internal_alive.get(),
            internal_tasks_spawned: self.counters.internal_spawned.get(),
            internal_tasks_alive: self.counters.internal_alive.get(),
            parks: self.counters.parks.get(),
            ops_submitted: driver.stats.submitted,
            ops_completed: driver.stats.completed,
            ops_cancelled: driver.stats.cancelled,
            ops_in_flight: driver.in_flight(),
            submit_calls: driver.stats.enters,
            remote_wakes: self.shared.remote_wakes.load(Ordering::Relaxed),
            eventfd_signals: self.shared.eventfd_signals.load(Ordering::Relaxed),
            timers_pending: self.timers.borrow().len(),
            orphan_fds_closed: driver.orphan_fds_closed(),
            blocking_threads: blocking.threads,
            blocking_queued: blocking.queued,
            blocking_spawned: blocking.spawned,
            blocking_completed: blocking.completed,
        }
    }
}

/// Marks the `block_on` future's header finished when `block_on` returns or unwinds, so
/// wakers that outlive it are ignored instead of queueing `MAIN_KEY` for a later `block_on`.
struct FinishOnDrop<'a>(&'a Arc<Header>);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    use crate::{spawn, yield_now, Builder, Runtime};

    /// Runs 400 tasks that all wait on one gate, which another thread opens at once, inside a
    /// background scope (as page completions are), while a hot task keeps yielding. Returns
    /// how many times the hot task ran between the first and the last woken task.
    fn hot_progress_during_burst(runtime: Runtime, background: bool) -> u64 {
        const WAITERS: usize = 400;
        let gate: Arc<Mutex<(bool, Vec<Waker>)>> = Arc::default();
        let hot_runs = Rc::new(Cell::new(0u64));
        let seen: Rc<RefCell<Vec<u64>>> = Rc::default();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..WAITERS)
                .map(|_| {
                    let (gate, hot_runs, seen) = (gate.clone(), hot_runs.clone(), seen.clone());
                    spawn(async move {
                        std::future::poll_fn(|cx| {
                            let mut g = gate.lock().unwrap();
                            if g.0 {
                                Poll::Ready(())
                            } else {
                                g.1.push(cx.waker().clone());
                                Poll::Pending
                            }
                        })
                        .await;
                        seen.borrow_mut().push(hot_runs.get());
                    })
                })
                .collect();
            let hot = {
                let (hot_runs, seen) = (hot_runs.clone(), seen.clone());
                spawn(async move {
                    while seen.borrow().len() < WAITERS {
                        hot_runs.set(hot_runs.get() + 1);
                        yield_now().await;
                    }
                })
            };
            // Let every waiter register, then open the gate from another thread.
            while gate.lock().unwrap().1.len() < WAITERS {
                yield_now().await;
            }
            let opener = gate.clone();
            std::thread::spawn(move || {
                let _scope = background.then(super::background_wakes);
                let wakers = {
                    let mut g = opener.lock().unwrap();
                    g.0 = true;
                    std::mem::take(&mut g.1)
                };
                for w in wakers {
                    w.wake();
                }
            })
            .join()
            .unwrap();
            for t in tasks {
                t.await.unwrap();
            }
            hot.await.unwrap();
        });
        let seen = seen.borrow();
        seen.iter().max().unwrap() - seen.iter().min().unwrap()
    }

    #[test]
    fn a_hot_task_keeps_running_while_hundreds_of_page_completions_arrive() {
        // With the background lane: 400 completions at 16 per turn take 25 turns, and the hot
        // task, woken in the foreground, runs in every one of them.
        let runtime = Builder::new().background_budget(16).build().unwrap();
        let with_lane = hot_progress_during_burst(runtime, true);
        assert!(
            with_lane >= 20,
            "the hot task ran {with_lane} times during the burst"
        );
        // The same burst woken as ordinary wakes runs through in a few turns of 128 polls,
        // and the hot task waits behind each of them: what the lane prevents.
        let runtime = Builder::new().background_budget(16).build().unwrap();
        let without = hot_progress_during_burst(runtime, false);
        assert!(
            without <= 5,
            "without the lane the hot task ran {without} times"
        );
    }

    /// A task that yields runs again after a task that another thread woke meanwhile, not
    /// before it: the yield is deferred to the end of the turn.
    #[test]
    fn a_yielding_task_runs_after_what_another_thread_woke_meanwhile() {
        let runtime = Runtime::new().unwrap();
        let order: Rc<RefCell<Vec<&str>>> = Rc::default();
        runtime.block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            let woken = {
                let order = order.clone();
                spawn(async move {
                    rx.await.unwrap();
                    order.borrow_mut().push("woken");
                })
            };
            let yielder = {
                let order = order.clone();
                spawn(async move {
                    // Let the other task start waiting first.
                    yield_now().await;
                    order.borrow_mut().push("yield 1");
                    // Wake it from another thread (a remote wake), then yield.
                    std::thread::spawn(move || tx.send(()).unwrap())
                        .join()
                        .unwrap();
                    yield_now().await;
                    order.borrow_mut().push("yield 2");
                })
            };
            yielder.await.unwrap();
            woken.await.unwrap();
        });
        assert_eq!(*order.borrow(), ["yield 1", "woken", "yield 2"]);
    }
}
