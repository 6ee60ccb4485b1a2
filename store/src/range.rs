//! Range scans: the memtables' entries merged, in key order, with the tree's.
//!
//! A snapshot's range walks the tree with a cursor and the memtables by seeking (a memtable
//! can change while the stream is consumed, but never at or below the snapshot's commit, so
//! what it shows this snapshot stays put). Where a key is in both, the memtable's version
//! wins; a memtable deletion hides the tree's entry.
//!
//! A reverse range is the same merge with every comparison turned round: the tree's cursor
//! walks down from the end bound, the memtables are sought backwards from the last key
//! returned, and the larger of the two next keys goes first.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::cursor::Cursor;
use crate::error::Result;
use crate::read::{RangeStream, ReadTxn, ValueRef};

use crate::memtable::Entry as MemEntry;

struct Merged {
    txn: ReadTxn,
    cursor: Cursor,
    reverse: bool,
    /// The memtables' side resumes after this (in reverse: the range's start).
    mem_after: Bound<Vec<u8>>,
    /// The memtables' side stops at this (in reverse: resumes before it).
    end: Bound<Vec<u8>>,
    tree_next: Option<(Vec<u8>, ValueRef)>,
    tree_done: bool,
    mem_next: Option<MemEntry>,
    mem_done: bool,
    failed: bool,
}

/// True if no key lies in `start..end` (`start` above `end`, or equal to it with either
/// bound excluded). `BTreeMap::range` panics on some of these; callers ask first.
pub(crate) fn is_empty(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => {
            s >= e
        }
        _ => false,
    }
}

/// The bounds of the keys that begin with `prefix`: from `prefix` itself up to (excluded)
/// the next prefix, which is `prefix` with its trailing `0xFF` bytes cut and its last byte
/// incremented; a prefix of only `0xFF` bytes (or none) has no upper bound.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut next = prefix.to_vec();
    while next.last() == Some(&0xFF) {
        next.pop();
    }
    let end = match next.last_mut() {
        Some(last) => {
            *last += 1;
            Bound::Excluded(next)
        }
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), end)
}

/// The entries of `txn`'s snapshot with keys in `start..end`, in ascending key order (or
/// descending, if `reverse`).
pub(crate) fn stream(
    txn: ReadTxn,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    reverse: bool,
) -> RangeStream {
    if is_empty(as_ref(&start), as_ref(&end)) {
        return Box::pin(futures::stream::empty());
    }
    let mem_done = txn.snap.mems.iter().all(|m| m.is_empty());
    let merged = Merged {
        cursor: Cursor::new(txn.clone(), start.clone(), end.clone(), reverse),
        reverse,
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

pub(crate) fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Merged {
    /// The next memtable entry after `mem_after` (in reverse: before `end`): the smallest
    /// (largest) key any memtable has a version of at the snapshot's commit, the newest
    /// memtable's version winning.
    fn seek_mem(&self) -> Option<MemEntry> {
        let at = Some(self.txn.snap.txid);
        let (after, end) = (as_ref(&self.mem_after), as_ref(&self.end));
        let mut best: Option<MemEntry> = None;
        // Newest memtable first: on a tie, the first found stays.
        for m in self.txn.snap.mems.iter() {
            let found = if self.reverse {
                m.prev(after, end, at)
            } else {
                m.next(after, end, at)
            };
            if let Some((k, v)) = found {
                let keep = match &best {
                    Some((bk, _)) if self.reverse => *bk >= k,
                    Some((bk, _)) => *bk <= k,
                    None => false,
                };
                if !keep {
                    best = Some((k, v));
                }
            }
        }
        best
    }

    async fn next(&mut self) -> Result<Option<(Vec<u8>, ValueRef)>> {
        loop {
            if self.tree_next.is_none() && !self.tree_done {
                match self.cursor.advance().await? {
                    Some(item) => self.tree_next = Some(item),
                    None => self.tree_done = true,
                }
            }
            if self.mem_next.is_none() && !self.mem_done {
                self.mem_next = self.seek_mem();
                self.mem_done = self.mem_next.is_none();
            }
            // `Less`: the tree's entry comes first (in the stream's direction).
            let order = match (&self.tree_next, &self.mem_next) {
                (None, None) => return Ok(None),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((tk, _)), Some((mk, _))) if self.reverse => mk.cmp(tk),
                (Some((tk, _)), Some((mk, _))) => tk.cmp(mk),
            };
            if order == Ordering::Less {
                return Ok(self.tree_next.take());
            }
            if order == Ordering::Equal {
                self.tree_next = None; // the memtable's version wins
            }
            let (key, value) = self.mem_next.take().expect("a memtable entry");
            if self.reverse {
                self.end = Bound::Excluded(key.clone());
            } else {
                self.mem_after = Bound::Excluded(key.clone());
            }
            if let Some(v) = value {
                return Ok(Some((key, ValueRef::mem(v))));
            }
        }
    }
}
