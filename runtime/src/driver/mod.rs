//! The io_uring driver: the ring, the table of operations in flight, and parking.
//!
//! * [`OpCode`] (in `opcode.rs`) is the one `unsafe` contract of an operation type: its entry
//!   points only into memory and fds the operation value owns. Every operation type in
//!   [`ops`] implements it once; submitting one ([`Op::submit`]) is a safe call.
//! * [`Op`] (in `op.rs`) is the future of one submitted operation; it owns the operation value
//!   and hands it back with the result.
//! * `slots.rs` is the life cycle of an operation: `Waiting` → `Done` → taken, or, when the
//!   future is dropped first, `Abandoned` until the completion arrives, when the value is
//!   dropped and a result that is a new fd ([`ResultKind::Fd`]) is closed.
//! * `ring.rs` sets the ring up ([`RingMode`]).
//!
//! Submissions are batched: pushing an entry only writes the submission queue; the executor
//! submits them all in one `io_uring_enter` per turn (or earlier, when the queue is full).
//! Nothing is ever freed because a submit call failed: an entry that reached the submission
//! queue is consumed by the kernel sooner or later, and its resources stay in the slot until
//! its completion is reaped.

mod op;
mod opcode;
pub(crate) mod ops;
mod ring;
mod slots;

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use io_uring::{opcode as sys, squeue, types, IoUring};

pub(crate) use op::Op;
pub(crate) use opcode::{OpCode, ResultKind};
pub use ring::RingMode;
pub(crate) use slots::Graveyard;
use slots::{Abandoned, OpTable};

/// `user_data` of the read armed on the runtime's eventfd.
const EVENTFD_TOKEN: u64 = u64::MAX;
/// `user_data` of cancel requests, whose completions need no handling.
const CANCEL_TOKEN: u64 = u64::MAX - 1;
/// `io_uring_enter`'s flag asking for completions (linux/io_uring.h; the io-uring crate
/// keeps its own copy private).
const IORING_ENTER_GETEVENTS: u32 = 1;

/// The outcome of one operation: the CQE's result.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CqeResult {
    pub(crate) res: i32,
}

impl CqeResult {
    /// The result as `io::Result`: negative values are `-errno`.
    pub(crate) fn into_io(self) -> io::Result<u32> {
        if self.res < 0 {
            Err(io::Error::from_raw_os_error(-self.res))
        } else {
            Ok(self.res as u32)
        }
    }
}

/// Counters kept by the driver.
#[derive(Default, Clone, Copy)]
pub(crate) struct DriverStats {
    pub(crate) submitted: u64,
    pub(crate) completed: u64,
    pub(crate) cancelled: u64,
    pub(crate) enters: u64,
}

/// The ring and every operation in flight on it.
pub(crate) struct Driver {
    ring: IoUring,
    ops: OpTable,
    eventfd: RawFd,
    /// Target of the eventfd read; boxed so its address is stable while the read is in flight.
    eventfd_buf: Box<u64>,
    eventfd_armed: bool,
    shut_down: bool,
    /// Entries that could not be pushed because the submission queue was full and could not
    /// be flushed at that moment; pushed before anything else on the next turn.
    backlog: VecDeque<squeue::Entry>,
    graveyard: Graveyard,
    pub(crate) stats: DriverStats,
    pub(crate) mode: RingMode,
}

impl Driver {
    /// A ring of `entries` submission entries in `mode`, with a read armed on `eventfd`.
    pub(crate) fn new(entries: u32, mode: RingMode, eventfd: RawFd) -> io::Result<Driver> {
        let (ring, mode) = ring::build_ring(entries, mode)?;
        let mut driver = Driver {
            ring,
            ops: OpTable::with_capacity(entries as usize),
            eventfd,
            eventfd_buf: Box::new(0),
            eventfd_armed: false,
            shut_down: false,
            backlog: VecDeque::new(),
            graveyard: Vec::new(),
            stats: DriverStats::default(),
            mode,
        };
        driver.arm_eventfd();
        Ok(driver)
    }

    /// Number of operations whose completion has not been reaped.
    pub(crate) fn in_flight(&self) -> usize {
        self.ops.in_flight()
    }

