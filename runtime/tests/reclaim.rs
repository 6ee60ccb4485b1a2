//! The residency record under reclaim: the kernel takes pages away behind the runtime's back
//! (`madvise(MADV_PAGEOUT)` from another thread, which reclaims clean file pages mapped only
//! by this process, no root needed), and reads of those pages must come back through the
//! non-blocking path, with the executor thread's major faults within the documented bound:
//! none for pages reclaimed before a scrub pass began (scrubbed mode), none at all in pinned
//! mode (the kernel cannot reclaim a pinned page). Counts, not timings.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use faultless_runtime::mem::{thread_faults, Backend, MapOptions, Mapping, ResidencyMode};
use faultless_runtime::Runtime;

const PAGE: u64 = 4096;
const MADV_PAGEOUT: i32 = 21;

/// A file of `pages` pages written to disk (not sparse), on the target directory's filesystem
/// (a real block device, so reclaimed pages are read from disk again).
fn data_file(name: &str, pages: u64) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("reclaim-{}-{name}", std::process::id()));
    let mut data = Vec::with_capacity((pages * PAGE) as usize);
    for p in 0..pages {
        data.extend(std::iter::repeat_n((p % 251) as u8, PAGE as usize));
    }
    std::fs::write(&path, &data).unwrap();
    let f = std::fs::File::open(&path).unwrap();
    f.sync_all().unwrap();
    // Start cold: drop the pages the write left in the page cache (as large folios, which
    // the kernel maps 2 MiB at a time; pages read back one by one come in 4 KiB folios).
    // SAFETY: advice on our own fd.
    unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    path
}

fn open_map(path: &PathBuf, options: MapOptions) -> Mapping {
    // SAFETY: the tests write their files before mapping them and never change them after.
    unsafe { Mapping::open(path, options) }.unwrap()
}

/// Reads every page (checking its content) and returns the executor thread's major faults.
async fn read_all(map: &Mapping, pages: u64) -> u64 {
    let before = thread_faults();
    for p in 0..pages {
        let g = map.read(p * PAGE..(p + 1) * PAGE).await.unwrap();
        assert_eq!(g[0], (p % 251) as u8, "page {p}");
        assert_eq!(g[PAGE as usize - 1], (p % 251) as u8, "page {p}");
    }
    thread_faults().since(&before).major
}

/// The address of the mapping's first byte (its pages must be resident).
fn base_of(map: &Mapping) -> usize {
    map.try_read(0..1).expect("page 0 resident").as_ptr() as usize
}

/// Reclaims `len` bytes at `addr` from another thread, as the kernel's reclaim would.
/// Returns the madvise result.
fn page_out_from_another_thread(addr: usize, len: usize) -> i32 {
    std::thread::spawn(move || {
        // SAFETY: advice on a live mapping of this process; MADV_PAGEOUT changes no bytes (it
        // drops clean page-cache pages, which are read from the file again on the next touch).
        unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_PAGEOUT) }
    })
    .join()
    .unwrap()
}

/// Pages of `addr..addr + len` in the page cache, by mincore.
fn cached_pages(addr: usize, len: usize) -> usize {
    let mut v = vec![0u8; len.div_ceil(PAGE as usize)];
    // SAFETY: a live mapping of ours; mincore writes one byte per page into `v`.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, len, v.as_mut_ptr()) };
    assert_eq!(rc, 0);
    v.iter().filter(|&&b| b & 1 != 0).count()
}

#[test]
fn trusting_the_record_faults_after_reclaim() {
    // The control: without a keeper, reclaim makes the executor fault. If this ever reads
    // zero faults, the other tests here prove nothing on this machine.
    let pages = 512;
    let path = data_file("trusted", pages);
    let map = open_map(
        &path,
        MapOptions::new()
            .backend(Backend::UringThread)
            .residency(ResidencyMode::Trusted),
    );
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        read_all(&map, pages).await;
        let (base, len) = (base_of(&map), (pages * PAGE) as usize);
        assert_eq!(page_out_from_another_thread(base, len), 0);
        assert!(
            cached_pages(base, len) < pages as usize / 2,
            "MADV_PAGEOUT reclaimed nothing"
        );
        let faults = read_all(&map, pages).await;
        assert!(faults > 0, "reclaimed pages were read with no major fault");
    });
    std::fs::remove_file(&path).ok();
}

