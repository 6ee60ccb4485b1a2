//! The prefetch paths: [`Backend`] (the name a user picks, and `auto`'s choice among them)
//! and the engine behind each one.
//!
//! * `blocking`: the executor thread touches the pages itself (in `Mapping::read`);
//! * `helper.rs`: the helper-thread pool ([`HelperPool`]);
//! * `uring_madvise.rs`: `IORING_OP_MADVISE(MADV_POPULATE_READ)`;
//! * `uring_read.rs`: a buffered `IORING_OP_READ`, then a touch on completion;
//! * `uring-thread`: the residency keeper's page-in path (`keeper/pagein.rs`).

pub(crate) mod helper;
mod uring_madvise;
mod uring_read;

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Arc;

use helper::{default_mlock_budget, HelperPool, Job};

use super::keeper::{Job as KeeperJob, KeeperShared};
use super::options::MapOptions;
use super::region::Region;
use super::request::Request;
use crate::driver::ops::SharedFd;

/// How a mapping brings cold pages in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Touch the memory on the executor thread: the thread blocks in each major fault. The
    /// baseline every mmap user has today.
    Blocking,
    /// A helper-thread pool makes pages resident (`mlock_eventfd` in user space).
    Helper,
    /// `IORING_OP_MADVISE(MADV_POPULATE_READ)`: io-wq workers populate the pages.
    UringMadvise,
    /// A buffered `IORING_OP_READ` of the pages' file range into a scratch buffer brings them
    /// into the page cache with no helper or io-wq thread; the executor then maps them in
    /// with a minor fault.
    UringRead,
    /// The mapping's keeper thread reads cold pages into the page cache on its own io_uring
    /// (buffered one-byte reads, up to 256 in flight), maps each completed batch in with one
    /// `process_madvise(MADV_POPULATE_READ)`, and completes the requests: the executor does
    /// none of the I/O work, and the reader's touch is free.
    UringThread,
    /// Probe the kernel and pick the fastest that works (`UringThread` on any kernel with
    /// io_uring reads, which is every kernel faultless runs on).
    Auto,
}

impl Backend {
    /// The non-`Auto` backends, in the order the benchmark reports them.
    pub const ALL: [Backend; 5] = [
        Backend::Blocking,
        Backend::Helper,
        Backend::UringMadvise,
        Backend::UringRead,
        Backend::UringThread,
    ];

    /// The name used on command lines and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Blocking => "blocking",
            Backend::Helper => "helper",
            Backend::UringMadvise => "uring-madvise",
            Backend::UringRead => "uring-read",
            Backend::UringThread => "uring-thread",
            Backend::Auto => "auto",
        }
    }

    /// `Auto` resolved to a concrete backend for this kernel; others unchanged.
    pub fn resolve(self) -> Backend {
        if self != Backend::Auto {
            return self;
        }
        let probe = probe();
        if probe.read {
            Backend::UringThread
        } else if probe.madvise && probe.populate_read {
            Backend::UringMadvise
        } else {
            Backend::Helper
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = io::Error;
    fn from_str(s: &str) -> io::Result<Backend> {
        match s {
            "blocking" => Ok(Backend::Blocking),
            "helper" => Ok(Backend::Helper),
            "uring-madvise" => Ok(Backend::UringMadvise),
            "uring-read" => Ok(Backend::UringRead),
            "uring-thread" => Ok(Backend::UringThread),
            "auto" => Ok(Backend::Auto),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unknown backend {s:?} (expected blocking, helper, uring-madvise, uring-read, uring-thread or auto)"
                ),
            )),
        }
    }
}

/// What the kernel supports for page prefetching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// `IORING_OP_READ`.
    pub read: bool,
    /// `IORING_OP_MADVISE`.
    pub madvise: bool,
    /// `madvise(MADV_POPULATE_READ)` (Linux 5.14+).
    pub populate_read: bool,
}

