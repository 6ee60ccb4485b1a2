//! Parking, and the cross-thread wake path that ends a park.
//!
//! Every task's waker is `Send + Sync`: it may be cloned, stored and woken from any thread.
//! A wake on the executor's own thread pushes the task straight onto the local run queue.
//! A wake from any other thread pushes the task's key onto [`Shared`]'s remote queue and, only
//! if the executor has announced that it is about to sleep, writes the runtime's eventfd. The
//! executor keeps an io_uring read armed on that eventfd, so the write completes the read and
//! ends the executor's `submit_and_wait`. Many remote wakes between two executor sleeps cost
//! one eventfd write; the helper-thread prefetch pool uses exactly this path.
//!
//! The sleep protocol is the classic store/load pair under `SeqCst`: the executor stores
//! `sleeping = true` and then loads `remote_pending`; a remote waker stores
//! `remote_pending = true` and then swaps `sleeping` to false. In the single total order of
//! `SeqCst` operations one of the two sides sees the other's store, so a wake is never lost.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::context::WakeClass;

static NEXT_RUNTIME_ID: AtomicUsize = AtomicUsize::new(1);

/// State of one runtime that other threads may touch.
pub(crate) struct Shared {
    /// Unique id of the runtime, compared on wake to find out whether the waking thread is
    /// the executor's own.
    pub(crate) id: usize,
    /// Keys woken from other threads: (foreground, background).
    remote: Mutex<(Vec<usize>, Vec<usize>)>,
    remote_pending: AtomicBool,
    sleeping: AtomicBool,
    eventfd: OwnedFd,
    /// Number of eventfd writes done by remote wakers (a telemetry counter).
    pub(crate) eventfd_signals: AtomicU64,
    /// Number of wakes that arrived from other threads.
    pub(crate) remote_wakes: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> io::Result<Shared> {
        // SAFETY: eventfd has no memory-safety preconditions; a negative return is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Shared {
            id: NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed),
            remote: Mutex::new((Vec::new(), Vec::new())),
            remote_pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            eventfd_signals: AtomicU64::new(0),
            remote_wakes: AtomicU64::new(0),
        })
    }

    /// The eventfd the executor's ring watches.
    pub(crate) fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// Queues `key` from a thread that is not the executor's and wakes the executor if it
    /// may be asleep.
    pub(crate) fn push_remote(&self, key: usize, class: WakeClass) {
        self.remote_wakes.fetch_add(1, Ordering::Relaxed);
        {
            let mut queues = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            match class {
                WakeClass::Foreground | WakeClass::Deferred => queues.0.push(key),
                WakeClass::Background => queues.1.push(key),
            }
        }
        self.remote_pending.store(true, Ordering::SeqCst);
        self.notify_if_sleeping();
    }

    /// Writes the eventfd if (and only if) the executor announced that it is going to sleep.
    pub(crate) fn notify_if_sleeping(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.eventfd_signals.fetch_add(1, Ordering::Relaxed);
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. A failed write can
            // only be EAGAIN on counter overflow, which still leaves the eventfd readable.
            unsafe {
                libc::write(
                    self.eventfd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
    }

    /// Called by the executor before it blocks. Returns false when remote work arrived in
    /// the meantime, in which case the executor must not block.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.remote_pending.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Called by the executor when it is running again.
    pub(crate) fn end_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Moves every remotely woken key into `foreground` or `background`, by its class.
    pub(crate) fn drain_remote(&self, foreground: &mut Vec<usize>, background: &mut Vec<usize>) {
        if !self.remote_pending.load(Ordering::Acquire) {
            return;
        }
        self.remote_pending.store(false, Ordering::SeqCst);
        let mut queues = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        foreground.append(&mut queues.0);
        background.append(&mut queues.1);
    }
}
