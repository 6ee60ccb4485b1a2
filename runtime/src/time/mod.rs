//! Time: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! * `driver.rs`: the executor's timer driver, a deadline-ordered map of wakers that the
//!   executor parks on (the time to the earliest deadline is the park's timeout) and fires at
//!   the end of every turn;
//! * `sleep.rs`, `timeout.rs`, `interval.rs`: the user API on top of it.
//!
//! Timers fire in deadline order, and in registration order for equal deadlines. A timer is
//! registered on its future's first poll and removed when it fires or when its future is
//! dropped, so a cancelled timeout leaves nothing behind.
//!
//! ```
//! use std::time::Duration;
//! use faultless_runtime::time::{interval, sleep, timeout};
//!
//! let rt = faultless_runtime::Runtime::new()?;
//! rt.block_on(async {
//!     sleep(Duration::from_millis(1)).await;
//!     let slow = sleep(Duration::from_secs(60));
//!     assert!(timeout(Duration::from_millis(5), slow).await.is_err(), "timed out");
//!     let mut ticks = interval(Duration::from_millis(1));
//!     for _ in 0..3 {
//!         ticks.tick().await;
//!     }
//! });
//! # Ok::<(), std::io::Error>(())
//! ```

mod driver;
mod interval;
mod sleep;
mod timeout;

pub(crate) use driver::Timers;
pub use interval::{interval, Interval};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, Elapsed, Timeout};
