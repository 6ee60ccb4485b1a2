//! [`WriteTxn`]: the one write transaction, and how a store hands it out.
//!
//! A write transaction holds the write lock, so no other commit is staged while it is open:
//! its reads see the last staged commit (the memtables, then the tree) plus its own writes,
//! which it keeps to itself until `commit`. Committing stages its writes as one commit (one
//! log record, in the next log write with whatever else is staged: group commit), releases
//! the lock, and waits for the log. The next transaction may thus read this commit before
//! it is durable; its own commit comes later in the log, so it can never survive a crash
//! that this one did not, and if the log write fails, both are rolled back (a transaction
//! that read a rolled-back commit fails at `commit`).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::lock::OwnedMutexGuard;

use crate::error::{Error, Result};
use crate::format::Meta;
use crate::keys::MemKey;
use crate::options::{check_key, check_raw_key, check_value};
use crate::overlay::{overlay, OwnWrite};
use crate::range::{as_ref, is_empty, prefix_bounds};
use crate::read::{tree_contains, tree_value, RangeStream, ReadTxn, SnapshotParts, TreeGuard};
use crate::stage::{abandoned, StagedOp};
use crate::store::{Mems, Store};
use crate::table::layout::check_unreserved;
use crate::wal::format::{OP_DELETE, OP_PUT_NEW, OP_PUT_REPLACE};

impl Store {
    pub(crate) fn writable(&self) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        if let Some(why) = &*self.inner.poisoned.borrow() {
            return Err(Error::Io(io::Error::other(format!(
                "writes are refused: {why}"
            ))));
        }
        if let Err(e) = self.inner.pager.check_intact() {
            return Err(self.poison(format!("the store's file was truncated under it ({e})")));
        }
        Ok(())
    }

    /// Starts the write transaction (waiting, without blocking the thread, while another is
    /// open).
    pub async fn write_txn(&self) -> Result<WriteTxn> {
        self.writable()?;
        self.throttle().await?;
        let guard = self.inner.write_lock.clone().lock_owned().await;
        // The key count it starts from must be exact: no put still looking its key up.
        self.wait_unresolved().await;
        self.writable()?;
        // A file cut under the store would make this transaction read holes: refuse now.
        self.check_not_truncated()?;
        let meta = self.inner.meta.get();
        let c = self.inner.commits.borrow();
        Ok(WriteTxn {
            store: self.clone(),
            _tree: TreeGuard::new(self.inner.readers.clone(), meta.txid),
            meta,
            mems: self.inner.mem.borrow().clone(),
            writes: BTreeMap::new(),
            entries: c.latest_entries(),
            epoch: c.epoch,
            _guard: guard,
        })
    }
}

/// A key this transaction wrote.
struct Write {
    /// Whether the key existed before the transaction.
    existed: bool,
    /// Its value now; `None`: deleted.
    value: Option<Rc<[u8]>>,
}

/// The one write transaction. Changes are visible to its own `get` and, after `commit`, to
/// everyone. Dropping it without committing discards every change.
pub struct WriteTxn {
    store: Store,
    _tree: TreeGuard,
    /// The tree and the memtables as the transaction began (nothing is staged while it is
    /// open; a checkpoint may move their contents, never change them).
    meta: Meta,
    mems: Mems,
    writes: BTreeMap<Box<MemKey>, Write>,
    entries: u64,
    epoch: u64,
    _guard: OwnedMutexGuard<()>,
}

impl WriteTxn {
    /// Whether `key` exists as this transaction sees it.
    async fn exists(&self, key: &[u8]) -> Result<bool> {
        if let Some(w) = self.writes.get(MemKey::new(key)) {
            return Ok(w.value.is_some());
        }
        if let Some(found) = self.mems.get(key, None) {
            return Ok(found.is_some());
        }
        tree_contains(&self.store.inner.pager, self.meta.root, key).await
    }

