//! What a store looks like and has done: [`StoreStats`] and [`FreeSpace`].

use faultless_runtime::mem::MemStats;

use crate::error::Result;
use crate::freelist;
use crate::options::Durability;
use crate::store::Store;
use crate::types::TxId;

#[derive(Default)]
pub(crate) struct Counters {
    /// Tree commits (checkpoints and bulk loads) written.
    pub(crate) tree_commits: u64,
    /// `fdatasync`s of the data file.
    pub(crate) tree_syncs: u64,
    /// Bytes of pages written to the data file.
    pub(crate) tree_bytes: u64,
}

/// What the store looks like and has done.
#[derive(Clone, Debug)]
pub struct StoreStats {
    /// Id of the last visible commit.
    pub txid: u64,
    /// Number of keys.
    pub entries: u64,
    /// The durability level commits get.
    pub durability: Durability,
    /// The tree's commit (checkpoints and bulk loads count them; the meta page's txid).
    pub tree_txid: u64,
    /// The last commit the tree holds: commits after it are in the log and the memtables,
    /// and a reopen replays them.
    pub checkpoint_txid: u64,
    /// Pages in use or free (the high-water mark).
    pub page_count: u64,
    /// Page size in bytes.
    pub page_size: u32,
    /// The file's size in bytes (it grows in steps ahead of the page count).
    pub file_size: u64,
    /// Live read transactions.
    pub readers: usize,
    /// The commit the oldest live reader sees.
    pub oldest_reader_txid: Option<u64>,
    /// Commits since that snapshot: the tree pages and memtable versions it holds back grow
    /// with it, so a large lag means a long-lived reader.
    pub oldest_reader_lag: u64,
    /// Pages free to every reader, from the allocator's memory: `None` until the first
    /// checkpoint loaded it (see [`Store::free_space`] for a figure at any time).
    pub free_pages: Option<u64>,
    /// The longest run of free pages, as `free_pages`.
    pub largest_free_run: Option<u64>,
    /// Commits (transactions) made by this process.
    pub commits: u64,
    /// Of those, the single-key `put`/`delete` calls (grouped into shared log writes).
    pub grouped_ops: u64,
    /// Of the puts, those staged while their key's tree page was still being read: the
    /// lookup (which only the key count needs) ran beside the log write.
    pub unresolved_puts: u64,
    /// Syncs made by this process: the log's (`log_syncs`) and the data file's
    /// (`tree_syncs`).
    pub syncs: u64,
    /// Keys in the memtables (commits after the checkpoint, in memory).
    pub memtable_keys: u64,
    /// Versions in the memtables.
    pub memtable_versions: u64,
    /// Approximate bytes the memtables hold.
    pub memtable_bytes: u64,
    /// The log: commits after the checkpoint (what a reopen would replay).
    pub log_commits: u64,
    /// The oldest of those commits.
    pub log_oldest_txid: Option<u64>,
    /// Bytes of log written since the last checkpoint began.
    pub log_bytes: u64,
    /// Live log segments (with a header of their current use).
    pub log_segments: usize,
    /// Every commit up to this one is on stable storage (in the log, or in the tree).
    pub log_synced_txid: u64,
    /// Log writes (frames) made by this process: each carries every commit staged while the
    /// one before was in flight (group commit).
    pub log_writes: u64,
    /// Syncs of the log made by this process (`O_DSYNC` writes count as one each).
    pub log_syncs: u64,
    /// How long the log's writes took (each with its sync under `Durability::Always`): a
    /// durable commit waits for at least one, so their tail is its latency's floor.
    pub log_write: LatencyStats,
    /// Checkpoints completed by this process.
    pub checkpoints: u64,
    /// True while a checkpoint runs.
    pub checkpoint_running: bool,
    /// How long the last checkpoint took.
    pub last_checkpoint: std::time::Duration,
    /// Of that, the time spent writing and syncing the tree's pages and meta page (the rest
    /// is waiting for the log and merging, on the store's thread).
    pub last_checkpoint_write: std::time::Duration,
    /// Keys the last checkpoint merged into the tree.
    pub last_checkpoint_keys: u64,
    /// Why the last checkpoint failed, if it did.
    pub checkpoint_error: Option<String>,
    /// Tree commits (checkpoints, bulk loads) written by this process.
    pub tree_commits: u64,
    /// `fdatasync`s of the data file by this process.
    pub tree_syncs: u64,
    /// Bytes of tree pages written by this process.
    pub tree_bytes: u64,
    /// The page-access layer's stats (prefetches, waits, executor faults).
    pub pages: MemStats,
}

