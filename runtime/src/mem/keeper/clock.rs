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

/// Drops from the mapping every page of the file that the record does not hold. The kernel
/// maps more than the pages asked for: a fault (or a populate) also maps neighbouring pages
/// already in the page cache ("fault-around", 64 KiB by default), and in pinned mode those
/// are locked too, without being in the record, so no CLOCK pass would ever unpin them. The
/// keeper notices when the mapping's resident size outgrows the record (`smaps`) and runs this
/// pass. Returns the number of ranges advised.
pub(super) fn reconcile(shared: &KeeperShared, pidfd: Option<&OwnedFd>) -> u64 {
    let residency = &shared.residency;
    let file_pages = shared
        .file_len()
        .div_ceil(1 << shared.page_shift)
        .min(residency.pages());
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut run_start: Option<u64> = None;
    for page in 0..=file_pages {
        let recorded = page < file_pages && residency.is_set(page);
        match (run_start, recorded || page == file_pages) {
            (None, false) => run_start = Some(page),
            (Some(start), true) => {
                ranges.push(shared.span(start, page - start));
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        ranges.push(shared.span(start, file_pages - start));
    }
    let n = ranges.len() as u64;
    // SAFETY: as in `enforce`: ranges of the keeper's live region, dropped from our page
    // tables only; the record does not hold them, so no reader was promised them.
    if let Err((_, e)) = unsafe { sys::advise_ranges(pidfd, &ranges, sys::MADV_DONTNEED_LOCKED) } {
        shared.note_error(format!("unpinning unrecorded pages failed: {e}"));
    }
    n
}

/// Pages of the mapping at `base` mapped into this process (its `Rss` in /proc/self/smaps).
pub(super) fn mapped_pages(base: usize, page_shift: u32) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let start = format!("{base:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
    lines.next()?;
    let kib: u64 = lines
        .find_map(|l| l.strip_prefix("Rss:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kib << 10) >> page_shift)
}
