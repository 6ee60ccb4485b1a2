//! Free extents: the allocator's in-memory map of free page runs.
//!
//! An [`Extents`] holds disjoint runs of pages, coalesced (two runs never touch), indexed
//! twice as bbolt's hashmap freelist is: by first page (to coalesce a freed run with its
//! neighbours in O(log n)) and by (length, first page) (to find the smallest run that fits a
//! request: best fit, lowest address among equals). Allocation splits a run, taking pages from
//! its end, so the run's first page (its key in the freelist tree) stays and only its length
//! changes.
//!
//! Two things make it fit a copy-on-write commit:
//! * **touched**: every first page whose run appeared, vanished or changed length since the
//!   last [`take_touched`](Extents::take_touched); the commit rewrites exactly those freelist
//!   keys, so the on-disk freelist changes by O(what the transaction touched);
//! * **journal**: while a write transaction owns the map, every change is journaled, and
//!   [`rollback`](Extents::rollback) undoes them (an aborted or failed commit leaves the map as
//!   the last commit left it) without copying the map up front.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::types::PageNo;

/// One change, as its inverse.
#[derive(Clone, Copy, Debug)]
enum Undo {
    /// A run was removed: put it back.
    Reinsert(PageNo, u64),
    /// A run was inserted: take it out.
    Remove(PageNo),
}

/// Disjoint, coalesced runs of free pages. See the module docs.
#[derive(Default, Debug)]
pub struct Extents {
    by_start: BTreeMap<PageNo, u64>,
    by_len: BTreeSet<(u64, PageNo)>,
    pages: u64,
    touched: BTreeSet<PageNo>,
    journal: Option<Vec<Undo>>,
}

impl Extents {
    /// An empty map.
    pub fn new() -> Extents {
        Extents::default()
    }

    fn insert(&mut self, start: PageNo, len: u64) {
        debug_assert!(len > 0);
        self.by_start.insert(start, len);
        self.by_len.insert((len, start));
        self.pages += len;
        self.touched.insert(start);
        if let Some(j) = &mut self.journal {
            j.push(Undo::Remove(start));
        }
    }

    fn remove(&mut self, start: PageNo) -> Option<u64> {
        let len = self.by_start.remove(&start)?;
        self.by_len.remove(&(len, start));
        self.pages -= len;
        self.touched.insert(start);
        if let Some(j) = &mut self.journal {
            j.push(Undo::Reinsert(start, len));
        }
        Some(len)
    }

    /// Adds the run `start..start + len`, merging it with the runs it touches. A run that
    /// overlaps one already free is an error (a page freed twice: a corrupt freelist).
    pub fn add(&mut self, start: PageNo, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let end = start
            .0
            .checked_add(len)
            .ok_or_else(|| Error::corrupt(start.0, format!("free run of {len} pages overflows")))?;
        let mut first = start;
        let mut total = len;
        if let Some((&s, &l)) = self.by_start.range(..=start).next_back() {
            if s.0 + l > start.0 {
                return Err(Error::corrupt(
                    start.0,
                    format!("page freed twice: run {start}+{len} overlaps free run {s}+{l}"),
                ));
            }
            if s.0 + l == start.0 {
                self.remove(s);
                first = s;
                total += l;
            }
        }
        if let Some((&s, &l)) = self.by_start.range(PageNo(start.0 + 1)..).next() {
            if s.0 < end {
                return Err(Error::corrupt(
                    start.0,
                    format!("page freed twice: run {start}+{len} overlaps free run {s}+{l}"),
                ));
            }
            if s.0 == end {
                self.remove(s);
                total += l;
            }
        }
        self.insert(first, total);
        Ok(())
    }

    /// Takes `n` contiguous pages from the smallest run that holds them (from that run's end),
    /// or `None` if no run is long enough.
    pub fn take_best_fit(&mut self, n: u64) -> Option<PageNo> {
        let &(len, start) = self.by_len.range((n, PageNo(0))..).next()?;
        self.remove(start);
        if len > n {
            self.insert(start, len - n);
        }
        Some(PageNo(start.0 + len - n))
    }

