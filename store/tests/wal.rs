//! The write-ahead log on disk: a torn tail is cut off, a damaged record in the middle is an
//! error that names its place, frames after a tear are discarded only where they could never
//! have been known durable (`everysec`), `everysec` syncs about once a second, segments are
//! recycled, and a store from before the log (format 2) is upgraded.

mod common;

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use common::{flip, key, put_from_tasks, value, TempPath};
use faultless_runtime::Runtime;
use faultless_store::{Durability, Error, Store, StoreOptions};

/// Checkpoints only when asked: the commits of these tests stay in the log.
fn options(d: Durability) -> StoreOptions {
    StoreOptions::new()
        .durability(d)
        .checkpoint_interval(Duration::MAX)
}

/// A frame as the test finds it: where it starts, the bytes it spans, its first commit and
/// its number of commits.
#[derive(Clone, Copy, Debug)]
struct Frame {
    at: u64,
    span: u64,
    first: u64,
    count: u64,
}

/// The frames of a segment file, in order, as far as they follow one another (the test's
/// own reading of the format in `docs/store-format.md`).
fn frames(path: &std::path::Path) -> Vec<Frame> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 4096usize;
    while at + 48 <= data.len() && &data[at..at + 4] == b"FLWF" {
        let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap());
        let first = u64_at(at + 8);
        let count = u32::from_le_bytes(data[at + 16..at + 20].try_into().unwrap()) as u64;
        let body = u64_at(at + 24);
        let span = (48 + body).next_multiple_of(8);
        if let Some(prev) = out.last() {
            let prev: &Frame = prev;
            if prev.first + prev.count != first {
                break;
            }
        }
        out.push(Frame {
            at: at as u64,
            span,
            first,
            count,
        });
        at += span as usize;
    }
    out
}

/// Commits `n` single-put commits (keys `from..from + n`) one at a time, each in a frame of
/// its own; returns the last commit's id.
async fn commits(store: &Store, from: u64, n: u64) -> u64 {
    for i in from..from + n {
        store
            .put(&key(i), &value(i, 100 + (i as usize % 300)))
            .await
            .unwrap();
    }
    store.stats().txid
}

async fn assert_keys(store: &Store, present: std::ops::Range<u64>, absent: std::ops::Range<u64>) {
    for i in present {
        let v = store.get(&key(i)).await.unwrap();
        assert_eq!(
            v.as_deref(),
            Some(&value(i, 100 + (i as usize % 300))[..]),
            "key {i}"
        );
    }
    for i in absent {
        assert!(store.get(&key(i)).await.unwrap().is_none(), "key {i}");
    }
}

#[test]
fn a_torn_last_record_is_cut_off_and_the_rest_replayed() {
    let path = TempPath::new("wal-torn");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_eq!(commits(&store, 0, 40).await, 40);
    });
    let seg = path.wal(0);
    let fs = frames(&seg);
    assert_eq!(fs.len(), 40, "one frame per commit: {fs:?}");
    let last = *fs.last().unwrap();
    // Tear it: its second half never reached the disk.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    let half = last.span / 2;
    f.write_all_at(&vec![0u8; (last.span - half) as usize], last.at + half)
        .unwrap();
    drop(f);
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        let rec = store.log_recovery().clone();
        assert_eq!(rec.replayed_commits, 39, "{rec}");
        assert_eq!((rec.oldest_txid, rec.newest_txid), (Some(1), Some(39)));
        assert_eq!(rec.torn_tail, Some((seg.clone(), last.at)), "{rec}");
        assert_eq!(rec.discarded_frames, 0);
        assert_eq!(store.stats().txid, 39);
        assert_keys(&store, 0..39, 39..40).await;
        assert!(store.check().await.unwrap().ok());
        // The next commit takes the torn one's id and place.
        assert_eq!(commits(&store, 100, 3).await, 42);
    });
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_eq!(store.log_recovery().torn_tail, None);
        assert_eq!(store.stats().txid, 42);
        assert_keys(&store, 0..39, 39..40).await;
        assert_keys(&store, 100..103, 0..0).await;
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
        assert_eq!(report.log_commits, 42);
    });
}

#[test]
fn a_damaged_record_in_the_middle_is_an_error_naming_its_offset() {
    let path = TempPath::new("wal-middle");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        commits(&store, 0, 30).await;
    });
    let seg = path.wal(0);
    let fs = frames(&seg);
    let victim = fs[12];
    // One flipped bit in its body, and in another copy, in its header.
    for at in [victim.at + 48 + 5, victim.at + 10] {
        let pristine = std::fs::read(&seg).unwrap();
        flip(&seg, at, 0x41);
        for read_only in [false, true] {
            let err = rt
                .block_on(Store::open(
                    &path.0,
                    options(Durability::Always).read_only(read_only),
                ))
                .err()
                .expect("a damaged record in the middle must not open silently");
            let msg = err.to_string();
            assert!(matches!(err, Error::Corrupt { .. }), "{msg}");
            assert!(
                msg.contains(&format!("offset {}", victim.at))
                    && msg.contains(&seg.display().to_string())
                    && msg.contains(&format!("commit {}", victim.first)),
                "{msg}"
            );
        }
        std::fs::write(&seg, &pristine).unwrap();
    }
    // Undamaged, everything is there.
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_keys(&store, 0..30, 30..31).await;
    });
}