#[test]
fn scrubbed_record_forgets_reclaimed_pages() {
    let pages = 512;
    let path = data_file("scrubbed", pages);
    for backend in [Backend::UringThread, Backend::UringRead, Backend::Helper] {
        let map = open_map(
            &path,
            MapOptions::new()
                .backend(backend)
                .residency(ResidencyMode::Scrubbed)
                .scrub_interval(Duration::from_millis(5)),
        );
        assert_eq!(map.stats().residency.mode, Some(ResidencyMode::Scrubbed));
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            read_all(&map, pages).await;
            let (base, len) = (base_of(&map), (pages * PAGE) as usize);
            assert_eq!(page_out_from_another_thread(base, len), 0);
            assert!(cached_pages(base, len) < pages as usize / 2);
            // The bound: pages reclaimed before a scrub pass began never fault. Wait for two
            // passes to start after the reclaim.
            let passes = map.stats().residency.scrub_passes + map.stats().residency.scrubs_skipped;
            let deadline = Instant::now() + Duration::from_secs(10);
            while map.stats().residency.scrub_passes + map.stats().residency.scrubs_skipped
                < passes + 2
            {
                assert!(Instant::now() < deadline, "no scrub pass in 10 s");
                faultless_runtime::time::sleep(Duration::from_millis(2)).await;
            }
            let found = map.stats().residency.pages_found_reclaimed;
            assert!(found > 0, "{backend}: the scrubber found nothing reclaimed");
            let faults = read_all(&map, pages).await;
            assert_eq!(
                faults, 0,
                "{backend}: executor major faults after the scrub"
            );
        });
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn pinned_pages_cannot_be_reclaimed() {
    let pages = 512;
    let path = data_file("pinned", pages);
    // A 64 GiB reservation, as the store makes: pinning it needs CAP_IPC_LOCK (or a huge
    // RLIMIT_MEMLOCK), so an unprivileged run checks the fallback instead.
    let map = open_map(
        &path,
        MapOptions::new()
            .backend(Backend::UringThread)
            .residency(ResidencyMode::Pinned)
            .reserve(64 << 30),
    );
    let stats = map.stats().residency;
    if stats.mode != Some(ResidencyMode::Pinned) {
        // Without CAP_IPC_LOCK and with a small RLIMIT_MEMLOCK, pinning is refused: the
        // mapping must say so and run scrubbed instead.
        let why = stats.fallback.expect("a fallback names its reason");
        assert!(why.contains("mlock2"), "{why}");
        assert_eq!(stats.mode, Some(ResidencyMode::Scrubbed));
        eprintln!("pinned mode unavailable here ({why}); checked the fallback instead");
        return;
    }
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        read_all(&map, pages).await;
        let (base, len) = (base_of(&map), (pages * PAGE) as usize);
        // Reclaim does not take locked pages (madvise refuses locked ranges).
        page_out_from_another_thread(base, len);
        assert_eq!(cached_pages(base, len), pages as usize);
        let faults = read_all(&map, pages).await;
        assert_eq!(faults, 0, "executor major faults on pinned pages");
    });
    std::fs::remove_file(&path).ok();
}

