//! The table of operations in flight: one slot per operation, keyed by the SQE's
//! `user_data`, and the state machine every operation goes through.
//!
//! ```text
//!              submit                 CQE reaped                 Op polled
//!   (none) ──────────────▶ Waiting ──────────────▶ Done(result) ───────────▶ (freed)
//!                            │                          │
//!                 Op dropped │                          │ Op dropped
//!                 (+ cancel) ▼                          ▼
//!                        Abandoned ───────────────▶ (freed; the op value is dropped and,
//!                                    CQE reaped      for ResultKind::Fd, the fd is closed)
//! ```
//!
//! An abandoned slot owns the operation value (its buffers, fds and addresses) until the
//! completion arrives, so the kernel never writes into freed memory and no fd is closed while
//! an operation uses it. What the slot releases goes to a [`Graveyard`] that the executor drops
//! after the driver's borrow ends, so a destructor may use the runtime.

use std::any::Any;
use std::os::fd::{FromRawFd, OwnedFd};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::opcode::ResultKind;
use super::CqeResult;

/// Resources released by the driver, dropped by the executor outside the driver's borrow.
pub(crate) type Graveyard = Vec<Box<dyn Any>>;

enum Slot {
    Waiting(Option<Waker>),
    Done(CqeResult),
    Abandoned {
        op: Box<dyn Any>,
        result: ResultKind,
    },
}

/// What `abandon` found.
pub(crate) enum Abandoned {
    /// The operation is still in flight: the caller must submit a cancel for it.
    InFlight,
    /// The operation had completed already; the slot is freed.
    Completed,
}

/// Every operation the driver has submitted and not yet retired.
pub(crate) struct OpTable {
    slots: Slab<Slot>,
    /// Fds delivered by completions nobody waited for, closed by the driver.
    pub(crate) orphan_fds_closed: u64,
}

impl OpTable {
    pub(crate) fn with_capacity(n: usize) -> OpTable {
        OpTable {
            slots: Slab::with_capacity(n),
            orphan_fds_closed: 0,
        }
    }

    /// A slot for a newly submitted operation.
    pub(crate) fn insert_waiting(&mut self) -> usize {
        self.slots.insert(Slot::Waiting(None))
    }

    /// A slot for an operation that was never submitted and has its result already.
    pub(crate) fn insert_done(&mut self, result: CqeResult) -> usize {
        self.slots.insert(Slot::Done(result))
    }

    /// Polls operation `key`; on completion frees the slot and returns the result.
    pub(crate) fn poll(&mut self, key: usize, cx: &mut Context<'_>) -> Poll<CqeResult> {
        let Some(slot) = self.slots.get_mut(key) else {
            // Cannot happen: an Op's slot lives until the Op takes its result.
            return Poll::Ready(CqeResult {
                res: -libc::ECANCELED,
            });
        };
        match slot {
            Slot::Done(res) => {
                let res = *res;
                self.slots.remove(key);
                Poll::Ready(res)
            }
            Slot::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Slot::Abandoned { .. } => Poll::Pending,
        }
    }

    /// The `Op` of slot `key` was dropped before taking its result: the slot takes the
    /// operation value until the completion arrives, or, if it has arrived, releases the value
    /// and what the result created.
    pub(crate) fn abandon(
        &mut self,
        key: usize,
        op: Box<dyn Any>,
        result: ResultKind,
        graveyard: &mut Graveyard,
    ) -> Abandoned {
        match self.slots.get_mut(key) {
            Some(slot @ Slot::Waiting(_)) => {
                *slot = Slot::Abandoned { op, result };
                Abandoned::InFlight
            }
            Some(Slot::Done(res)) => {
                let res = *res;
                self.slots.remove(key);
                self.release(res, result, graveyard);
                graveyard.push(op);
                Abandoned::Completed
            }
            // Cannot happen (one Op per slot); keep the value rather than guess.
            _ => {
                graveyard.push(op);
                Abandoned::Completed
            }
        }
    }

    /// Records the completion of operation `key`: wakes its waiter, or retires an abandoned
    /// slot.
    pub(crate) fn complete(&mut self, key: usize, res: CqeResult, graveyard: &mut Graveyard) {
        match self.slots.get_mut(key) {
            Some(slot @ Slot::Waiting(_)) => {
                if let Slot::Waiting(Some(waker)) = std::mem::replace(slot, Slot::Done(res)) {
                    waker.wake();
                }
            }
            Some(Slot::Abandoned { .. }) => {
                if let Slot::Abandoned { op, result } = self.slots.remove(key) {
                    self.release(res, result, graveyard);
                    graveyard.push(op);
                }
            }
            _ => {}
        }
    }

    /// Releases what a completion nobody will read created.
    fn release(&mut self, res: CqeResult, kind: ResultKind, graveyard: &mut Graveyard) {
        match kind {
            ResultKind::Plain => {}
            ResultKind::Fd if res.res < 0 => {}
            ResultKind::Fd => {
                // SAFETY: by the `OpCode` contract of an operation whose result kind is `Fd`,
                // a non-negative result is a new fd that nothing else owns; its future is gone,
                // so this is its only holder. It is closed when the graveyard is dropped.
                let fd = unsafe { OwnedFd::from_raw_fd(res.res) };
                self.orphan_fds_closed += 1;
                crate::log::debug!("closed an fd whose operation's future was dropped");
                graveyard.push(Box::new(fd));
            }
        }
    }

    /// Operations whose completion has not been reaped.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, s)| !matches!(s, Slot::Done(_)))
            .count()
    }

    /// Keys of the operations whose completion has not been reaped.
    pub(crate) fn in_flight_keys(&self) -> Vec<usize> {
        self.slots
            .iter()
            .filter(|(_, s)| !matches!(s, Slot::Done(_)))
            .map(|(k, _)| k)
            .collect()
    }

    /// Leaks the values of abandoned operations that never completed: the kernel may still
    /// write into their memory, so freeing it is never safe.
    pub(crate) fn leak_abandoned(&mut self) {
        for (_, slot) in self.slots.iter_mut() {
            if let Slot::Abandoned { op, .. } = slot {
                let op = std::mem::replace(op, Box::new(()));
                std::mem::forget(op);
            }
        }
    }
}
