//! [`Mapping`]: a memory-mapped file whose pages are read through the runtime.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::ops::{Deref, Range};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hdrhistogram::Histogram;
use io_uring::{opcode, squeue};

use super::backend::Backend;
use super::faults::{thread_faults, ThreadFaults};
use super::helper::{default_mlock_budget, HelperPool, Job, Primitive};
use super::request::{Notify, Request};
use super::residency::Residency;
use super::sigbus::{self, Registration};
use super::{page_size, touch_pages};
use crate::driver::ops::{rw, SharedFd};
use crate::driver::{Op, OpCode};

/// How to map a file.
#[derive(Clone, Debug)]
pub struct MapOptions {
    backend: Backend,
    reserve: Option<u64>,
    helper_threads: usize,
    primitive: Primitive,
    mlock_budget: Option<u64>,
    max_run_pages: u64,
    random: bool,
    pool: Option<Arc<HelperPool>>,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

impl MapOptions {
    /// Defaults: `Backend::Auto`, no extra reservation, `MADV_RANDOM`, 8 helper threads with
    /// `PopulateRead` (when the helper backend is chosen), runs of up to 32 pages per read.
    pub fn new() -> MapOptions {
        MapOptions {
            backend: Backend::Auto,
            reserve: None,
            helper_threads: 8,
            primitive: Primitive::PopulateRead,
            mlock_budget: None,
            max_run_pages: 32,
            random: true,
            pool: None,
        }
    }
    /// The prefetch path.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Reserve this many bytes of address space (at least the file's size), so the file can
    /// grow into the mapping without a remap.
    pub fn reserve(mut self, bytes: u64) -> Self {
        self.reserve = Some(bytes);
        self
    }
    /// Helper threads for `Backend::Helper`.
    pub fn helper_threads(mut self, n: usize) -> Self {
        self.helper_threads = n.max(1);
        self
    }
    /// The helper primitive for `Backend::Helper`.
    pub fn primitive(mut self, p: Primitive) -> Self {
        self.primitive = p;
        self
    }
    /// Bytes the `Mlock` primitive may keep locked (default: [`default_mlock_budget`]).
    pub fn mlock_budget(mut self, bytes: u64) -> Self {
        self.mlock_budget = Some(bytes);
        self
    }
    /// Share an existing helper pool instead of starting one for this mapping.
    pub fn helper_pool(mut self, pool: Arc<HelperPool>) -> Self {
        self.pool = Some(pool);
        self
    }
    /// The most contiguous cold pages one `uring-read` request reads (default 32).
    pub fn max_run_pages(mut self, pages: u64) -> Self {
        self.max_run_pages = pages.max(1);
        self
    }
    /// Keep the kernel's default readahead instead of `MADV_RANDOM` (not advised: one random
    /// fault can then read megabytes).
    pub fn default_readahead(mut self) -> Self {
        self.random = false;
        self
    }
}

enum Engine {
    Blocking,
    Helper(Arc<HelperPool>),
    UringMadvise,
    UringRead,
}

#[derive(Default)]
struct Counters {
    prefetches: u64,
    pages_requested: u64,
    pages_brought_in: u64,
    dedup_waits: u64,
    slow_reads: u64,
    failed: u64,
}

struct Inner {
    mmap: Arc<memmap2::Mmap>,
    base: usize,
    reserve: u64,
    fd: SharedFd,
    file_len: Cell<u64>,
    page_shift: u32,
    residency: Residency,
    inflight: RefCell<HashMap<u64, Arc<Request>>>,
    engine: Engine,
    backend: Backend,
    max_run: u64,
    counters: RefCell<Counters>,
    wait_us: RefCell<Histogram<u64>>,
    sigbus: Registration,
}

/// A read-only shared mapping of a file whose pages tasks read without blocking the thread.
///
/// Cloning is cheap (a reference count); clones share the residency record and in-flight
/// requests. A `Mapping` belongs to the thread that created it.
#[derive(Clone)]
pub struct Mapping {
    inner: Rc<Inner>,
}

/// Future returned by [`Mapping::read`].
pub enum ReadFuture<'a> {
    /// Every page was resident: the guard, until polled.
    Ready(Option<PageGuard<'a>>),
    /// Some page was not: the slow path.
    Slow(Pin<Box<dyn Future<Output = io::Result<PageGuard<'a>>> + 'a>>),
}

impl<'a> Future for ReadFuture<'a> {
    type Output = io::Result<PageGuard<'a>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ReadFuture::Ready(g) => {
                Poll::Ready(Ok(g.take().expect("ReadFuture polled after it completed")))
            }
            ReadFuture::Slow(f) => f.as_mut().poll(cx),
        }
    }
}

