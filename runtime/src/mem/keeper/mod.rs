//! The residency keeper: one thread per mapping that keeps the residency record true when
//! the kernel takes pages away, and, for the `uring-thread` backend, brings cold pages in.
//!
//! The record (`residency.rs`) is the runtime's promise that touching a page will not fault.
//! Left alone it goes stale under memory pressure: the kernel reclaims a page of the file and
//! nothing tells the process. The keeper makes the promise hold, by the mode the mapping was
//! opened with ([`ResidencyMode`]):
//!
//! * **Pinned** (the default where `mlock` is permitted): the whole mapping is locked on fault
//!   (`mlock2(MLOCK_ONFAULT)`, one VMA, no splitting), so the kernel cannot reclaim a page the
//!   record says is resident. The keeper keeps the pinned set inside a budget with a CLOCK
//!   hand (`clock.rs`), and shrinks the budget when the machine or the process's memory cgroup
//!   runs short (`headroom.rs`), so pinning never starves anyone else.
//! * **Scrubbed** (the fallback where `mlock` is refused): the keeper asks `mincore` which
//!   recorded pages the kernel reclaimed and clears their bits (`scrub.rs`), gated by
//!   `cachestat`. A page reclaimed between two passes can still fault once.
//! * **Trusted**: the record as it was before the keeper existed (no thread unless the backend
//!   needs one). For data known to fit in memory, and for comparison.
//!
//! For `Backend::UringThread` the same thread also runs the page-in path (`pagein.rs`): the
//! executor queues jobs and rings a doorbell eventfd only if the keeper sleeps; the keeper
//! reads, maps in, marks resident and completes, all off the executor thread.
//!
//! The thread waits on its own io_uring: completions of its page reads, a read armed on the
//! doorbell, and a timeout for periodic work (the budget check and scrub passes).

mod clock;
mod headroom;
mod pagein;
mod scrub;
pub(crate) mod setup;
pub(crate) mod sys;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};

pub(crate) use pagein::Job;

use super::region::Region;
use super::residency::Residency;

/// How a mapping keeps its residency record true when the kernel reclaims pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResidencyMode {
    /// `Pinned` where the process may lock the mapping, otherwise `Scrubbed` (the reason is
    /// in [`MemStats::residency_fallback`](super::MemStats::residency_fallback)).
    Auto,
    /// Lock pages as they are mapped in, so the kernel cannot reclaim them; keep the pinned
    /// set within a budget (CLOCK), shrinking it when memory runs short.
    Pinned,
    /// Check with `mincore` which recorded pages the kernel reclaimed, and forget them.
    Scrubbed,
    /// Trust the record: right only while the data stays in memory.
    Trusted,
}

impl ResidencyMode {
    /// The name used on command lines and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            ResidencyMode::Auto => "auto",
            ResidencyMode::Pinned => "pinned",
            ResidencyMode::Scrubbed => "scrubbed",
            ResidencyMode::Trusted => "trusted",
        }
    }
}

impl std::fmt::Display for ResidencyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ResidencyMode {
    type Err = io::Error;
    fn from_str(s: &str) -> io::Result<ResidencyMode> {
        match s {
            "auto" => Ok(ResidencyMode::Auto),
            "pinned" => Ok(ResidencyMode::Pinned),
            "scrubbed" => Ok(ResidencyMode::Scrubbed),
            "trusted" => Ok(ResidencyMode::Trusted),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unknown residency mode {s:?} (expected auto, pinned, scrubbed or trusted)"
                ),
            )),
        }
    }
}

/// The settings a keeper starts with.
pub(crate) struct KeeperConfig {
    /// Pinned, Scrubbed or Trusted (resolved).
    pub(crate) mode: ResidencyMode,
    /// Pinned: the most bytes to keep pinned (before memory-pressure shrinking).
    pub(crate) budget_bytes: u64,
    /// Scrubbed: time between passes.
    pub(crate) scrub_interval: Duration,
    /// Run the page-in path (`Backend::UringThread`).
    pub(crate) page_in: bool,
    /// The thread's nice value (`MapOptions::page_in_nice`).
    pub(crate) nice: i32,
}

/// What the keeper has done, as counters (read by `Mapping::stats`).
#[derive(Default)]
pub(crate) struct KeeperCounters {
    pub(crate) pages_unpinned: AtomicU64,
    pub(crate) pages_found_reclaimed: AtomicU64,
    pub(crate) scrub_passes: AtomicU64,
    pub(crate) scrubs_skipped: AtomicU64,
    pub(crate) budget_shrinks: AtomicU64,
    pub(crate) reconcile_ranges: AtomicU64,
    pub(crate) pages_brought_in: AtomicU64,
    pub(crate) batches: AtomicU64,
}

