//! What a store looks like and has done: [`StoreStats`] and [`FreeSpace`].

use faultless_runtime::mem::MemStats;

use crate::error::Result;
use crate::freelist;
use crate::store::Store;
use crate::types::TxId;

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) commits: u64,
    pub(crate) grouped_ops: u64,
    pub(crate) syncs: u64,
}

/// What the store looks like and has done.
#[derive(Clone, Debug)]
pub struct StoreStats {
    /// Id of the last commit.
    pub txid: u64,
    /// Number of keys.
    pub entries: u64,
    /// Pages in use or free (the high-water mark).
    pub page_count: u64,
    /// Page size in bytes.
    pub page_size: u32,
    /// The file's size in bytes (it grows in steps ahead of the page count).
    pub file_size: u64,
    /// Live read transactions.
    pub readers: usize,
    /// The snapshot the oldest live reader holds.
    pub oldest_reader_txid: Option<u64>,
    /// Commits since that snapshot: pages freed by them cannot be reused while it lives, so
    /// a large lag means a long-lived reader is making the file grow.
    pub oldest_reader_lag: u64,
    /// Pages free to every reader, from the allocator's memory: `None` until the first
    /// write transaction loaded it (see [`Store::free_space`] for a figure at any time).
    pub free_pages: Option<u64>,
    /// The longest run of free pages, as `free_pages`.
    pub largest_free_run: Option<u64>,
    /// Commits made by this process.
    pub commits: u64,
    /// `put`/`delete` calls that went through group commit.
    pub grouped_ops: u64,
    /// fdatasync calls made by commits.
    pub syncs: u64,
    /// The page-access layer's stats (prefetches, waits, executor faults).
    pub pages: MemStats,
}

/// Free space as the last commit's freelist records it (see [`Store::free_space`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FreeSpace {
    /// Pages free to every reader: the next allocations take them.
    pub free_pages: u64,
    /// Runs those pages form (contiguous free pages are one run).
    pub free_runs: u64,
    /// The longest run, in pages: the largest value that fits without growing the file is
    /// about this many pages.
    pub largest_free_run: u64,
    /// Pages freed by recent commits that a reader of an older snapshot may still read; they
    /// become free once no reader is that old.
    pub pending_pages: u64,
}

impl Store {
    /// What the store looks like and has done.
    pub fn stats(&self) -> StoreStats {
        let meta = self.inner.meta.get();
        let c = self.inner.counters.borrow();
        let oldest = self.inner.readers.oldest();
        StoreStats {
            txid: meta.txid.0,
            entries: meta.entries,
            page_count: meta.page_count,
            page_size: meta.page_size,
            file_size: self.inner.file_len.get(),
            readers: self.inner.readers.count(),
            oldest_reader_txid: oldest.map(|o| o.0),
            oldest_reader_lag: oldest.map_or(0, |o| meta.txid.0 - o.0),
            free_pages: self.inner.free.borrow().as_ref().map(|f| f.pages()),
            largest_free_run: self.inner.free.borrow().as_ref().map(|f| f.largest()),
            commits: c.commits,
            grouped_ops: c.grouped_ops,
            syncs: c.syncs,
            pages: self.inner.pager.map.stats(),
        }
    }

    /// The allocator's free runs in memory, if loaded and no write transaction holds them,
    /// with the commit they describe (for `check`).
    pub(crate) fn free_runs_in_memory(&self) -> Option<(TxId, Vec<(u64, u64)>)> {
        let free = self.inner.free.borrow();
        let runs = free.as_ref()?.iter().map(|(s, l)| (s.0, l)).collect();
        Some((self.inner.meta.get().txid, runs))
    }

    /// Free space as the last commit recorded it: free pages, the runs they form and the
    /// longest, and pages still pending (reads the freelist tree: cost proportional to its
    /// size).
    pub async fn free_space(&self) -> Result<FreeSpace> {
        let snapshot = self.read_txn(); // keeps the freelist's pages from reuse meanwhile
        let root = self.inner.meta.get().free_root;
        let runs = freelist::scan_all(&self.inner.pager, root).await?;
        drop(snapshot);
        let mut f = FreeSpace::default();
        for r in runs {
            if r.txid == TxId(0) {
                f.free_pages += r.len;
                f.free_runs += 1;
                f.largest_free_run = f.largest_free_run.max(r.len);
            } else {
                f.pending_pages += r.len;
            }
        }
        Ok(f)
    }
}