/// Bytes of a mapping whose pages were resident when it was handed out.
pub struct PageGuard<'a> {
    bytes: &'a [u8],
}

impl Deref for PageGuard<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl fmt::Debug for PageGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageGuard")
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Percentiles of the time tasks waited for cold pages, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WaitStats {
    /// Slow-path reads recorded.
    pub count: u64,
    /// Mean wait.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Longest.
    pub max_us: u64,
}

/// What a mapping's page access has done.
#[derive(Clone, Debug, Default)]
pub struct MemStats {
    /// The prefetch path in use (`Auto` resolved).
    pub backend: Option<Backend>,
    /// Prefetch requests issued (each one I/O or helper job).
    pub prefetches: u64,
    /// Pages those requests covered.
    pub pages_requested: u64,
    /// Pages marked resident after their request completed.
    pub pages_brought_in: u64,
    /// Pages a task found already being fetched, and waited for without a new request.
    pub dedup_waits: u64,
    /// Reads that missed the residency record.
    pub slow_reads: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Pages currently marked resident.
    pub resident_pages: u64,
    /// How long slow reads waited.
    pub wait: WaitStats,
    /// Page faults taken so far by the calling (executor) thread.
    pub executor_faults: ThreadFaults,
    /// If the helper pool fell back from `mlock`, why.
    pub mlock_fallback: Option<String>,
    /// Bytes the helper pool keeps locked.
    pub locked_bytes: u64,
}

