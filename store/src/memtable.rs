//! The memtable: committed writes that the tree does not hold yet.
//!
//! A commit's changes reach the log first, and the tree only at the next checkpoint (see
//! `checkpoint.rs`). Until then they live here, as versions: each key maps to its recent
//! values (a value, or `None` for a deletion), each tagged with the commit id that wrote it,
//! in ascending order. A reader at commit `T` takes the newest version at or below `T`; a
//! key with none falls through to the tree (or to an older memtable).
//!
//! A store has one *active* memtable, which commits add to, and, while a checkpoint runs,
//! one *frozen* one: the active memtable it took, which nothing adds to any more and which
//! the checkpoint merges into the tree. Snapshots hold `Rc`s of the memtables they read, so
//! a frozen memtable lives on while a reader of the tree before the checkpoint does.
//!
//! Versions are pruned as they are added: an older version goes once no reader can ask for
//! it, which the caller decides (`insert`'s `prunable`): no live snapshot lies between it
//! and the next version, and no future one can. So a key rewritten many times holds one or
//! two versions, not its history.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::rc::Rc;
use std::time::Instant;

use crate::keys::{HeadKey, KeyView, Probe};

/// One value of a key, written by commit `txid`; `None` is a deletion.
#[derive(Clone, Debug)]
pub(crate) struct Version {
    pub(crate) txid: u64,
    pub(crate) value: Option<Rc<[u8]>>,
}

/// A key's versions, oldest first. Almost always one.
#[derive(Debug)]
enum Versions {
    One(Version),
    Many(Vec<Version>),
}

impl Versions {
    fn as_slice(&self) -> &[Version] {
        match self {
            Versions::One(v) => std::slice::from_ref(v),
            Versions::Many(vs) => vs,
        }
    }

    fn newest(&self) -> &Version {
        self.as_slice().last().expect("a key has a version")
    }

    /// The newest version at or below `at`.
    fn at(&self, at: u64) -> Option<&Version> {
        self.as_slice().iter().rev().find(|v| v.txid <= at)
    }

    /// The version a reader at commit `at` sees (`None`: the newest of all).
    fn visible(&self, at: Option<u64>) -> Option<&Version> {
        match at {
            Some(at) => self.at(at),
            None => Some(self.newest()),
        }
    }
}

/// The first of `entries` (in the order given) with a version visible at `at`, and that
/// version's value.
fn first_visible<'a>(
    mut entries: impl Iterator<Item = (&'a HeadKey, &'a Versions)>,
    at: Option<u64>,
) -> Option<Entry> {
    entries.find_map(|(k, vs)| {
        vs.visible(at)
            .map(|v| (k.bytes().to_vec(), v.value.clone()))
    })
}

/// What a memtable says about a key: a value, a deletion, or nothing (ask the layer below).
pub(crate) type Found = Option<Option<Rc<[u8]>>>;

/// A key with a version's value (`None`: a deletion).
pub(crate) type Entry = (Vec<u8>, Option<Rc<[u8]>>);

/// Bytes a version costs besides its key and value (the map's node share, the `Rc`).
const VERSION_OVERHEAD: u64 = 64;

/// Committed writes not yet in the tree. See the module docs.
pub(crate) struct MemTable {
    /// Keys carry their first eight bytes inline (`HeadKey`): see `keys.rs`.
    map: RefCell<BTreeMap<HeadKey, Versions>>,
    /// Approximate memory held: keys, values and overhead.
    bytes: Cell<u64>,
    /// Versions held.
    versions: Cell<u64>,
    /// The newest commit id added (for a frozen memtable: the last commit it holds).
    last_txid: Cell<u64>,
    /// When the first version was added (the age that triggers a checkpoint).
    since: Cell<Option<Instant>>,
}

impl MemTable {
    pub(crate) fn new() -> MemTable {
        MemTable {
            map: RefCell::new(BTreeMap::new()),
            bytes: Cell::new(0),
            versions: Cell::new(0),
            last_txid: Cell::new(0),
            since: Cell::new(None),
        }
    }

