//! The tree's commit (a checkpoint's, or the bulk loader's): bringing the freelist up to
//! date, serialising the dirty pages, and writing them out (pages, sync, meta, sync), with
//! the checks that keep a commit from landing on a file that was truncated or could not
//! grow.

use std::io;

use futures::StreamExt;

use crate::error::{Error, Result};
use crate::format::{Meta, VERSION};
use crate::freelist::{run_key, run_value, RunKey};
use crate::pace::Pace;
use crate::pager::{overflow_run, Pager};
use crate::store::Store;
use crate::types::{PageNo, TxId};

/// Page writes of a tree commit in flight at once.
const WRITES_IN_FLIGHT: usize = 64;

/// Bytes to write at a page: one page, or adjacent pages coalesced into one write.
pub(crate) type PageWrite = (PageNo, Vec<u8>);
use crate::write::{Which, WriteState, MAX_FREELIST_ROUNDS};

impl WriteState {
    /// Steps 1 and 2 of the commit: updates the freelist and serialises every dirty page.
    /// Returns the meta to publish and the writes to make, as (first page, bytes) runs.
    pub async fn finish(&mut self, pager: &Pager) -> Result<(Meta, Vec<PageWrite>)> {
        self.prepare(pager).await?;
        // Write the freelist keys whose runs changed. Writing them copies freelist pages on
        // write, which allocates and frees pages, which changes runs again: repeat until a
        // round changes nothing. Each round touches fewer new pages (a path copied once
        // stays dirty), so this settles in a few rounds.
        self.finishing = true;
        // Yielding by the clock: a checkpoint of 100,000 keys dirties thousands of pages,
        // and serialising them in one go stalled the loop for up to 20 ms.
        let mut pace = Pace::new();
        let mut settled = false;
        for _ in 0..MAX_FREELIST_ROUNDS {
            let mut ops: Vec<(RunKey, Option<u64>)> = std::mem::take(&mut self.migrated)
                .into_iter()
                .map(|k| (k, None))
                .collect();
            let free = self.free.as_mut().expect("prepared");
            for s in free.take_touched() {
                ops.push((run_key(TxId(0), s), free.get(s)));
            }
            for s in self.freed.take_touched() {
                ops.push((run_key(self.txid, s), self.freed.get(s)));
            }
            if ops.is_empty() {
                settled = true;
                break;
            }
            ops.sort_unstable_by_key(|op| op.0);
            for (key, len) in ops {
                pace.step().await;
                match len {
                    Some(len) => {
                        self.put(pager, Which::Free, &key, &run_value(len)).await?;
                    }
                    None => {
                        self.delete(pager, Which::Free, &key).await?;
                    }
                }
            }
        }
        if !settled {
            return Err(Error::Io(std::io::Error::other(
                "the freelist did not settle; the commit was abandoned",
            )));
        }
        let ps = self.page_size;
        let mut pages: Vec<PageWrite> = Vec::with_capacity(self.dirty.len());
        for (&pgno, node) in self.dirty.iter() {
            pages.push((pgno, node.to_page(pgno, self.txid, ps)));
            pace.step().await;
        }
        for (&pgno, value) in &self.dirty_overflow {
            pages.push((pgno, overflow_run(pgno, self.txid, value, ps)));
        }
        pages.extend(self.dirty_raw.drain());
        pages.sort_unstable_by_key(|p| p.0);
        // Coalesce adjacent pages into single writes of up to 1 MiB: first the pages of each
        // run (moved, not copied), then each run's buffer at its final size (growing one page
        // at a time copied megabytes over and over in a single poll).
        let mut groups: Vec<Vec<PageWrite>> = Vec::new();
        let mut group_bytes = 0;
        for page in pages {
            let joins = groups
                .last()
                .and_then(|g| g.last())
                .is_some_and(|(pgno, bytes)| {
                    pgno.plus((bytes.len() / ps) as u64) == page.0 && group_bytes < 1 << 20
                });
            if joins {
                group_bytes += page.1.len();
                groups.last_mut().expect("a group").push(page);
            } else {
                group_bytes = page.1.len();
                groups.push(vec![page]);
            }
        }
        let mut runs: Vec<PageWrite> = Vec::with_capacity(groups.len());
        for mut group in groups {
            if group.len() == 1 {
                runs.push(group.pop().expect("one page"));
                continue;
            }
            let mut buf = Vec::with_capacity(group.iter().map(|p| p.1.len()).sum());
            let start = group[0].0;
            for (_, bytes) in group {
                buf.extend_from_slice(&bytes);
                pace.step().await;
            }
            runs.push((start, buf));
        }
        let meta = Meta {
            page_size: ps as u32,
            txid: self.txid,
            root: self.roots[Which::Data as usize],
            free_root: self.roots[Which::Free as usize],
            page_count: self.page_count,
            entries: self.entries,
            log_txid: self.log_txid,
            store_id: self.store_id,
            version: VERSION,
        };
        Ok((meta, runs))
    }
}

