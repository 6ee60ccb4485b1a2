//! [`yield_now`]: give the other tasks a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields once to the executor: the calling task runs again at the next turn, after every
/// task ready now and every task that the turn's I/O completions, expired timers and other
/// threads' wakes make ready (as tokio's `yield_now` defers to the driver). A task that
/// yields at request boundaries thus lets a request that arrived meanwhile go first.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Future returned by [`yield_now`].
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        crate::executor::deferred_wake(|| cx.waker().wake_by_ref());
        Poll::Pending
    }
}