    /// True if no version was added (or all were rolled back).
    pub(crate) fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }

    /// Keys held.
    pub(crate) fn keys(&self) -> usize {
        self.map.borrow().len()
    }

    /// Versions held.
    pub(crate) fn versions(&self) -> u64 {
        self.versions.get()
    }

    /// Approximate bytes of memory held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    /// The newest commit id added.
    pub(crate) fn last_txid(&self) -> u64 {
        self.last_txid.get()
    }

    /// When the first version still held was added.
    pub(crate) fn since(&self) -> Option<Instant> {
        self.since.get()
    }

    /// The newest version of `key` at or below commit `at` (`None`: the newest of all).
    pub(crate) fn get(&self, key: &[u8], at: Option<u64>) -> Found {
        let map = self.map.borrow();
        let v = map.get(&Probe::new(key) as &dyn KeyView)?.visible(at)?;
        Some(v.value.clone())
    }

    /// Adds commit `txid`'s version of `key` (newer than every version held), then drops
    /// each older version for which `prunable(its txid, the next kept version's txid)`.
    pub(crate) fn insert(
        &self,
        key: &[u8],
        txid: u64,
        value: Option<Rc<[u8]>>,
        prunable: impl Fn(u64, u64) -> bool,
    ) {
        let cost = value.as_ref().map_or(0, |v| v.len() as u64) + VERSION_OVERHEAD;
        let version = Version { txid, value };
        let mut map = self.map.borrow_mut();
        self.last_txid.set(self.last_txid.get().max(txid));
        if self.since.get().is_none() {
            self.since.set(Some(Instant::now()));
        }
        self.bytes.set(self.bytes.get() + cost);
        self.versions.set(self.versions.get() + 1);
        // One walk of the map: most keys a memtable gets are new to it.
        let vs = match map.entry(HeadKey::new(key)) {
            std::collections::btree_map::Entry::Vacant(e) => {
                self.bytes.set(self.bytes.get() + key.len() as u64);
                e.insert(Versions::One(version));
                return;
            }
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        };
        let mut all = match std::mem::replace(vs, Versions::Many(Vec::new())) {
            Versions::One(old) => vec![old],
            Versions::Many(vs) => vs,
        };
        debug_assert!(all.last().is_none_or(|v| v.txid < txid));
        all.push(version);
        // Newest first: each version is judged against the next one kept.
        let mut kept: Vec<Version> = Vec::with_capacity(all.len());
        let mut dropped = 0u64;
        for v in all.into_iter().rev() {
            match kept.last() {
                Some(next) if prunable(v.txid, next.txid) => {
                    dropped += v.value.as_ref().map_or(0, |b| b.len() as u64) + VERSION_OVERHEAD;
                    self.versions.set(self.versions.get() - 1);
                }
                _ => kept.push(v),
            }
        }
        self.bytes.set(self.bytes.get() - dropped);
        kept.reverse();
        *vs = if kept.len() == 1 {
            Versions::One(kept.pop().expect("one"))
        } else {
            Versions::Many(kept)
        };
    }

    /// Removes the versions of `key` newer than commit `keep` (their commit failed).
    pub(crate) fn roll_back(&self, key: &[u8], keep: u64) {
        let mut map = self.map.borrow_mut();
        let Some(vs) = map.get_mut(&Probe::new(key) as &dyn KeyView) else {
            return;
        };
        let mut all = match std::mem::replace(vs, Versions::Many(Vec::new())) {
            Versions::One(v) => vec![v],
            Versions::Many(vs) => vs,
        };
        for v in all.iter().filter(|v| v.txid > keep) {
            let cost = v.value.as_ref().map_or(0, |b| b.len() as u64) + VERSION_OVERHEAD;
            self.bytes.set(self.bytes.get() - cost);
            self.versions.set(self.versions.get() - 1);
        }
        all.retain(|v| v.txid <= keep);
        match all.len() {
            0 => {
                self.bytes.set(self.bytes.get() - key.len() as u64);
                map.remove(&Probe::new(key) as &dyn KeyView);
            }
            1 => *vs = Versions::One(all.pop().expect("one")),
            _ => *vs = Versions::Many(all),
        }
        self.last_txid.set(self.last_txid.get().min(keep));
        if map.is_empty() {
            self.since.set(None);
        }
    }

    /// Removes every version newer than commit `keep` (a log write failed: the commits after
    /// the last one written were never made).
    pub(crate) fn roll_back_all(&self, keep: u64) {
        if self.last_txid.get() <= keep {
            return;
        }
        let keys: Vec<Vec<u8>> = self
            .map
            .borrow()
            .iter()
            .filter(|(_, vs)| vs.newest().txid > keep)
            .map(|(k, _)| k.bytes().to_vec())
            .collect();
        for k in keys {
            self.roll_back(&k, keep);
        }
        self.last_txid.set(self.last_txid.get().min(keep));
    }

    /// The first key after `after` and within `end` that has a version at or below `at`
    /// (`None`: the newest), with that version's value.
    pub(crate) fn next(
        &self,
        after: Bound<&[u8]>,
        end: Bound<&[u8]>,
        at: Option<u64>,
    ) -> Option<Entry> {
        if crate::range::is_empty(after, end) {
            return None;
        }
        let map = self.map.borrow();
        let (lo, hi) = (after.map(Probe::new), end.map(Probe::new));
        first_visible(map.range::<dyn KeyView, _>((view(&lo), view(&hi))), at)
    }

    /// The last key before `before` and within `start` that has a version at or below
    /// `at` (`None`: the newest), with that version's value: [`MemTable::next`] in reverse.
    pub(crate) fn prev(
        &self,
        start: Bound<&[u8]>,
        before: Bound<&[u8]>,
        at: Option<u64>,
    ) -> Option<Entry> {
        if crate::range::is_empty(start, before) {
            return None;
        }
        let map = self.map.borrow();
        let (lo, hi) = (start.map(Probe::new), before.map(Probe::new));
        first_visible(
            map.range::<dyn KeyView, _>((view(&lo), view(&hi))).rev(),
            at,
        )
    }

    /// Removes (and frees) up to `n` keys; true if any remain. For freeing a large
    /// memtable a piece at a time.
    pub(crate) fn pop_some(&self, n: usize) -> bool {
        let mut map = self.map.borrow_mut();
        for _ in 0..n {
            if map.pop_first().is_none() {
                return false;
            }
        }
        !map.is_empty()
    }

    /// Up to `n` keys after `after`, each with its newest version (for the checkpoint's
    /// merge, which walks a frozen memtable in key order).
    pub(crate) fn newest_after(&self, after: Option<&[u8]>, n: usize) -> Vec<Entry> {
        let map = self.map.borrow();
        let lower = match after {
            Some(k) => Bound::Excluded(Probe::new(k)),
            None => Bound::Unbounded,
        };
        map.range::<dyn KeyView, _>((view(&lower), Bound::Unbounded))
            .take(n)
            .map(|(k, vs)| (k.bytes().to_vec(), vs.newest().value.clone()))
            .collect()
    }
}

