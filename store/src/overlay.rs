//! A write transaction's ranges: its own uncommitted writes laid over the snapshot it
//! started from.
//!
//! The base is an ordinary snapshot range ([`crate::range::stream`]) over the commit the
//! transaction started from; the writes are a copy, taken when the range is asked for, of
//! the transaction's puts and deletes with keys in the range (values are shared `Rc`s, so
//! the copy costs the keys). The two are merged like the memtables over the tree: where a
//! key is in both, the write wins; a delete hides the base's entry. Taking the writes at
//! the call leaves the transaction free to write on while the stream is consumed, and the
//! stream shows the transaction as it was when the range was asked for.

use std::cmp::Ordering;
use std::rc::Rc;

use futures::StreamExt;

use crate::error::Result;
use crate::read::{RangeStream, ValueRef};

/// A key a transaction wrote, with its value (`None`: deleted).
pub(crate) type OwnWrite = (Vec<u8>, Option<Rc<[u8]>>);

struct Overlay {
    base: RangeStream,
    base_next: Option<(Vec<u8>, ValueRef)>,
    base_done: bool,
    /// In the stream's direction.
    writes: std::vec::IntoIter<OwnWrite>,
    write_next: Option<OwnWrite>,
    reverse: bool,
    failed: bool,
}

/// `writes` (in the direction of `base`: ascending, or descending if `reverse`) over `base`.
pub(crate) fn overlay(base: RangeStream, writes: Vec<OwnWrite>, reverse: bool) -> RangeStream {
    let mut writes = writes.into_iter();
    let state = Overlay {
        base,
        base_next: None,
        base_done: false,
        write_next: writes.next(),
        writes,
        reverse,
        failed: false,
    };
    Box::pin(futures::stream::unfold(state, |mut o| async move {
        if o.failed {
            return None;
        }
        match o.next().await {
            Ok(Some(item)) => Some((Ok(item), o)),
            Ok(None) => None,
            Err(e) => {
                o.failed = true;
                Some((Err(e), o))
            }
        }
    }))
}

impl Overlay {
    async fn next(&mut self) -> Result<Option<(Vec<u8>, ValueRef)>> {
        loop {
            if self.base_next.is_none() && !self.base_done {
                match self.base.next().await {
                    Some(item) => self.base_next = Some(item?),
                    None => self.base_done = true,
                }
            }
            // `Less`: the base's entry comes first (in the stream's direction).
            let order = match (&self.base_next, &self.write_next) {
                (None, None) => return Ok(None),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((bk, _)), Some((wk, _))) if self.reverse => wk.cmp(bk),
                (Some((bk, _)), Some((wk, _))) => bk.cmp(wk),
            };
            if order == Ordering::Less {
                return Ok(self.base_next.take());
            }
            if order == Ordering::Equal {
                self.base_next = None; // the transaction's write wins
            }
            let (key, value) = self.write_next.take().expect("a write");
            self.write_next = self.writes.next();
            if let Some(v) = value {
                return Ok(Some((key, ValueRef::mem(v))));
            }
        }
    }
}
