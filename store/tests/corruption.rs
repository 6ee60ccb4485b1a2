//! Corruption of the data file: flipped bytes in meta, branch, leaf, overflow and freelist
//! pages give a clear error (or, for one damaged meta page, the older meta), never a panic.
//! Truncated files too. The stores are built, checkpointed, and their logs removed, so the
//! tree alone holds the data (`wal.rs` damages the log; one test here shows the log making
//! up for a damaged meta page).

mod common;

use std::os::unix::fs::FileExt;

use common::{flip, key, value, TempPath};
use faultless_runtime::Runtime;
use faultless_store::{Error, Store, StoreOptions};
use futures::StreamExt;

const PS: u64 = 4096;

/// Builds a store with a multi-level data tree, overflow values and a non-empty freelist,
/// checkpointed after each of its two commits; returns the tree's last commit (the newest
/// meta's txid). Unless `keep_log`, the log is removed.
fn build(path: &std::path::Path) -> u64 {
    build_with_log(path, false)
}

fn build_with_log(path: &std::path::Path, keep_log: bool) -> u64 {
    let rt = Runtime::new().unwrap();
    let txid = rt.block_on(async {
        let store = Store::open(path, StoreOptions::new()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..3000u64 {
            let len = if i % 500 == 0 { 9000 } else { 40 };
            txn.put(&key(i), &value(i, len)).await.unwrap();
        }
        txn.commit().await.unwrap();
        store.checkpoint().await.unwrap();
        // A second commit frees pages, so the freelist tree has an entry.
        let mut txn = store.write_txn().await.unwrap();
        for i in (0..3000u64).step_by(7) {
            txn.put(&key(i), b"updated").await.unwrap();
        }
        txn.commit().await.unwrap();
        store.checkpoint().await.unwrap();
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
        assert!(report.free_pages + report.pending_pages > 0 && report.depth >= 2);
        let txid = store.stats().tree_txid;
        store.close().await.unwrap();
        txid
    });
    if !keep_log {
        for slot in 0..3 {
            let mut name = path.as_os_str().to_owned();
            name.push(format!("-wal.{slot}"));
            let _ = std::fs::remove_file(name);
        }
    }
    txid
}

/// Page numbers of each kind, from the headers (kind byte at offset 4).
fn pages_of_kind(path: &std::path::Path, kind: u8) -> Vec<u64> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for p in 2..(data.len() as u64 / PS) {
        let page = &data[(p * PS) as usize..((p + 1) * PS) as usize];
        let stored = u32::from_le_bytes(page[0..4].try_into().unwrap());
        if stored != 0 && page[4] == kind {
            out.push(p);
        }
    }
    out
}

/// A key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// Opens, reads everything, and checks; returns the entries, or the first error seen (a
/// failed check is an error too).
fn read_entries(path: &std::path::Path) -> Result<Vec<Entry>, Error> {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(path, StoreOptions::new()).await?;
        let mut entries = Vec::new();
        let mut items = store.range(..);
        while let Some(item) = items.next().await {
            let (k, v) = item?;
            entries.push((k, v.copy_checked()?));
        }
        for i in (0..3000).step_by(13) {
            store.get(&key(i)).await?;
        }
        let report = store.check().await?;
        if !report.ok() {
            return Err(Error::Corrupt {
                page: None,
                reason: report.problems.join("; "),
            });
        }
        Ok(entries)
    })
}

/// Opens, reads everything, and checks; returns the first error seen, if any.
fn read_all(path: &std::path::Path) -> Result<(), Error> {
    let entries = read_entries(path)?;
    assert_eq!(entries.len(), 3000);
    Ok(())
}

