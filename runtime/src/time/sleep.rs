//! [`sleep`], [`sleep_until`] and their future, [`Sleep`].
//!
//! A timer is registered on its future's first poll and removed when it fires or when its
//! future is dropped, so a cancelled timeout leaves nothing behind.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::driver::TimerKey;
use crate::executor::{current, Executor};

/// Waits until `duration` has elapsed. A duration too long to represent (`Duration::MAX`)
/// sleeps for about 30 years, that is, until cancelled.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(far_deadline(duration))
}

/// `now + duration`, saturated at about 30 years from now (an `Instant` cannot hold more).
pub(crate) fn far_deadline(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600))
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
    registered: Option<(Rc<Executor>, TimerKey)>,
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
        if let Some((executor, key)) = self.registered.take() {
            executor.timers.borrow_mut().remove(&key);
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
                let executor = current();
                let key = executor
                    .timers
                    .borrow_mut()
                    .insert(this.deadline, cx.waker().clone());
                this.registered = Some((executor, key));
                Poll::Pending
            }
            Some((executor, key)) => {
                let mut timers = executor.timers.borrow_mut();
                match timers.waker_mut(key) {
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
        if let Some((executor, key)) = self.registered.take() {
            if let Ok(mut timers) = executor.timers.try_borrow_mut() {
                timers.remove(&key);
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