    /// Removes and returns the run that ends exactly at `end` (the free tail of the used
    /// pages), if there is one.
    pub fn take_tail(&mut self, end: PageNo) -> Option<(PageNo, u64)> {
        let (&s, &l) = self.by_start.iter().next_back()?;
        if s.0 + l != end.0 {
            return None;
        }
        self.remove(s);
        Some((s, l))
    }

    /// The length of the run starting at `start`, if one does.
    pub fn get(&self, start: PageNo) -> Option<u64> {
        self.by_start.get(&start).copied()
    }

    /// Total free pages.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Length of the longest run (0 when empty).
    pub fn largest(&self) -> u64 {
        self.by_len.iter().next_back().map_or(0, |&(l, _)| l)
    }

    /// The runs, by first page.
    pub fn iter(&self) -> impl Iterator<Item = (PageNo, u64)> + '_ {
        self.by_start.iter().map(|(&s, &l)| (s, l))
    }

    /// First pages whose runs changed since the last call, in order; clears the record.
    pub fn take_touched(&mut self) -> Vec<PageNo> {
        std::mem::take(&mut self.touched).into_iter().collect()
    }

    /// Starts journaling (a write transaction takes the map) and forgets what was touched.
    pub fn begin(&mut self) {
        self.journal = Some(Vec::new());
        self.touched.clear();
    }

    /// Undoes every change since [`begin`](Self::begin) and stops journaling.
    pub fn rollback(&mut self) {
        let journal = self.journal.take().unwrap_or_default();
        for undo in journal.into_iter().rev() {
            match undo {
                Undo::Reinsert(s, l) => {
                    self.by_start.insert(s, l);
                    self.by_len.insert((l, s));
                    self.pages += l;
                }
                Undo::Remove(s) => {
                    let l = self.by_start.remove(&s).expect("journaled insert");
                    self.by_len.remove(&(l, s));
                    self.pages -= l;
                }
            }
        }
        self.touched.clear();
    }

    /// Keeps every change since [`begin`](Self::begin) (the commit is durable) and stops
    /// journaling.
    pub fn settle(&mut self) {
        self.journal = None;
        self.touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(e: &Extents) -> Vec<(u64, u64)> {
        e.iter().map(|(s, l)| (s.0, l)).collect()
    }

    #[test]
    fn coalesces_splits_and_picks_the_best_fit() {
        let mut e = Extents::new();
        e.add(PageNo(10), 2).unwrap();
        e.add(PageNo(14), 1).unwrap();
        e.add(PageNo(12), 2).unwrap(); // joins both neighbours
        assert_eq!(runs(&e), [(10, 5)]);
        e.add(PageNo(30), 3).unwrap();
        assert_eq!(e.pages(), 8);
        assert_eq!(e.largest(), 5);
        // Best fit: the 3-page run, from its end.
        assert_eq!(e.take_best_fit(2), Some(PageNo(31)));
        assert_eq!(runs(&e), [(10, 5), (30, 1)]);
        assert_eq!(e.take_best_fit(1), Some(PageNo(30)));
        assert_eq!(e.take_best_fit(6), None);
        assert_eq!(e.take_tail(PageNo(15)), Some((PageNo(10), 5)));
        assert_eq!(e.pages(), 0);
    }

    #[test]
    fn double_free_is_an_error() {
        let mut e = Extents::new();
        e.add(PageNo(10), 4).unwrap();
        assert!(e.add(PageNo(12), 1).is_err());
        assert!(e.add(PageNo(8), 3).is_err());
        assert!(e.add(PageNo(13), 5).is_err());
        assert_eq!(runs(&e), [(10, 4)]);
    }

    #[test]
    fn rollback_restores_the_map_and_touched_names_changed_runs() {
        let mut e = Extents::new();
        e.add(PageNo(10), 4).unwrap();
        e.add(PageNo(20), 4).unwrap();
        e.begin();
        assert_eq!(e.take_best_fit(2), Some(PageNo(12)));
        e.add(PageNo(14), 6).unwrap(); // joins 10..12 and 20..24
        assert_eq!(runs(&e), [(10, 2), (14, 10)]);
        let touched: Vec<u64> = e.take_touched().into_iter().map(|p| p.0).collect();
        assert_eq!(touched, [10, 14, 20]);
        e.rollback();
        assert_eq!(runs(&e), [(10, 4), (20, 4)]);
        assert_eq!(e.pages(), 8);
    }
}
