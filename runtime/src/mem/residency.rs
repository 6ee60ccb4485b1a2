//! A bitmap of the pages the runtime knows to be resident: the few-nanosecond check.
//!
//! `mincore` costs over a microsecond, far too much for every access, so the runtime keeps
//! its own record: a page's bit is set when a prefetch of it completes, and cleared when the
//! runtime evicts it (`Mapping::evict`). The bitmap is a promise the runtime can keep only for
//! pages that stay in memory: the kernel may still reclaim a page under memory pressure, and
//! then the next touch of it faults on the executor thread. The `mlock` helper primitive is
//! the one way to make the promise hard (within its byte budget).

use std::cell::UnsafeCell;

/// One bit per page, owned by the executor thread.
pub(crate) struct Residency {
    words: UnsafeCell<Vec<u64>>,
}

impl Residency {
    pub(crate) fn new(pages: u64) -> Residency {
        Residency {
            words: UnsafeCell::new(vec![0; pages.div_ceil(64) as usize]),
        }
    }

    fn words(&self) -> &[u64] {
        // SAFETY: the bitmap is only used from the executor thread (the mapping is !Send),
        // and no reference into it outlives a method call.
        unsafe { &*self.words.get() }
    }

    #[allow(clippy::mut_from_ref)]
    fn words_mut(&self) -> &mut Vec<u64> {
        // SAFETY: as in `words`; the methods never hold two references at once.
        unsafe { &mut *self.words.get() }
    }

    /// True if every page in `first..=last` is marked resident.
    #[inline]
    pub(crate) fn all_set(&self, first: u64, last: u64) -> bool {
        let words = self.words();
        if first == last {
            // The common case: a read inside one page.
            return words[(first >> 6) as usize] & (1 << (first & 63)) != 0;
        }
        (first..=last).all(|p| words[(p >> 6) as usize] & (1 << (p & 63)) != 0)
    }

    #[inline]
    pub(crate) fn is_set(&self, page: u64) -> bool {
        self.words()[(page >> 6) as usize] & (1 << (page & 63)) != 0
    }

    pub(crate) fn set_range(&self, first: u64, count: u64) {
        let words = self.words_mut();
        for p in first..first + count {
            words[(p >> 6) as usize] |= 1 << (p & 63);
        }
    }

    pub(crate) fn clear_range(&self, first: u64, count: u64) {
        let words = self.words_mut();
        for p in first..first + count {
            words[(p >> 6) as usize] &= !(1 << (p & 63));
        }
    }

    pub(crate) fn clear_all(&self) {
        self.words_mut().iter_mut().for_each(|w| *w = 0);
    }

    /// Number of pages marked resident.
    pub(crate) fn count(&self) -> u64 {
        self.words().iter().map(|w| w.count_ones() as u64).sum()
    }
}
