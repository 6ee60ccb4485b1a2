//! The helper-thread prefetch pool: `mlock_eventfd` built in user space.
//!
//! A pool of threads takes `(addr, len)` jobs from a queue and makes the pages resident with
//! one of three primitives:
//!
//! * [`Primitive::PopulateRead`]: `madvise(MADV_POPULATE_READ)` (Linux 5.14+): returns when
//!   the pages are read *and* mapped, so the executor's touch costs nothing;
//! * [`Primitive::WillNeedTouch`]: `madvise(MADV_WILLNEED)` to queue readahead, then a read
//!   of one byte per page to wait for it and map it (works on any kernel);
//! * [`Primitive::Mlock`]: `mlock`, which reads, maps and *pins* the pages, so the kernel
//!   cannot evict them before the task reads them. Locked bytes stay within a budget: past
//!   it, the ranges locked longest ago are unlocked (oldest first, a FIFO approximation of
//!   LRU: a range read again after unlocking is locked again and moves to the back). Where
//!   `mlock` is refused (RLIMIT_MEMLOCK without CAP_IPC_LOCK), the pool says so once on
//!   stderr and in [`HelperPool::mlock_fallback`], and uses `PopulateRead` from then on.
//!
//! Note that `mlock` takes the mm write lock, which serialises it with every page fault in the
//! process (FACTS.md measured ~21k pages/s for 8 threads against ~54k for POPULATE_READ).
//!
//! When a job is done, the helper completes its request, which wakes the waiting tasks
//! through the runtime's cross-thread wake path (an eventfd write only if the executor is
//! asleep, so one signal can finish many requests).

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::mem::request::Request;

/// How helper threads make pages resident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primitive {
    /// `madvise(MADV_POPULATE_READ)`.
    PopulateRead,
    /// `madvise(MADV_WILLNEED)` then a touch of each page.
    WillNeedTouch,
    /// `mlock`, within a byte budget; falls back to `PopulateRead` where refused.
    Mlock,
}

impl std::str::FromStr for Primitive {
    type Err = io::Error;
    fn from_str(s: &str) -> io::Result<Primitive> {
        match s {
            "populate" | "populate-read" => Ok(Primitive::PopulateRead),
            "willneed" | "willneed-touch" => Ok(Primitive::WillNeedTouch),
            "mlock" => Ok(Primitive::Mlock),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown helper primitive {s:?} (expected populate, willneed or mlock)"),
            )),
        }
    }
}

/// One unit of work: make `len` bytes at `addr` resident, then complete `request`.
pub(crate) struct Job {
    pub(crate) addr: usize,
    pub(crate) len: usize,
    pub(crate) request: Arc<Request>,
    /// Keeps the mapping alive while the job may touch it.
    pub(crate) keep_alive: Arc<dyn Any + Send + Sync>,
}

struct Locked {
    addr: usize,
    len: usize,
    _keep_alive: Arc<dyn Any + Send + Sync>,
}

struct MlockState {
    ranges: VecDeque<Locked>,
    bytes: u64,
}

struct PoolInner {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    shutdown: AtomicBool,
    primitive: Primitive,
    mlock_budget: u64,
    mlock: Mutex<MlockState>,
    mlock_refused: AtomicBool,
    fallback: Mutex<Option<String>>,
    jobs_done: AtomicU64,
    jobs_failed: AtomicU64,
}

/// A pool of helper threads that make page ranges resident.
pub struct HelperPool {
    inner: Arc<PoolInner>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl fmt::Debug for HelperPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelperPool")
            .field("threads", &self.threads.len())
            .field("primitive", &self.inner.primitive)
            .finish()
    }
}

/// The default mlock budget: 256 MiB for a privileged process, otherwise the soft
/// RLIMIT_MEMLOCK (so unlocking keeps us under the limit).
pub fn default_mlock_budget() -> u64 {
    const DEFAULT: u64 = 256 << 20;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return DEFAULT;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return DEFAULT;
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        DEFAULT
    } else {
        DEFAULT.min(lim.rlim_cur)
    }
}

impl HelperPool {
    /// Starts `threads` helpers (at least one) using `primitive`; `mlock_budget` bounds the
    /// bytes kept locked by `Primitive::Mlock`.
    /// Its threads run at nice [`PAGE_IN_NICE`](crate::mem::PAGE_IN_NICE).
    pub fn new(threads: usize, primitive: Primitive, mlock_budget: u64) -> io::Result<HelperPool> {
        HelperPool::start(threads, primitive, mlock_budget, crate::mem::PAGE_IN_NICE)
    }