#[test]
fn pinned_set_stays_within_its_budget() {
    let pages = 2048;
    let budget_pages = 256;
    let path = data_file("budget", pages);
    let map = open_map(
        &path,
        MapOptions::new()
            .backend(Backend::UringThread)
            .residency(ResidencyMode::Pinned)
            .resident_budget(budget_pages * PAGE),
    );
    if map.stats().residency.mode != Some(ResidencyMode::Pinned) {
        eprintln!("pinned mode unavailable here; see pinned_pages_cannot_be_reclaimed");
        return;
    }
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Every page once, then again: the second pass finds most pages unpinned and reads
        // them through the slow path, with no fault on the executor.
        read_all(&map, pages).await;
        let faults = read_all(&map, pages).await;
        assert_eq!(faults, 0);
        // The keeper unpins after each batch: give it a moment to settle.
        let deadline = Instant::now() + Duration::from_secs(5);
        while map.stats().resident_pages > budget_pages
            || map.stats().residency.pages_unpinned < pages
        {
            assert!(Instant::now() < deadline, "{:?}", map.stats());
            faultless_runtime::time::sleep(Duration::from_millis(2)).await;
        }
        let s = map.stats();
        assert!(s.residency.pages_unpinned >= pages, "{:?}", s.residency);
        // Unpinned pages left the mapping (they may stay in the page cache, unlocked): the
        // mapping's resident set size stays within the budget, plus the pages of batches
        // mapped in since the last sweep.
        let base = map.read(0..1).await.unwrap().as_ptr() as usize;
        // The kernel maps cached neighbours of a faulting page too (fault-around); in pinned
        // mode those are locked behind the record's back until the keeper's reconcile pass
        // (every 500 ms) drops them: wait for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut rss = mapping_rss_kib(base);
        while rss > (budget_pages + 64) * PAGE / 1024 && Instant::now() < deadline {
            faultless_runtime::time::sleep(Duration::from_millis(20)).await;
            rss = mapping_rss_kib(base);
        }
        assert!(
            rss <= (budget_pages + 64) * PAGE / 1024,
            "{rss} KiB mapped with a budget of {budget_pages} pages"
        );
    });
    std::fs::remove_file(&path).ok();
}

/// The resident set (KiB) of the mapping that starts at `base`, from /proc/self/smaps.
fn mapping_rss_kib(base: usize) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let start = format!("{base:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
    lines.next().expect("the mapping is in smaps");
    lines
        .find_map(|l| l.strip_prefix("Rss:"))
        .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap())
        .unwrap()
}

/// Reads pages `first..end` (checking their content); returns the executor's major faults.
async fn read_pages(map: &Mapping, first: u64, end: u64) -> u64 {
    let before = thread_faults();
    for p in first..end {
        let g = map.read(p * PAGE..(p + 1) * PAGE).await.unwrap();
        assert_eq!(g[0], (p % 251) as u8, "page {p}");
    }
    thread_faults().since(&before).major
}

/// Rewrites pages `first..end` through the file with the bytes they hold, and syncs them.
fn rewrite_pages(path: &PathBuf, first: u64, end: u64) -> std::fs::File {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for p in first..end {
        file.write_all_at(&[(p % 251) as u8; PAGE as usize], p * PAGE)
            .unwrap();
    }
    file.sync_data().unwrap();
    file
}

#[test]
fn pages_written_through_the_file_are_mapped_from_the_page_cache() {
    // A database reads the pages it just wrote (a B+tree after a checkpoint): told so with
    // `note_written`, the mapping maps them from the page cache on the spot instead of a
    // round trip through the page-in path; pages the kernel dropped since take that path,
    // with no fault on the executor either way.
    let pages = 256;
    let half = pages / 2;
    let path = data_file("written", pages);
    let map = open_map(&path, MapOptions::new().backend(Backend::UringThread));
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        rewrite_pages(&path, 0, half);
        map.note_written(0..half * PAGE);
        let before = map.stats();
        assert_eq!(read_pages(&map, 0, half).await, 0, "executor major faults");
        let after = map.stats();
        assert_eq!(
            after.prefetches, before.prefetches,
            "pages just written went through the page-in path"
        );
        assert_eq!(after.mapped_from_cache - before.mapped_from_cache, half);

        // The hard case: written, noted, then dropped from the page cache before the read.
        let file = rewrite_pages(&path, half, pages);
        map.note_written(half * PAGE..pages * PAGE);
        // SAFETY: advice on our own fd; the pages are clean (synced), so they are dropped.
        let rc = unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                (half * PAGE) as libc::off_t,
                ((pages - half) * PAGE) as libc::off_t,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        assert_eq!(rc, 0);
        let before = map.stats();
        assert_eq!(
            read_pages(&map, half, pages).await,
            0,
            "executor major faults"
        );
        let after = map.stats();
        assert!(after.prefetches > before.prefetches, "{after:?}");
        assert_eq!(after.mapped_from_cache, before.mapped_from_cache);
    });
    std::fs::remove_file(&path).ok();
}
