//! [`Mapping`]: a memory-mapped file whose pages are read through the runtime.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::backend::helper::HelperPool;
use super::backend::{Backend, Engine};
use super::faults::thread_faults;
use super::inflight::InFlight;
use super::keeper::setup::{keeper_stats, resolve_residency};
use super::keeper::{self, Keeper, KeeperConfig, ResidencyMode};
use super::options::MapOptions;
use super::page_size;
use super::read::{PageGuard, ReadFuture};
use super::region::Region;
use super::residency::{RecordView, Residency};
use super::stats::{Counters, MemStats, WaitTimes};
use crate::driver::ops::SharedFd;

/// A mapping's state, shared by its clones.
pub(super) struct Inner {
    /// The mapped range and its SIGBUS registration, shared with what may touch it after the
    /// mapping is gone (helper jobs, operations in flight).
    pub(super) region: Arc<Region>,
    /// `region.base()`, kept here for the resident path.
    pub(super) base: usize,
    /// `region.damaged_flag()`, kept here for the resident path (valid while `region` is).
    pub(super) damaged: &'static AtomicBool,
    pub(super) reserve: u64,
    pub(super) fd: SharedFd,
    pub(super) file_len: Cell<u64>,
    pub(super) page_shift: u32,
    pub(super) residency: Arc<Residency>,
    /// `residency.view()`, kept here for the resident path (valid while `residency` is).
    pub(super) record: RecordView,
    pub(super) inflight: InFlight,
    pub(super) engine: Engine,
    /// The residency mode in force, and why it is not the one asked for (if so).
    pub(super) residency_mode: ResidencyMode,
    pub(super) residency_fallback: Option<String>,
    /// The thread that keeps the record true (and runs `uring-thread` page-ins); dropped
    /// after `engine`, which may hold its shared state.
    pub(super) keeper: Option<Keeper>,
    pub(super) backend: Backend,
    pub(super) max_run: u64,
    pub(super) counters: RefCell<Counters>,
    pub(super) wait: WaitTimes,
}

/// A read-only shared mapping of a file whose pages tasks read without blocking the thread.
///
/// Cloning is cheap (a reference count); clones share the residency record and in-flight
/// requests. A `Mapping` belongs to the thread that created it.
#[derive(Clone)]
pub struct Mapping {
    pub(super) inner: Rc<Inner>,
}

