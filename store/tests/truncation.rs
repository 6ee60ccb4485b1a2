//! A store's file truncated under a live store (issue 8, item 3): no read returns bytes the
//! file did not hold, and no commit is acknowledged on top of the hole (which would leave a
//! store that reopens "fine" with acknowledged keys missing): the log writer checks the
//! file's size before every write, and checkpoints before their pages and their meta.

mod common;

use common::{key, value, TempPath};
use faultless_runtime::Runtime;
use faultless_store::{Store, StoreOptions};
use futures::StreamExt;

const PS: u64 = 4096;

/// Checkpoints only when asked: these tests put values into the tree, then cut its file.
fn options() -> StoreOptions {
    StoreOptions::new().checkpoint_interval(std::time::Duration::MAX)
}

fn truncate(path: &std::path::Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The page numbers of overflow runs holding a value of `len` bytes (kind 4 at offset 4,
/// the value's length at offset 28).
fn overflow_runs_of_len(path: &std::path::Path, len: u32) -> Vec<u64> {
    let data = std::fs::read(path).unwrap();
    (2..data.len() as u64 / PS)
        .filter(|&p| {
            let page = &data[(p * PS) as usize..((p + 1) * PS) as usize];
            page[4] == 4 && u32::from_le_bytes(page[28..32].try_into().unwrap()) == len
        })
        .collect()
}

#[test]
fn reads_after_truncation_fail_instead_of_returning_zeros() {
    let path = TempPath::new("trunc-read");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        // One leaf (page 2), then the value's overflow run right after it.
        let big = vec![0xa5u8; 30_000];
        let mut txn = store.write_txn().await.unwrap();
        txn.put(b"a", b"small").await.unwrap();
        txn.put(b"big", &big).await.unwrap();
        txn.commit().await.unwrap();
        store.checkpoint().await.unwrap();
        // Read it once: its pages are verified and resident.
        assert_eq!(&*store.get(b"big").await.unwrap().unwrap(), &big[..]);
        let run = overflow_runs_of_len(&path.0, 30_000);
        assert_eq!(run.len(), 1, "one run of the value");
        // Cut the file at the run: the leaf survives, the value's pages do not.
        truncate(&path.0, run[0] * PS);

        // The zero-copy read fails (the verified run's header no longer reads back) ...
        let got = store.get(b"big").await;
        assert!(
            got.is_err(),
            "a read returned a value ({:?}) for truncated pages",
            got.as_ref()
                .map(|v| v.as_ref().map(|v| v.iter().all(|&b| b == 0)))
        );
        let msg = got.unwrap_err().to_string();
        assert!(msg.contains("truncated"), "{msg}");
        // ... and so do the copying reads, and a range over it.
        let txn = store.write_txn().await;
        if let Ok(txn) = txn {
            assert!(txn.get(b"big").await.is_err());
        }
        let items: Vec<_> = store.range(..).collect().await;
        assert!(
            items.iter().any(|i| i.is_err()),
            "the range must fail on the truncated value"
        );
        assert!(store.check_intact().is_err());
        assert!(store.read_txn().check_intact().is_err());
    });
}

#[test]
fn a_value_copied_while_its_pages_vanish_is_caught_by_copy_checked() {
    let path = TempPath::new("trunc-copy");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let big = vec![0x5au8; 30_000];
        let mut txn = store.write_txn().await.unwrap();
        txn.put(b"a", b"small").await.unwrap();
        txn.put(b"big", &big).await.unwrap();
        txn.commit().await.unwrap();
        store.checkpoint().await.unwrap();
        // The value is handed out first, and the file is cut while the caller holds it:
        // its first page is kept, the rest of the run goes.
        let v = store.get(b"big").await.unwrap().unwrap();
        let run = overflow_runs_of_len(&path.0, 30_000)[0];
        truncate(&path.0, (run + 1) * PS);
        let copy = v.copy_checked();
        assert!(copy.is_err(), "copied zeros as the value");
        assert!(store.check_intact().is_err());
    });
}

#[test]
fn a_commit_after_the_file_was_truncated_fails_and_poisons_the_writer() {
    let path = TempPath::new("trunc-commit");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..100u64 {
            txn.put(&key(i), &value(i, 40)).await.unwrap();
        }
        txn.commit().await.unwrap();
        store.checkpoint().await.unwrap();
        // One large value: its run is allocated at the end of the file.
        store.put(b"large", &vec![7u8; 2 << 20]).await.unwrap();
        store.checkpoint().await.unwrap();
        // Small commits after it move the tree's and freelist's pages to reused runs.
        for round in 0..4u64 {
            store.put(&key(round), b"x").await.unwrap();
            store.checkpoint().await.unwrap();
        }
        // A commit the tree does not hold yet (it is in memory, and in the log).
        store.put(b"recent", b"in memory").await.unwrap();
        // A transaction reads its path before the cut ...
        let mut txn = store.write_txn().await.unwrap();
        txn.put(&key(5), b"after the truncation").await.unwrap();
        // ... then the large value's run is cut after its first page: every page the
        // transaction read survives, but pages of the last commit are gone.
        let run = overflow_runs_of_len(&path.0, 2 << 20);
        assert_eq!(run.len(), 1);
        assert!((run[0] + 2) * PS < store.stats().page_count * PS);
        truncate(&path.0, (run[0] + 1) * PS);
        // Reads that do not reach the cut still work.
        assert_eq!(&*store.get(b"recent").await.unwrap().unwrap(), b"in memory");
        let err = txn
            .commit()
            .await
            .expect_err("a commit on top of a truncated file was acknowledged");
        assert!(err.to_string().contains("truncated"), "{err}");
        // The writer stays refused, with the reason.
        let err = store.put(&key(6), b"again").await.unwrap_err();
        assert!(err.to_string().contains("writes are refused"), "{err}");
        assert!(store.write_txn().await.is_err());
    });
    // Reopened, the store says it is truncated rather than opening "fine".
    let err = rt
        .block_on(Store::open(&path.0, options()))
        .err()
        .expect("the truncated store must not open as if whole");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn a_file_cut_only_in_its_preallocated_tail_is_grown_again() {
    let path = TempPath::new("trunc-tail");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        for i in 0..20u64 {
            store.put(&key(i), &value(i, 3000)).await.unwrap();
        }
        store.checkpoint().await.unwrap();
        let s = store.stats();
        let committed = s.page_count * PS;
        assert!(s.file_size > committed, "the file grows ahead of the pages");
        truncate(&path.0, committed);
        for i in 20..400u64 {
            store.put(&key(i), &value(i, 3000)).await.unwrap();
            if i % 50 == 0 {
                store.checkpoint().await.unwrap();
            }
        }
        store.checkpoint().await.unwrap();
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
        assert!(std::fs::metadata(&path.0).unwrap().len() >= store.stats().page_count * PS);
        // The store's background tasks (a checkpoint its keeper started, the log writer) and
        // the ring's deferred work hold the file while they run: close it before opening it
        // again on another runtime.
        store.close().await.unwrap();
    });
    // The first runtime lives on (its tasks suspended): `close` must have let go of the file.
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        assert_eq!(store.len(), 400);
        assert!(store.check().await.unwrap().ok());
    });
}