/// The state the keeper thread shares with the mapping.
pub(crate) struct KeeperShared {
    /// Keeps the mapping (and its SIGBUS registration) alive while the keeper touches it.
    _region: Arc<Region>,
    pub(crate) residency: Arc<Residency>,
    /// The keeper's own dup of the mapping's file.
    fd: OwnedFd,
    page_shift: u32,
    base: usize,
    /// The file's size as the executor last saw it.
    file_len: AtomicU64,
    mode: ResidencyMode,
    /// Pinned: the configured budget, in pages.
    budget_pages: u64,
    /// Pinned: the budget now in force (the configured one, or less under memory pressure).
    target_pages: AtomicU64,
    scrub_interval: Duration,
    page_in: bool,
    queue: Mutex<Vec<Job>>,
    doorbell: OwnedFd,
    sleeping: AtomicBool,
    stop: AtomicBool,
    pub(crate) counters: KeeperCounters,
    last_error: Mutex<Option<String>>,
}

impl KeeperShared {
    /// Address and length of `count` pages from `first`.
    pub(crate) fn span(&self, first: u64, count: u64) -> (usize, usize) {
        (
            self.base + (first << self.page_shift) as usize,
            (count << self.page_shift) as usize,
        )
    }

    fn file_len(&self) -> u64 {
        self.file_len.load(Ordering::Relaxed)
    }

    /// Records a failure of the keeper's own work (reported in the mapping's stats).
    fn note_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    /// The last failure of the keeper's own work, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Pinned: the bytes the pinned set may take now.
    pub(crate) fn budget_bytes(&self) -> Option<u64> {
        (self.mode == ResidencyMode::Pinned)
            .then(|| self.target_pages.load(Ordering::Relaxed) << self.page_shift)
    }

    /// Tells the keeper the file's size changed.
    pub(crate) fn set_file_len(&self, len: u64) {
        self.file_len.store(len, Ordering::Relaxed);
    }

    /// Queues a page-in job (`Backend::UringThread`) and wakes the keeper if it sleeps.
    pub(crate) fn submit(&self, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
        self.ring_doorbell();
    }

    /// Tells the keeper that the executor marked pages resident itself; wakes it if the
    /// pinned set has outgrown its budget, so the excess does not wait for the next tick.
    pub(crate) fn resident_added(&self) {
        if self.mode == ResidencyMode::Pinned
            && self.residency.count() > self.target_pages.load(Ordering::Relaxed)
        {
            self.ring_doorbell();
        }
    }

