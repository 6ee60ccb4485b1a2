//! Read transactions: a snapshot of one committed version, read zero-copy from the mapping.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::{Bound, Deref, RangeBounds};
use std::rc::Rc;

use futures::Stream;

use crate::error::{Error, Result};
use crate::format::{Meta, KIND_LEAF};
use crate::node::{LeafValue, Step};
use crate::pager::Pager;
use crate::types::{PageNo, TxId};

/// The stream of `(key, value)` pairs returned by `range`.
pub type RangeStream = std::pin::Pin<Box<dyn Stream<Item = Result<(Vec<u8>, ValueRef)>>>>;

/// Live readers: snapshot txid -> number of readers on it.
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
    pub fn count(&self) -> usize {
        self.map.borrow().values().sum()
    }
}

/// What a read transaction shares with the values it hands out.
pub struct Snapshot {
    pub pager: Rc<Pager>,
    pub readers: Rc<Readers>,
    pub meta: Meta,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.readers.unregister(self.meta.txid);
    }
}

/// A value read from the store: the mapped bytes themselves, no copy. Holding it keeps its
/// snapshot alive (its pages are not reused), so drop it when done.
pub struct ValueRef {
    _snapshot: Rc<Snapshot>,
    ptr: *const u8,
    len: usize,
}

