//! Pinned mode's budget: a CLOCK hand over the residency record unpins pages that were not
//! read since its last pass, until the pinned set fits the budget.
//!
//! The whole mapping is locked on fault (`mlock2(MLOCK_ONFAULT)`), so every page mapped in is
//! pinned: the kernel cannot reclaim it, and the record stays true. To let a page go, the
//! keeper clears its resident bit first, then drops it from the mapping with
//! `MADV_DONTNEED_LOCKED`: the page stays in the page cache, unpinned, and the kernel may
//! reclaim it like any other. A read that finds the bit clear takes the slow path again.
//!
//! The remaining race: a task that got its bytes *before* the bit was cleared and touches them
//! *after* the page was dropped faults again (a minor fault if the page is still cached,
//! major if the kernel reclaimed it in between). The referenced bit makes that unlikely: a
//! page read since the hand last passed is skipped, so only pages untouched for a whole
//! revolution of the hand are dropped.

use std::os::fd::OwnedFd;

use super::sys;
use super::KeeperShared;

/// Unpins pages until at most `target` remain resident, starting at `*hand`. Returns the
/// pages unpinned. Gives up after two revolutions (everything was referenced twice over).
pub(super) fn enforce(
    shared: &KeeperShared,
    pidfd: Option<&OwnedFd>,
    hand: &mut usize,
    target: u64,
) -> u64 {
    let residency = &shared.residency;
    let words = residency.words();
    if words == 0 {
        return 0;
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut evicted = 0;
    let mut steps = 0;
    while residency.count() > target && steps < 2 * words {
        let need = residency.count() - target;
        let word = *hand;
        let victims = residency.sweep_word(word, need.min(32) as u32);
        let mut bits = victims;
        while bits != 0 {
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            let page = word as u64 * 32 + i as u64;
            let (addr, len) = shared.span(page, 1);
            match ranges.last_mut() {
                Some((a, l)) if *a + *l == addr => *l += len,
                _ => ranges.push((addr, len)),
            }
            evicted += 1;
        }
        *hand = (word + 1) % words;
        steps += 1;
    }
    if !ranges.is_empty() {
        // SAFETY: the ranges are pages of the keeper's region, which it keeps mapped;
        // MADV_DONTNEED_LOCKED drops them from our page tables (the data stays in the page
        // cache and in the file), so a later touch maps the file's bytes in again.
        let result = unsafe { sys::advise_ranges(pidfd, &ranges, sys::MADV_DONTNEED_LOCKED) };
        if let Err((_, e)) = result {
            shared.note_error(format!("unpinning pages failed: {e}"));
        }
    }
    evicted
}

/// Pages of the mapping looked at per [`Reconciler::step`]: 128 KiB of `/proc/self/pagemap`
/// (about 0.1-0.2 ms of the keeper's time), so that page-ins never wait long behind it.
const RECONCILE_CHUNK: u64 = 16 * 1024;

/// Drops from the mapping the pages it holds that the record does not. The kernel maps more
/// than the pages asked for: a fault (or a populate) also maps neighbouring pages already in
/// the page cache ("fault-around", 64 KiB by default), and in pinned mode those are locked
/// too, without being in the record, so no CLOCK pass would ever unpin them.
///
/// The reconciler walks the mapping a chunk at a time, reading which pages are mapped from
/// `/proc/self/pagemap` (bit 63, "present", which needs no privilege) and advising
/// `MADV_DONTNEED_LOCKED` on exactly the mapped, unrecorded ones. An earlier design read
/// the mapping's `Rss` from `/proc/self/smaps` and, when it outgrew the record, advised every
/// unrecorded range of the whole file in one pass: hundreds of thousands of ranges for a
/// large file, during which the keeper served no page-ins (the server's GET p99 under memory
/// pressure went from ~25 ms to ~200 ms).
///
/// It runs on the keeper thread, between page-in batches, so it never sees a page that a
/// batch mapped but has not recorded yet; the executor's own `map_cached` records a page
/// before it maps it.
pub(super) struct Reconciler {
    pagemap: Option<std::fs::File>,
    cursor: u64,
    entries: Vec<u64>,
    ranges: Vec<(usize, usize)>,
}

impl Reconciler {
    /// Opens `/proc/self/pagemap`; without it (no procfs) the reconciler does nothing.
    pub(super) fn new() -> Reconciler {
        Reconciler {
            pagemap: std::fs::File::open("/proc/self/pagemap").ok(),
            cursor: 0,
            entries: Vec::new(),
            ranges: Vec::new(),
        }
    }

    /// Steps that cover the whole file once.
    pub(super) fn steps_per_pass(&self, shared: &KeeperShared) -> u64 {
        file_pages(shared).div_ceil(RECONCILE_CHUNK).max(1)
    }

    /// Looks at the next chunk of the file's pages (wrapping around at the end) and unpins
    /// those mapped but not recorded. Returns the number of ranges advised.
    pub(super) fn step(&mut self, shared: &KeeperShared, pidfd: Option<&OwnedFd>) -> u64 {
        use std::os::unix::fs::FileExt;
        let Some(pagemap) = &self.pagemap else {
            return 0;
        };
        let residency = &shared.residency;
        let file_pages = file_pages(shared);
        if file_pages == 0 {
            return 0;
        }
        let start = self.cursor % file_pages;
        let count = RECONCILE_CHUNK.min(file_pages - start);
        self.cursor = (start + count) % file_pages;
        self.entries.clear();
        self.entries.resize(count as usize, 0);
        let first_vpage = (shared.base as u64 >> shared.page_shift) + start;
        // SAFETY: the u64 buffer is viewed as its bytes for the read; any bytes are valid u64s.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                self.entries.as_mut_ptr().cast::<u8>(),
                count as usize * 8,
            )
        };
        if pagemap.read_exact_at(bytes, first_vpage * 8).is_err() {
            return 0;
        }
        self.ranges.clear();
        for (i, entry) in self.entries.iter().enumerate() {
            let page = start + i as u64;
            if entry >> 63 == 1 && !residency.is_set(page) {
                let (addr, len) = shared.span(page, 1);
                match self.ranges.last_mut() {
                    Some((a, l)) if *a + *l == addr => *l += len,
                    _ => self.ranges.push((addr, len)),
                }
            }
        }
        if self.ranges.is_empty() {
            return 0;
        }
        // SAFETY: as in `enforce`: ranges of the keeper's live region, dropped from our page
        // tables only; the record does not hold them, so no reader was promised them.
        let result = unsafe { sys::advise_ranges(pidfd, &self.ranges, sys::MADV_DONTNEED_LOCKED) };
        if let Err((_, e)) = result {
            shared.note_error(format!("unpinning unrecorded pages failed: {e}"));
        }
        self.ranges.len() as u64
    }
}

/// Pages of the file the record covers.
fn file_pages(shared: &KeeperShared) -> u64 {
    shared
        .file_len()
        .div_ceil(1 << shared.page_shift)
        .min(shared.residency.pages())
}