    /// Fds delivered by completions of dropped operations, which the driver closed.
    pub(crate) fn orphan_fds_closed(&self) -> u64 {
        self.ops.orphan_fds_closed
    }

    fn arm_eventfd(&mut self) {
        if self.eventfd_armed || self.shut_down {
            return;
        }
        let buf: *mut u64 = &mut *self.eventfd_buf;
        let entry = sys::Read::new(types::Fd(self.eventfd), buf.cast(), 8)
            .build()
            .user_data(EVENTFD_TOKEN);
        self.eventfd_armed = true;
        // SAFETY: the entry reads 8 bytes into `eventfd_buf`, a box the driver owns and
        // leaks at shutdown if the read never completes; the eventfd belongs to the runtime's
        // `Shared`, which outlives the driver.
        unsafe { self.push(entry) };
    }

    /// Queues an operation and returns its key.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid, and every fd open, until the operation's
    /// completion is reaped: [`Op`] keeps an [`OpCode`] value alive for that long.
    pub(crate) unsafe fn submit(&mut self, entry: squeue::Entry) -> usize {
        if self.shut_down {
            return self.ops.insert_done(CqeResult {
                res: -libc::ECANCELED,
            });
        }
        let key = self.ops.insert_waiting();
        self.stats.submitted += 1;
        // SAFETY: forwarded from this function's contract.
        unsafe { self.push(entry.user_data(key as u64)) };
        key
    }

