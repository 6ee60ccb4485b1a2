//! Scrubbed mode: where pages cannot be pinned, the keeper asks the kernel which recorded
//! pages are still in the page cache (`mincore`) and clears the bits of those it reclaimed.
//!
//! A pass walks the record and calls `mincore` once per span of words that hold resident
//! pages (~60-70 ns a page here), so its cost grows with the resident set, not the file. A
//! cheap gate runs first where the kernel has `cachestat(2)` (Linux 6.5+): one call over the
//! whole file reports its cached and evicted page counts, and if neither moved since the last
//! pass, nothing was reclaimed and the pass is skipped.
//!
//! The bound this gives: a page the kernel reclaims after a pass and that a task reads before
//! the next pass began faults on the executor thread. Pages reclaimed before a pass started
//! never do (the pass clears their bits first). docs/faults.md discusses the numbers.

use super::sys;
use super::KeeperShared;

/// Most words (32 pages each) passed to one `mincore` call.
const SPAN_WORDS: usize = 2048;

/// What a scrub remembers between passes.
#[derive(Default)]
pub(super) struct Scrubber {
    last: Option<sys::CacheStat>,
    buf: Vec<u8>,
}

impl Scrubber {
    /// One pass: clears the bits of recorded pages that are no longer in the page cache.
    /// Returns `None` when the gate said nothing changed (no pass), else the pages cleared.
    pub(super) fn pass(&mut self, shared: &KeeperShared) -> Option<u64> {
        use std::os::fd::AsRawFd;
        let stat = sys::cachestat(shared.fd.as_raw_fd());
        if stat.is_some() && stat == self.last {
            return None;
        }
        let residency = &shared.residency;
        let words = residency.words();
        let file_pages = shared.file_len().div_ceil(1 << shared.page_shift);
        let mut cleared = 0;
        let mut w = 0;
        while w < words {
            if residency.resident_in_word(w) == 0 {
                w += 1;
                continue;
            }
            let start = w;
            while w < words && w - start < SPAN_WORDS && residency.resident_in_word(w) != 0 {
                w += 1;
            }
            let first_page = start as u64 * 32;
            let pages = ((w - start) as u64 * 32).min(file_pages.saturating_sub(first_page));
            if pages == 0 {
                // Past the end of the file: nothing there can be resident.
                cleared += residency.clear_range(first_page, (w - start) as u64 * 32);
                continue;
            }
            let (addr, len) = shared.span(first_page, pages);
            // SAFETY: the span lies inside the keeper's region (within the reservation and
            // the file), page-aligned; mincore only reports.
            if unsafe { sys::mincore(addr, len, &mut self.buf) }.is_err() {
                continue;
            }
            for (i, &b) in self.buf.iter().enumerate() {
                let page = first_page + i as u64;
                if b & 1 == 0 && residency.is_set(page) {
                    cleared += residency.clear_range(page, 1);
                }
            }
        }
        // The gate as read before the pass: whatever changed during it opens the next one.
        self.last = stat;
        Some(cleared)
    }
}
