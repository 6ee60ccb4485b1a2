//! Read transactions: a snapshot of one commit, read from the memtables (commits not yet
//! checkpointed) and, below them, zero-copy from the tree's mapped pages.
//!
//! A snapshot is the commit id `T` it sees, the tree of the last checkpoint when it was
//! taken, and the memtables above that tree (the active one and, while a checkpoint runs,
//! the frozen one). A key's value is the newest memtable version at or below `T`, else the
//! tree's. The snapshot registers twice: under the tree's txid (so the tree's pages are not
//! reused under it) and under `T` (so the memtable keeps the versions it needs).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::{Bound, Deref, RangeBounds};
use std::rc::Rc;

use futures::Stream;

use crate::error::{Error, Result};
use crate::format::Meta;
use crate::node::{LeafValue, Step};
use crate::pager::Pager;
use crate::store::Mems;
use crate::table::layout::check_unreserved;
use crate::types::{PageNo, TxId};

/// The stream of `(key, value)` pairs returned by `range`.
pub type RangeStream = std::pin::Pin<Box<dyn Stream<Item = Result<(Vec<u8>, ValueRef)>>>>;

/// Live readers: txid -> number of readers on it.
#[derive(Default)]
pub struct Readers {
    map: RefCell<BTreeMap<TxId, usize>>,
}

impl Readers {
    /// A reader took a snapshot of commit `txid`.
    pub fn register(&self, txid: TxId) {
        *self.map.borrow_mut().entry(txid).or_default() += 1;
    }
    /// A reader of commit `txid` is gone.
    pub fn unregister(&self, txid: TxId) {
        let mut m = self.map.borrow_mut();
        if let Some(n) = m.get_mut(&txid) {
            *n -= 1;
            if *n == 0 {
                m.remove(&txid);
            }
        }
    }
    /// The oldest snapshot any reader holds.
    pub fn oldest(&self) -> Option<TxId> {
        self.map.borrow().keys().next().copied()
    }
    /// Live readers.
    pub fn count(&self) -> usize {
        self.map.borrow().values().sum()
    }
    /// True if a reader holds a snapshot in `lo..hi`.
    pub fn any_in(&self, lo: u64, hi: u64) -> bool {
        lo < hi && self.map.borrow().range(TxId(lo)..TxId(hi)).next().is_some()
    }
}

/// A tree reader's registration: keeps the tree's pages at `txid` from reuse while alive.
pub(crate) struct TreeGuard {
    readers: Rc<Readers>,
    txid: TxId,
}

impl TreeGuard {
    pub(crate) fn new(readers: Rc<Readers>, txid: TxId) -> TreeGuard {
        readers.register(txid);
        TreeGuard { readers, txid }
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        self.readers.unregister(self.txid);
    }
}

/// What a read transaction shares with the values it hands out.
pub struct Snapshot {
    pub(crate) pager: Rc<Pager>,
    /// The tree (the last checkpoint when the snapshot was taken).
    pub(crate) meta: Meta,
    _tree: TreeGuard,
    commit_readers: Rc<Readers>,
    /// The commit this snapshot sees.
    pub(crate) txid: u64,
    /// Keys at that commit.
    pub(crate) entries: u64,
    /// The memtables above the tree.
    pub(crate) mems: Mems,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.commit_readers.unregister(TxId(self.txid));
    }
}

/// What holds a value's bytes alive.
enum Owner {
    /// A page of the tree, kept by its snapshot.
    Page(Rc<Snapshot>),
    /// A memtable version's bytes.
    Mem { _bytes: Rc<[u8]> },
}

/// A value read from the store, without a copy: the mapped bytes of the tree's page, or a
/// recent commit's bytes in memory. Holding it keeps its snapshot alive (its pages are not
/// reused), so drop it when done.
pub struct ValueRef {
    owner: Owner,
    ptr: *const u8,
    len: usize,
}

impl Deref for ValueRef {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies either in the store's mapping, which the snapshot's
        // pager owns (kept alive by `owner`), and the pages of a registered snapshot are never
        // rewritten (the freelist only reuses pages no live snapshot can reach); or in the
        // `Rc<[u8]>` that `owner` holds, which is never mutated.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl ValueRef {
    /// A value held in memory (a recent commit's).
    pub(crate) fn mem(bytes: Rc<[u8]>) -> ValueRef {
        ValueRef {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            owner: Owner::Mem { _bytes: bytes },
        }
    }

