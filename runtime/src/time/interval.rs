//! [`interval`]: evenly spaced ticks that skip, rather than bunch, missed ones.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::{sleep_until, Sleep};

/// A stream of evenly spaced instants: the first `tick` completes at once, each later one
/// `period` after the previous deadline. If ticks were missed (the task was busy), the next
/// tick completes at once and the schedule restarts from now, so missed ticks are skipped, not
/// bunched.
///
/// # Panics
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    Interval {
        period,
        sleep: sleep_until(Instant::now()),
    }
}

/// Returned by [`interval`].
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let scheduled = self.sleep.deadline();
                let now = Instant::now();
                let mut next = scheduled
                    .checked_add(self.period)
                    .unwrap_or_else(|| super::sleep::far_deadline(self.period));
                if next <= now {
                    next = super::sleep::far_deadline(self.period);
                }
                self.sleep.reset(next);
                Poll::Ready(scheduled)
            }
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }
}