    /// Pushes an entry onto the submission queue, flushing the queue to the kernel when full.
    ///
    /// # Safety
    /// As for [`submit`](Self::submit).
    unsafe fn push(&mut self, entry: squeue::Entry) {
        if !self.backlog.is_empty() {
            self.flush_backlog();
        }
        // SAFETY: forwarded from this function's contract.
        if unsafe { self.ring.submission().push(&entry) }.is_ok() {
            return;
        }
        let _ = self.enter(0, None);
        // SAFETY: as above.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            // The kernel did not take entries (e.g. EBUSY while completions back up). Keep
            // the entry; it goes in on the next turn after completions are reaped.
            self.backlog.push_back(entry);
        }
    }

    /// Queues a cancel of operation `key` (or, with `None`, of everything in flight).
    fn push_cancel(&mut self, key: Option<usize>) {
        let entry = match key {
            Some(key) => sys::AsyncCancel::new(key as u64).build(),
            None => sys::AsyncCancel2::new(types::CancelBuilder::any()).build(),
        };
        // SAFETY: a cancel request points at no memory and names no fd.
        unsafe { self.push(entry.user_data(CANCEL_TOKEN)) };
    }

    fn flush_backlog(&mut self) {
        while let Some(entry) = self.backlog.front().cloned() {
            // SAFETY: entries in the backlog obey `submit`'s contract, like any other.
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                if self.enter(0, None).is_err() {
                    return;
                }
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(&entry) }.is_err() {
                    return;
                }
            }
            self.backlog.pop_front();
        }
    }

    /// Submits pending entries and optionally waits for `want` completions or `timeout`.
    /// Errors that mean "try again later" (EINTR, ETIME, EBUSY, EAGAIN) are not errors here.
    fn enter(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        self.stats.enters += 1;
        let submitter = self.ring.submitter();
        let result = match timeout {
            Some(t) if want > 0 => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                submitter.submit_with_args(want, &args)
            }
            _ => submitter.submit_and_wait(want),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ETIME) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    Ok(())
                }
                _ => Err(e),
            },
        }
    }

    /// Polls operation `key`; on completion frees the slot and returns the result.
    pub(crate) fn poll_op(&mut self, key: usize, cx: &mut Context<'_>) -> Poll<CqeResult> {
        self.ops.poll(key, cx)
    }

    /// Called when an `Op` is dropped before taking its result: the slot takes ownership of
    /// the operation value and the operation is cancelled.
    pub(crate) fn abandon(&mut self, key: usize, op: Box<dyn std::any::Any>, result: ResultKind) {
        match self.ops.abandon(key, op, result, &mut self.graveyard) {
            Abandoned::InFlight => {
                crate::log::trace!(key, "operation abandoned in flight: cancelling");
                self.stats.cancelled += 1;
                self.push_cancel(Some(key));
            }
            Abandoned::Completed => {}
        }
    }

    /// Lets the kernel finish the work it deferred to this ring's next wait
    /// (`IORING_SETUP_DEFER_TASKRUN` runs completion work only in an enter that asks for
    /// events): among it, letting go of the files of completed operations. Called when
    /// `block_on` returns, so that a file the runtime used (and a lock on it) is released
    /// at once, not whenever the runtime next runs. Does not wait; completions it posts are
    /// reaped by the next turn.
    pub(crate) fn run_deferred_work(&mut self) {
        self.stats.enters += 1;
        let submitter = self.ring.submitter();
        // SAFETY: an enter that submits nothing and waits for nothing passes no memory (the
        // argument pointer is null); GETEVENTS only makes the kernel run the ring's deferred
        // work and post its completions.
        let _ = unsafe { submitter.enter::<libc::sigset_t>(0, 0, IORING_ENTER_GETEVENTS, None) };
    }

    /// Submits queued entries, waits if `block` (up to `timeout`), and reaps completions.
    /// Returns what abandoned operations released, to be dropped by the caller.
    pub(crate) fn turn(&mut self, block: bool, timeout: Option<Duration>) -> Graveyard {
        if !self.backlog.is_empty() {
            self.flush_backlog();
        }
        let need_enter = {
            let sq = self.ring.submission();
            !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
        };
        if block {
            if self.ring.completion().is_empty() {
                let _ = self.enter(1, timeout);
            } else if need_enter {
                let _ = self.enter(0, None);
            }
        } else if need_enter {
            let _ = self.enter(0, None);
        }
        self.reap();
        #[cfg(feature = "tracing")]
        tracing::trace!(
            block,
            in_flight = self.ops.in_flight(),
            enters = self.stats.enters,
            "driver turn"
        );
        std::mem::take(&mut self.graveyard)
    }

    fn reap(&mut self) {
        loop {
            let mut cq = self.ring.completion();
            cq.sync();
            if cq.is_empty() {
                break;
            }
            let mut rearm = false;
            for cqe in &mut cq {
                match cqe.user_data() {
                    EVENTFD_TOKEN => {
                        self.eventfd_armed = false;
                        rearm = true;
                    }
                    CANCEL_TOKEN => {}
                    key => {
                        self.stats.completed += 1;
                        let res = CqeResult { res: cqe.result() };
                        self.ops.complete(key as usize, res, &mut self.graveyard);
                    }
                }
            }
            drop(cq);
            if rearm {
                self.arm_eventfd();
            }
        }
    }

    /// Cancels everything in flight and waits (bounded) for the kernel to finish with it.
    /// Resources of operations the kernel never completes are leaked, never freed.
    pub(crate) fn shutdown(&mut self) -> Graveyard {
        self.shut_down = true;
        crate::log::debug!(
            in_flight = self.ops.in_flight(),
            "driver shutdown: cancelling"
        );
        self.push_cancel(None);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pending = self.eventfd_armed || self.ops.in_flight() > 0;
            if !pending || Instant::now() >= deadline {
                break;
            }
            if !self.backlog.is_empty() {
                self.flush_backlog();
            }
            let _ = self.enter(1, Some(Duration::from_millis(50)));
            self.reap();
            // Operations that ignore the blanket cancel (older kernels) get their own.
            for key in self.ops.in_flight_keys() {
                self.push_cancel(Some(key));
            }
        }
        // Anything still in flight keeps its resources forever: the kernel may still write.
        if self.ops.in_flight() > 0 {
            crate::log::warning!(
                "runtime shutdown: {} io_uring operations never completed; their buffers are leaked",
                self.ops.in_flight()
            );
        }
        self.ops.leak_abandoned();
        if self.eventfd_armed {
            // The eventfd buffer must outlive a read that never completed.
            std::mem::forget(std::mem::replace(&mut self.eventfd_buf, Box::new(0)));
        }
        std::mem::take(&mut self.graveyard)
    }
}
