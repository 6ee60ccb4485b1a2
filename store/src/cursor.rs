//! The tree's cursor: walks a snapshot's tree in key order, forward or in reverse (the
//! tree's half of a range).
//!
//! The cursor is a path of `(page, index)` from the root. Forward, a leaf's index is the next
//! entry to return; in reverse it is one past it (the entries not yet returned are
//! `0..index`), so both directions exhaust a leaf at an index bound (`count`, `0`) and climb
//! to the ancestor's next (or previous) child.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::format::KIND_LEAF;
use crate::node::{LeafEntry, LeafValue};
use crate::pager::Pager;
use crate::read::{ReadTxn, ValueRef};
use crate::types::PageNo;

/// A position in the tree: the path of (page, index) from the root.
pub(crate) struct Cursor {
    txn: ReadTxn,
    stack: Vec<(PageNo, usize)>,
    started: bool,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    reverse: bool,
    done: bool,
}

impl Cursor {
    /// A cursor over `txn`'s tree, for keys in `start..end`, in ascending key order (or
    /// descending, if `reverse`).
    pub(crate) fn new(
        txn: ReadTxn,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Cursor {
        Cursor {
            txn,
            stack: Vec::new(),
            started: false,
            start,
            end,
            reverse,
            done: false,
        }
    }

    /// Descends from `pgno` to the rightmost leaf, or to the leaf where `key` belongs,
    /// positioned (reverse) after the last entry `<= key`.
    async fn descend_rev(&mut self, mut pgno: PageNo, key: Option<&[u8]>) -> Result<()> {
        let pager = self.txn.snap.pager.clone();
        for _ in 0..64 {
            let page = pager.node(pgno).await?;
            if page.kind == KIND_LEAF {
                let i = match key {
                    Some(k) => match page.search(k) {
                        (i, true) => i + 1,
                        (i, false) => i,
                    },
                    None => page.count,
                };
                self.stack.push((pgno, i));
                return Ok(());
            }
            if page.count == 0 {
                return Err(Error::corrupt(pgno, "empty branch page"));
            }
            let i = match key {
                Some(k) => page.child_index(k),
                None => page.count - 1,
            };
            self.stack.push((pgno, i));
            pgno = page.child(i);
        }
        Err(Error::corrupt(
            None,
            "tree deeper than 64 levels (a cycle?)",
        ))
    }

    /// The next entry of the tree in the cursor's direction.
    pub(crate) async fn advance(&mut self) -> Result<Option<(Vec<u8>, ValueRef)>> {
        if self.reverse {
            self.prev().await
        } else {
            self.next().await
        }
    }

    /// The previous entry of the tree, in descending key order.
    async fn prev(&mut self) -> Result<Option<(Vec<u8>, ValueRef)>> {
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
            let end = match &self.end {
                Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
                Bound::Unbounded => None,
            };
            self.descend_rev(root, end.as_deref()).await?;
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
            if i > page.count {
                return Err(Error::corrupt(pgno, "leaf changed under a cursor"));
            }
            if i == 0 {
                // Leaf exhausted: climb to the previous child of an ancestor.
                self.stack.pop();
                loop {
                    let Some((bp, bi)) = self.stack.pop() else {
                        self.done = true;
                        return Ok(None);
                    };
                    if bi > 0 {
                        let branch = pager.node(bp).await?;
                        if bi > branch.count {
                            return Err(Error::corrupt(bp, "branch changed under a cursor"));
                        }
                        self.stack.push((bp, bi - 1));
                        let child = branch.child(bi - 1);
                        self.descend_rev(child, None).await?;
                        break;
                    }
                }
                continue;
            }
            self.stack.last_mut().expect("non-empty").1 -= 1;
            let e = page.leaf(i - 1);
            if let Bound::Excluded(k) = &self.end {
                if e.key == k.as_slice() {
                    continue;
                }
            }
            let before_start = match &self.start {
                Bound::Included(k) => e.key < k.as_slice(),
                Bound::Excluded(k) => e.key <= k.as_slice(),
                Bound::Unbounded => false,
            };
            if before_start {
                self.done = true;
                return Ok(None);
            }
            return self.entry(&pager, e).await.map(Some);
        }
    }

    /// The key and value of the leaf entry `e`, copied out of the mapping (the value read
    /// from its overflow pages if it has them), once the file is known intact.
    async fn entry(&self, pager: &Pager, e: LeafEntry<'_>) -> Result<(Vec<u8>, ValueRef)> {
        let bytes = match e.value {
            LeafValue::Inline(v) => v,
            LeafValue::Overflow { pgno, len } => pager.overflow(pgno, len).await?,
        };
        let key = e.key.to_vec();
        pager.check_intact()?; // after copying the key
        Ok((key, self.txn.value_ref(bytes)))
    }

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

    /// The next entry of the tree, in ascending key order.
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
            return self.entry(&pager, e).await.map(Some);
        }
    }
}