impl Mapping {
    /// Maps the file at `path` read-only.
    ///
    /// # Safety
    /// As for [`from_file`](Self::from_file).
    pub unsafe fn open(path: impl AsRef<Path>, options: MapOptions) -> io::Result<Mapping> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        // SAFETY: forwarded from this function's contract.
        unsafe { Mapping::from_file(file, options) }
    }

    /// Maps an open file read-only.
    ///
    /// # Safety
    ///
    /// A [`PageGuard`] is a `&[u8]` into the file's pages, and Rust assumes that the bytes
    /// behind a shared reference do not change while it lives. So, while any guard of this
    /// mapping (or of a clone) is alive, nobody may change the bytes of the file it covers:
    /// not by writing them (`write(2)`, another mapping, another process) and not by
    /// truncating the file below them. Writing parts of the file no guard covers is fine, and
    /// so is growing it: a copy-on-write store that rewrites only pages its readers cannot
    /// reach, and never shrinks its file, keeps this contract.
    ///
    /// A file truncated anyway does not kill the process: the SIGBUS safety net maps zeros
    /// over a vanished page, and reads of the mapping fail from then on
    /// ([`check_intact`](Self::check_intact) tells whether bytes already copied out can be
    /// trusted). That limits the damage of a broken contract; it does not make bytes a guard
    /// already lent out correct.
    pub unsafe fn from_file(file: std::fs::File, options: MapOptions) -> io::Result<Mapping> {
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
        // SAFETY: forwarded from this function's contract. The runtime itself never hands out
        // bytes past the file's current size.
        let region = unsafe { Region::map(&file, reserve_usize)? };
        let base = region.base();
        if options.random {
            region.advise_random()?;
            // The same for the file's reads (uring-read): no readahead around each page.
            // SAFETY: advice on our own fd; no memory is passed.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM);
            }
        }
        let mut backend = options.backend.resolve();
        let page_count = reserve / page;
        let residency = Arc::new(Residency::new(page_count));
        let (mut residency_mode, mut residency_fallback) =
            resolve_residency(&options, backend, &region, reserve_usize);
        let region = Arc::new(region);
        let keeper = if residency_mode != ResidencyMode::Trusted || backend == Backend::UringThread
        {
            let started = Keeper::start(
                region.clone(),
                residency.clone(),
                &file,
                file_len,
                KeeperConfig {
                    mode: residency_mode,
                    budget_bytes: options
                        .resident_budget
                        .unwrap_or_else(keeper::default_budget),
                    scrub_interval: options.scrub_interval,
                    page_in: backend == Backend::UringThread,
                    nice: options.page_in_nice,
                },
            );
            match started {
                Ok(k) => Some(k),
                // The keeper's ring is charged to RLIMIT_MEMLOCK too: where even that is
                // refused, run without a keeper, and say so.
                Err(e) if options.backend == Backend::Auto || backend != Backend::UringThread => {
                    let why = format!(
                        "the residency keeper could not start ({e}): the record is trusted \
                         as it is, and reclaimed pages may fault"
                    );
                    if backend == Backend::UringThread {
                        backend = Backend::UringRead;
                    }
                    if residency_mode == ResidencyMode::Pinned {
                        // SAFETY: unlocks our own live mapping; changes no bytes.
                        unsafe {
                            libc::munlock(region.base() as *const libc::c_void, reserve_usize)
                        };
                    }
                    residency_mode = ResidencyMode::Trusted;
                    residency_fallback = Some(why);
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let engine = Engine::new(backend, &options, keeper.as_ref().map(|k| &k.shared))?;
        let max_run = match backend {
            Backend::UringRead | Backend::UringThread => options.max_run_pages,
            _ => 1,
        };
        Ok(Mapping {
            inner: Rc::new(Inner {
                damaged: region.damaged_flag(),
                region,
                base,
                reserve,
                fd: Rc::new(OwnedFd::from(file)),
                file_len: Cell::new(file_len),
                page_shift: page.trailing_zeros(),
                record: residency.view(),
                residency,
                inflight: InFlight::default(),
                engine,
                residency_mode,
                residency_fallback,
                keeper,
                backend,
                max_run,
                counters: RefCell::new(Counters::default()),
                wait: WaitTimes::new(),
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
    #[inline(always)]
    pub fn try_read(&self, range: Range<u64>) -> Option<PageGuard<'_>> {
        let inner = &*self.inner;
        if range.end > inner.file_len.get() || range.start >= range.end {
            return None;
        }
        let first = range.start >> inner.page_shift;
        let last = (range.end - 1) >> inner.page_shift;
        if !inner.record.access(first, last) || inner.damaged.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.guard(range))
    }

    #[inline]
    pub(super) fn guard(&self, range: Range<u64>) -> PageGuard<'_> {
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
        inner.residency.clear_range(first, last - first + 1);
        if inner.residency_mode == ResidencyMode::Pinned {
            // SAFETY: drops our own read-only shared mapping's PTEs (locked ones too); the
            // data stays in the file.
            unsafe { keeper::drop_pinned(addr, len)? };
        } else {
            // SAFETY: drops our own read-only shared mapping's PTEs; the data stays in the
            // file.
            let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
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
        inner.inflight.remove_completed();
        Ok(())
    }

    /// Tells the mapping that the bytes of `range` were just written through the file (with
    /// `pwrite` or the runtime's [`File`](crate::fs::File)), so their pages are in the page
    /// cache. A later read of such a page that is not resident maps it from the cache on the
    /// spot, once the cache confirms it still holds the page (`cachestat`), instead of a
    /// round trip through the page-in path: a database that reads the pages it just wrote
    /// (a B+tree after a checkpoint) does not wait for its own writes. Advice only: if the
    /// kernel dropped the pages meanwhile, reads take the page-in path as usual; what a read
    /// returns always comes from the mapping.
    pub fn note_written(&self, range: Range<u64>) {
        let end = range.end.min(self.inner.reserve);
        if range.start >= end {
            return;
        }
        let (first, last) = self.pages(&(range.start..end));
        self.inner.residency.mark_cached(first, last - first + 1);
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
        if let Some(k) = &inner.keeper {
            k.shared.set_file_len(new_len);
        }
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
            mapped_from_cache: c.mapped_from_cache,
            resident_pages: inner.residency.count(),
            wait: inner.wait.summary(),
            executor_faults: thread_faults(),
            mlock_fallback: fallback,
            locked_bytes: locked,
            residency: keeper_stats(inner),
        }
    }

    /// Clears the wait-time histogram (between benchmark phases).
    pub fn reset_wait_stats(&self) {
        self.inner.wait.reset();
    }

    pub(super) fn pages(&self, range: &Range<u64>) -> (u64, u64) {
        let shift = self.inner.page_shift;
        (range.start >> shift, (range.end - 1) >> shift)
    }

    /// Address and byte length of `count` pages from page `first`.
    pub(super) fn span(&self, first: u64, count: u64) -> (usize, usize) {
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

    pub(super) fn check_damaged(&self) -> io::Result<()> {
        if self.inner.damaged.load(Ordering::Relaxed) {
            return Err(io::Error::other(
                "the mapped file was truncated under the mapping (SIGBUS caught); reopen it",
            ));
        }
        Ok(())
    }

    pub(super) fn check_range(&self, range: &Range<u64>) -> io::Result<()> {
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
