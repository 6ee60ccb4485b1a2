//! The residency record: which pages the runtime knows to be resident, checked in a few
//! nanoseconds, and which of them were read since the last eviction sweep.
//!
//! `mincore` costs over a microsecond, far too much for every access, so the runtime keeps
//! its own record: two bits per page, packed 32 pages to a 64-bit word, the *resident* bit
//! (even bit) beside the page's *referenced* bit (odd bit), so one load answers both. A
//! page's resident bit is set when a prefetch of it completes, and cleared when the runtime
//! evicts it, when the residency keeper (`keeper.rs`) learns that the kernel reclaimed it, or
//! when the file shrinks. The referenced bit is set by every read that finds the page
//! resident (an atomic OR only when it was clear, so a hot page costs one load) and cleared
//! by the keeper's CLOCK hand, which evicts pages it finds unreferenced. A page the hand
//! evicted keeps its referenced bit (resident clear, referenced set): the mark of a page
//! dropped from the mapping but probably still in the page cache, which the slow path may
//! map back in without a device read (`probably_cached`); pages the program wrote through
//! the file get the same mark (`mark_cached`).
//!
//! The words are atomics because the keeper clears bits from its own thread while the
//! executor reads and sets them. Every change is an atomic read-modify-write, so neither side
//! can undo the other's change: a cleared resident bit is never resurrected by a racing
//! referenced-bit update. Loads on the resident path are `Relaxed`: the record is advice
//! about whether touching a page may fault, never about the bytes (those come from the
//! kernel's mapping).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Pages per word.
const PER_WORD: u64 = 32;
/// The resident bits of a word (even bits).
const RESIDENT: u64 = 0x5555_5555_5555_5555;

#[inline]
fn word_of(page: u64) -> usize {
    (page / PER_WORD) as usize
}

#[inline]
fn resident_bit(page: u64) -> u64 {
    1 << ((page % PER_WORD) * 2)
}

#[inline]
fn referenced_bit(page: u64) -> u64 {
    2 << ((page % PER_WORD) * 2)
}

/// A borrowed view of a record's words for the resident path: the pointer the mapping
/// caches so that a read's check is one dependent load from the mapping, not three.
///
/// Built only by [`Residency::view`]; its holder must keep the `Residency` alive (the
/// mapping holds the `Arc` beside it).
#[derive(Clone, Copy)]
pub(crate) struct RecordView {
    words: std::ptr::NonNull<AtomicU64>,
    len: usize,
}

impl RecordView {
    /// The word holding `page`'s bits, or `None` past the record's end.
    #[inline(always)]
    fn word(&self, page: u64) -> Option<&AtomicU64> {
        let i = word_of(page);
        if i >= self.len {
            return None;
        }
        // SAFETY: `i` is in bounds (checked above) of the words the view was made from, which
        // the view's holder keeps alive (see the type's docs); atomics are shared freely.
        Some(unsafe { &*self.words.as_ptr().add(i) })
    }

    /// As [`Residency::access`]: true if every page of `first..=last` is resident, marking
    /// them referenced. A page past the record's end is not resident. The one-page case (the
    /// resident path of almost every read) is a load and a bit test, inlined into the
    /// caller; ranges over several pages go out of line.
    #[inline(always)]
    pub(crate) fn access(&self, first: u64, last: u64) -> bool {
        if first != last {
            return self.access_many(first, last);
        }
        let Some(word) = self.word(first) else {
            return false;
        };
        let w = word.load(Relaxed);
        if w & resident_bit(first) == 0 {
            return false;
        }
        if w & referenced_bit(first) == 0 {
            word.fetch_or(referenced_bit(first), Relaxed);
        }
        true
    }

    #[inline(never)]
    fn access_many(&self, first: u64, last: u64) -> bool {
        let resident = |p: u64| {
            self.word(p)
                .is_some_and(|w| w.load(Relaxed) & resident_bit(p) != 0)
        };
        if !(first..=last).all(resident) {
            return false;
        }
        for p in first..=last {
            let word = self.word(p).expect("checked above");
            if word.load(Relaxed) & referenced_bit(p) == 0 {
                word.fetch_or(referenced_bit(p), Relaxed);
            }
        }
        true
    }
}

/// The record of one mapping, shared by the executor and the mapping's residency keeper.
pub(crate) struct Residency {
    words: Box<[AtomicU64]>,
    /// Pages whose resident bit is set.
    count: AtomicU64,
}

