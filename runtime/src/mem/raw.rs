//! The raw mechanism, shaped like the kernel proposal `mlock_eventfd(addr, len, eventfd)`:
//! ask for a range to be made resident, and get an eventfd signal when it is.
//!
//! This is what [`Mapping`](super::Mapping) uses under `Backend::Helper`, exposed for people
//! who study the mechanism or want it outside the runtime: no executor is needed. See
//! `examples/mlock_eventfd.rs`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use super::backend::helper::{HelperPool, Job, Primitive};
use super::request::{Notify, Request};

/// A helper pool with an eventfd: `request` a range, read the eventfd, `take_completed`.
pub struct ResidencyNotifier {
    pool: HelperPool,
    eventfd: OwnedFd,
    completions: Arc<Mutex<Vec<(u64, i32)>>>,
}

impl ResidencyNotifier {
    /// Starts `threads` helper threads using `primitive`.
    pub fn new(threads: usize, primitive: Primitive) -> io::Result<ResidencyNotifier> {
        // SAFETY: eventfd has no memory-safety preconditions; a negative return is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ResidencyNotifier {
            pool: HelperPool::new(threads, primitive, super::default_mlock_budget())?,
            // SAFETY: a fresh fd that nothing else owns.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            completions: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The eventfd that becomes readable when requests complete (its counter is the number of
    /// completions since the last read).
    pub fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// `mlock_eventfd(addr, len, eventfd)`: make `[addr, addr + len)` resident, then signal
    /// the eventfd; `token` identifies the request in [`take_completed`](Self::take_completed).
    ///
    /// # Safety
    /// The range must lie in a mapping that stays mapped until the completion is taken, and
    /// (for file mappings) within the file's size.
    pub unsafe fn request(&self, addr: *const u8, len: usize, token: u64) {
        let request = Arc::new(Request::new(
            0,
            0,
            Notify::Eventfd {
                eventfd: self.eventfd.as_raw_fd(),
                token,
                completions: self.completions.clone(),
            },
        ));
        self.pool.submit(Job {
            addr: addr as usize,
            len,
            request,
            keep_alive: Arc::new(()),
        });
    }

    /// Completed requests since the last call: `(token, Ok(()) | Err(os error))`.
    pub fn take_completed(&self) -> Vec<(u64, io::Result<()>)> {
        std::mem::take(&mut *self.completions.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|(t, e)| {
                (
                    t,
                    if e == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(e))
                    },
                )
            })
            .collect()
    }

    /// The helper pool (for its mlock fallback and counters).
    pub fn pool(&self) -> &HelperPool {
        &self.pool
    }
}