/// Probes the kernel (a throwaway ring's opcode probe, and a populate of one anonymous page).
pub fn probe() -> Probe {
    let mut p = Probe::default();
    if let Ok(ring) = io_uring::IoUring::new(2) {
        let mut probe = io_uring::Probe::new();
        if ring.submitter().register_probe(&mut probe).is_ok() {
            p.read = probe.is_supported(io_uring::opcode::Read::CODE);
            p.madvise = probe.is_supported(io_uring::opcode::Madvise::CODE);
        }
    }
    // SAFETY: maps, populates and unmaps one private anonymous page of our own.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let m = libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if m != libc::MAP_FAILED {
            p.populate_read = libc::madvise(m, page, libc::MADV_POPULATE_READ) == 0;
            libc::munmap(m, page);
        }
    }
    p
}

/// The machinery behind a mapping's backend.
pub(super) enum Engine {
    /// The executor touches the pages (no requests are issued).
    Blocking,
    /// Jobs for a helper pool.
    Helper(Arc<HelperPool>),
    /// `IORING_OP_MADVISE(MADV_POPULATE_READ)`.
    UringMadvise,
    /// `IORING_OP_READ`, then a touch.
    UringRead,
    /// Jobs for the mapping's keeper thread.
    UringThread(Arc<KeeperShared>),
}

/// A run of contiguous pages to bring in: where it is mapped and where it is in the file.
pub(super) struct Run {
    /// Address of the first page in the mapping.
    pub(super) addr: usize,
    /// Length in bytes (whole pages).
    pub(super) len: usize,
    /// Offset of the first page in the file.
    pub(super) offset: u64,
    /// How many of the run's bytes the file holds (the last page may be partial).
    pub(super) file_bytes: usize,
}

impl Engine {
    /// The engine for `backend` (already resolved), starting a helper pool if it needs one
    /// and `options` names none. `keeper` is the mapping's keeper, which `UringThread` needs.
    pub(super) fn new(
        backend: Backend,
        options: &MapOptions,
        keeper: Option<&Arc<KeeperShared>>,
    ) -> io::Result<Engine> {
        Ok(match backend {
            Backend::Blocking => Engine::Blocking,
            Backend::Helper => Engine::Helper(match &options.pool {
                Some(p) => p.clone(),
                None => Arc::new(HelperPool::start(
                    options.helper_threads,
                    options.primitive,
                    options.mlock_budget.unwrap_or_else(default_mlock_budget),
                    options.page_in_nice,
                )?),
            }),
            Backend::UringMadvise => Engine::UringMadvise,
            Backend::UringRead => Engine::UringRead,
            Backend::UringThread | Backend::Auto => Engine::UringThread(
                keeper
                    .expect("the uring-thread backend runs on the mapping's keeper")
                    .clone(),
            ),
        })
    }

    /// True if the engine marks a request's pages resident itself before completing it
    /// (the keeper does, so its eviction sweeps never race a late mark by the executor).
    pub(super) fn marks_resident(&self) -> bool {
        matches!(self, Engine::UringThread(_))
    }

    /// Starts bringing `run` in; `req` completes when it is resident (or failed). The region
    /// (the mapping and its SIGBUS registration) is kept alive until then.
    pub(super) fn issue(&self, req: Arc<Request>, run: Run, region: &Arc<Region>, fd: &SharedFd) {
        match self {
            Engine::Blocking => unreachable!("the blocking backend issues no requests"),
            Engine::Helper(pool) => pool.submit(Job {
                addr: run.addr,
                len: run.len,
                request: req,
                keep_alive: region.clone(),
            }),
            Engine::UringMadvise => uring_madvise::issue(req, run, region.clone()),
            Engine::UringRead => uring_read::issue(req, run, region.clone(), fd.clone()),
            Engine::UringThread(keeper) => keeper.submit(KeeperJob {
                first_page: req.first_page,
                pages: req.pages,
                request: req,
            }),
        }
    }
}

/// The errno of an I/O error (EIO if it has none).
fn errno_of(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}