#[test]
fn one_damaged_meta_falls_back_to_the_older_commit_and_says_which_was_lost() {
    let path = TempPath::new("meta1");
    let txid = build(&path.0);
    // The newest meta is in slot txid % 2: damage it (not its txid fields).
    flip(&path.0, (txid % 2) * PS + 60, 0x5a);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        assert_eq!(store.stats().tree_txid, txid - 1, "the older meta is used");
        // The loss is reported at open, by check, and names the lost commit.
        let r = store.recovery_report().expect("a damaged meta is reported");
        assert_eq!((r.slot, r.opened_txid), (txid % 2, txid - 1));
        assert_eq!(r.lost_txid(), Some(txid), "{r}");
        assert!(r.to_string().contains(&format!("commit {txid}")), "{r}");
        let report = store.check().await.unwrap();
        assert!(!report.ok(), "check reports the damaged meta page");
        assert!(
            report.problems.iter().any(|p| p.contains("LOST")),
            "{report}"
        );
        assert_eq!(report.meta_recovery.as_ref(), Some(r));
        // The older commit is intact: values before the update.
        assert_eq!(
            &*store.get(&key(7)).await.unwrap().unwrap(),
            &value(7, 40)[..]
        );
        // The next checkpoint rewrites the damaged slot: reopened, the store is whole again.
        store.put(b"after", b"recovery").await.unwrap();
        store.checkpoint().await.unwrap();
    });
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        assert!(store.recovery_report().is_none());
        assert!(store.check().await.unwrap().ok());
    });
}

/// With the log still there, a damaged newest meta loses nothing: the older meta names an
/// earlier commit, and the log's records after it are replayed.
#[test]
fn the_log_replays_what_a_damaged_newest_meta_held() {
    let path = TempPath::new("meta-log");
    let txid = build_with_log(&path.0, true);
    flip(&path.0, (txid % 2) * PS + 60, 0x5a);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        assert_eq!(store.stats().tree_txid, txid - 1, "the older meta is used");
        assert!(store.recovery_report().is_some());
        assert!(
            store.log_recovery().replayed_commits > 0,
            "{}",
            store.log_recovery()
        );
        // The update (the second commit) is back, from the log.
        assert_eq!(&*store.get(&key(7)).await.unwrap().unwrap(), b"updated");
        assert_eq!(store.len(), 3000);
        store.checkpoint().await.unwrap();
        assert!(
            store.check().await.unwrap().problems.len() == 1,
            "only the meta page"
        );
    });
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        assert!(store.recovery_report().is_none());
        assert!(store.check().await.unwrap().ok());
        assert_eq!(&*store.get(&key(7)).await.unwrap().unwrap(), b"updated");
    });
}

#[test]
fn a_damaged_older_meta_loses_nothing_and_says_so() {
    let path = TempPath::new("meta-old");
    let txid = build(&path.0);
    flip(&path.0, ((txid - 1) % 2) * PS + 60, 0x5a);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        assert_eq!(store.stats().tree_txid, txid, "the newest meta is used");
        let r = store.recovery_report().expect("reported");
        assert_eq!(r.lost_txid(), None, "{r}");
        assert_eq!(r.damaged_txid, Some(txid - 1), "{r}");
        assert!(r.to_string().contains("nothing is lost"), "{r}");
    });
}

#[test]
fn both_metas_damaged_is_a_clear_error() {
    let path = TempPath::new("meta2");
    build(&path.0);
    flip(&path.0, 40, 0x5a);
    flip(&path.0, PS + 40, 0x5a);
    let rt = Runtime::new().unwrap();
    let err = rt
        .block_on(Store::open(&path.0, StoreOptions::new()))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("meta"), "{err}");
}

#[test]
fn damaged_tree_and_freelist_pages_are_detected() {
    // kind 2 = branch, 3 = leaf, 4 = overflow. The freelist tree's pages are leaves too; the
    // last-written leaf holding an 8-byte key is checked separately below.
    for (kind, name) in [(2u8, "branch"), (3, "leaf"), (4, "overflow")] {
        let path = TempPath::new(name);
        build(&path.0);
        let pages = pages_of_kind(&path.0, kind);
        assert!(!pages.is_empty(), "no {name} pages");
        // Damage every page of that kind that the last commit can reach, one byte each,
        // in the middle of the page.
        for p in &pages {
            flip(&path.0, p * PS + 2000, 0x5a);
        }
        let err = read_all(&path.0).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{name}: {err}");
        assert!(err.to_string().contains("checksum"), "{name}: {err}");
    }
}

