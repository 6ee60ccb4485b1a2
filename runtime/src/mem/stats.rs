//! What a mapping's page access has done: [`MemStats`], [`WaitStats`], and the counters and
//! wait-time histogram behind them.

use std::cell::RefCell;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::backend::Backend;
use super::faults::ThreadFaults;
use super::keeper::ResidencyMode;

/// Counters of one mapping, kept on the executor thread.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) prefetches: u64,
    pub(super) pages_requested: u64,
    pub(super) pages_brought_in: u64,
    pub(super) dedup_waits: u64,
    pub(super) slow_reads: u64,
    pub(super) failed: u64,
    pub(super) mapped_from_cache: u64,
}

/// How long slow reads waited, in microseconds (1 us to 60 s).
pub(super) struct WaitTimes {
    histogram: RefCell<Histogram<u64>>,
}

impl WaitTimes {
    pub(super) fn new() -> WaitTimes {
        WaitTimes {
            histogram: RefCell::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ),
        }
    }

    /// Records a wait that started at `started`.
    pub(super) fn record(&self, started: Instant) {
        let us = started.elapsed().as_micros().max(1) as u64;
        let _ = self.histogram.borrow_mut().record(us.min(60_000_000));
    }

    /// Forgets every recorded wait.
    pub(super) fn reset(&self) {
        self.histogram.borrow_mut().reset();
    }

    /// The percentiles so far.
    pub(super) fn summary(&self) -> WaitStats {
        let h = self.histogram.borrow();
        WaitStats {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Percentiles of the time tasks waited for cold pages, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WaitStats {
    /// Slow-path reads recorded.
    pub count: u64,
    /// Mean wait.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Longest.
    pub max_us: u64,
}

/// What a mapping's page access has done.
#[derive(Clone, Debug, Default)]
pub struct MemStats {
    /// The prefetch path in use (`Auto` resolved).
    pub backend: Option<Backend>,
    /// Prefetch requests issued (each one I/O or helper job).
    pub prefetches: u64,
    /// Pages those requests covered.
    pub pages_requested: u64,
    /// Pages marked resident after their request completed.
    pub pages_brought_in: u64,
    /// Pages a task found already being fetched, and waited for without a new request.
    pub dedup_waits: u64,
    /// Reads that missed the residency record.
    pub slow_reads: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Pages a slow read found in the page cache and mapped in on the spot (`uring-thread`),
    /// without a request.
    pub mapped_from_cache: u64,
    /// Pages currently marked resident.
    pub resident_pages: u64,
    /// How long slow reads waited.
    pub wait: WaitStats,
    /// Page faults taken so far by the calling (executor) thread.
    pub executor_faults: ThreadFaults,
    /// If the helper pool fell back from `mlock`, why.
    pub mlock_fallback: Option<String>,
    /// Bytes the helper pool keeps locked.
    pub locked_bytes: u64,
    /// How the residency record is kept true, and what that took.
    pub residency: ResidencyStats,
}

/// What keeping the residency record true has done (see [`ResidencyMode`]).
#[derive(Clone, Debug, Default)]
pub struct ResidencyStats {
    /// The mode in force.
    pub mode: Option<ResidencyMode>,
    /// Why it is not the mode asked for, if it is not (e.g. `mlock` refused).
    pub fallback: Option<String>,
    /// Pinned: the bytes the pinned set may take now (lower than configured while memory
    /// runs short).
    pub budget_bytes: Option<u64>,
    /// Pinned: pages unpinned by the CLOCK hand to stay within the budget.
    pub pages_unpinned: u64,
    /// Pinned: ranges of pages the kernel mapped (and so locked) beside the recorded ones
    /// (fault-around) that the keeper dropped again.
    pub unrecorded_ranges_unpinned: u64,
    /// Pinned: times the budget was lowered because memory ran short.
    pub budget_shrinks: u64,
    /// Scrubbed: passes made.
    pub scrub_passes: u64,
    /// Scrubbed: passes skipped because `cachestat` showed no change.
    pub scrubs_skipped: u64,
    /// Scrubbed: recorded pages found reclaimed by the kernel (and forgotten).
    pub pages_found_reclaimed: u64,
    /// `uring-thread`: batches of pages mapped in by the keeper.
    pub keeper_batches: u64,
    /// The keeper's last failure, if any.
    pub keeper_error: Option<String>,
}
