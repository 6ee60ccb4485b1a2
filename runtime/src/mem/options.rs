//! [`MapOptions`]: how to map a file and bring its pages in.

use std::sync::Arc;
use std::time::Duration;

use super::backend::helper::{HelperPool, Primitive};
use super::backend::Backend;
use super::keeper::ResidencyMode;

/// The default nice value of the page-in threads (see [`MapOptions::page_in_nice`]): the
/// lowest priority, so a thread that serves hot requests never waits for a CPU behind them.
pub const PAGE_IN_NICE: i32 = 19;

/// How to map a file.
#[derive(Clone, Debug)]
pub struct MapOptions {
    pub(super) backend: Backend,
    pub(super) reserve: Option<u64>,
    pub(super) helper_threads: usize,
    pub(super) primitive: Primitive,
    pub(super) mlock_budget: Option<u64>,
    pub(super) max_run_pages: u64,
    pub(super) random: bool,
    pub(super) pool: Option<Arc<HelperPool>>,
    pub(super) residency: ResidencyMode,
    pub(super) resident_budget: Option<u64>,
    pub(super) scrub_interval: Duration,
    pub(super) page_in_nice: i32,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

impl MapOptions {
    /// Defaults: `Backend::Auto`, `ResidencyMode::Auto`, no extra reservation,
    /// `MADV_RANDOM`, 8 helper threads with `PopulateRead` (when the helper backend is
    /// chosen), runs of up to 32 pages per read, a pinned budget of half the memory the
    /// process could take at open, scrub passes at most every 20 ms, page-in threads at nice
    /// [`PAGE_IN_NICE`].
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
            residency: ResidencyMode::Auto,
            resident_budget: None,
            scrub_interval: Duration::from_millis(20),
            page_in_nice: PAGE_IN_NICE,
        }
    }
    /// How the residency record is kept true when the kernel reclaims pages (see
    /// [`ResidencyMode`]).
    pub fn residency(mut self, mode: ResidencyMode) -> Self {
        self.residency = mode;
        self
    }
    /// Pinned mode: the most bytes kept pinned. Default: half of what the process could
    /// take when the mapping is opened (the smaller of the machine's available memory and
    /// its memory cgroup's headroom). The keeper lowers it further while memory runs short.
    pub fn resident_budget(mut self, bytes: u64) -> Self {
        self.resident_budget = Some(bytes);
        self
    }
    /// Scrubbed mode: the shortest time between two passes (default 20 ms; a pass over a
    /// large resident set takes longer, and passes then run at most a third of the time).
    pub fn scrub_interval(mut self, interval: Duration) -> Self {
        self.scrub_interval = interval;
        self
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
    /// The nice value of the mapping's own threads (the residency keeper, which also reads
    /// cold pages for `Backend::UringThread`, and a helper pool the mapping starts; the
    /// kernel's I/O workers they create inherit it). Default [`PAGE_IN_NICE`] (19): they do
    /// background work for cold pages, and on a machine with few CPUs a thread at the
    /// executor's own priority could keep the executor waiting for a CPU for milliseconds
    /// after a hot request woke it. Use 0 where other busy processes of the machine would
    /// otherwise starve the page-in path. Values are clamped to 0..=19, and a thread only
    /// ever goes down to it: in a process already running at a higher nice value the
    /// threads keep the process's (no mapping raises a thread's priority).
    pub fn page_in_nice(mut self, nice: i32) -> Self {
        self.page_in_nice = nice.clamp(0, 19);
        self
    }
    /// Keep the kernel's default readahead instead of `MADV_RANDOM` (not advised: one random
    /// fault can then read megabytes).
    pub fn default_readahead(mut self) -> Self {
        self.random = false;
        self
    }
}
