//! Non-blocking page access: counts, not timings. Pages are made cold without root
//! (`MADV_DONTNEED` + `POSIX_FADV_DONTNEED` through `Mapping::evict_all`).

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

use faultless_runtime::mem::{thread_faults, Backend, MapOptions, Mapping, Primitive};
use faultless_runtime::{spawn, yield_now, Runtime};

const PAGE: u64 = 4096;

/// A file of `pages` pages really written to disk (not sparse), each page filled with its
/// index, on the target directory's filesystem (not tmpfs, so eviction really drops pages).
fn data_file(name: &str, pages: u64) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mem-{}-{name}", std::process::id()));
    let mut data = Vec::with_capacity((pages * PAGE) as usize);
    for p in 0..pages {
        data.extend(std::iter::repeat_n((p % 251) as u8, PAGE as usize));
    }
    std::fs::write(&path, &data).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();
    path
}

/// Maps a test file.
fn open_map(path: impl AsRef<std::path::Path>, options: MapOptions) -> std::io::Result<Mapping> {
    // SAFETY: the tests write their files before mapping them and never while a guard is
    // alive; the truncation test truncates with no guard alive and then checks that the
    // safety net turns the stale fast path into zeros and errors, not a signal.
    unsafe { Mapping::open(path, options) }
}

fn page(p: u64) -> std::ops::Range<u64> {
    p * PAGE..(p + 1) * PAGE
}

const NON_BLOCKING: [Backend; 4] = [
    Backend::Helper,
    Backend::UringMadvise,
    Backend::UringRead,
    Backend::UringThread,
];

#[test]
fn other_tasks_run_while_a_task_waits_for_a_cold_page() {
    let path = data_file("progress", 64);
    for backend in NON_BLOCKING.into_iter().chain([Backend::Blocking]) {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let map = open_map(&path, MapOptions::new().backend(backend)).unwrap();
            map.evict_all().unwrap();
            let progress = Rc::new(Cell::new(0u64));
            let seen_by_a = {
                let map = map.clone();
                let progress = progress.clone();
                spawn(async move {
                    let g = map.read(page(33)).await.unwrap();
                    assert!(g.iter().all(|&b| b == 33));
                    progress.get()
                })
            };
            let b = {
                let progress = progress.clone();
                spawn(async move {
                    for _ in 0..1000 {
                        progress.set(progress.get() + 1);
                        yield_now().await;
                    }
                })
            };
            let seen = seen_by_a.await.unwrap();
            b.await.unwrap();
            if backend == Backend::Blocking {
                assert_eq!(
                    seen, 0,
                    "blocking: the thread stalls, B cannot run before A"
                );
            } else {
                assert!(seen > 0, "{backend}: B must make progress while A waits");
            }
            assert_eq!(map.stats().slow_reads, 1);
        });
    }
}

#[test]
fn executor_takes_no_major_faults_on_non_blocking_paths() {
    let path = data_file("faults", 256);
    for backend in NON_BLOCKING.into_iter().chain([Backend::Blocking]) {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let map = open_map(&path, MapOptions::new().backend(backend)).unwrap();
            map.evict_all().unwrap();
            let before = thread_faults();
            // 32 concurrent readers over 200 cold pages.
            let hs: Vec<_> = (0..32u64)
                .map(|t| {
                    let map = map.clone();
                    spawn(async move {
                        let mut sum = 0u64;
                        for i in 0..200u64 {
                            let p = (i * 37 + t * 11) % 200;
                            let g = map.read(page(p)).await.unwrap();
                            assert_eq!(g[100], (p % 251) as u8);
                            sum += g[0] as u64;
                        }
                        sum
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
            let faults = thread_faults().since(&before);
            let stats = map.stats();
            assert!(stats.pages_brought_in + stats.slow_reads > 0);
            if backend == Backend::Blocking {
                assert!(
                    faults.major > 0,
                    "blocking must fault on the executor thread (is the file on tmpfs?)"
                );
            } else {
                assert_eq!(faults.major, 0, "{backend}: executor major faults");
                // Each page once: brought in by a request, or (uring-thread) found in the page
                // cache still and mapped on the spot.
                assert_eq!(
                    stats.pages_brought_in + stats.mapped_from_cache,
                    200,
                    "{backend}: {stats:?}"
                );
            }
        });
    }
}

#[test]
fn many_tasks_on_one_cold_page_cause_one_prefetch() {
    let path = data_file("dedup", 16);
    for backend in NON_BLOCKING {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let map = open_map(&path, MapOptions::new().backend(backend)).unwrap();
            map.evict_all().unwrap();
            let hs: Vec<_> = (0..50)
                .map(|_| {
                    let map = map.clone();
                    spawn(async move { map.read(page(7)).await.unwrap()[0] })
                })
                .collect();
            for h in hs {
                assert_eq!(h.await.unwrap(), 7);
            }
            let s = map.stats();
            assert_eq!(s.prefetches, 1, "{backend}: {s:?}");
            if matches!(backend, Backend::Helper | Backend::UringThread) {
                // A helper (or the keeper) thread may finish before the last tasks' first
                // poll; those find the request complete, or the page already resident, and
                // take it without waiting.
                assert!(s.dedup_waits <= 49, "{backend}: {s:?}");
            } else {
                // io_uring completions are reaped only between task polls: all 49 wait.
                assert_eq!(s.dedup_waits, 49, "{backend}: {s:?}");
            }
            // Resident now: no further requests.
            map.read(page(7)).await.unwrap();
            assert_eq!(map.stats().prefetches, 1);
        });
    }
}

