//! The tree's cursor: walks a snapshot's tree in key order (the tree's half of a range).

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::format::KIND_LEAF;
use crate::node::LeafValue;
use crate::read::{ReadTxn, ValueRef};
use crate::types::PageNo;

/// A position in the tree: the path of (page, index) from the root.
pub(crate) struct Cursor {
    txn: ReadTxn,
    stack: Vec<(PageNo, usize)>,
    started: bool,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    done: bool,
}

impl Cursor {
    /// A cursor over `txn`'s tree, for keys in `start..end`.
    pub(crate) fn new(txn: ReadTxn, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Cursor {
        Cursor {
            txn,
            stack: Vec::new(),
            started: false,
            start,
            end,
            done: false,
        }
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

    /// The next entry of the tree, in key order.
    pub(crate) async fn next(&mut self) -> Result<Option<(Vec<u8>, ValueRef)>> {
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