#[test]
fn damaged_freelist_is_detected_by_check() {
    let path = TempPath::new("freelist");
    build(&path.0);
    // The freelist tree is a leaf whose keys are 16 bytes (transaction id, first page; the
    // 16-bit key length is at the cell's offset + 1). Find it by reading its first cell.
    let data = std::fs::read(&path.0).unwrap();
    let mut found = None;
    for p in 2..(data.len() as u64 / PS) {
        let page = &data[(p * PS) as usize..((p + 1) * PS) as usize];
        if page[4] != 3 || u16::from_le_bytes([page[6], page[7]]) == 0 {
            continue;
        }
        let off = u16::from_le_bytes([page[32], page[33]]) as usize;
        let klen = u16::from_le_bytes([page[off + 1], page[off + 2]]);
        if klen == 16 {
            found = Some(p);
        }
    }
    let p = found.expect("a freelist leaf");
    flip(&path.0, p * PS + 4000, 0x5a);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        let report = store.check().await.unwrap();
        assert!(!report.ok());
        assert!(
            report.problems.iter().any(|p| p.contains("checksum")),
            "{report}"
        );
    });
}

#[test]
fn truncated_and_foreign_files_are_clear_errors() {
    let path = TempPath::new("trunc");
    build(&path.0);
    // The pages in use, from the meta pages (the file grows ahead of them).
    let data = std::fs::read(&path.0).unwrap();
    let pages = (0..2)
        .map(|s| u64::from_le_bytes(data[s * 4096 + 72..s * 4096 + 80].try_into().unwrap()))
        .max()
        .unwrap();
    let rt = Runtime::new().unwrap();
    // Cut into the data pages: the meta promises more pages than the file has.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path.0)
        .unwrap()
        .set_len(pages * PS / 2)
        .unwrap();
    let err = rt
        .block_on(Store::open(&path.0, StoreOptions::new()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");
    // Shorter than the meta pages.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path.0)
        .unwrap()
        .set_len(100)
        .unwrap();
    let err = rt
        .block_on(Store::open(&path.0, StoreOptions::new()))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    // Not a store at all.
    std::fs::write(&path.0, vec![0xab; 3 * PS as usize]).unwrap();
    let err = rt
        .block_on(Store::open(&path.0, StoreOptions::new()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("meta"), "{err}");
}

/// Random damage: three flipped bytes anywhere in the file, 40 times. Each time the store
/// either reports it (an error from a read, or a problem from `check`) or reads back exactly
/// the data it held (the flips hit bytes nothing reads: free pages, the file's tail, unused
/// page space). Never a panic, never different data.
#[test]
fn random_byte_flips_are_reported_or_change_nothing() {
    let path = TempPath::new("fuzz");
    build(&path.0);
    let pristine = std::fs::read(&path.0).unwrap();
    let expected = read_entries(&path.0).expect("the pristine store reads back");
    assert_eq!(expected.len(), 3000);
    let mut rng = 0x243F_6A88_85A3_08D3u64;
    let (mut reported, mut unchanged) = (0, 0);
    for round in 0..40 {
        std::fs::write(&path.0, &pristine).unwrap();
        let mut flips = Vec::new();
        for _ in 0..3 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = rng % pristine.len() as u64;
            flip(&path.0, at, 0x5a);
            flips.push(at);
        }
        match read_entries(&path.0) {
            Err(_) => reported += 1,
            Ok(entries) => {
                assert!(
                    entries == expected,
                    "round {round}: flips at {flips:?} changed the data without an error"
                );
                unchanged += 1;
            }
        }
    }
    // Most of the file is data: most rounds must have been caught.
    assert!(reported >= 10, "{reported} reported, {unchanged} unchanged");
}

/// A store written in format version 1 (the per-commit page lists) is refused with an error
/// that says how to migrate it.
#[test]
fn format_version_1_is_refused_with_a_way_out() {
    let path = TempPath::new("v1");
    build(&path.0);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path.0)
        .unwrap();
    for slot in 0..2u64 {
        let mut page = vec![0u8; PS as usize];
        f.read_exact_at(&mut page, slot * PS).unwrap();
        page[40..44].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&slot.to_le_bytes()), &page[4..]);
        page[0..4].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&page, slot * PS).unwrap();
    }
    let rt = Runtime::new().unwrap();
    let err = rt
        .block_on(Store::open(&path.0, StoreOptions::new().read_only(true)))
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("version 1") && msg.contains("store dump"),
        "{msg}"
    );
}