/// Under `everysec`, frames are written before they are synced: a machine crash can keep a
/// later frame and lose an earlier one. Recovery cuts the log at the lost one and discards
/// the frames after it (they say they were written before it was durable), instead of
/// failing: the store opens at a consistent prefix, and reports what it discarded.
#[test]
fn everysec_frames_after_a_tear_are_discarded_not_an_error() {
    let path = TempPath::new("wal-everysec-tear");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::EverySec))
            .await
            .unwrap();
        // Quickly, well inside the first second: no timer sync has happened.
        commits(&store, 0, 20).await;
        assert_eq!(store.stats().log_synced_txid, 0, "nothing synced yet");
    });
    let seg = path.wal(0);
    let fs = frames(&seg);
    assert_eq!(fs.len(), 20);
    // Frame 10 (commit 11) did not reach the disk whole; the ones after it did.
    flip(&seg, fs[10].at + 48 + 3, 0x41);
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::EverySec))
            .await
            .unwrap();
        let rec = store.log_recovery().clone();
        assert_eq!(rec.replayed_commits, 10, "{rec}");
        assert_eq!(
            (rec.discarded_frames, rec.discarded_commits),
            (9, 9),
            "{rec}"
        );
        assert!(rec.to_string().contains("discarded"), "{rec}");
        assert_eq!(store.stats().txid, 10);
        assert_keys(&store, 0..10, 10..20).await;
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
        assert!(
            report.warnings.iter().any(|w| w.contains("discarded")),
            "{report}"
        );
        // Opening took what it replayed into the tree and started the log afresh: the
        // discarded frames can never come back.
        assert_eq!(store.stats().checkpoint_txid, 10);
        commits(&store, 50, 5).await;
    });
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::EverySec))
            .await
            .unwrap();
        assert_eq!(store.log_recovery().discarded_frames, 0);
        assert_eq!(store.stats().txid, 15);
        assert_keys(&store, 0..10, 10..20).await;
        assert_keys(&store, 50..55, 0..0).await;
        assert!(store.check().await.unwrap().ok());
    });
    // The same damage under `always` (every frame says the one before it was durable) is
    // an error: see a_damaged_record_in_the_middle_is_an_error_naming_its_offset.
}

#[test]
fn everysec_syncs_the_log_about_once_a_second() {
    let path = TempPath::new("wal-everysec-sync");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::EverySec))
            .await
            .unwrap();
        assert_eq!(store.durability(), Durability::EverySec);
        let before = store.stats();
        let last = commits(&store, 0, 50).await;
        let s = store.stats();
        assert_eq!(
            s.log_syncs, before.log_syncs,
            "everysec writes without syncing"
        );
        assert!(s.log_synced_txid < last);
        // The timer syncs within about a second; allow a loaded machine plenty more.
        let start = Instant::now();
        while store.stats().log_synced_txid < last {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "not synced: {:?}",
                store.stats()
            );
            faultless_runtime::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(store.stats().log_syncs > before.log_syncs);
        // `no` never syncs the log; `always` syncs what is left before its first write.
        store.set_durability(Durability::No);
        let last = commits(&store, 100, 5).await;
        faultless_runtime::time::sleep(Duration::from_millis(1300)).await;
        assert!(store.stats().log_synced_txid < last, "no: never synced");
        store.set_durability(Durability::Always);
        let last = commits(&store, 200, 1).await;
        assert_eq!(store.stats().log_synced_txid, last);
    });
}

#[test]
fn durability_parses_the_redis_words() {
    for (word, d) in [
        ("always", Durability::Always),
        ("everysec", Durability::EverySec),
        ("no", Durability::No),
        ("EVERYSEC", Durability::EverySec),
    ] {
        assert_eq!(word.parse::<Durability>().unwrap(), d);
        assert_eq!(d.to_string(), word.to_ascii_lowercase());
    }
    assert!("sometimes".parse::<Durability>().is_err());
    assert_eq!(Durability::default(), Durability::Always);
}