#[test]
fn prefetch_then_read_reuses_the_request() {
    let path = data_file("prefetch", 64);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let map = open_map(&path, MapOptions::new().backend(Backend::UringRead)).unwrap();
        map.evict_all().unwrap();
        map.prefetch(0..8 * PAGE).unwrap();
        let g = map.read(2 * PAGE..6 * PAGE + 10).await.unwrap();
        assert_eq!(g.len() as u64, 4 * PAGE + 10);
        assert_eq!(g[0], 2);
        assert_eq!(*g.last().unwrap(), 6);
        let s = map.stats();
        assert_eq!(s.prefetches, 1, "one run of 8 pages: {s:?}");
        assert!(map.try_read(0..8 * PAGE).is_some());
    });
}

#[test]
fn ranges_past_the_end_are_errors() {
    let path = data_file("eof", 4);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for backend in Backend::ALL {
            let map = open_map(&path, MapOptions::new().backend(backend)).unwrap();
            let err = map.read(3 * PAGE..5 * PAGE).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{backend}");
            assert!(map.prefetch(10 * PAGE..11 * PAGE).is_err());
            assert_eq!(map.read(4 * PAGE..4 * PAGE).await.unwrap().len(), 0);
            assert_eq!(map.read(4 * PAGE - 1..4 * PAGE).await.unwrap()[0], 3);
        }
        let err = open_map("/nonexistent/file", MapOptions::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    });
}

#[test]
fn truncated_file_gives_errors_not_a_signal() {
    for backend in Backend::ALL {
        let path = data_file(&format!("truncate-{backend}"), 16);
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let map = open_map(&path, MapOptions::new().backend(backend)).unwrap();
            assert_eq!(map.read(page(10)).await.unwrap()[0], 10);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(4 * PAGE)
                .unwrap();
            // A page read before the truncation: the residency record is stale, so the fast
            // path hands it out, and touching it raises SIGBUS, which the safety net catches.
            let g = map
                .read(page(10))
                .await
                .expect("fast path, nothing checked the file");
            assert_eq!(g[0], 0, "{backend}: the vanished page reads as zeros");
            // From then on the mapping reports the damage instead of handing out pages.
            let err = map.read(page(1)).await.unwrap_err();
            assert!(err.to_string().contains("truncated"), "{backend}: {err}");
            let err = map.read(page(12)).await.unwrap_err();
            assert!(err.to_string().contains("truncated"), "{backend}: {err}");

            // A fresh mapping of the truncated file: ranges past the new end are errors.
            let map = open_map(&path, MapOptions::new().backend(backend)).unwrap();
            let err = map.read(page(12)).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{backend}");
            assert_eq!(map.read(page(3)).await.unwrap()[0], 3);
        });
    }
}

#[test]
fn reserved_mapping_grows_without_remap() {
    let path = data_file("grow", 4);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let map = open_map(&path, MapOptions::new().reserve(1 << 20)).unwrap();
        assert_eq!(map.reserved(), 1 << 20);
        let before = map.read(page(0)).await.unwrap().as_ptr();
        assert!(map.read(page(5)).await.is_err());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &vec![9u8; 4 * PAGE as usize]).unwrap();
        let g = map.read(page(5)).await.unwrap();
        assert_eq!(g[0], 9);
        assert_eq!(map.len(), 8 * PAGE);
        assert_eq!(
            map.read(page(0)).await.unwrap().as_ptr(),
            before,
            "same mapping"
        );
    });
}

#[test]
fn mlock_primitive_stays_within_budget_or_reports_fallback() {
    let path = data_file("mlock", 64);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let map = open_map(
            &path,
            MapOptions::new()
                .backend(Backend::Helper)
                .primitive(Primitive::Mlock)
                .helper_threads(2)
                .mlock_budget(16 * PAGE),
        )
        .unwrap();
        map.evict_all().unwrap();
        for p in 0..64 {
            assert_eq!(map.read(page(p)).await.unwrap()[0], p as u8);
        }
        let s = map.stats();
        match &s.mlock_fallback {
            None => {
                assert!(s.locked_bytes > 0 && s.locked_bytes <= 16 * PAGE, "{s:?}");
            }
            Some(msg) => assert!(msg.contains("mlock refused"), "{msg}"),
        }
        map.evict_all().unwrap();
        assert_eq!(map.stats().locked_bytes, 0);
    });
}

#[test]
fn raw_mlock_eventfd_signals_when_resident() {
    use faultless_runtime::mem::raw::ResidencyNotifier;
    let path = data_file("raw", 8);
    let file = std::fs::File::open(&path).unwrap();
    // SAFETY: a read-only private view of a file this test owns.
    let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
    let n = ResidencyNotifier::new(2, Primitive::PopulateRead).unwrap();
    for p in 0..8u64 {
        // SAFETY: the range lies in `map`, which outlives the completions.
        unsafe { n.request(map.as_ptr().add((p * PAGE) as usize), PAGE as usize, p) };
    }
    let mut done = Vec::new();
    while done.len() < 8 {
        let mut v = 0u64;
        // SAFETY: reading 8 bytes from the notifier's eventfd into a live u64.
        let r = unsafe { libc::read(n.eventfd(), (&mut v as *mut u64).cast(), 8) };
        assert_eq!(r, 8);
        for (token, res) in n.take_completed() {
            res.unwrap();
            done.push(token);
        }
    }
    done.sort();
    assert_eq!(done, (0..8).collect::<Vec<_>>());
}
