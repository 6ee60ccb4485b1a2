//! The io_uring reactor: the ring, the table of operations in flight, and parking.
//!
//! Every operation gets a slot in a slab; the slot's key is the SQE's `user_data`. A slot is
//! in one of three states:
//!
//! * `Waiting`: submitted, no completion yet; holds the waker of the future that awaits it.
//! * `Done`: the completion arrived; holds the result until the future picks it up.
//! * `Abandoned`: the future was dropped first. The slot owns the operation's resources
//!   (buffers, fds, addresses) until the completion arrives, so the kernel never writes into
//!   freed memory and fds are closed only once the kernel is done with them. Dropping the
//!   future also submits an `ASYNC_CANCEL` for the operation.
//!
//! Submissions are batched: pushing an entry only writes the submission queue; the executor
//! submits them all in one `io_uring_enter` per turn (or earlier, when the queue is full).
//! Nothing is ever freed because a submit call failed: an entry that reached the submission
//! queue is consumed by the kernel sooner or later, and its resources stay in the slot until
//! its completion is reaped.

use std::any::Any;
use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;

use crate::runtime::{Builder, RingMode};

/// `user_data` of the read armed on the runtime's eventfd.
const EVENTFD_TOKEN: u64 = u64::MAX;
/// `user_data` of cancel requests, whose completions need no handling.
const CANCEL_TOKEN: u64 = u64::MAX - 1;

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

enum OpSlot {
    Waiting(Option<Waker>),
    Done(CqeResult),
    Abandoned(Option<Box<dyn Any>>),
}

/// Counters kept by the reactor.
#[derive(Default, Clone, Copy)]
pub(crate) struct ReactorStats {
    pub(crate) submitted: u64,
    pub(crate) completed: u64,
    pub(crate) cancelled: u64,
    pub(crate) enters: u64,
}

/// Resources whose operations completed after their futures were dropped. The caller drops
/// them after releasing the reactor borrow, so a resource's destructor may use the runtime.
pub(crate) type Graveyard = Vec<Box<dyn Any>>;

pub(crate) struct Reactor {
    ring: IoUring,
    ops: Slab<OpSlot>,
    eventfd: RawFd,
    /// Target of the eventfd read; boxed so its address is stable while the read is in flight.
    eventfd_buf: Box<u64>,
    eventfd_armed: bool,
    shut_down: bool,
    /// Entries that could not be pushed because the submission queue was full and could not
    /// be flushed at that moment; pushed before anything else on the next turn.
    backlog: std::collections::VecDeque<squeue::Entry>,
    graveyard: Graveyard,
    pub(crate) stats: ReactorStats,
    pub(crate) mode: RingMode,
}

impl Reactor {
    pub(crate) fn new(builder: &Builder, eventfd: RawFd) -> io::Result<Reactor> {
        let (ring, mode) = build_ring(builder.ring_entries, builder.ring_mode)?;
        let mut reactor = Reactor {
            ring,
            ops: Slab::with_capacity(builder.ring_entries as usize),
            eventfd,
            eventfd_buf: Box::new(0),
            eventfd_armed: false,
            shut_down: false,
            backlog: Default::default(),
            graveyard: Vec::new(),
            stats: ReactorStats::default(),
            mode,
        };
        reactor.arm_eventfd();
        Ok(reactor)
    }

    /// Number of operations whose completion has not been reaped.
    pub(crate) fn in_flight(&self) -> usize {
        self.ops
            .iter()
            .filter(|(_, s)| !matches!(s, OpSlot::Done(_)))
            .count()
    }

    fn arm_eventfd(&mut self) {
        if self.eventfd_armed || self.shut_down {
            return;
        }
        let buf: *mut u64 = &mut *self.eventfd_buf;
        let entry = opcode::Read::new(types::Fd(self.eventfd), buf.cast(), 8)
            .build()
            .user_data(EVENTFD_TOKEN);
        self.eventfd_armed = true;
        self.push(entry);
    }

    /// Queues an operation and returns its key.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid, and every fd open, until the operation's
    /// completion is reaped: the caller keeps the resources in an `Op`, which hands them to
    /// the slot (`abandon`) if it is dropped earlier.
    pub(crate) unsafe fn submit(&mut self, entry: squeue::Entry) -> usize {
        if self.shut_down {
            return self.ops.insert(OpSlot::Done(CqeResult {
                res: -libc::ECANCELED,
            }));
        }
        let key = self.ops.insert(OpSlot::Waiting(None));
        self.stats.submitted += 1;
        self.push(entry.user_data(key as u64));
        key
    }

    /// Pushes an entry onto the submission queue, flushing the queue to the kernel when full.
    fn push(&mut self, entry: squeue::Entry) {
        if !self.backlog.is_empty() {
            self.flush_backlog();
        }
        // SAFETY: the entry's resources are kept alive per `submit`'s contract (or are the
        // reactor's own eventfd buffer, which lives as long as the ring).
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
        let Some(slot) = self.ops.get_mut(key) else {
            // Cannot happen: an Op's slot lives until the Op takes its result.
            return Poll::Ready(CqeResult {
                res: -libc::ECANCELED,
            });
        };
        match slot {
            OpSlot::Done(res) => {
                let res = *res;
                self.ops.remove(key);
                Poll::Ready(res)
            }
            OpSlot::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            OpSlot::Abandoned(_) => Poll::Pending,
        }
    }