impl Mapping {
    /// Maps the file at `path` read-only.
    pub fn open(path: impl AsRef<Path>, options: MapOptions) -> io::Result<Mapping> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Mapping::from_file(file, options)
    }

    /// Maps an open file read-only.
    pub fn from_file(file: std::fs::File, options: MapOptions) -> io::Result<Mapping> {
        let file_len = file.metadata()?.len();
        let page = page_size() as u64;
        let reserve = options
            .reserve
            .unwrap_or(0)
            .max(file_len)
            .max(page)
            .next_multiple_of(page);
        let reserve_usize = usize::try_from(reserve)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "reservation too large"))?;
        // SAFETY: a read-only shared mapping; the runtime never hands out references past the
        // file's current size, and a file shrunk under it is caught by the SIGBUS safety net.
        // Mapping more than the file (the reservation) is allowed by mmap.
        let mmap = unsafe { memmap2::MmapOptions::new().len(reserve_usize).map(&file)? };
        let base = mmap.as_ptr() as usize;
        if options.random {
            mmap.advise(memmap2::Advice::Random)?;
            // The same for the file's reads (uring-read): no readahead around each page.
            // SAFETY: advice on our own fd; no memory is passed.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM);
            }
        }
        let backend = options.backend.resolve();
        let engine = match backend {
            Backend::Blocking => Engine::Blocking,
            Backend::Helper => Engine::Helper(match options.pool {
                Some(p) => p,
                None => Arc::new(HelperPool::new(
                    options.helper_threads,
                    options.primitive,
                    options.mlock_budget.unwrap_or_else(default_mlock_budget),
                )?),
            }),
            Backend::UringMadvise => Engine::UringMadvise,
            Backend::UringRead | Backend::Auto => Engine::UringRead,
        };
        let max_run = match backend {
            Backend::UringRead => options.max_run_pages,
            _ => 1,
        };
        Ok(Mapping {
            inner: Rc::new(Inner {
                sigbus: sigbus::register(base, reserve_usize),
                mmap: Arc::new(mmap),
                base,
                reserve,
                fd: Rc::new(OwnedFd::from(file)),
                file_len: Cell::new(file_len),
                page_shift: page.trailing_zeros(),
                residency: Residency::new(reserve / page),
                inflight: RefCell::new(HashMap::new()),
                engine,
                backend,
                max_run,
                counters: RefCell::new(Counters::default()),
                wait_us: RefCell::new(
                    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
                ),
            }),
        })
    }

    /// The file's size as last seen.
    pub fn len(&self) -> u64 {
        self.inner.file_len.get()
    }

    /// True if the file was empty when last seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of address space reserved (the most the file may grow to without a remap).
    pub fn reserved(&self) -> u64 {
        self.inner.reserve
    }

    /// The prefetch path in use.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The helper pool, for `Backend::Helper`.
    pub fn helper_pool(&self) -> Option<&Arc<HelperPool>> {
        match &self.inner.engine {
            Engine::Helper(p) => Some(p),
            _ => None,
        }
    }

    /// The mapped bytes `range`, if every page of it is known resident: no syscall, a few
    /// nanoseconds. `None` means the caller should use [`read`](Self::read).
    #[inline]
    pub fn try_read(&self, range: Range<u64>) -> Option<PageGuard<'_>> {
        let inner = &*self.inner;
        if range.end > inner.file_len.get() || range.start >= range.end {
            return None;
        }
        if inner.sigbus.damaged() {
            return None;
        }
        let first = range.start >> inner.page_shift;
        let last = (range.end - 1) >> inner.page_shift;
        if !inner.residency.all_set(first, last) {
            return None;
        }
        Some(self.guard(range))
    }

    #[inline]
    fn guard(&self, range: Range<u64>) -> PageGuard<'_> {
        // SAFETY: the range lies within the file (checked by the callers) and within the
        // reservation (file_len <= reserve), the mapping lives as long as `self`, and the
        // memory is a read-only mapping nobody writes through.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (self.inner.base + range.start as usize) as *const u8,
                (range.end - range.start) as usize,
            )
        };
        PageGuard { bytes }
    }

    /// The bytes of `range`, once every page of it is resident. While pages are not, the
    /// task yields and the executor runs other tasks (except with `Backend::Blocking`, which
    /// faults them in on the spot). A range past the end of the file is an error.
    ///
    /// The residency check happens in this call, so when every page is resident the
    /// returned future holds the answer and its poll only hands it over: no syscall, no
    /// allocation. Only a miss allocates the slow path's state.
    #[inline]
    pub fn read(&self, range: Range<u64>) -> ReadFuture<'_> {
        match self.try_read(range.clone()) {
            Some(g) => ReadFuture::Ready(Some(g)),
            None => ReadFuture::Slow(Box::pin(self.read_slow(range))),
        }
    }

    /// Starts bringing the pages of `range` in without waiting for them.
    pub fn prefetch(&self, range: Range<u64>) -> io::Result<()> {
        if range.start >= range.end {
            return Ok(());
        }
        self.check_range(&range)?;
        let (first, last) = self.pages(&range);
        match self.inner.engine {
            Engine::Blocking => {
                let (addr, len) = self.span(first, last - first + 1);
                // SAFETY: advice on our own live mapping; it writes nothing.
                unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_WILLNEED) };
            }
            _ => {
                self.ensure_requests(first, last);
            }
        }
        Ok(())
    }

    /// Drops the pages of `range` from this process and, where no one else maps them, from
    /// the page cache (`MADV_DONTNEED` + `POSIX_FADV_DONTNEED`), and forgets they were
    /// resident. Tests and benchmarks use it to make pages cold without root.
    pub fn evict(&self, range: Range<u64>) -> io::Result<()> {
        let end = range.end.min(self.inner.reserve);
        if range.start >= end {
            return Ok(());
        }
        let inner = &*self.inner;
        let first = range.start >> inner.page_shift;
        let last = (end - 1) >> inner.page_shift;
        let (addr, len) = self.span(first, last - first + 1);
        if let Engine::Helper(pool) = &inner.engine {
            pool.unlock_overlapping(addr, len);
        }
        // SAFETY: drops our own read-only shared mapping's PTEs; the data stays in the file.
        let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advice on our own fd; no memory is passed.
        let rc = unsafe {
            libc::posix_fadvise(
                inner.fd.as_raw_fd(),
                (first << inner.page_shift) as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        inner.residency.clear_range(first, last - first + 1);
        inner
            .inflight
            .borrow_mut()
            .retain(|_, r| r.outcome().is_none());
        Ok(())
    }

    /// [`evict`](Self::evict) of the whole reservation.
    pub fn evict_all(&self) -> io::Result<()> {
        self.evict(0..self.inner.reserve)?;
        self.inner.residency.clear_all();
        Ok(())
    }

    /// Re-reads the file's size (`fstat`). A file that shrank loses the residency marks past
    /// its new end, so those pages go through the checked slow path again.
    pub fn refresh_len(&self) -> io::Result<u64> {
        let inner = &*self.inner;
        // SAFETY: stat is plain old data filled by fstat on our own fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(inner.fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let new_len = (st.st_size as u64).min(inner.reserve);
        let old_len = inner.file_len.replace(new_len);
        if new_len < old_len {
            let first = new_len >> inner.page_shift;
            let last = old_len.div_ceil(1 << inner.page_shift);
            inner.residency.clear_range(first, last - first);
        }
        Ok(new_len)
    }

    /// Counters, wait percentiles, and the calling thread's fault counts.
    pub fn stats(&self) -> MemStats {
        let inner = &*self.inner;
        let c = inner.counters.borrow();
        let h = inner.wait_us.borrow();
        let (fallback, locked) = match &inner.engine {
            Engine::Helper(p) => (p.mlock_fallback(), p.locked_bytes()),
            _ => (None, 0),
        };
        MemStats {
            backend: Some(inner.backend),
            prefetches: c.prefetches,
            pages_requested: c.pages_requested,
            pages_brought_in: c.pages_brought_in,
            dedup_waits: c.dedup_waits,
            slow_reads: c.slow_reads,
            failed: c.failed,
            resident_pages: inner.residency.count(),
            wait: WaitStats {
                count: h.len(),
                mean_us: h.mean(),
                p50_us: h.value_at_quantile(0.5),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
            },
            executor_faults: thread_faults(),
            mlock_fallback: fallback,
            locked_bytes: locked,
        }
    }

    /// Clears the wait-time histogram (between benchmark phases).
    pub fn reset_wait_stats(&self) {
        self.inner.wait_us.borrow_mut().reset();
    }

    fn pages(&self, range: &Range<u64>) -> (u64, u64) {
        let shift = self.inner.page_shift;
        (range.start >> shift, (range.end - 1) >> shift)
    }

    /// Address and byte length of `count` pages from page `first`.
    fn span(&self, first: u64, count: u64) -> (usize, usize) {
        let shift = self.inner.page_shift;
        (
            self.inner.base + (first << shift) as usize,
            (count << shift) as usize,
        )
    }

    /// Fails if the mapped file was truncated under the mapping since it was opened: a read
    /// then hit a page the file no longer holds, the SIGBUS safety net mapped zeros there, and
    /// bytes read from the mapping may be those zeros rather than the file's content. Call it
    /// after copying bytes out of the mapping and before using them.
    pub fn check_intact(&self) -> io::Result<()> {
        self.check_damaged()
    }

    fn check_damaged(&self) -> io::Result<()> {
        if self.inner.sigbus.damaged() {
            return Err(io::Error::other(
                "the mapped file was truncated under the mapping (SIGBUS caught); reopen it",
            ));
        }
        Ok(())
    }

    fn check_range(&self, range: &Range<u64>) -> io::Result<()> {
        self.check_damaged()?;
        if range.end > self.inner.file_len.get() {
            self.refresh_len()?;
        }
        let len = self.inner.file_len.get();
        if range.end > len || range.start > range.end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "range {}..{} is past the end of the mapped file ({len} bytes)",
                    range.start, range.end
                ),
            ));
        }
        Ok(())
    }

    async fn read_slow(&self, range: Range<u64>) -> io::Result<PageGuard<'_>> {
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
            self.record_wait(started);
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
        self.record_wait(started);
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

    fn record_wait(&self, started: Instant) {
        let us = started.elapsed().as_micros().max(1) as u64;
        let _ = self.inner.wait_us.borrow_mut().record(us.min(60_000_000));
    }

    /// Marks a completed request's pages resident (once) and forgets it.
    fn apply(&self, req: &Arc<Request>) {
        if req.applied.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = &*self.inner;
        inner.residency.set_range(req.first_page, req.pages);
        let mut inflight = inner.inflight.borrow_mut();
        for p in req.first_page..req.first_page + req.pages {
            if inflight.get(&p).is_some_and(|r| Arc::ptr_eq(r, req)) {
                inflight.remove(&p);
            }
        }
        inner.counters.borrow_mut().pages_brought_in += req.pages;
    }

    /// Forgets a failed request so the next read retries.
    fn fail(&self, req: &Arc<Request>) {
        if req.applied.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = &*self.inner;
        let mut inflight = inner.inflight.borrow_mut();
        for p in req.first_page..req.first_page + req.pages {
            if inflight.get(&p).is_some_and(|r| Arc::ptr_eq(r, req)) {
                inflight.remove(&p);
            }
        }
        inner.counters.borrow_mut().failed += 1;
    }

    /// The requests covering every non-resident page of `first..=last`: existing ones for
    /// pages already in flight (a deduplicated wait), new ones for the rest.
    fn ensure_requests(&self, first: u64, last: u64) -> Vec<Arc<Request>> {
        let inner = &*self.inner;
        let mut out: Vec<Arc<Request>> = Vec::new();
        let mut p = first;
        while p <= last {
            if inner.residency.is_set(p) {
                p += 1;
                continue;
            }
            let existing = inner.inflight.borrow().get(&p).cloned();
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
            {
                let inflight = inner.inflight.borrow();
                while n < inner.max_run
                    && p + n <= last
                    && !inner.residency.is_set(p + n)
                    && !inflight.contains_key(&(p + n))
                {
                    n += 1;
                }
            }
            let req = Arc::new(Request::new(p, n, Notify::Wakers));
            {
                let mut inflight = inner.inflight.borrow_mut();
                for q in p..p + n {
                    inflight.insert(q, req.clone());
                }
                if inflight.len() > 65536 {
                    // Prefetches nobody waited for: keep only those still in flight.
                    inflight.retain(|_, r| r.outcome().is_none());
                }
            }
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
        match &inner.engine {
            Engine::Blocking => unreachable!("the blocking backend issues no requests"),
            Engine::Helper(pool) => pool.submit(Job {
                addr,
                len,
                request: req,
                keep_alive: inner.mmap.clone(),
            }),
            Engine::UringMadvise => {
                let keep = inner.mmap.clone();
                let op = PopulateRead::new(keep, addr, len);
                crate::spawn(async move {
                    let done = Op::submit(op).await;
                    req.complete(done.result.into_io().map(|_| ()).map_err(errno_of));
                })
                .detach();
            }
            Engine::UringRead => {
                let keep = inner.mmap.clone();
                let fd = inner.fd.clone();
                let offset = req.first_page << inner.page_shift;
                let want = (len as u64).min(inner.file_len.get().saturating_sub(offset)) as usize;
                crate::spawn(async move {
                    let (res, _buf) = rw::read_at(&fd, Vec::with_capacity(len), offset).await;
                    let result = match res {
                        Ok(n) if n >= want => {
                            // The pages are up to date in the page cache: map them in here
                            // (a minor fault each) so the reader's access is free.
                            touch_pages(addr, want.max(1));
                            Ok(())
                        }
                        Ok(_) => Err(libc::EFAULT), // the file shrank under us
                        Err(e) => Err(errno_of(e)),
                    };
                    drop(keep);
                    req.complete(result);
                })
                .detach();
            }
        }
    }
}