    /// A copy of the value, checked: fails if the store's file was truncated under the
    /// mapping while (or before) the bytes were copied, so the copy is the file's own bytes,
    /// never zeros put in place of pages the file no longer holds. Use it (or copy, then
    /// [`ReadTxn::check_intact`]) before sending a value anywhere.
    pub fn copy_checked(&self) -> Result<Vec<u8>> {
        let copy = self.to_vec();
        if let Owner::Page(s) = &self.owner {
            s.pager.check_intact()?;
        }
        Ok(copy)
    }
}

impl std::fmt::Debug for ValueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueRef").field(&&**self).finish()
    }
}

impl PartialEq<[u8]> for ValueRef {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

/// A consistent snapshot of the store: every read sees the commit that was the last visible
/// one when the transaction began, whatever commits and checkpoints happen meanwhile.
/// Readers never block writers.
#[derive(Clone)]
pub struct ReadTxn {
    pub(crate) snap: Rc<Snapshot>,
}

/// The parts of a snapshot, taken together (in one synchronous step) from the store.
pub(crate) struct SnapshotParts {
    pub(crate) pager: Rc<Pager>,
    pub(crate) readers: Rc<Readers>,
    pub(crate) meta: Meta,
    pub(crate) commit_readers: Rc<Readers>,
    pub(crate) txid: u64,
    pub(crate) entries: u64,
    pub(crate) mems: Mems,
}

impl ReadTxn {
    pub(crate) fn new(p: SnapshotParts) -> ReadTxn {
        p.commit_readers.register(TxId(p.txid));
        ReadTxn {
            snap: Rc::new(Snapshot {
                _tree: TreeGuard::new(p.readers, p.meta.txid),
                pager: p.pager,
                meta: p.meta,
                commit_readers: p.commit_readers,
                txid: p.txid,
                entries: p.entries,
                mems: p.mems,
            }),
        }
    }

    /// Fails if the store's file was truncated under the mapping since it was opened (the
    /// SIGBUS safety net then maps zeros where the file ended). Bytes copied out of a
    /// [`ValueRef`] are the file's own only if this succeeds *after* the copy: check before
    /// sending them anywhere.
    pub fn check_intact(&self) -> Result<()> {
        self.snap.pager.check_intact()
    }

    /// The id of the commit this snapshot sees.
    pub fn txid(&self) -> u64 {
        self.snap.txid
    }

    /// Number of keys in the snapshot, the named tables' entries (and their catalog)
    /// included: the count is the store's, not the default keyspace's.
    pub fn len(&self) -> u64 {
        self.snap.entries
    }

    /// True if the snapshot has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn value_ref(&self, bytes: &[u8]) -> ValueRef {
        ValueRef {
            owner: Owner::Page(self.snap.clone()),
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The value of `key`, if present. Yields (never blocks the thread) on cold pages.
    /// Keys in the named tables' reserved region
    /// ([`RESERVED_PREFIX`](crate::RESERVED_PREFIX)) are refused: read them through
    /// [`ReadTxn::table`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<ValueRef>> {
        check_unreserved(key)?;
        self.get_raw(key).await
    }

    /// The value of any key of the store, the tables' included.
    pub(crate) async fn get_raw(&self, key: &[u8]) -> Result<Option<ValueRef>> {
        if let Some(found) = self.snap.mems.get(key, Some(self.snap.txid)) {
            return Ok(found.map(ValueRef::mem));
        }
        self.tree_get(key).await
    }

    /// The value of `key` in the snapshot's tree (below its memtables).
    pub(crate) async fn tree_get(&self, key: &[u8]) -> Result<Option<ValueRef>> {
        let pager = &self.snap.pager;
        let Some((page, i)) = tree_find(pager, self.snap.meta.root, key).await? else {
            return Ok(None);
        };
        let bytes = match page.leaf(i).value {
            LeafValue::Inline(v) => v,
            LeafValue::Overflow { pgno, len } => pager.overflow(pgno, len).await?,
        };
        // The pages read on the way may have read as zeros (a file truncated under the
        // store): never hand out a value found through them.
        pager.check_intact()?;
        Ok(Some(self.value_ref(bytes)))
    }