    /// [`HelperPool::new`] with the threads' nice value.
    pub(crate) fn start(
        threads: usize,
        primitive: Primitive,
        mlock_budget: u64,
        nice: i32,
    ) -> io::Result<HelperPool> {
        let inner = Arc::new(PoolInner {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            shutdown: AtomicBool::new(false),
            primitive,
            mlock_budget,
            mlock: Mutex::new(MlockState {
                ranges: VecDeque::new(),
                bytes: 0,
            }),
            mlock_refused: AtomicBool::new(false),
            fallback: Mutex::new(None),
            jobs_done: AtomicU64::new(0),
            jobs_failed: AtomicU64::new(0),
        });
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let inner = inner.clone();
            handles.push(
                thread::Builder::new()
                    .name(format!("faultless-helper-{i}"))
                    .spawn(move || {
                        crate::mem::keeper::lower_priority(nice);
                        helper_loop(&inner)
                    })?,
            );
        }
        Ok(HelperPool {
            inner,
            threads: handles,
        })
    }

    /// Queues a job.
    pub(crate) fn submit(&self, job: Job) {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(job);
        self.inner.ready.notify_one();
    }

    /// The primitive the pool was built with.
    pub fn primitive(&self) -> Primitive {
        self.inner.primitive
    }

    /// Number of helper threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// If `mlock` was refused, the reason and what the pool uses instead.
    pub fn mlock_fallback(&self) -> Option<String> {
        self.inner
            .fallback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes currently kept locked.
    pub fn locked_bytes(&self) -> u64 {
        self.inner
            .mlock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes
    }

    /// Jobs completed successfully, and jobs that failed.
    pub fn jobs(&self) -> (u64, u64) {
        (
            self.inner.jobs_done.load(Ordering::Relaxed),
            self.inner.jobs_failed.load(Ordering::Relaxed),
        )
    }

    /// Unlocks every locked range that overlaps `[addr, addr + len)`.
    pub(crate) fn unlock_overlapping(&self, addr: usize, len: usize) {
        let mut st = self.inner.mlock.lock().unwrap_or_else(|e| e.into_inner());
        let end = addr + len;
        let mut kept = VecDeque::with_capacity(st.ranges.len());
        let mut bytes = st.bytes;
        for r in st.ranges.drain(..) {
            if r.addr < end && addr < r.addr + r.len {
                // SAFETY: munlock only changes page flags of our own mapping, kept alive by
                // the range's keep-alive handle.
                unsafe { libc::munlock(r.addr as *const libc::c_void, r.len) };
                bytes -= r.len as u64;
            } else {
                kept.push_back(r);
            }
        }
        st.ranges = kept;
        st.bytes = bytes;
    }
}

impl Drop for HelperPool {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Jobs still queued never ran: fail their requests so no waiter hangs.
        let rest: Vec<Job> = self
            .inner
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for job in rest {
            job.request.complete(Err(libc::ECANCELED));
        }
        self.unlock_overlapping(0, usize::MAX);
    }
}

fn helper_loop(inner: &PoolInner) {
    loop {
        let job = {
            let mut q = inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if inner.shutdown.load(Ordering::Acquire) {
                    return;
                }
                if let Some(job) = q.pop_front() {
                    break job;
                }
                q = inner.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = run_job(inner, &job);
        if result.is_ok() {
            inner.jobs_done.fetch_add(1, Ordering::Relaxed);
        } else {
            inner.jobs_failed.fetch_add(1, Ordering::Relaxed);
        }
        job.request.complete(result);
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `madvise(MADV_POPULATE_READ)`, retried on EINTR.
pub(crate) fn populate_read(addr: usize, len: usize) -> Result<(), i32> {
    loop {
        // SAFETY: populating pages of a live mapping (the job keeps it alive) only reads the
        // file into memory; it never writes to our memory. The executor validated the range
        // against the file size, and beyond-EOF pages give EFAULT, not SIGBUS.
        let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_POPULATE_READ) };
        if rc == 0 {
            return Ok(());
        }
        match errno() {
            libc::EINTR => continue,
            e => return Err(e),
        }
    }
}

fn willneed_touch(addr: usize, len: usize) -> Result<(), i32> {
    // SAFETY: advice on a live mapping; no memory is written.
    unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_WILLNEED) };
    crate::mem::touch_pages(addr, len);
    Ok(())
}