impl Store {
    /// Refuses writes from now on, with `why` (the store must be reopened).
    pub(crate) fn poison(&self, why: String) -> Error {
        let e = Error::Io(io::Error::other(format!("writes are refused: {why}")));
        *self.inner.poisoned.borrow_mut() = Some(why);
        e
    }

    /// Fails (and poisons the writer) if the file no longer holds every page of the last
    /// commit: it was truncated under the store. Committing on top would write the new pages
    /// past a hole of zeros and leave a store that reopens with acknowledged keys missing.
    /// A file cut only in its preallocated tail is fine: it is grown again as needed.
    pub(crate) fn check_not_truncated(&self) -> Result<()> {
        let committed = self.inner.meta.get();
        let need = committed.page_count * committed.page_size as u64;
        let len = self.inner.file.metadata()?.len();
        if len < need || self.inner.pager.check_intact().is_err() {
            return Err(self.poison(format!(
                "the store's file was truncated under it: the last commit uses {need} bytes, \
                 the file has {len}; reopen it (opening reports what is missing)"
            )));
        }
        if len < self.inner.file_len.get() {
            self.inner.file_len.set(len);
        }
        Ok(())
    }

    /// Grows the file ahead of `page_count` pages, in doubling steps of at most 1 GiB.
    pub(crate) async fn ensure_size(&self, page_count: u64) -> Result<()> {
        let ps = self.inner.pager.page_size as u64;
        let need = page_count * ps;
        let have = self.inner.file_len.get();
        if need <= have {
            return Ok(());
        }
        if need > self.inner.reserve {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the store needs {need} bytes but its reservation is {} bytes; reopen it with a larger StoreOptions::reserve",
                    self.inner.reserve
                ),
            )));
        }
        let step = have.clamp(1 << 20, 1 << 30);
        let target = (have + step)
            .max(need)
            .min(self.inner.reserve)
            .next_multiple_of(ps);
        let mut grown = self.grow_to(target).await.map(|()| target);
        if grown.is_err() && target > need {
            // The step did not fit (a full disk, a file size limit): grow by what this commit
            // needs, so writes go on while there is room for them.
            grown = self.grow_to(need).await.map(|()| need);
        }
        match grown {
            Ok(len) => {
                self.inner.file_len.set(len);
                Ok(())
            }
            Err(e) => {
                // A failed fallocate may have grown the file part of the way: go by its real
                // size from now on, so the next commit retries from there.
                if let Ok(m) = self.inner.file.metadata() {
                    self.inner.file_len.set(m.len());
                }
                Err(e.into())
            }
        }
    }

    /// Makes the file at least `len` bytes long, with its blocks allocated where the file
    /// system supports it. Never shrinks it.
    pub(crate) async fn grow_to(&self, len: u64) -> io::Result<()> {
        let file = &self.inner.pager.file;
        match file.fallocate(0, len, 0).await {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                if self.inner.file.metadata()?.len() < len {
                    file.set_len(len).await?;
                }
                Ok(())
            }
            r => r,
        }
    }

    /// Writes a finished tree transaction: pages, sync, meta, sync. The caller publishes the
    /// meta once this returns (it is durable then).
    pub(crate) async fn write_out(&self, meta: Meta, runs: Vec<PageWrite>) -> Result<()> {
        let pager = &self.inner.pager;
        let ps = pager.page_size as u64;
        self.check_not_truncated()?;
        self.ensure_size(meta.page_count).await?;
        let written: Vec<(PageNo, u64)> = runs
            .iter()
            .map(|(pgno, buf)| (*pgno, buf.len() as u64 / ps))
            .collect();
        // The buffers move into the writes (no copy), WRITES_IN_FLIGHT at a time, so a
        // checkpoint of thousands of pages never submits them all in one poll.
        let mut writes = futures::stream::iter(runs)
            .map(|(pgno, buf)| async move { pager.file.write_all_at(buf, pgno.0 * ps).await.0 })
            .buffer_unordered(WRITES_IN_FLIGHT);
        while let Some(r) = writes.next().await {
            r?;
        }
        drop(writes);
        pager.file.sync_data().await?;
        // Truncated while the pages were written? Then the meta must not point at them.
        self.check_not_truncated()?;
        let slot = meta.txid.0 % 2;
        let (res, _) = pager.file.write_all_at(meta.to_page(slot), slot * ps).await;
        let synced = match res {
            Ok(()) => pager.file.sync_data().await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            let why = format!(
                "commit {} failed while writing its meta page ({e}); reopen the store",
                meta.txid
            );
            self.poison(why);
            return Err(e.into());
        }
        let mut pages = 0;
        for (pgno, n) in written {
            pager.mark_written(pgno, n);
            pages += n;
        }
        let mut c = self.inner.counters.borrow_mut();
        c.tree_commits += 1;
        c.tree_syncs += 2;
        c.tree_bytes += pages * ps + ps;
        Ok(())
    }
}
