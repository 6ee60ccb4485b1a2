//! The timer driver: the executor's deadline-ordered map of wakers.
//!
//! Timers live in an ordered map keyed by `(deadline, sequence number)` on the executor's
//! thread, so they fire in deadline order, and in registration order for equal deadlines.
//! The executor parks in `io_uring_enter` with a timeout equal to the time left until the
//! earliest deadline ([`Timers::next_deadline`]) and fires every expired timer at the end of
//! each turn ([`Timers::fire_expired`]).

use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

/// A timer's place in the map: its deadline, then its registration order.
pub(crate) type TimerKey = (Instant, u64);

/// The executor's timers.
#[derive(Default)]
pub(crate) struct Timers {
    map: BTreeMap<TimerKey, Waker>,
    next_seq: u64,
}

impl Timers {
    /// Registers a timer that wakes `waker` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let key = (deadline, self.next_seq);
        self.next_seq += 1;
        self.map.insert(key, waker);
        key
    }

    /// Removes a timer (fired or not).
    pub(crate) fn remove(&mut self, key: &TimerKey) {
        self.map.remove(key);
    }

    /// The waker of a timer that has not fired yet; `None` once it fired.
    pub(crate) fn waker_mut(&mut self, key: &TimerKey) -> Option<&mut Waker> {
        self.map.get_mut(key)
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
