//! Time: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! Timers live in an ordered map keyed by `(deadline, sequence number)` on the executor's
//! thread, so they fire in deadline order, and in registration order for equal deadlines.
//! The executor parks in `io_uring_enter` with a timeout equal to the time left until the
//! earliest deadline, and fires every expired timer at the end of each turn. A timer is
//! registered on its future's first poll and removed when it fires or when its future is
//! dropped, so a cancelled timeout leaves nothing behind.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::core::{current, Core};

type TimerKey = (Instant, u64);

/// The executor's timers.
#[derive(Default)]
pub(crate) struct Timers {
    map: BTreeMap<TimerKey, Waker>,
    next_seq: u64,
}

impl Timers {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let key = (deadline, self.next_seq);
        self.next_seq += 1;
        self.map.insert(key, waker);
        key
    }

    /// The earliest deadline, if any timer is registered.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.first_key_value().map(|((d, _), _)| *d)
    }

    /// Number of registered timers.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Wakes and removes every timer whose deadline is at or before `now`, earliest first.
    pub(crate) fn fire_expired(&mut self, now: Instant) {
        while let Some(entry) = self.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
    }
}

/// Waits until `duration` has elapsed.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

/// Future returned by [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    registered: Option<(Rc<Core>, TimerKey)>,
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline; the sleep may be awaited again afterwards.
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        if let Some((core, key)) = self.registered.take() {
            core.timers.borrow_mut().map.remove(&key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match &this.registered {
            None => {
                if Instant::now() >= this.deadline {
                    return Poll::Ready(());
                }
                let core = current();
                let key = core
                    .timers
                    .borrow_mut()
                    .insert(this.deadline, cx.waker().clone());
                this.registered = Some((core, key));
                Poll::Pending
            }
            Some((core, key)) => {
                let mut timers = core.timers.borrow_mut();
                match timers.map.get_mut(key) {
                    // Still registered: not fired yet.
                    Some(waker) => {
                        if !waker.will_wake(cx.waker()) {
                            *waker = cx.waker().clone();
                        }
                        Poll::Pending
                    }
                    // Removed by `fire_expired`: the deadline passed. Stay ready until reset.
                    None => Poll::Ready(()),
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((core, key)) = self.registered.take() {
            if let Ok(mut timers) = core.timers.try_borrow_mut() {
                timers.map.remove(&key);
            }
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline elapsed")
    }
}

/// Runs `future` for at most `duration`. If the deadline passes first, the future is dropped
/// (cancelling any operation it had in flight) and `Err(Elapsed)` is returned.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// Future returned by [`timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self` and is
        // dropped in place with it. `sleep` is Unpin and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(out) = future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

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
                let mut next = scheduled + self.period;
                if next <= now {
                    next = now + self.period;
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
