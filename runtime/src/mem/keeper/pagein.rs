//! The `uring-thread` page-in path, run on the keeper thread: a buffered one-byte
//! `IORING_OP_READ` per cold page on the keeper's own ring brings the page into the page
//! cache (the kernel's async buffered-read path: no io-wq worker, up to 256 reads in flight
//! from one thread), then one `process_madvise(MADV_POPULATE_READ)` per batch of completed
//! pages maps them all into the mapping (and, in pinned mode, locks them), and the keeper
//! marks them resident and completes their requests.
//!
//! Nothing of this runs on the executor thread: per cold page the executor queues a job and
//! later polls the woken task. The kernel's cost of the read (page-cache insertion, the
//! block I/O, the completion) and of mapping the page in is charged to the keeper thread.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use io_uring::{opcode, types, IoUring};
use slab::Slab;

use super::sys;
use super::KeeperShared;
use crate::mem::request::Request;

/// Most page reads in flight on the keeper's ring.
pub(super) const MAX_IN_FLIGHT: usize = 256;
/// `user_data` of the doorbell read; page reads use their slab key.
pub(super) const DOORBELL: u64 = u64::MAX;

/// A run of pages to bring in for one request.
pub(crate) struct Job {
    /// The request to complete.
    pub(crate) request: Arc<Request>,
    /// First page of the run (relative to the mapping).
    pub(crate) first_page: u64,
    /// Pages in the run.
    pub(crate) pages: u64,
}

/// A job whose reads are in flight.
struct Reading {
    job: Job,
    /// Reads not yet completed.
    remaining: u64,
    /// The first error, as an errno.
    error: Option<i32>,
}

/// The page-in state of the keeper thread.
pub(super) struct PageIn {
    reading: Slab<Reading>,
    /// Jobs taken from the queue but not yet submitted (the ring was full).
    backlog: VecDeque<Job>,
    reads_in_flight: usize,
    /// Where the one-byte reads land; never read.
    sink: Box<[u8; 64]>,
    /// Jobs whose reads all completed, waiting to be mapped in.
    done: Vec<Reading>,
}

impl PageIn {
    pub(super) fn new() -> PageIn {
        PageIn {
            reading: Slab::new(),
            backlog: VecDeque::new(),
            reads_in_flight: 0,
            sink: Box::new([0; 64]),
            done: Vec::new(),
        }
    }

    /// Reads still in flight (the keeper may not exit before they complete).
    pub(super) fn busy(&self) -> bool {
        self.reads_in_flight > 0 || !self.backlog.is_empty() || !self.done.is_empty()
    }

    /// Queues `jobs` and submits as many reads as the ring takes.
    pub(super) fn start(&mut self, ring: &mut IoUring, shared: &KeeperShared, jobs: Vec<Job>) {
        self.backlog.extend(jobs);
        while let Some(job) = self.backlog.front() {
            let len = shared.file_len();
            let first_offset = job.first_page << shared.page_shift;
            let readable = if first_offset >= len {
                0
            } else {
                ((len - first_offset).div_ceil(1 << shared.page_shift)).min(job.pages)
            };
            if readable == 0 {
                // Past the end of the file (it shrank): nothing to read.
                let job = self.backlog.pop_front().expect("front exists");
                job.request.complete(Err(libc::EFAULT));
                continue;
            }
            if self.reads_in_flight + readable as usize > MAX_IN_FLIGHT && self.reads_in_flight > 0
            {
                break;
            }
            let job = self.backlog.pop_front().expect("front exists");
            let key = self.reading.insert(Reading {
                remaining: readable,
                error: (readable < job.pages).then_some(libc::EFAULT),
                job,
            });
            let first = self.reading[key].job.first_page;
            for page in first..first + readable {
                let entry =
                    opcode::Read::new(types::Fd(shared.fd.as_raw_fd()), self.sink.as_mut_ptr(), 1)
                        .offset(page << shared.page_shift)
                        .build()
                        .user_data(key as u64);
                // SAFETY: the entry reads one byte into `sink`, a heap buffer the keeper owns
                // and keeps (never moving or reading it) until every read has completed (the
                // keeper loop does not exit while `busy()`); the fd is the keeper's own dup
                // of the mapping's file, open for as long as the keeper lives.
                while unsafe { ring.submission().push(&entry) }.is_err() {
                    let _ = ring.submit();
                }
                self.reads_in_flight += 1;
            }
        }
    }

    /// Records a read's completion (`res` as the CQE gave it).
    pub(super) fn complete_read(&mut self, key: u64, res: i32) {
        self.reads_in_flight -= 1;
        let Some(reading) = self.reading.get_mut(key as usize) else {
            return;
        };
        reading.remaining -= 1;
        match res {
            1.. => {}
            0 => {
                // End of file: the file shrank under the mapping.
                reading.error.get_or_insert(libc::EFAULT);
            }
            e => {
                reading.error.get_or_insert(-e);
            }
        }
        if reading.remaining == 0 {
            let reading = self.reading.remove(key as usize);
            self.done.push(reading);
        }
    }

    /// Maps in every job whose reads completed (one `process_madvise` for all of them),
    /// marks their pages resident and completes their requests. Returns the pages brought in.
    pub(super) fn finish(&mut self, shared: &KeeperShared, pidfd: Option<&OwnedFd>) -> u64 {
        if self.done.is_empty() {
            return 0;
        }
        let mut done = std::mem::take(&mut self.done);
        let mut ranges = Vec::with_capacity(done.len());
        let mut owners = Vec::with_capacity(done.len());
        for (i, r) in done.iter().enumerate() {
            if r.error.is_none() {
                ranges.push(shared.span(r.job.first_page, r.job.pages));
                owners.push(i);
            }
        }
        let mut start = 0;
        while start < ranges.len() {
            // SAFETY: every range lies inside the keeper's region (jobs are runs of the
            // mapping's pages, checked against the reservation when queued), which the
            // keeper keeps mapped; MADV_POPULATE_READ reads the file into those pages and
            // maps them, changing no byte a reader sees.
            match unsafe { sys::advise_ranges(pidfd, &ranges[start..], sys::MADV_POPULATE_READ) } {
                Ok(()) => break,
                Err((i, e)) => {
                    let failed = owners[start + i];
                    done[failed].error = Some(errno(&e));
                    start += i + 1;
                }
            }
        }
        let mut pages = 0;
        for r in done.drain(..) {
            match r.error {
                None => {
                    shared.residency.set_range(r.job.first_page, r.job.pages);
                    pages += r.job.pages;
                    r.job.request.complete(Ok(()));
                }
                Some(e) => r.job.request.complete(Err(e)),
            }
        }
        self.done = done;
        pages
    }

    /// Completes every job not yet started with `ECANCELED` (the mapping is going away).
    pub(super) fn cancel_backlog(&mut self) {
        for job in self.backlog.drain(..) {
            job.request.complete(Err(libc::ECANCELED));
        }
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}