/// Percentiles of a histogram of microseconds.
pub(crate) fn latency_summary(h: &hdrhistogram::Histogram<u64>) -> LatencyStats {
    LatencyStats {
        count: h.len(),
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
    }
}

/// Percentiles of the log's write times ([`StoreStats::log_write`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyStats {
    /// Writes recorded.
    pub count: u64,
    /// Median, in microseconds.
    pub p50_us: u64,
    /// 99th percentile, in microseconds.
    pub p99_us: u64,
    /// Longest, in microseconds.
    pub max_us: u64,
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
        let i = &self.inner;
        let meta = i.meta.get();
        let t = i.counters.borrow();
        let c = i.commits.borrow();
        let oldest = i.commit_readers.oldest();
        let mems = i.mem.borrow().clone();
        let pos = i.wal.as_ref().map(|w| w.position()).unwrap_or_default();
        let cp = &i.checkpoint;
        let log_commits = c.latest - meta.log_txid;
        StoreStats {
            txid: c.visible,
            entries: c.visible_entries,
            durability: i.durability.get(),
            tree_txid: meta.txid.0,
            checkpoint_txid: meta.log_txid,
            page_count: meta.page_count,
            page_size: meta.page_size,
            file_size: i.file_len.get(),
            readers: i.commit_readers.count(),
            oldest_reader_txid: oldest.map(|o| o.0),
            oldest_reader_lag: oldest.map_or(0, |o| c.visible.saturating_sub(o.0)),
            free_pages: i.free.borrow().as_ref().map(|f| f.pages()),
            largest_free_run: i.free.borrow().as_ref().map(|f| f.largest()),
            commits: c.committed,
            grouped_ops: c.grouped,
            unresolved_puts: c.unresolved_total,
            syncs: i.wal.as_ref().map_or(0, |w| w.syncs.get()) + t.tree_syncs,
            memtable_keys: mems.iter().map(|m| m.keys() as u64).sum(),
            memtable_versions: mems.iter().map(|m| m.versions()).sum(),
            memtable_bytes: mems.iter().map(|m| m.bytes()).sum(),
            log_commits,
            log_oldest_txid: (log_commits > 0).then_some(meta.log_txid + 1),
            log_bytes: c.log_bytes,
            log_segments: pos.segments,
            log_synced_txid: pos.synced_txid.max(meta.log_txid),
            log_writes: i.wal.as_ref().map_or(0, |w| w.writes.get()),
            log_syncs: i.wal.as_ref().map_or(0, |w| w.syncs.get()),
            log_write: i.wal.as_ref().map_or(LatencyStats::default(), |w| {
                latency_summary(&w.write_times.borrow())
            }),
            checkpoints: cp.completed.get(),
            checkpoint_running: cp.running.get(),
            last_checkpoint: cp.last_duration.get(),
            last_checkpoint_write: cp.last_write.get(),
            last_checkpoint_keys: cp.last_keys.get(),
            checkpoint_error: cp.failure.borrow().as_ref().map(|(e, _)| e.clone()),
            tree_commits: t.tree_commits,
            tree_syncs: t.tree_syncs,
            tree_bytes: t.tree_bytes,
            pages: i.pager.map.stats(),
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
