//! Range scans: the memtables' entries merged, in key order, with the tree's.
//!
//! A snapshot's range walks the tree with a cursor and the memtables by seeking (a memtable
//! can change while the stream is consumed, but never at or below the snapshot's commit, so
//! what it shows this snapshot stays put). Where a key is in both, the memtable's version
//! wins; a memtable deletion hides the tree's entry.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::cursor::Cursor;
use crate::error::Result;
use crate::read::{RangeStream, ReadTxn, ValueRef};

use crate::memtable::Entry as MemEntry;

struct Merged {
    txn: ReadTxn,
    cursor: Cursor,
    /// The memtables' side resumes after this.
    mem_after: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    tree_next: Option<(Vec<u8>, ValueRef)>,
    tree_done: bool,
    mem_next: Option<MemEntry>,
    mem_done: bool,
    failed: bool,
}

/// The entries of `txn`'s snapshot with keys in `start..end`, in key order.
pub(crate) fn stream(txn: ReadTxn, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> RangeStream {
    let mem_done = txn.snap.mems.iter().all(|m| m.is_empty());
    let merged = Merged {
        cursor: Cursor::new(txn.clone(), start.clone(), end.clone()),
        mem_done,
        txn,
        mem_after: start,
        end,
        tree_next: None,
        tree_done: false,
        mem_next: None,
        failed: false,
    };
    Box::pin(futures::stream::unfold(merged, |mut m| async move {
        if m.failed {
            return None;
        }
        match m.next().await {
            Ok(Some(item)) => Some((Ok(item), m)),
            Ok(None) => None,
            Err(e) => {
                m.failed = true;
                Some((Err(e), m))
            }
        }
    }))
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Merged {
    /// The next memtable entry after `mem_after`: the smallest key any memtable has a
    /// version of at the snapshot's commit, the newest memtable's version winning.
    fn seek_mem(&self) -> Option<MemEntry> {
        let at = Some(self.txn.snap.txid);
        let mut best: Option<MemEntry> = None;
        for m in self.txn.snap.mems.iter() {
            if let Some((k, v)) = m.next(as_ref(&self.mem_after), as_ref(&self.end), at) {
                match &best {
                    Some((bk, _)) if *bk <= k => {}
                    _ => best = Some((k, v)),
                }
            }
        }
        best
    }

    async fn next(&mut self) -> Result<Option<(Vec<u8>, ValueRef)>> {
        loop {
            if self.tree_next.is_none() && !self.tree_done {
                match self.cursor.next().await? {
                    Some(item) => self.tree_next = Some(item),
                    None => self.tree_done = true,
                }
            }
            if self.mem_next.is_none() && !self.mem_done {
                self.mem_next = self.seek_mem();
                self.mem_done = self.mem_next.is_none();
            }
            let order = match (&self.tree_next, &self.mem_next) {
                (None, None) => return Ok(None),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((tk, _)), Some((mk, _))) => tk.cmp(mk),
            };
            if order == Ordering::Less {
                return Ok(self.tree_next.take());
            }
            if order == Ordering::Equal {
                self.tree_next = None; // the memtable's version wins
            }
            let (key, value) = self.mem_next.take().expect("a memtable entry");
            self.mem_after = Bound::Excluded(key.clone());
            if let Some(v) = value {
                return Ok(Some((key, ValueRef::mem(v))));
            }
        }
    }
}