impl Residency {
    /// A record of `pages` pages, none resident.
    pub(crate) fn new(pages: u64) -> Residency {
        Residency {
            words: (0..pages.div_ceil(PER_WORD))
                .map(|_| AtomicU64::new(0))
                .collect(),
            count: AtomicU64::new(0),
        }
    }

    /// A view for the resident path (see [`RecordView`]).
    pub(crate) fn view(&self) -> RecordView {
        RecordView {
            words: std::ptr::NonNull::from(&self.words[..]).cast(),
            len: self.words.len(),
        }
    }

    /// Pages the record covers (a multiple of 32).
    pub(crate) fn pages(&self) -> u64 {
        self.words.len() as u64 * PER_WORD
    }

    /// True if every page of `first..=last` is resident; marks them referenced. The resident
    /// path of every read: one load for a page already referenced.
    #[cfg(test)]
    pub(crate) fn access(&self, first: u64, last: u64) -> bool {
        self.view().access(first, last)
    }

    /// True if `page` is resident.
    #[inline]
    pub(crate) fn is_set(&self, page: u64) -> bool {
        self.words[word_of(page)].load(Relaxed) & resident_bit(page) != 0
    }

    /// True if `page` is not resident but carries the "probably cached" mark: left by the
    /// CLOCK hand on a page it unpinned (dropped from the mapping, probably still in the page
    /// cache), or by [`mark_cached`](Self::mark_cached) on a page the program just wrote
    /// through the file. The slow path then asks the cache before sending the page to the
    /// keeper. A page never read, or forgotten because the kernel reclaimed it, has no mark.
    #[inline]
    pub(crate) fn probably_cached(&self, page: u64) -> bool {
        let w = self.words[word_of(page)].load(Relaxed);
        w & resident_bit(page) == 0 && w & referenced_bit(page) != 0
    }

    /// Gives the pages of `first..first + count` that are not resident the mark of
    /// [`probably_cached`](Self::probably_cached) (the process just wrote them through the
    /// file). Resident pages are left as they are.
    pub(crate) fn mark_cached(&self, first: u64, count: u64) {
        let end = (first + count).min(self.pages());
        for p in first..end {
            let word = &self.words[word_of(p)];
            if word.load(Relaxed) & resident_bit(p) == 0 {
                word.fetch_or(referenced_bit(p), Relaxed);
            }
        }
    }

    /// True if every page of `first..=last` is resident (without marking them referenced).
    pub(crate) fn all_set(&self, first: u64, last: u64) -> bool {
        (first..=last).all(|p| self.is_set(p))
    }

    /// Marks `count` pages from `first` resident and referenced.
    pub(crate) fn set_range(&self, first: u64, count: u64) {
        let mut added = 0;
        for p in first..first + count {
            let bits = resident_bit(p) | referenced_bit(p);
            let old = self.words[word_of(p)].fetch_or(bits, Relaxed);
            if old & resident_bit(p) == 0 {
                added += 1;
            }
        }
        self.count.fetch_add(added, Relaxed);
    }

    /// Marks `count` pages from `first` not resident. Returns how many were.
    pub(crate) fn clear_range(&self, first: u64, count: u64) -> u64 {
        let end = (first + count).min(self.pages());
        let mut removed = 0;
        for p in first..end {
            let bits = resident_bit(p) | referenced_bit(p);
            let old = self.words[word_of(p)].fetch_and(!bits, Relaxed);
            if old & resident_bit(p) != 0 {
                removed += 1;
            }
        }
        self.count.fetch_sub(removed, Relaxed);
        removed
    }

    /// Marks every page not resident.
    pub(crate) fn clear_all(&self) {
        let mut removed = 0;
        for word in self.words.iter() {
            removed += (word.swap(0, Relaxed) & RESIDENT).count_ones() as u64;
        }
        self.count.fetch_sub(removed, Relaxed);
    }

    /// Number of pages marked resident.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The resident pages of word `index`, as a bitmask of page offsets within the word
    /// (bit `i` for page `index * 32 + i`).
    pub(crate) fn resident_in_word(&self, index: usize) -> u32 {
        compress_even(self.words[index].load(Relaxed))
    }

    /// Number of words.
    pub(crate) fn words(&self) -> usize {
        self.words.len()
    }

