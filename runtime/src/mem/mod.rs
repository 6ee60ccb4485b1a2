//! Non-blocking access to memory-mapped files: a cold page makes the task yield, never the
//! thread block.
//!
//! ```
//! use faultless_runtime::mem::{Mapping, MapOptions};
//!
//! let path = std::env::temp_dir().join(format!("faultless-mem-doc-{}", std::process::id()));
//! std::fs::write(&path, vec![7u8; 64 * 1024])?;
//! let rt = faultless_runtime::Runtime::new()?;
//! rt.block_on(async {
//!     // SAFETY: nothing writes or truncates the file while it is mapped: this program
//!     // wrote it above and only removes it after the mapping is gone.
//!     let map = unsafe { Mapping::open(&path, MapOptions::new())? };
//!     map.evict_all()?; // drop its pages: the next read finds them cold
//!     let page = map.read(4096..8192).await?; // yields while the page is read in
//!     assert!(page.iter().all(|&b| b == 7));
//!     assert_eq!(map.stats().slow_reads, 1);
//!     Ok::<(), std::io::Error>(())
//! })?;
//! std::fs::remove_file(&path)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## How it works
//!
//! A [`Mapping`] is a read-only shared mapping of a file (`MADV_RANDOM`, so one fault reads
//! one page rather than megabytes of readahead), optionally reserving more address space
//! than the file has, so a growing file never needs a remap.
//!
//! [`Mapping::read`] first checks a residency bitmap kept by the runtime: a few nanoseconds,
//! no syscall. If every page of the range is marked resident, it returns at once. Otherwise
//! it starts a prefetch of the missing pages (one per run of pages; tasks that need a page
//! already being fetched wait on the same request, so N tasks on one cold page cause one
//! I/O), and the task yields until the request completes. How pages are brought in is the
//! mapping's [`Backend`]:
//!
//! | backend | who waits for the disk | executor thread's fault |
//! |---|---|---|
//! | `blocking` | the executor thread itself | major |
//! | `helper` | a helper thread (`MADV_POPULATE_READ`, `WILLNEED`+touch, or `mlock`) | none |
//! | `uring-madvise` | an io-wq worker (`IORING_OP_MADVISE`, `MADV_POPULATE_READ`) | none |
//! | `uring-read` | nobody: the kernel's async buffered read | minor (mapping the page in) |
//!
//! The bitmap is the runtime's own record, not the kernel's: a page the kernel reclaims
//! under memory pressure still looks resident, and touching it faults on the executor thread.
//! Only the `mlock` helper primitive pins pages (within its budget). See docs/faults.md.
//!
//! Opening a mapping is `unsafe`: the bytes a read lends out are a `&[u8]` into the file, so
//! nobody may change them while they are borrowed (see [`Mapping::from_file`]).
//! Ranges past the end of the file are an error. A file truncated under the mapping anyway is
//! caught by a SIGBUS safety net (see `sigbus.rs`): the process does not die, and reads of
//! that mapping return errors from then on.
//!
//! The code, by concern: `mapping.rs` (the public type and its resident path), `prefetch.rs`
//! (the slow path: requests, waiting, marking pages resident), `inflight.rs` (the table of
//! requests in flight by page), `request.rs` (one request), `residency.rs` (the bitmap),
//! `region.rs` and `sigbus.rs` (the mapping and its safety net), `backend/` (one engine per
//! [`Backend`]), `options.rs`, `stats.rs`, `read.rs` (the guard and the read future),
//! `faults.rs` (the thread's fault counters) and `raw.rs` (the bare helper-pool mechanism).

mod backend;
mod faults;
mod inflight;
mod keeper;
mod mapping;
mod options;
mod prefetch;
pub mod raw;
mod read;
mod region;
mod request;
mod residency;
mod sigbus;
mod stats;

pub use backend::helper::{default_mlock_budget, HelperPool, Primitive};
pub use backend::{probe, Backend, Probe};
pub use faults::{thread_faults, ThreadFaults};
pub use keeper::ResidencyMode;
pub use mapping::Mapping;
pub use options::{MapOptions, PAGE_IN_NICE};
pub use read::{PageGuard, ReadFuture};
pub use stats::{MemStats, ResidencyStats, WaitStats};

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Reads one byte of every page in `[addr, addr + len)`, faulting each in.
pub(crate) fn touch_pages(addr: usize, len: usize) {
    let page = page_size();
    let mut p = addr & !(page - 1);
    while p < addr + len {
        // SAFETY: callers pass ranges of a live mapping within the file's size; a page that
        // vanished (file truncated since) is handled by the SIGBUS safety net.
        unsafe { std::ptr::read_volatile(p as *const u8) };
        p += page;
    }
}