    /// Called when an `Op` is dropped before taking its result: the slot takes ownership of
    /// the resources and the operation is cancelled.
    pub(crate) fn abandon(&mut self, key: usize, resources: Box<dyn Any>) {
        match self.ops.get_mut(key) {
            Some(OpSlot::Done(_)) => {
                self.ops.remove(key);
                self.graveyard.push(resources);
            }
            Some(slot @ OpSlot::Waiting(_)) => {
                *slot = OpSlot::Abandoned(Some(resources));
                self.stats.cancelled += 1;
                let cancel = opcode::AsyncCancel::new(key as u64)
                    .build()
                    .user_data(CANCEL_TOKEN);
                self.push(cancel);
            }
            _ => self.graveyard.push(resources),
        }
    }

    /// Submits queued entries, waits if `block` (up to `timeout`), and reaps completions.
    /// Returns resources of abandoned operations that completed, to be dropped by the caller.
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
                let user_data = cqe.user_data();
                if user_data == EVENTFD_TOKEN {
                    self.eventfd_armed = false;
                    rearm = true;
                    continue;
                }
                if user_data == CANCEL_TOKEN {
                    continue;
                }
                complete(
                    &mut self.ops,
                    &mut self.graveyard,
                    &mut self.stats,
                    user_data,
                    &cqe,
                );
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
        let cancel_all = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(CANCEL_TOKEN);
        self.push(cancel_all);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let pending =
                self.eventfd_armed || self.ops.iter().any(|(_, s)| !matches!(s, OpSlot::Done(_)));
            if !pending || std::time::Instant::now() >= deadline {
                break;
            }
            if !self.backlog.is_empty() {
                self.flush_backlog();
            }
            let _ = self.enter(1, Some(Duration::from_millis(50)));
            self.reap();
            // Operations that ignore the blanket cancel (older kernels) get their own.
            let waiting: Vec<usize> = self
                .ops
                .iter()
                .filter(|(_, s)| !matches!(s, OpSlot::Done(_)))
                .map(|(k, _)| k)
                .collect();
            for key in waiting {
                self.push(
                    opcode::AsyncCancel::new(key as u64)
                        .build()
                        .user_data(CANCEL_TOKEN),
                );
            }
        }
        // Anything still in flight keeps its resources forever: the kernel may still write.
        for (_, slot) in self.ops.iter_mut() {
            if let OpSlot::Abandoned(res) = slot {
                if let Some(r) = res.take() {
                    std::mem::forget(r);
                }
            }
        }
        if self.eventfd_armed {
            // The eventfd buffer must outlive a read that never completed.
            std::mem::forget(std::mem::replace(&mut self.eventfd_buf, Box::new(0)));
        }
        std::mem::take(&mut self.graveyard)
    }
}

fn complete(
    ops: &mut Slab<OpSlot>,
    graveyard: &mut Graveyard,
    stats: &mut ReactorStats,
    user_data: u64,
    cqe: &cqueue::Entry,
) {
    let key = user_data as usize;
    let result = CqeResult { res: cqe.result() };
    stats.completed += 1;
    match ops.get_mut(key) {
        Some(slot @ OpSlot::Waiting(_)) => {
            if let OpSlot::Waiting(Some(waker)) = std::mem::replace(slot, OpSlot::Done(result)) {
                waker.wake();
            }
        }
        Some(OpSlot::Abandoned(res)) => {
            if let Some(r) = res.take() {
                graveyard.push(r);
            }
            ops.remove(key);
        }
        _ => {}
    }
}

/// Builds the ring in the requested mode, falling back to simpler setups on older kernels.
fn build_ring(entries: u32, mode: RingMode) -> io::Result<(IoUring, RingMode)> {
    let attempts: &[RingMode] = match mode {
        RingMode::Auto => &[
            RingMode::DeferTaskrun,
            RingMode::CoopTaskrun,
            RingMode::Plain,
        ],
        RingMode::DeferTaskrun => &[RingMode::DeferTaskrun],
        RingMode::CoopTaskrun => &[RingMode::CoopTaskrun],
        RingMode::Plain => &[RingMode::Plain],
    };
    let mut last_err = None;
    for &m in attempts {
        let mut b = IoUring::builder();
        match m {
            RingMode::DeferTaskrun => {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag();
            }
            RingMode::CoopTaskrun => {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            _ => {}
        }
        b.setup_cqsize(entries.saturating_mul(4));
        match b.build(entries) {
            Ok(ring) => return Ok((ring, m)),
            Err(e) => last_err = Some(e),
        }
    }
    let e = last_err.unwrap_or_else(|| io::Error::other("no ring mode to try"));
    let hint = match e.raw_os_error() {
        Some(libc::ENOMEM) => "the ring's memory is charged to RLIMIT_MEMLOCK; raise it (ulimit -l) or use fewer ring entries",
        Some(libc::EPERM) | Some(libc::ENOSYS) => "io_uring is disabled (/proc/sys/kernel/io_uring_disabled) or blocked by seccomp",
        _ => "check the kernel's io_uring support",
    };
    Err(io::Error::new(
        e.kind(),
        format!("cannot create an io_uring instance ({e}): {hint}"),
    ))
}