    /// The value of `key` as this transaction sees it. Keys in the named tables' reserved
    /// region are refused: read them through [`WriteTxn::table`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_unreserved(key)?;
        self.get_raw(key).await
    }

    /// The value of any key of the store (the tables' included) as this transaction sees it.
    pub(crate) async fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(w) = self.writes.get(MemKey::new(key)) {
            return Ok(w.value.as_ref().map(|v| v.to_vec()));
        }
        if let Some(found) = self.mems.get(key, None) {
            return Ok(found.map(|v| v.to_vec()));
        }
        tree_value(&self.store.inner.pager, self.meta.root, key).await
    }

    /// Records `value` (or a deletion) for `key`, which exists now or not (`now`).
    pub(crate) fn record(&mut self, key: &[u8], now: bool, value: Option<Rc<[u8]>>) {
        match (now, value.is_some()) {
            (false, true) => self.entries += 1,
            (true, false) => self.entries -= 1,
            _ => {}
        }
        // One walk of the map: whether the key was written before, and the write.
        match self.writes.entry(MemKey::boxed(key)) {
            Entry::Vacant(e) => {
                e.insert(Write {
                    existed: now,
                    value,
                });
            }
            Entry::Occupied(mut e) => e.get_mut().value = value,
        }
    }

    /// Inserts or replaces `key`. Keys beginning with
    /// [`RESERVED_PREFIX`](crate::RESERVED_PREFIX) (the named tables' region) are refused
    /// with [`Error::BadInput`].
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        self.put_raw(key, value).await
    }

    /// Inserts or replaces any key of the store (the tables' included).
    pub(crate) async fn put_raw(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_raw_key(key)?;
        check_value(value)?;
        let now = self.exists(key).await?;
        self.record(key, now, Some(Rc::from(value)));
        Ok(())
    }

    /// Inserts or replaces `key`, which the caller knows to exist (`exists`) or not as this
    /// transaction sees it: for a writer that has just read the key (through [`get`](
    /// Self::get), or, for a key this transaction has not written, through its
    /// [`read_txn`](Self::read_txn)). It spares the lookup [`put`](Self::put) makes to keep
    /// [`len`](Self::len) exact: a second walk down the tree for a read-modify-write. A wrong
    /// `exists` makes `len` (and the store's key count) wrong, never the data.
    pub fn put_known(&mut self, key: &[u8], value: &[u8], exists: bool) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let now = match self.writes.get(MemKey::new(key)) {
            Some(w) => w.value.is_some(),
            None => exists,
        };
        self.record(key, now, Some(Rc::from(value)));
        Ok(())
    }

    /// Deletes `key`; true if it existed.
    pub async fn delete(&mut self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.delete_raw(key).await
    }

    /// Deletes any key of the store (the tables' included); true if it existed.
    pub(crate) async fn delete_raw(&mut self, key: &[u8]) -> Result<bool> {
        check_raw_key(key)?;
        let now = self.exists(key).await?;
        if now {
            self.record(key, true, None);
        }
        Ok(now)
    }

    /// Number of keys as this transaction sees them, the named tables' entries (and their
    /// catalog) included.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// True if this transaction sees no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the commit this transaction started from: the last one staged, which
    /// may not be durable (or visible to [`Store::read_txn`]) yet, without this
    /// transaction's own writes ([`WriteTxn::range`] has them). For a writer that reads
    /// beside its transaction and pipelines its commits with
    /// [`WriteTxn::submit`]: a snapshot from `Store::read_txn` would miss the commits still
    /// on their way to the log.
    pub fn read_txn(&self) -> ReadTxn {
        let c = self.store.inner.commits.borrow();
        ReadTxn::new(SnapshotParts {
            pager: self.store.inner.pager.clone(),
            readers: self.store.inner.readers.clone(),
            meta: self.meta,
            commit_readers: self.store.inner.commit_readers.clone(),
            txid: c.latest,
            entries: c.latest_entries(),
            mems: self.mems.clone(),
        })
    }

    /// The entries with keys in `bounds`, in key order, as this transaction sees them: its
    /// own puts and deletes merged over the commit it started from ([`WriteTxn::read_txn`]).
    ///
    /// The stream owns what it reads (it does not borrow the transaction): it takes a copy of
    /// the transaction's writes in `bounds` when called (keys copied, values shared) and a
    /// snapshot for the rest, so it shows the transaction *as of this call*; writes made
    /// while it is consumed are not in it. Like any snapshot, holding it keeps the base
    /// commit's pages and memtable versions alive, even after the transaction ends.
    ///
    /// ```
    /// # use faultless_store::{blocking, StoreOptions};
    /// # let path = std::env::temp_dir().join(format!("txn-range-doc-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// # let store = blocking::Store::open(&path, StoreOptions::new())?;
    /// use futures::TryStreamExt;
    /// store.put(b"user:1", b"ann")?;
    /// store.put(b"user:2", b"bob")?;
    /// let seen = store.call(|s| async move {
    ///     let mut txn = s.write_txn().await?;
    ///     txn.delete(b"user:1").await?;
    ///     txn.put(b"user:3", b"cy").await?;
    ///     // The transaction's own view: user:1 gone, user:3 there, before any commit.
    ///     let keys: Vec<Vec<u8>> = txn.prefix(b"user:").map_ok(|(k, _)| k).try_collect().await?;
    ///     txn.commit().await?;
    ///     Ok(keys)
    /// })?;
    /// assert_eq!(seen, [b"user:2".to_vec(), b"user:3".to_vec()]);
    /// # store.close()?;
    /// # for slot in 0..3 { let _ = std::fs::remove_file(format!("{}-wal.{slot}", path.display())); }
    /// # let _ = std::fs::remove_file(&path);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        self.overlay_range(
            bounds.start_bound().cloned(),
            bounds.end_bound().cloned(),
            false,
        )
    }

    /// [`WriteTxn::range`] in descending key order.
    pub fn range_rev<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        self.overlay_range(
            bounds.start_bound().cloned(),
            bounds.end_bound().cloned(),
            true,
        )
    }

    /// The entries whose keys begin with `prefix`, in key order, as this transaction sees
    /// them; see [`WriteTxn::range`] and [`ReadTxn::prefix`].
    pub fn prefix(&self, prefix: &[u8]) -> RangeStream {
        let (start, end) = prefix_bounds(prefix);
        self.overlay_range(start, end, false)
    }

    /// The default keyspace's entries in `start..end` as this transaction sees them: the
    /// store's, around the named tables'.
    fn overlay_range(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> RangeStream {
        crate::table::layout::default_stream(start, end, reverse, |s, e| {
            self.raw_range(s, e, reverse)
        })
    }

    /// Any keys of the store (the tables' included) in `start..end`, as this transaction
    /// sees them.
    pub(crate) fn raw_range(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> RangeStream {
        if is_empty(as_ref(&start), as_ref(&end)) {
            return Box::pin(futures::stream::empty());
        }
        let base = crate::range::stream(self.read_txn(), start.clone(), end.clone(), reverse);
        let in_range = self
            .writes
            .range::<MemKey, _>((
                as_ref(&start).map(MemKey::new),
                as_ref(&end).map(MemKey::new),
            ))
            .map(|(k, w)| (k.bytes().to_vec(), w.value.clone()));
        let writes: Vec<OwnWrite> = if reverse {
            in_range.rev().collect()
        } else {
            in_range.collect()
        };
        overlay(base, writes, reverse)
    }

    /// Commits the changes: one log record, written with the other commits staged meanwhile.
    /// Returns once it is committed (durable under `Durability::Always`, and visible to every
    /// read that starts afterwards). The commit is staged the moment this is first polled:
    /// if the caller stops waiting then, it still completes (or fails) as a whole.
    pub async fn commit(self) -> Result<()> {
        self.submit()?.await
    }

    /// Stages the commit at once and releases the write lock, without waiting for the log:
    /// the next write transaction can start (and sees this commit) while this one's record
    /// is being written. The returned [`Committed`] resolves when the commit is committed,
    /// as [`WriteTxn::commit`] returns; dropping it does not undo the commit. A writer that
    /// pipelines this way answers its callers only when `Committed` resolves; if the log
    /// write fails, every commit staged after the last durable one fails with it, and a
    /// write transaction open across the failure fails at `submit`.
    pub fn submit(self) -> Result<Committed> {
        let WriteTxn {
            store,
            writes,
            epoch,
            _guard,
            ..
        } = self;
        if store.inner.commits.borrow().epoch != epoch {
            return Err(Error::Io(io::Error::other(
                "a log write failed while this transaction was open, and the commits it may \
                 have read were rolled back; it was not committed",
            )));
        }
        store.writable()?;
        let ops: Vec<StagedOp<'_>> = writes
            .iter()
            .filter_map(|(k, w)| {
                let kind = match (w.existed, &w.value) {
                    (false, Some(_)) => OP_PUT_NEW,
                    (true, Some(_)) => OP_PUT_REPLACE,
                    (true, None) => OP_DELETE,
                    // Created and deleted again: nothing to log.
                    (false, None) => return None,
                };
                Some(StagedOp {
                    kind,
                    key: k.bytes(),
                    value: w.value.clone(),
                })
            })
            .collect();
        if ops.is_empty() {
            // Nothing changes; answer once what it read is visible.
            let seen = store.inner.commits.borrow().latest;
            drop(_guard);
            return Ok(Committed {
                wait: Box::pin(async move { store.wait_visible(seen).await }),
            });
        }
        let rx = store.stage(&ops);
        drop(ops);
        drop(_guard);
        Ok(Committed {
            wait: Box::pin(async move { rx.await.unwrap_or_else(|_| Err(abandoned())) }),
        })
    }

    /// Discards every change (the same as dropping the transaction).
    pub fn abort(self) {}
}

/// A commit staged by [`WriteTxn::submit`]: resolves once it is committed (durable under
/// `Durability::Always`, visible to new snapshots), or with the error of the log write that
/// failed it.
#[must_use = "the commit is staged; await this to know it is committed"]
pub struct Committed {
    wait: Pin<Box<dyn Future<Output = Result<()>>>>,
}

impl Future for Committed {
    type Output = Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.wait.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Committed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Committed")
    }
}
