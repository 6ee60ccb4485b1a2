//! [`RuntimeStats`]: what a runtime has done, as counters.

/// What a runtime has done, as counters since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Executor turns completed; each end of turn is a quiescent point.
    pub turns: u64,
    /// Task polls, including the `block_on` future.
    pub polls: u64,
    /// Polls of tasks woken by background work (page-access completions), which the executor
    /// runs after the others, a bounded number per turn.
    pub background_polls: u64,
    /// Tasks the program spawned (the runtime's own tasks are counted apart, below).
    pub tasks_spawned: u64,
    /// The program's tasks not yet finished.
    pub tasks_alive: usize,
    /// Tasks the runtime spawned for itself: page prefetches, the signal reader.
    pub internal_tasks_spawned: u64,
    /// The runtime's own tasks not yet finished.
    pub internal_tasks_alive: usize,
    /// Times the executor parked in `io_uring_enter` with nothing to run.
    pub parks: u64,
    /// io_uring operations submitted (excluding the runtime's own eventfd reads and cancels).
    pub ops_submitted: u64,
    /// Completions reaped for those operations.
    pub ops_completed: u64,
    /// Operations cancelled because their future was dropped while in flight.
    pub ops_cancelled: u64,
    /// Operations whose completion has not been reaped yet.
    pub ops_in_flight: usize,
    /// `io_uring_enter` calls.
    pub submit_calls: u64,
    /// Wakes that came from other threads.
    pub remote_wakes: u64,
    /// eventfd writes made to wake a parked executor.
    pub eventfd_signals: u64,
    /// Timers registered and not yet fired or dropped.
    pub timers_pending: usize,
    /// Fds that operations created (an open, an accept) after their futures were dropped,
    /// closed by the runtime since nobody was left to own them.
    pub orphan_fds_closed: u64,
    /// Threads of the blocking pool alive now.
    pub blocking_threads: usize,
    /// Blocking jobs waiting for a thread.
    pub blocking_queued: usize,
    /// Blocking jobs submitted (`spawn_blocking`, name lookups, directory listings).
    pub blocking_spawned: u64,
    /// Blocking jobs that ran to their end.
    pub blocking_completed: u64,
}
