//! What a mapping's page access has done: [`MemStats`], [`WaitStats`], and the counters and
//! wait-time histogram behind them.

use std::cell::RefCell;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::backend::Backend;
use super::faults::ThreadFaults;

/// Counters of one mapping, kept on the executor thread.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) prefetches: u64,
    pub(super) pages_requested: u64,
    pub(super) pages_brought_in: u64,
    pub(super) dedup_waits: u64,
    pub(super) slow_reads: u64,
    pub(super) failed: u64,
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
}