    fn ring_doorbell(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to the doorbell eventfd we own.
            unsafe { libc::write(self.doorbell.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    fn take_jobs(&self) -> Vec<Job> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn queue_is_empty(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

/// The keeper thread of one mapping; stopping it (drop) waits for its reads in flight.
pub(crate) struct Keeper {
    pub(crate) shared: Arc<KeeperShared>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Keeper {
    /// Starts the keeper for `region` (a mapping of `file`).
    pub(crate) fn start(
        region: Arc<Region>,
        residency: Arc<Residency>,
        file: &std::fs::File,
        file_len: u64,
        config: KeeperConfig,
    ) -> io::Result<Keeper> {
        let page_shift = super::page_size().trailing_zeros();
        // SAFETY: eventfd has no memory-safety preconditions; a negative return is an error.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        let shared = Arc::new(KeeperShared {
            base: region.base(),
            _region: region,
            residency,
            fd: OwnedFd::from(file.try_clone()?),
            page_shift,
            file_len: AtomicU64::new(file_len),
            mode: config.mode,
            budget_pages: config.budget_bytes >> page_shift,
            target_pages: AtomicU64::new(config.budget_bytes >> page_shift),
            scrub_interval: config.scrub_interval,
            page_in: config.page_in,
            queue: Mutex::new(Vec::new()),
            // SAFETY: the fd was just created and is owned by nobody else.
            doorbell: unsafe { OwnedFd::from_raw_fd(efd) },
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            counters: KeeperCounters::default(),
            last_error: Mutex::new(None),
        });
        let ring = IoUring::new((pagein::MAX_IN_FLIGHT as u32) * 2)?;
        let for_thread = shared.clone();
        let nice = config.nice;
        let thread = thread::Builder::new()
            .name("faultless-keeper".into())
            .spawn(move || {
                lower_priority(nice);
                run(&for_thread, ring)
            })?;
        Ok(Keeper {
            shared,
            thread: Some(thread),
        })
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.sleeping.store(true, Ordering::SeqCst);
        self.shared.ring_doorbell();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Lowers the calling page-in thread's priority to nice `nice` (never raises it); a refusal
/// (a sandbox that filters `setpriority`) leaves it as it was, which only costs hot-request
/// latency.
pub(crate) fn lower_priority(nice: i32) {
    if let Err(_e) = sys::lower_thread_priority(nice) {
        crate::log::debug!(error = %_e, nice, "page-in thread keeps its priority");
    }
}

/// How often pinned mode re-reads the memory headroom.
const HEADROOM_EVERY: Duration = Duration::from_millis(100);
/// How often pinned mode compares a chunk of what is mapped with what is recorded (see
/// `clock::Reconciler`), while pages are being mapped in: a 4 GiB file is covered about
/// every 650 ms. Reading `/proc/self/pagemap` costs ~30 ns per page, so a faster walk would
/// take a tenth of a CPU from the executor on a small machine; with nothing mapped in since
/// the last step (fault-around happens only when pages are mapped in) it does not run.
const RECONCILE_EVERY: Duration = Duration::from_millis(10);

/// The keeper thread's loop.
fn run(shared: &KeeperShared, mut ring: IoUring) {
    let pidfd = sys::own_pidfd().ok();
    let mut page_in = pagein::PageIn::new();
    let mut scrubber = scrub::Scrubber::default();
    let mut hand = 0usize;
    let mut reconciler = clock::Reconciler::new();
    let mut doorbell_buf = Box::new(0u64);
    let mut doorbell_armed = false;
    let mut next_headroom = Instant::now();
    let mut next_reconcile = Instant::now() + RECONCILE_EVERY;
    // Steps the reconciler still owes: a whole pass after the last page was mapped in (by
    // the keeper or the executor), then none while nothing is.
    let mut last_resident = 0u64;
    let mut steps_left = 0u64;
    let mut next_scrub = Instant::now() + shared.scrub_interval;
    let periodic = match shared.mode {
        ResidencyMode::Pinned => Some(HEADROOM_EVERY),
        ResidencyMode::Scrubbed => Some(shared.scrub_interval.min(HEADROOM_EVERY)),
        _ => None,
    };
    loop {
        let stopping = shared.stop.load(Ordering::SeqCst);
        if stopping {
            page_in.cancel_backlog();
            for job in shared.take_jobs() {
                job.request.complete(Err(libc::ECANCELED));
            }
            if !page_in.busy() {
                break;
            }
        } else if shared.page_in {
            // New jobs, and any the ring had no room for last time.
            page_in.start(&mut ring, shared, shared.take_jobs());
        }
        if !doorbell_armed {
            let entry = opcode::Read::new(
                types::Fd(shared.doorbell.as_raw_fd()),
                (&mut *doorbell_buf as *mut u64).cast(),
                8,
            )
            .build()
            .user_data(pagein::DOORBELL);
            // SAFETY: reads 8 bytes into a boxed u64 the loop owns; it is re-armed only after
            // its completion, and at exit a still-armed buffer is leaked, never freed.
            while unsafe { ring.submission().push(&entry) }.is_err() {
                let _ = ring.submit();
            }
            doorbell_armed = true;
        }
        // Wait: for a completion, the doorbell, or the next periodic job. While reads are in
        // flight their completions wake the keeper soon enough to pick up new jobs, so the
        // executor need not ring (one syscall saved per cold page under load); only an idle
        // keeper asks to be rung.
        shared.sleeping.store(
            !page_in.busy() || shared.stop.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        let must_not_sleep = (shared.page_in && !shared.queue_is_empty())
            || shared.stop.load(Ordering::SeqCst) && !page_in.busy();
        let wait_for = if must_not_sleep { 0 } else { 1 };
        let result = match periodic {
            Some(tick) if wait_for > 0 => {
                let ts = types::Timespec::from(tick);
                let args = types::SubmitArgs::new().timespec(&ts);
                ring.submitter().submit_with_args(wait_for, &args)
            }
            _ => ring.submit_and_wait(wait_for),
        };
        shared.sleeping.store(false, Ordering::SeqCst);
        if let Err(e) = result {
            if !matches!(
                e.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY)
            ) {
                shared.note_error(format!("keeper ring: {e}"));
                thread::sleep(Duration::from_millis(1));
            }
        }
        for cqe in ring.completion() {
            if cqe.user_data() == pagein::DOORBELL {
                doorbell_armed = false;
            } else {
                page_in.complete_read(cqe.user_data(), cqe.result());
            }
        }
        let brought = page_in.finish(shared, pidfd.as_ref());
        if brought > 0 {
            shared
                .counters
                .pages_brought_in
                .fetch_add(brought, Ordering::Relaxed);
            shared.counters.batches.fetch_add(1, Ordering::Relaxed);
        }
        let now = Instant::now();
        match shared.mode {
            ResidencyMode::Pinned => {
                if now >= next_headroom {
                    update_target(shared);
                    next_headroom = now + HEADROOM_EVERY;
                }
                let resident = shared.residency.count();
                if brought > 0 || resident > last_resident {
                    steps_left = reconciler.steps_per_pass(shared);
                }
                last_resident = resident;
                if now >= next_reconcile && steps_left > 0 {
                    let n = reconciler.step(shared, pidfd.as_ref());
                    shared
                        .counters
                        .reconcile_ranges
                        .fetch_add(n, Ordering::Relaxed);
                    steps_left -= 1;
                    next_reconcile = Instant::now() + RECONCILE_EVERY;
                }
                let target = shared.target_pages.load(Ordering::Relaxed);
                if shared.residency.count() > target {
                    // Unpin down to a little under the target, so that the next few pages
                    // brought in do not each cost a sweep.
                    let low = target - target / 64;
                    let n = clock::enforce(shared, pidfd.as_ref(), &mut hand, low);
                    shared
                        .counters
                        .pages_unpinned
                        .fetch_add(n, Ordering::Relaxed);
                }
            }
            ResidencyMode::Scrubbed if now >= next_scrub => {
                let started = Instant::now();
                match scrubber.pass(shared) {
                    Some(cleared) => {
                        shared.counters.scrub_passes.fetch_add(1, Ordering::Relaxed);
                        shared
                            .counters
                            .pages_found_reclaimed
                            .fetch_add(cleared, Ordering::Relaxed);
                    }
                    None => {
                        shared
                            .counters
                            .scrubs_skipped
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                // A pass costs ~60-70 ns per resident page: keep the keeper's share of a CPU
                // under a third however large the resident set grows.
                next_scrub = Instant::now() + shared.scrub_interval.max(started.elapsed() * 2);
            }
            _ => {}
        }
    }
    // The doorbell read may still be armed: the kernel cancels it when the ring goes, but
    // the ring's teardown is asynchronous, so its buffer is leaked rather than freed under it.
    drop(ring);
    if doorbell_armed {
        Box::leak(doorbell_buf);
    }
}

/// Pinned mode: lowers the budget in force when memory runs short, raises it back (up to the
/// configured budget) when it does not. What stays free for everyone else: 1/16 of the total
/// memory (of the machine or the cgroup), at least 64 MiB.
fn update_target(shared: &KeeperShared) {
    let (Some(headroom), Some(total)) = (headroom::headroom(), headroom::total()) else {
        return;
    };
    let page = 1u64 << shared.page_shift;
    let reserve = (total / 16).max(64 << 20);
    let pinned = shared.residency.count() * page;
    let allowed = (pinned + headroom).saturating_sub(reserve) / page;
    let target = shared.budget_pages.min(allowed);
    let old = shared.target_pages.swap(target, Ordering::Relaxed);
    if target < old {
        shared
            .counters
            .budget_shrinks
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Pinned mode's default budget: half of the memory the process could take now (the
/// smaller of the machine's available memory and its cgroup's headroom), at least 16 MiB.
pub(crate) fn default_budget() -> u64 {
    (headroom::headroom().unwrap_or(256 << 20) / 2).max(16 << 20)
}

/// Locks `len` bytes at `addr` on fault: the pinned mode's one system call.
///
/// # Safety
/// `addr..addr + len` must be a mapping of ours.
pub(crate) unsafe fn pin_on_fault(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: forwarded from this function's contract.
    unsafe { sys::mlock_onfault(addr, len) }
}

/// Drops pages of a pinned mapping from our page tables (`MADV_DONTNEED_LOCKED`).
///
/// # Safety
/// `addr..addr + len` must be a range of a live mapping of ours.
pub(crate) unsafe fn drop_pinned(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: forwarded from this function's contract; the advice changes no file bytes.
    match unsafe { sys::advise_ranges(None, &[(addr, len)], sys::MADV_DONTNEED_LOCKED) } {
        Ok(()) => Ok(()),
        Err((_, e)) => Err(e),
    }
}
