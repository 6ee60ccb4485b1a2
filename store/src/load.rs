//! The bulk loader: builds a store from sorted input, writing full pages sequentially.
//!
//! Into an empty store, leaves are filled to 90% in key order and written as they fill,
//! overflow runs in between, then each branch level is built from the level below, and one
//! meta page commits the lot: no copy-on-write, no splits, one sync. Into a store that already
//! has keys, the input is applied with ordinary write transactions of 10,000 keys each.

use futures::lock::OwnedMutexGuard;

use crate::btree::max_inline;
use crate::error::{Error, Result};
use crate::format::{Meta, HEADER};
use crate::node::{Node, Value};
use crate::options::{check_key, check_value};
use crate::pager::overflow_run;
use crate::store::Store;
use crate::types::PageNo;

/// The locks the bulk loader holds: the write lock and the tree's.
type LoadGuard = (OwnedMutexGuard<()>, OwnedMutexGuard<()>);

/// Buffers sequential page writes starting at a page number.
struct SeqWriter {
    start: PageNo,
    buf: Vec<u8>,
}

impl Store {
    /// Loads `items` (strictly increasing keys) into the store and commits; `progress` is
    /// called with the number of entries loaded so far. Returns the number loaded.
    pub async fn load<I>(&self, items: I, mut progress: impl FnMut(u64)) -> Result<u64>
    where
        I: IntoIterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    {
        if !self.is_empty() {
            return self.load_by_transactions(items, progress).await;
        }
        // The bulk path writes the tree directly: the memtables must be empty (a store whose
        // keys were all deleted may still hold the deletions there).
        self.checkpoint().await?;
        let (meta, guard) = self.lock_for_load().await?;
        let mem_empty = {
            let mem = self.inner.mem.borrow();
            mem.active.is_empty() && mem.frozen.is_none()
        };
        if meta.root != PageNo::NONE || !mem_empty {
            drop(guard);
            return self.load_by_transactions(items, progress).await;
        }
        let ps = meta.page_size as usize;
        let txid = meta.txid.next();
        let fill = ps * 9 / 10;
        let mut next = PageNo(meta.page_count);
        let mut w = SeqWriter {
            start: next,
            buf: Vec::new(),
        };
        let mut leaf: Vec<(Vec<u8>, Value)> = Vec::new();
        let mut leaf_size = HEADER;
        let mut level: Vec<(Vec<u8>, PageNo)> = Vec::new();
        let mut prev: Option<Vec<u8>> = None;
        let mut count = 0u64;
        for item in items {
            let (k, v) = item?;
            check_key(&k)?;
            check_value(&v)?;
            if let Some(p) = &prev {
                if *p >= k {
                    return Err(Error::BadInput(format!(
                        "keys must be strictly increasing: {:?} after {:?}",
                        String::from_utf8_lossy(&k),
                        String::from_utf8_lossy(p)
                    )));
                }
            }
            let value = if v.len() > max_inline(ps) {
                let run = overflow_run(next, txid, &v, ps);
                let pgno = next;
                next = next.plus((run.len() / ps) as u64);
                w.buf.extend_from_slice(&run);
                Value::Overflow {
                    pgno,
                    len: v.len() as u32,
                }
            } else {
                Value::Inline(v)
            };
            let entry = (k, value);
            let size = Node::Leaf(vec![entry.clone()]).size() - HEADER;
            if !leaf.is_empty() && leaf_size + size > fill {
                let node = Node::Leaf(std::mem::take(&mut leaf));
                level.push((node.first_key().to_vec(), next));
                w.buf.extend_from_slice(&node.to_page(next, txid, ps));
                next = next.plus(1);
                leaf_size = HEADER;
            }
            prev = Some(entry.0.clone());
            leaf.push(entry);
            leaf_size += size;
            count += 1;
            if count.is_multiple_of(10_000) {
                progress(count);
            }
            if w.buf.len() >= 4 << 20 {
                self.flush_seq(&mut w, next).await?;
            }
        }
        if !leaf.is_empty() {
            let node = Node::Leaf(leaf);
            level.push((node.first_key().to_vec(), next));
            w.buf.extend_from_slice(&node.to_page(next, txid, ps));
            next = next.plus(1);
        }
        while level.len() > 1 {
            let mut upper = Vec::new();
            let mut branch: Vec<(Vec<u8>, PageNo)> = Vec::new();
            let mut size = HEADER;
            for e in level {
                let s = Node::Branch(vec![e.clone()]).size() - HEADER;
                if !branch.is_empty() && size + s > fill {
                    let node = Node::Branch(std::mem::take(&mut branch));
                    upper.push((node.first_key().to_vec(), next));
                    w.buf.extend_from_slice(&node.to_page(next, txid, ps));
                    next = next.plus(1);
                    size = HEADER;
                }
                size += s;
                branch.push(e);
            }
            let node = Node::Branch(branch);
            upper.push((node.first_key().to_vec(), next));
            w.buf.extend_from_slice(&node.to_page(next, txid, ps));
            next = next.plus(1);
            level = upper;
            if w.buf.len() >= 4 << 20 {
                self.flush_seq(&mut w, next).await?;
            }
        }
        self.flush_seq(&mut w, next).await?;
        let root = level.first().map_or(PageNo::NONE, |e| e.1);
        let new = Meta {
            txid,
            root,
            page_count: next.0,
            entries: count,
            ..meta
        };
        self.publish_load(new, guard).await?;
        progress(count);
        Ok(count)
    }

    /// Takes the write lock (no commit is staged meanwhile) and the tree's lock; returns the
    /// tree's meta with them.
    async fn lock_for_load(&self) -> Result<(Meta, LoadGuard)> {
        self.writable()?;
        let write = self.inner.write_lock.clone().lock_owned().await;
        let tree = self.inner.tree_lock.clone().lock_owned().await;
        self.writable()?;
        Ok((self.inner.meta.get(), (write, tree)))
    }

    /// Syncs the pages written and commits `meta` (the bulk loader's last step). The memtables
    /// are empty, so the tree's last logged commit stays what it was.
    async fn publish_load(&self, meta: Meta, guard: LoadGuard) -> Result<()> {
        self.write_out(meta, Vec::new()).await?;
        self.inner.meta.set(meta);
        self.inner.durable_meta.set(meta);
        let mut c = self.inner.commits.borrow_mut();
        c.set_latest_entries(meta.entries);
        c.visible_entries = meta.entries;
        drop(guard);
        Ok(())
    }

    async fn flush_seq(&self, w: &mut SeqWriter, end: PageNo) -> Result<()> {
        if w.buf.is_empty() {
            return Ok(());
        }
        let ps = self.pager().page_size as u64;
        self.ensure_size(end.0).await?;
        let buf = std::mem::take(&mut w.buf);
        let pages = buf.len() as u64 / ps;
        let (res, _) = self.pager().file.write_all_at(buf, w.start.0 * ps).await;
        res?;
        self.pager().mark_written(w.start, pages);
        w.start = w.start.plus(pages);
        Ok(())
    }

    async fn load_by_transactions<I>(&self, items: I, mut progress: impl FnMut(u64)) -> Result<u64>
    where
        I: IntoIterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    {
        let mut count = 0u64;
        let mut txn = self.write_txn().await?;
        for item in items {
            let (k, v) = item?;
            txn.put(&k, &v).await?;
            count += 1;
            if count.is_multiple_of(10_000) {
                txn.commit().await?;
                progress(count);
                txn = self.write_txn().await?;
            }
        }
        txn.commit().await?;
        progress(count);
        Ok(count)
    }
}