/// `IORING_OP_MADVISE(MADV_POPULATE_READ)` over a range of a mapping: an io-wq worker reads
/// the file's pages and maps them in.
struct PopulateRead {
    mapping: Arc<memmap2::Mmap>,
    addr: usize,
    len: usize,
}

impl PopulateRead {
    /// # Panics
    /// If `addr..addr + len` is not inside `mapping`.
    fn new(mapping: Arc<memmap2::Mmap>, addr: usize, len: usize) -> PopulateRead {
        let start = mapping.as_ptr() as usize;
        assert!(addr >= start && addr + len <= start + mapping.len());
        PopulateRead { mapping, addr, len }
    }
}

// SAFETY: the entry names the range `addr..addr + len`, which `new` checked lies inside
// `mapping`, which the value keeps mapped; MADV_POPULATE_READ only reads the file into the
// mapping's page cache pages and maps them, it writes no memory of ours. No fd is used.
unsafe impl OpCode for PopulateRead {
    fn create_entry(&mut self) -> squeue::Entry {
        debug_assert!(self.addr >= self.mapping.as_ptr() as usize);
        opcode::Madvise::new(
            self.addr as *const libc::c_void,
            self.len as libc::off_t,
            libc::MADV_POPULATE_READ,
        )
        .build()
    }
}

fn errno_of(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("len", &self.len())
            .field("reserved", &self.inner.reserve)
            .field("backend", &self.inner.backend)
            .finish()
    }
}