/// Checkpoints switch segments and recycle the free ones: at most three segment files, none
/// growing without bound, and every reopen replays only the log after the last checkpoint.
#[test]
fn segments_are_recycled_and_the_log_stays_bounded() {
    let path = TempPath::new("wal-recycle");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        let mut n = 0;
        for round in 0..30u64 {
            for _ in 0..40 {
                store
                    .put(&key(n % 500), &value(n, 50 + (n as usize % 2000)))
                    .await
                    .unwrap();
                n += 1;
            }
            store.checkpoint().await.unwrap();
            let s = store.stats();
            assert_eq!(s.log_commits, 0, "round {round}: {s:?}");
            assert!(s.log_segments <= 3);
        }
        assert!(store.check().await.unwrap().ok());
    });
    let files: Vec<u64> = (0..4)
        .filter_map(|slot| std::fs::metadata(path.wal(slot)).ok())
        .map(|m| m.len())
        .collect();
    assert!((2..=3).contains(&files.len()), "{files:?}");
    assert!(
        files.iter().all(|&len| len <= 4 << 20),
        "segments are reused, not grown: {files:?}"
    );
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_eq!(store.log_recovery().replayed_commits, 0);
        assert_eq!(store.len(), 500);
    });
}

/// A store written before the log (format version 2) opens, is upgraded to version 3 at
/// its first read-write open, and an older build then refuses it (its version check).
#[test]
fn a_format_2_store_is_upgraded() {
    let path = TempPath::new("wal-v2");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        commits(&store, 0, 10).await;
        store.close().await.unwrap();
    });
    for slot in 0..3 {
        let _ = std::fs::remove_file(path.wal(slot));
    }
    // Rewrite both meta pages as version 2 (no log fields), with their checksums.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path.0)
        .unwrap();
    for slot in 0..2u64 {
        let mut page = vec![0u8; 4096];
        f.read_exact_at(&mut page, slot * 4096).unwrap();
        page[40..44].copy_from_slice(&2u32.to_le_bytes());
        page[88..104].fill(0);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&slot.to_le_bytes()), &page[4..]);
        page[0..4].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&page, slot * 4096).unwrap();
    }
    drop(f);
    let version = |path: &std::path::Path| {
        let data = std::fs::read(path).unwrap();
        let txid = |s: usize| u64::from_le_bytes(data[s + 48..s + 56].try_into().unwrap());
        let newest = if txid(4096) > txid(0) { 4096 } else { 0 };
        u32::from_le_bytes(data[newest + 40..newest + 44].try_into().unwrap())
    };
    assert_eq!(version(&path.0), 2);
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always).read_only(true))
            .await
            .unwrap();
        assert_keys(&store, 0..10, 10..11).await;
    });
    assert_eq!(version(&path.0), 2, "a read-only open changes nothing");
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_keys(&store, 0..10, 10..11).await;
        commits(&store, 10, 5).await;
    });
    assert_eq!(version(&path.0), 3);
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_keys(&store, 0..15, 15..16).await;
        assert!(store.check().await.unwrap().ok());
    });
}

/// A log segment from another store is refused, not replayed into this one.
#[test]
fn a_log_from_another_store_is_refused() {
    let (a, b) = (TempPath::new("wal-a"), TempPath::new("wal-b"));
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for p in [&a, &b] {
            let store = Store::open(&p.0, options(Durability::Always))
                .await
                .unwrap();
            commits(&store, 0, 3).await;
        }
    });
    std::fs::copy(a.wal(0), b.wal(0)).unwrap();
    let err = rt
        .block_on(Store::open(&b.0, options(Durability::Always)))
        .err()
        .expect("a foreign log");
    assert!(err.to_string().contains("another store"), "{err}");
}

/// A log written by a build of log format version 1 (no unresolved puts, no resolutions:
/// the same bytes otherwise) is replayed, and its segment relabelled version 2 before new
/// frames follow; a version this build does not know is refused with an error that names
/// it, never read as a log that ends early.
#[test]
fn a_version_1_log_is_replayed_and_an_unknown_version_refused() {
    let path = TempPath::new("wal-version");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        commits(&store, 0, 5).await;
    });
    let set_version = |v: u32| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path.wal(0))
            .unwrap();
        // The version (offset 8) is outside the header's checksum (bytes 16..64).
        f.write_all_at(&v.to_le_bytes(), 8).unwrap();
    };
    set_version(1);
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_eq!(store.log_recovery().replayed_commits, 5);
        assert_keys(&store, 0..5, 5..6).await;
        // New frames (version 2) will follow in this segment: it is relabelled, so that a
        // build reading only version 1 refuses it rather than stopping at them.
        commits(&store, 10, 1).await;
    });
    let seg = std::fs::read(path.wal(0)).unwrap();
    assert_eq!(u32::from_le_bytes(seg[8..12].try_into().unwrap()), 2);
    set_version(3);
    let err = rt
        .block_on(Store::open(&path.0, options(Durability::Always)))
        .err()
        .expect("an unknown log version");
    assert!(err.to_string().contains("version 3"), "{err}");
}