    /// The entries with keys in `bounds`, in key order, as an async stream. The stream holds
    /// the snapshot: it sees this transaction's version however long it is consumed. An
    /// empty or inverted range (start above end) yields nothing. The named tables' entries
    /// (keys beginning with [`RESERVED_PREFIX`](crate::RESERVED_PREFIX)) are never in it.
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        self.default_stream(
            bounds.start_bound().cloned(),
            bounds.end_bound().cloned(),
            false,
        )
    }

    /// The default keyspace's entries in `start..end`: the store's, around the tables'.
    fn default_stream(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> RangeStream {
        crate::table::layout::default_stream(start, end, reverse, |s, e| {
            crate::range::stream(self.clone(), s, e, reverse)
        })
    }

    /// The entries with keys in `bounds`, in descending key order: [`ReadTxn::range`]
    /// backwards, with the same snapshot. It starts at the end bound without visiting
    /// what lies before it, so "the last `n` keys below `k`" costs `n` entries.
    ///
    /// ```
    /// # use faultless_store::{blocking, StoreOptions};
    /// # let dir = std::env::temp_dir().join(format!("range-rev-doc-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&dir);
    /// # let store = blocking::Store::open(&dir, StoreOptions::new())?;
    /// use futures::StreamExt;
    /// store.put(b"a", b"1")?;
    /// store.put(b"b", b"2")?;
    /// store.put(b"c", b"3")?;
    /// let keys = store.call(|s| async move {
    ///     let mut keys = Vec::new();
    ///     let mut newest_first = s.read_txn().range_rev(..b"c".to_vec());
    ///     while let Some(entry) = newest_first.next().await {
    ///         keys.push(entry?.0);
    ///     }
    ///     Ok(keys)
    /// })?;
    /// assert_eq!(keys, [b"b".to_vec(), b"a".to_vec()]);
    /// # store.close()?;
    /// # for slot in 0..3 { let _ = std::fs::remove_file(format!("{}-wal.{slot}", dir.display())); }
    /// # let _ = std::fs::remove_file(&dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn range_rev<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        self.default_stream(
            bounds.start_bound().cloned(),
            bounds.end_bound().cloned(),
            true,
        )
    }

    /// The entries whose keys begin with `prefix`, in key order: the range from `prefix` up
    /// to the next prefix (a prefix of only `0xFF` bytes runs to the end of the keys; the
    /// empty prefix is every key).
    pub fn prefix(&self, prefix: &[u8]) -> RangeStream {
        let (start, end) = crate::range::prefix_bounds(prefix);
        self.default_stream(start, end, false)
    }

    /// The entries whose keys begin with `prefix`, in descending key order.
    pub fn prefix_rev(&self, prefix: &[u8]) -> RangeStream {
        let (start, end) = crate::range::prefix_bounds(prefix);
        self.default_stream(start, end, true)
    }
}

/// Where `key` is in the tree at `root`: its leaf page and index, or `None`.
async fn tree_find<'p>(
    pager: &'p Pager,
    root: PageNo,
    key: &[u8],
) -> Result<Option<(crate::node::PageView<'p>, usize)>> {
    let mut pgno = root;
    if pgno == PageNo::NONE {
        return Ok(None);
    }
    for _depth in 0..64 {
        let page = pager.node(pgno).await?;
        match page.step(pgno, key)? {
            Step::Child(child) => pgno = child,
            Step::Missing => return Ok(None),
            Step::Found(i) => return Ok(Some((page, i))),
        }
    }
    Err(Error::corrupt(
        None,
        "tree deeper than 64 levels (a cycle?)",
    ))
}

/// True if the tree at `root` holds `key` (its value is not read).
pub(crate) async fn tree_contains(pager: &Pager, root: PageNo, key: &[u8]) -> Result<bool> {
    let found = tree_find(pager, root, key).await?.is_some();
    pager.check_intact()?;
    Ok(found)
}

/// A copy of `key`'s value in the tree at `root`, checked against truncation.
pub(crate) async fn tree_value(pager: &Pager, root: PageNo, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let copy = match tree_find(pager, root, key).await? {
        None => None,
        Some((page, i)) => Some(match page.leaf(i).value {
            LeafValue::Inline(v) => v.to_vec(),
            LeafValue::Overflow { pgno, len } => pager.overflow(pgno, len).await?.to_vec(),
        }),
    };
    // Copied from the mapping: the file's own bytes only if it was not truncated meanwhile.
    pager.check_intact()?;
    Ok(copy)
}