fn run_job(inner: &PoolInner, job: &Job) -> Result<(), i32> {
    match inner.primitive {
        Primitive::PopulateRead => populate_read(job.addr, job.len),
        Primitive::WillNeedTouch => willneed_touch(job.addr, job.len),
        Primitive::Mlock => {
            if inner.mlock_refused.load(Ordering::Relaxed) {
                return populate_read(job.addr, job.len);
            }
            // SAFETY: mlock of a live mapping (kept alive by the job, then by the Locked
            // entry until it is unlocked) only pins pages.
            let rc = unsafe { libc::mlock(job.addr as *const libc::c_void, job.len) };
            if rc == 0 {
                record_locked(inner, job);
                return Ok(());
            }
            let e = errno();
            if matches!(e, libc::EPERM | libc::ENOMEM | libc::EAGAIN) {
                refuse_mlock(inner, e);
                return populate_read(job.addr, job.len);
            }
            Err(e)
        }
    }
}

fn record_locked(inner: &PoolInner, job: &Job) {
    let mut st = inner.mlock.lock().unwrap_or_else(|e| e.into_inner());
    st.ranges.push_back(Locked {
        addr: job.addr,
        len: job.len,
        _keep_alive: job.keep_alive.clone(),
    });
    st.bytes += job.len as u64;
    while st.bytes > inner.mlock_budget {
        let Some(old) = st.ranges.pop_front() else {
            break;
        };
        // SAFETY: as in `unlock_overlapping`.
        unsafe { libc::munlock(old.addr as *const libc::c_void, old.len) };
        st.bytes -= old.len as u64;
    }
}

fn refuse_mlock(inner: &PoolInner, errno: i32) {
    if inner.mlock_refused.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    let limit = if lim.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        format!("{} KiB", lim.rlim_cur / 1024)
    };
    let msg = format!(
        "mlock refused ({}; RLIMIT_MEMLOCK {limit}, CAP_IPC_LOCK absent?): falling back to MADV_POPULATE_READ",
        io::Error::from_raw_os_error(errno)
    );
    crate::log::warning!("{msg}");
    *inner.fallback.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::task::{Context, Wake, Waker};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::mem::request::Notify;
    use crate::mem::{page_size, Backend, MapOptions, Mapping};

    /// A waker whose `wake` blocks until the test opens the gate: it holds a helper thread
    /// inside the completion of its job.
    #[derive(Default)]
    struct Gate {
        state: Mutex<(bool, bool)>, // (entered, open)
        changed: Condvar,
    }

    impl Wake for Gate {
        fn wake(self: Arc<Self>) {
            let mut st = self.state.lock().unwrap();
            st.0 = true;
            self.changed.notify_all();
            while !st.1 {
                st = self.changed.wait(st).unwrap();
            }
        }
    }

    impl Gate {
        fn wait_entered(&self) {
            let mut st = self.state.lock().unwrap();
            while !st.0 {
                st = self.changed.wait(st).unwrap();
            }
        }
        fn open(&self) {
            self.state.lock().unwrap().1 = true;
            self.changed.notify_all();
        }
    }

    /// A job queued for a mapping that is then dropped, on a file that is then truncated,
    /// runs after both: touching the vanished page raises SIGBUS, and the job must still hold
    /// the mapping's registration with the safety net, or the signal kills the process.
    #[test]
    fn a_queued_job_keeps_the_sigbus_net_of_a_dropped_mapping() {
        let page = page_size();
        let pool = Arc::new(HelperPool::new(1, Primitive::WillNeedTouch, 0).unwrap());

        // Hold the pool's only thread inside the completion of a first job.
        let gate = Arc::new(Gate::default());
        let blocker = Arc::new(Request::new(0, 1, Notify::Wakers));
        let waker = Waker::from(gate.clone());
        assert!(blocker.poll(&mut Context::from_waker(&waker)).is_pending());
        let anon = Arc::new(memmap2::MmapMut::map_anon(page).unwrap());
        pool.submit(Job {
            addr: anon.as_ptr() as usize,
            len: page,
            request: blocker,
            keep_alive: anon.clone(),
        });
        gate.wait_entered();

        // A mapping sharing the pool queues a job for its first page, then goes away, and
        // its file is truncated to nothing.
        let path = std::env::temp_dir().join(format!("faultless-job-net-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 2 * page]).unwrap();
        let options = MapOptions::new()
            .backend(Backend::Helper)
            .helper_pool(pool.clone());
        // SAFETY: no guard of this mapping is ever taken; the truncation below breaks no
        // borrow, it only leaves the queued job a vanished page to touch.
        let map = unsafe { Mapping::open(&path, options) }.unwrap();
        map.prefetch(0..page as u64).unwrap();
        drop(map);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();

        // Let the helper run the job on the truncated page.
        gate.open();
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.jobs().0 + pool.jobs().1 < 2 {
            assert!(
                Instant::now() < deadline,
                "the job never ran: {:?}",
                pool.jobs()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::remove_file(&path).unwrap();
    }
}