/// What `everysec` can lose in a machine crash is what was not yet synced: the page cache's
/// copy of the log since the last sync. Simulated by cutting the log anywhere after the
/// frames the timer had synced (a crash keeps a prefix of what was written): every commit
/// up to the synced one survives, the store opens at a consistent prefix, and `check` passes.
#[test]
fn everysec_loses_only_what_was_not_yet_synced() {
    let path = TempPath::new("wal-everysec-loss");
    let rt = Runtime::new().unwrap();
    let synced = rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::EverySec))
            .await
            .unwrap();
        let first = commits(&store, 0, 30).await;
        // Wait for the timer's sync (about a second; a loaded machine gets more).
        let start = Instant::now();
        while store.stats().log_synced_txid < first {
            assert!(start.elapsed() < Duration::from_secs(10), "never synced");
            faultless_runtime::time::sleep(Duration::from_millis(20)).await;
        }
        // More commits, acknowledged but not synced yet.
        commits(&store, 30, 30).await;
        let s = store.stats();
        assert!(s.log_synced_txid < s.txid);
        s.log_synced_txid
    });
    drop(rt);
    let seg = path.wal(0);
    let pristine = std::fs::read(&seg).unwrap();
    let fs = frames(&seg);
    let unsynced: Vec<Frame> = fs.iter().copied().filter(|f| f.first > synced).collect();
    assert!(!unsynced.is_empty());
    for (i, cut) in unsynced.iter().enumerate().step_by(7) {
        std::fs::write(&seg, &pristine).unwrap();
        // The crash kept everything before this frame, and a torn half of it.
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(cut.at + cut.span / 2).unwrap();
        drop(f);
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open(&path.0, options(Durability::EverySec))
                .await
                .unwrap();
            let at = store.stats().txid;
            assert_eq!(at, cut.first - 1, "cut {i}: opened at commit {at}");
            assert!(at >= synced, "cut {i}: lost synced commits");
            assert_keys(&store, 0..at, at..60).await;
            let report = store.check().await.unwrap();
            assert!(report.ok(), "cut {i}: {report}");
        });
    }
}

#[test]
fn every_log_write_is_timed() {
    let path = TempPath::new("timed");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        assert_eq!(store.stats().log_write.count, 0);
        put_from_tasks(&store, 8, 20, 100).await;
        let s = store.stats();
        let l = s.log_write;
        assert_eq!(l.count, s.log_writes, "every write is timed");
        assert!(l.count > 0 && l.count <= 160);
        assert!(
            0 < l.p50_us && l.p50_us <= l.p99_us && l.p99_us <= l.max_us,
            "{l:?}"
        );
    });
}

/// Recovery reads each byte of the log files about once, however much an older generation
/// left in a recycled segment: here every segment has held hundreds of 32 KiB frames (over
/// 12 MiB, several of the reader's 4 MiB windows) before the crash leaves a few small
/// commits at the head of a recycled one, the old frames behind them. (The scan for frames
/// after the log's end once re-read a whole window after every old frame it passed: 2-3 s
/// to reopen after `bench store`'s crash, 4 GB read for 9 MB of log.)
#[test]
fn recovery_reads_the_log_files_about_once() {
    let path = TempPath::new("wal-scan");
    let rt = Runtime::new().unwrap();
    let big = vec![b'x'; 32 << 10];
    rt.block_on(async {
        // Unsynced while the segments fill (fast); the last commits are durable.
        let store = Store::open(&path.0, options(Durability::No)).await.unwrap();
        for round in 0..4u64 {
            for i in 0..400 {
                store.put(&key(round * 400 + i), &big).await.unwrap();
            }
            store.checkpoint().await.unwrap();
        }
        store.set_durability(Durability::Always);
        // A crash (no close) with a few small commits in the current, recycled segment.
        assert_eq!(commits(&store, 10_000, 5).await, 1605);
    });
    let files: u64 = (0..3)
        .filter_map(|slot| std::fs::metadata(path.wal(slot)).ok())
        .map(|m| m.len())
        .sum();
    assert!(
        files > 3 * (4 << 20),
        "segments of several windows: {files}"
    );
    rt.block_on(async {
        let store = Store::open(&path.0, options(Durability::Always))
            .await
            .unwrap();
        let rec = store.log_recovery().clone();
        assert_eq!(rec.replayed_commits, 5, "{rec}");
        assert_eq!(rec.discarded_frames, 0, "{rec}");
        assert!(
            rec.read_bytes <= files + (4 << 20),
            "{} bytes read from {files} bytes of log files: {rec}",
            rec.read_bytes
        );
        assert_keys(&store, 10_000..10_005, 0..0).await;
        assert_eq!(
            store.get(&key(1599)).await.unwrap().as_deref(),
            Some(&big[..])
        );
    });
}
