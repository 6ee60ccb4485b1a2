//! The slow path of a read: find or start the prefetch requests covering the cold pages of a
//! range, wait for them, and mark their pages resident.

use std::io;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use super::backend::{Engine, Run};
use super::read::PageGuard;
use super::request::{Notify, Request};
use super::touch_pages;
use super::Mapping;

impl Mapping {
    pub(super) async fn read_slow(&self, range: Range<u64>) -> io::Result<PageGuard<'_>> {
        // The slow path can afford an fstat: it catches files that shrank.
        self.check_damaged()?;
        self.refresh_len()?;
        self.check_range(&range)?;
        if range.start == range.end {
            return Ok(self.guard(range));
        }
        let started = Instant::now();
        self.inner.counters.borrow_mut().slow_reads += 1;
        let (first, last) = self.pages(&range);
        if let Engine::Blocking = self.inner.engine {
            let (addr, len) = self.span(first, last - first + 1);
            touch_pages(addr, len);
            self.inner.residency.set_range(first, last - first + 1);
            self.inner.wait.record(started);
            self.check_damaged()?;
            return Ok(self.guard(range));
        }
        if self.inner.engine.marks_resident() && self.map_cached(first, last) {
            // Every missing page was in the page cache already: mapped in here, no wait.
            self.inner.wait.record(started);
            self.check_damaged()?;
            return Ok(self.guard(range));
        }
        let mut waiting = self.ensure_requests(first, last);
        let mut failure = None;
        std::future::poll_fn(|cx| {
            waiting.retain(|req| match req.poll(cx) {
                Poll::Ready(Ok(())) => {
                    self.apply(req);
                    false
                }
                Poll::Ready(Err(errno)) => {
                    self.fail(req);
                    failure.get_or_insert((req.first_page, req.pages, errno));
                    false
                }
                Poll::Pending => true,
            });
            if failure.is_some() || waiting.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        self.inner.wait.record(started);
        if let Some((first, pages, errno)) = failure {
            let e = io::Error::from_raw_os_error(errno);
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "bringing in pages {first}..{} of the mapped file failed: {e}",
                    first + pages
                ),
            ));
        }
        self.check_damaged()?;
        // Pages of other runs may have been evicted meanwhile; the residency record is
        // what the guard promises, so re-check rather than assume.
        if !self.inner.residency.all_set(first, last) {
            return Box::pin(self.read_slow(range)).await;
        }
        Ok(self.guard(range))
    }

    /// Maps in the missing pages of `first..=last` on the spot if every one of them is in the
    /// page cache already (pages with the record's "probably cached" mark: unpinned by the
    /// keeper, or written through the file, and not reclaimed by the kernel since),
    /// instead of a round trip through the keeper. Asks the page cache with
    /// [`page_cached`] per page (stopping at the first page that is not), then maps them
    /// with `MADV_POPULATE_READ`. At most `MAP_CACHED_MAX` pages, so the executor's work
    /// stays small.
    fn map_cached(&self, first: u64, last: u64) -> bool {
        const MAP_CACHED_MAX: u64 = 8;
        let inner = &*self.inner;
        let missing: Vec<u64> = (first..=last)
            .filter(|&p| !inner.residency.is_set(p))
            .take(MAP_CACHED_MAX as usize + 1)
            .collect();
        if missing.is_empty()
            || missing.len() as u64 > MAP_CACHED_MAX
            || missing.iter().any(|&p| inner.inflight.contains(p))
        {
            // Too many, or already on their way: wait for the request like everyone else.
            return false;
        }
        if !missing.iter().all(|&p| inner.residency.probably_cached(p)) {
            // A page without the mark (never read or written here, or reclaimed): almost
            // surely not cached, so asking would cost the executor a system call for nothing.
            return false;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&*inner.fd);
        if !missing
            .iter()
            .all(|&p| page_cached(fd, p, inner.page_shift))
        {
            return false;
        }
        // Recorded before mapped: a keeper pass that drops unrecorded pages must not drop
        // these between the two steps.
        for &p in &missing {
            inner.residency.set_range(p, 1);
        }
        for &p in &missing {
            let (addr, len) = self.span(p, 1);
            // SAFETY: a page of our own live mapping inside the file (the caller checked the
            // range); MADV_POPULATE_READ maps the cached page in and changes no bytes.
            if unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_POPULATE_READ) }
                != 0
            {
                inner.residency.clear_range(p, 1);
                return false;
            }
        }
        inner.counters.borrow_mut().mapped_from_cache += missing.len() as u64;
        if let Some(k) = &inner.keeper {
            k.shared.resident_added();
        }
        true
    }

    /// Marks a completed request's pages resident (once) and forgets it.
    fn apply(&self, req: &Arc<Request>) {
        if req.applied.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = &*self.inner;
        if !inner.engine.marks_resident() {
            inner.residency.set_range(req.first_page, req.pages);
        }
        inner.inflight.remove(req);
        inner.counters.borrow_mut().pages_brought_in += req.pages;
    }

    /// Forgets a failed request so the next read retries.
    fn fail(&self, req: &Arc<Request>) {
        if req.applied.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = &*self.inner;
        inner.inflight.remove(req);
        inner.counters.borrow_mut().failed += 1;
    }

    /// The requests covering every non-resident page of `first..=last`: existing ones for
    /// pages already in flight (a deduplicated wait), new ones for the rest.
    pub(super) fn ensure_requests(&self, first: u64, last: u64) -> Vec<Arc<Request>> {
        let inner = &*self.inner;
        let mut out: Vec<Arc<Request>> = Vec::new();
        let mut p = first;
        while p <= last {
            if inner.residency.is_set(p) {
                p += 1;
                continue;
            }
            let existing = inner.inflight.get(p);
            if let Some(req) = existing {
                match req.outcome() {
                    Some(Ok(())) => {
                        // Completed while nobody waited (a prefetch): take its pages.
                        self.apply(&req);
                        continue;
                    }
                    Some(Err(_)) => self.fail(&req),
                    None => {
                        inner.counters.borrow_mut().dedup_waits += 1;
                        if !out.last().is_some_and(|l| Arc::ptr_eq(l, &req)) {
                            out.push(req);
                        }
                        p += 1;
                        continue;
                    }
                }
            }
            let mut n = 1;
            while n < inner.max_run
                && p + n <= last
                && !inner.residency.is_set(p + n)
                && !inner.inflight.contains(p + n)
            {
                n += 1;
            }
            let req = Arc::new(Request::new(p, n, Notify::Wakers));
            inner.inflight.insert(&req);
            {
                let mut c = inner.counters.borrow_mut();
                c.prefetches += 1;
                c.pages_requested += n;
            }
            self.issue(req.clone());
            out.push(req);
            p += n;
        }
        out
    }

    /// Starts the I/O for a new request on this mapping's backend.
    fn issue(&self, req: Arc<Request>) {
        let inner = &*self.inner;
        let (addr, len) = self.span(req.first_page, req.pages);
        let offset = req.first_page << inner.page_shift;
        let file_bytes = (len as u64).min(inner.file_len.get().saturating_sub(offset)) as usize;
        let run = Run {
            addr,
            len,
            offset,
            file_bytes,
        };
        inner.engine.issue(req, run, &inner.region, &inner.fd);
    }
}