/// A bound on lookup keys as a bound on the map's keys.
fn view<'a>(b: &'a Bound<Probe<'_>>) -> Bound<&'a dyn KeyView> {
    b.as_ref().map(|p| p as &dyn KeyView)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<Rc<[u8]>> {
        Some(Rc::from(s.as_bytes()))
    }

    #[test]
    fn versions_by_commit_and_pruning() {
        let m = MemTable::new();
        m.insert(b"a", 1, v("one"), |_, _| false);
        m.insert(b"a", 3, None, |_, _| false);
        m.insert(b"a", 5, v("five"), |_, _| false);
        m.insert(b"b", 2, v("bee"), |_, _| false);
        assert_eq!(m.get(b"a", Some(0)), None);
        assert_eq!(m.get(b"a", Some(2)), Some(v("one")));
        assert_eq!(m.get(b"a", Some(4)), Some(None));
        assert_eq!(m.get(b"a", None), Some(v("five")));
        assert_eq!(m.versions(), 4);
        // Keep only versions someone at commit 4 needs: 3 (for 4) and the newest.
        m.insert(b"a", 7, v("seven"), |old, next| !(old..next).contains(&4));
        assert_eq!(m.get(b"a", Some(4)), Some(None));
        assert_eq!(m.get(b"a", Some(2)), None, "version 1 was pruned");
        assert_eq!(m.versions(), 3);
        let (k, val) = m.next(Bound::Unbounded, Bound::Unbounded, Some(2)).unwrap();
        assert_eq!((k.as_slice(), val), (&b"b"[..], v("bee")));
        assert_eq!(
            m.next(Bound::Excluded(b"a"), Bound::Excluded(b"b"), None),
            None
        );
        m.roll_back(b"a", 4);
        assert_eq!(m.get(b"a", None), Some(None));
        m.roll_back(b"b", 1);
        assert_eq!(m.keys(), 1);
        assert_eq!(m.newest_after(None, 10).len(), 1);
        m.roll_back(b"a", 0);
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
        assert_eq!(m.versions(), 0);
    }
}