    /// One step of the CLOCK hand over word `index`: resident pages that were referenced
    /// lose their referenced bit (a second chance); resident pages that were not are marked
    /// not resident, at most `limit` of them. Returns the evicted pages as a bitmask of
    /// offsets within the word. Concurrent reads that set a referenced bit meanwhile are not
    /// lost: the word is replaced with a compare-and-swap.
    pub(crate) fn sweep_word(&self, index: usize, limit: u32) -> u32 {
        let word = &self.words[index];
        let mut current = word.load(Relaxed);
        loop {
            let resident = current & RESIDENT;
            if resident == 0 {
                return 0;
            }
            let referenced = (current >> 1) & RESIDENT;
            // Resident and unreferenced: the victims, lowest first, up to the limit.
            let mut candidates = resident & !referenced;
            let mut victims = 0;
            let mut taken = 0;
            while candidates != 0 && taken < limit {
                let lowest = candidates & candidates.wrapping_neg();
                victims |= lowest;
                candidates &= !lowest;
                taken += 1;
            }
            // Clear referenced bits of resident referenced pages and resident bits of the
            // victims; a victim keeps its referenced bit as the "unpinned, probably still
            // cached" mark (see `probably_cached`).
            let new = (current & !((referenced & resident) << 1) & !victims) | (victims << 1);
            match word.compare_exchange_weak(current, new, Relaxed, Relaxed) {
                Ok(_) => {
                    let n = victims.count_ones() as u64;
                    if n > 0 {
                        self.count.fetch_sub(n, Relaxed);
                    }
                    return compress_even(victims);
                }
                Err(actual) => current = actual,
            }
        }
    }
}

/// The even bits of `w` packed into 32 bits (bit `2i` of `w` becomes bit `i`).
#[inline]
fn compress_even(w: u64) -> u32 {
    let mut x = w & RESIDENT;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_and_count() {
        let r = Residency::new(100);
        assert_eq!(r.pages(), 128);
        r.set_range(30, 5);
        assert_eq!(r.count(), 5);
        assert!(r.all_set(30, 34));
        assert!(!r.is_set(29) && !r.is_set(35));
        r.set_range(33, 4); // two already set
        assert_eq!(r.count(), 7);
        assert_eq!(r.clear_range(31, 3), 3);
        assert_eq!(r.count(), 4);
        assert!(r.access(30, 30));
        assert!(!r.access(30, 31));
        r.clear_all();
        assert_eq!(r.count(), 0);
        assert!(!r.is_set(30));
    }

    #[test]
    fn compress_even_packs_even_bits() {
        assert_eq!(compress_even(0), 0);
        assert_eq!(compress_even(1), 1);
        assert_eq!(compress_even(1 << 2), 2);
        assert_eq!(compress_even(1 << 62), 1 << 31);
        assert_eq!(compress_even(RESIDENT), u32::MAX);
        assert_eq!(compress_even(!RESIDENT), 0);
    }

    #[test]
    fn clock_gives_referenced_pages_a_second_chance() {
        let r = Residency::new(32);
        r.set_range(0, 4); // resident and referenced
                           // First sweep: everything referenced, nothing evicted, referenced bits cleared.
        assert_eq!(r.sweep_word(0, 32), 0);
        // Page 2 is read again: it survives the next sweep, the others go.
        assert!(r.access(2, 2));
        assert_eq!(r.sweep_word(0, 32), 0b1011);
        assert_eq!(r.count(), 1);
        assert!(r.is_set(2));
        // The evicted pages carry the unpinned mark; the survivor and untouched pages do not.
        assert!(r.probably_cached(0) && r.probably_cached(1) && r.probably_cached(3));
        assert!(!r.probably_cached(2) && !r.probably_cached(4));
        // Reading a page in again clears the mark (it is resident); forgetting it does too.
        r.set_range(0, 1);
        assert!(!r.probably_cached(0) && r.is_set(0));
        r.clear_range(1, 1);
        assert!(!r.probably_cached(1));
        r.clear_range(0, 1);
        // The limit bounds evictions per word. Page 2 lost its referenced bit in the last
        // sweep, so this one evicts it and takes the referenced bits of pages 8..12.
        r.set_range(8, 4);
        assert_eq!(r.sweep_word(0, 32), 0b100);
        assert_eq!(r.sweep_word(0, 2).count_ones(), 2);
        assert_eq!(r.count(), 2);
    }
}