/// Whether `cachestat(2)` works here: 0 not tried yet, 1 yes, 2 no.
static CACHESTAT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// True if page `page` of the file `fd` is in the page cache. Asks `cachestat(2)` (Linux
/// 6.5+), which does no I/O. Where the kernel lacks it, a one-byte `preadv2(RWF_NOWAIT)`,
/// which fails at once for a page that is not cached, but starts reading it from the
/// device on the way (the kernel's readahead runs even for `RWF_NOWAIT`): that submission
/// then costs the executor thread a device doorbell, which is why `cachestat` comes first
/// (measured: 10% of the executor's time under memory pressure went to that doorbell).
///
/// The remaining race: `cachestat` also counts a page that someone else's read is still
/// bringing in; mapping it then waits for that read. This mapping's own reads are excluded
/// by the caller (pages in flight go the keeper's way).
fn page_cached(fd: i32, page: u64, page_shift: u32) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    let off = page << page_shift;
    if CACHESTAT.load(Relaxed) != 2 {
        match super::keeper::sys::cachestat_range(fd, off, 1 << page_shift) {
            Some(stat) => {
                CACHESTAT.store(1, Relaxed);
                return stat.cached == 1;
            }
            None if CACHESTAT.load(Relaxed) == 0 => CACHESTAT.store(2, Relaxed),
            None => return false,
        }
    }
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    // SAFETY: reads at most one byte into a live local through a one-element iovec;
    // RWF_NOWAIT makes it fail with EAGAIN rather than wait for I/O.
    let n = unsafe { libc::preadv2(fd, &iov, 1, off as libc::off_t, libc::RWF_NOWAIT) };
    n == 1
}
