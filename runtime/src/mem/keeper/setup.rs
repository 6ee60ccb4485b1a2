//! Choosing a mapping's residency mode when it is opened, and reporting the keeper's work in
//! the mapping's stats.

use super::ResidencyMode;
use crate::mem::backend::Backend;
use crate::mem::mapping::Inner;
use crate::mem::options::MapOptions;
use crate::mem::region::Region;
use crate::mem::stats::ResidencyStats;

/// The residency mode to run: the one asked for, or where that cannot be had, the fallback
/// and why. Pinned mode locks the whole reservation on fault here.
pub(crate) fn resolve_residency(
    options: &MapOptions,
    backend: Backend,
    region: &Region,
    len: usize,
) -> (ResidencyMode, Option<String>) {
    use crate::mem::backend::helper::Primitive;
    let wanted = options.residency;
    if wanted == ResidencyMode::Auto
        && backend == Backend::Helper
        && options.primitive == Primitive::Mlock
    {
        // The mlock primitive pins (and unpins) ranges itself, within its own budget.
        return (ResidencyMode::Trusted, None);
    }
    if !matches!(wanted, ResidencyMode::Auto | ResidencyMode::Pinned) {
        return (wanted, None);
    }
    // SAFETY: the region is our own live mapping of `len` bytes; locking changes no bytes.
    match unsafe { super::pin_on_fault(region.base(), len) } {
        Ok(()) => {
            // A huge (PMD) mapping of a large page-cache folio would lock 2 MiB at a time,
            // behind the record's back: map 4 KiB pages only.
            let _ = region.advise_no_huge_pages();
            (ResidencyMode::Pinned, None)
        }
        Err(e) => {
            let why = format!(
                "pinned residency unavailable (mlock2 of the mapping: {e}; needs CAP_IPC_LOCK \
                 or a large enough RLIMIT_MEMLOCK): reclaimed pages are found by mincore \
                 scrubbing instead"
            );
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("faultless: {why}"));
            (ResidencyMode::Scrubbed, Some(why))
        }
    }
}

/// The keeper's counters, as the mapping's stats report them.
pub(crate) fn keeper_stats(inner: &Inner) -> ResidencyStats {
    use std::sync::atomic::Ordering::Relaxed;
    let mut s = ResidencyStats {
        mode: Some(inner.residency_mode),
        fallback: inner.residency_fallback.clone(),
        ..Default::default()
    };
    if let Some(k) = &inner.keeper {
        let c = &k.shared.counters;
        s.budget_bytes = k.shared.budget_bytes();
        s.pages_unpinned = c.pages_unpinned.load(Relaxed);
        s.pages_found_reclaimed = c.pages_found_reclaimed.load(Relaxed);
        s.scrub_passes = c.scrub_passes.load(Relaxed);
        s.scrubs_skipped = c.scrubs_skipped.load(Relaxed);
        s.budget_shrinks = c.budget_shrinks.load(Relaxed);
        s.unrecorded_ranges_unpinned = c.reconcile_ranges.load(Relaxed);
        s.keeper_batches = c.batches.load(Relaxed);
        s.keeper_error = k.shared.last_error();
    }
    s
}