impl Deref for ValueRef {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies in the store's mapping, which the snapshot's pager owns
        // (kept alive by `_snapshot`), and the pages of a registered snapshot are never
        // rewritten: the freelist only reuses pages no live snapshot can reach.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl ValueRef {
    /// A copy of the value, checked: fails if the store's file was truncated under the
    /// mapping while (or before) the bytes were copied, so the copy is the file's own bytes,
    /// never zeros put in place of pages the file no longer holds. Use it (or copy, then
    /// [`ReadTxn::check_intact`]) before sending a value anywhere.
    pub fn copy_checked(&self) -> Result<Vec<u8>> {
        let copy = self.to_vec();
        self._snapshot.pager.check_intact()?;
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

/// A consistent snapshot of the store: every read sees the version committed when the
/// transaction began, whatever commits happen meanwhile. Readers never block the writer.
#[derive(Clone)]
pub struct ReadTxn {
    snap: Rc<Snapshot>,
}

impl ReadTxn {
    pub(crate) fn new(pager: Rc<Pager>, readers: Rc<Readers>, meta: Meta) -> ReadTxn {
        readers.register(meta.txid);
        ReadTxn {
            snap: Rc::new(Snapshot {
                pager,
                readers,
                meta,
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
        self.snap.meta.txid.0
    }

    /// Number of keys in the snapshot.
    pub fn len(&self) -> u64 {
        self.snap.meta.entries
    }

    /// True if the snapshot has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn value_ref(&self, bytes: &[u8]) -> ValueRef {
        ValueRef {
            _snapshot: self.snap.clone(),
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The value of `key`, if present. Yields (never blocks the thread) on cold pages.
    pub async fn get(&self, key: &[u8]) -> Result<Option<ValueRef>> {
        let pager = &self.snap.pager;
        let mut pgno = self.snap.meta.root;
        if pgno == PageNo::NONE {
            return Ok(None);
        }
        for _depth in 0..64 {
            let page = pager.node(pgno).await?;
            match page.step(pgno, key)? {
                Step::Child(child) => pgno = child,
                Step::Missing => return Ok(None),
                Step::Found(i) => {
                    let e = page.leaf(i);
                    let bytes = match e.value {
                        LeafValue::Inline(v) => v,
                        LeafValue::Overflow { pgno, len } => pager.overflow(pgno, len).await?,
                    };
                    // The pages read on the way may have read as zeros (a file truncated
                    // under the store): never hand out a value found through them.
                    pager.check_intact()?;
                    return Ok(Some(self.value_ref(bytes)));
                }
            }
        }
        Err(Error::corrupt(
            None,
            "tree deeper than 64 levels (a cycle?)",
        ))
    }

    /// The entries with keys in `bounds`, in key order, as an async stream. The stream holds
    /// the snapshot: it sees this transaction's version however long it is consumed.
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        let start = bounds.start_bound().cloned();
        let end = bounds.end_bound().cloned();
        let cursor = Cursor {
            txn: self.clone(),
            stack: Vec::new(),
            started: false,
            start,
            end,
            done: false,
        };
        Box::pin(futures::stream::unfold(cursor, |mut c| async move {
            match c.next().await {
                Ok(Some(item)) => Some((Ok(item), c)),
                Ok(None) => None,
                Err(e) => {
                    c.done = true;
                    Some((Err(e), c))
                }
            }
        }))
    }
}

/// A position in the tree: the path of (page, index) from the root.
struct Cursor {
    txn: ReadTxn,
    stack: Vec<(PageNo, usize)>,
    started: bool,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    done: bool,
}

impl Cursor {
    /// Descends from `stack`'s top (or the root) to the leftmost leaf, or to the leaf where
    /// `key` belongs.
    async fn descend(&mut self, mut pgno: PageNo, key: Option<&[u8]>) -> Result<()> {
        let pager = self.txn.snap.pager.clone();
        for _ in 0..64 {
            let page = pager.node(pgno).await?;
            if page.kind == KIND_LEAF {
                let i = match key {
                    Some(k) => page.search(k).0,
                    None => 0,
                };
                self.stack.push((pgno, i));
                return Ok(());
            }
            if page.count == 0 {
                return Err(Error::corrupt(pgno, "empty branch page"));
            }
            let i = match key {
                Some(k) => page.child_index(k),
                None => 0,
            };
            self.stack.push((pgno, i));
            pgno = page.child(i);
        }
        Err(Error::corrupt(
            None,
            "tree deeper than 64 levels (a cycle?)",
        ))
    }

    async fn next(&mut self) -> Result<Option<(Vec<u8>, ValueRef)>> {
        if self.done {
            return Ok(None);
        }
        let pager = self.txn.snap.pager.clone();
        if !self.started {
            self.started = true;
            let root = self.txn.snap.meta.root;
            if root == PageNo::NONE {
                self.done = true;
                return Ok(None);
            }
            let start = match &self.start {
                Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
                Bound::Unbounded => None,
            };
            self.descend(root, start.as_deref()).await?;
        }
        loop {
            let Some(&(pgno, i)) = self.stack.last() else {
                self.done = true;
                return Ok(None);
            };
            let page = pager.node(pgno).await?;
            if page.kind != KIND_LEAF {
                return Err(Error::corrupt(pgno, "cursor expected a leaf"));
            }
            if i >= page.count {
                // Leaf exhausted: climb to the next child of an ancestor.
                self.stack.pop();
                loop {
                    let Some((bp, bi)) = self.stack.pop() else {
                        self.done = true;
                        return Ok(None);
                    };
                    let branch = pager.node(bp).await?;
                    if bi + 1 < branch.count {
                        self.stack.push((bp, bi + 1));
                        let child = branch.child(bi + 1);
                        self.descend(child, None).await?;
                        break;
                    }
                }
                continue;
            }
            self.stack.last_mut().expect("non-empty").1 += 1;
            let e = page.leaf(i);
            if let Bound::Excluded(s) = &self.start {
                if e.key == s.as_slice() {
                    continue;
                }
            }
            let past_end = match &self.end {
                Bound::Included(k) => e.key > k.as_slice(),
                Bound::Excluded(k) => e.key >= k.as_slice(),
                Bound::Unbounded => false,
            };
            if past_end {
                self.done = true;
                return Ok(None);
            }
            let bytes = match e.value {
                LeafValue::Inline(v) => v,
                LeafValue::Overflow { pgno, len } => pager.overflow(pgno, len).await?,
            };
            let key = e.key.to_vec();
            pager.check_intact()?; // after copying the key
            return Ok(Some((key, self.txn.value_ref(bytes))));
        }
    }
}
