//! Store basics: put, get, delete, range, reopen, limits, transactions, check.

mod common;

use common::{key, put_from_tasks, value, TempPath};
use faultless_runtime::Runtime;
use faultless_store::{Error, Store, StoreOptions, MAX_KEY_LEN};
use futures::StreamExt;

#[test]
fn put_get_delete_range_and_reopen() {
    let path = TempPath::new("basic");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        assert!(store.is_empty());
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..5000u64 {
            let len = if i % 97 == 0 {
                5000 + i as usize
            } else {
                20 + (i % 50) as usize
            };
            txn.put(&key(i), &value(i, len)).await.unwrap();
        }
        assert_eq!(txn.get(&key(42)).await.unwrap().unwrap(), value(42, 62));
        txn.commit().await.unwrap();
        assert_eq!(store.len(), 5000);
        assert_eq!(
            &*store.get(&key(97)).await.unwrap().unwrap(),
            &value(97, 5097)[..]
        );
        assert!(store.get(b"nope").await.unwrap().is_none());

        // Range in key order, with bounds.
        let got: Vec<Vec<u8>> = store
            .range(key(100)..key(110))
            .map(|r| r.unwrap().0)
            .collect()
            .await;
        assert_eq!(got, (100..110).map(key).collect::<Vec<_>>());
        let all: Vec<_> = store.range(..).collect().await;
        assert_eq!(all.len(), 5000);

        // Deletes shrink the tree.
        let mut txn = store.write_txn().await.unwrap();
        for i in (0..5000u64).filter(|i| i % 3 != 0) {
            assert!(txn.delete(&key(i)).await.unwrap());
        }
        assert!(!txn.delete(b"missing").await.unwrap());
        txn.commit().await.unwrap();
        assert_eq!(store.len(), 1667);
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
    });
    // Reopen: the data is there, instantly. (The first runtime goes first: a checkpoint it
    // was running holds the store, and its lock, until it finishes or the runtime drops.)
    drop(rt);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        assert_eq!(store.len(), 1667);
        assert_eq!(
            &*store.get(&key(3)).await.unwrap().unwrap(),
            &value(3, 23)[..]
        );
        assert!(store.get(&key(4)).await.unwrap().is_none());
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
    });
}

#[test]
fn group_commit_coalesces_concurrent_puts() {
    let path = TempPath::new("group");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        put_from_tasks(&store, 64, 10, 30).await;
        let s = store.stats();
        assert_eq!(s.entries, 640);
        assert_eq!(s.commits, 640);
        assert!(
            s.log_writes < 100 && s.log_syncs <= s.log_writes + 8,
            "640 puts from 64 tasks must share log writes and syncs: {s:?}"
        );
        assert!(store.delete(&key(5)).await.unwrap());
        assert!(!store.delete(&key(5)).await.unwrap());
        assert!(store.check().await.unwrap().ok());
    });
}

#[test]
fn limits_are_errors() {
    let path = TempPath::new("limits");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        let big_key = vec![b'k'; MAX_KEY_LEN + 1];
        assert!(matches!(
            store.put(&big_key, b"v").await,
            Err(Error::KeyTooLarge(_))
        ));
        assert!(matches!(
            store.put(b"", b"v").await,
            Err(Error::KeyTooLarge(0))
        ));
        let mut txn = store.write_txn().await.unwrap();
        assert!(matches!(
            txn.put(&big_key, b"v").await,
            Err(Error::KeyTooLarge(_))
        ));
        txn.put(&vec![b'k'; MAX_KEY_LEN], &vec![1; 1024])
            .await
            .unwrap();
        txn.commit().await.unwrap();
        assert_eq!(store.len(), 1);
    });
}

#[test]
fn snapshots_are_isolated_from_later_commits() {
    let path = TempPath::new("snapshot");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        for i in 0..200 {
            store.put(&key(i), b"v1").await.unwrap();
        }
        let snap = store.read_txn();
        let old = snap.get(&key(7)).await.unwrap().unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..200 {
            txn.put(&key(i), b"v2-longer-value").await.unwrap();
        }
        for i in 200..2000 {
            txn.put(&key(i), b"new").await.unwrap();
        }
        txn.commit().await.unwrap();
        for i in 0..10 {
            store.delete(&key(i)).await.unwrap();
        }
        // The old snapshot still sees v1 everywhere, and only 200 keys.
        assert_eq!(&*old, b"v1");
        for i in 0..200 {
            assert_eq!(&*snap.get(&key(i)).await.unwrap().unwrap(), b"v1");
        }
        assert!(snap.get(&key(500)).await.unwrap().is_none());
        assert_eq!(snap.range(..).count().await, 200);
        assert_eq!(snap.len(), 200);
        // New readers see the new state.
        assert_eq!(
            &*store.get(&key(50)).await.unwrap().unwrap(),
            b"v2-longer-value"
        );
        assert!(store.get(&key(5)).await.unwrap().is_none());
        assert!(store.stats().oldest_reader_lag > 0);
        drop(old);
        drop(snap);
        assert_eq!(store.stats().readers, 0);
        assert!(store.check().await.unwrap().ok());
    });
}

#[test]
fn second_writer_process_gets_a_clear_error() {
    let path = TempPath::new("lock");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let _store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        // flock is per open file description: a second open in this process conflicts just
        // as another process's would.
        let err = Store::open(&path.0, StoreOptions::new())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Locked), "{err}");
        assert!(err.to_string().contains("another process"));
    });
}

#[test]
fn aborted_transactions_change_nothing() {
    let path = TempPath::new("abort");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        store.put(b"a", b"1").await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        txn.put(b"a", b"2").await.unwrap();
        txn.put(b"b", b"2").await.unwrap();
        txn.abort();
        let mut txn = store.write_txn().await.unwrap();
        txn.delete(b"a").await.unwrap();
        drop(txn);
        assert_eq!(&*store.get(b"a").await.unwrap().unwrap(), b"1");
        assert!(store.get(b"b").await.unwrap().is_none());
        assert!(store.check().await.unwrap().ok());
    });
}

/// Issue 8, item 5: a FIFO (or any non-regular file) is refused before it is opened for
/// reading (opening a FIFO read-only would block until a writer appears), and an existing
/// empty file is an empty store, read-only or not.
#[test]
fn non_regular_files_are_refused_and_an_empty_file_is_an_empty_store() {
    let rt = Runtime::new().unwrap();
    let fifo = TempPath::new("fifo");
    let c = std::ffi::CString::new(fifo.0.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for read_only in [true, false] {
        let start = std::time::Instant::now();
        let err = rt
            .block_on(Store::open(
                &fifo.0,
                StoreOptions::new().read_only(read_only),
            ))
            .err()
            .expect("a FIFO is not a store");
        assert!(err.to_string().contains("a FIFO"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let err = rt
        .block_on(Store::open(&dir, StoreOptions::new().read_only(true)))
        .err()
        .unwrap();
    assert!(err.to_string().contains("a directory"), "{err}");

    let empty = TempPath::new("empty");
    std::fs::write(&empty.0, b"").unwrap();
    rt.block_on(async {
        // Read-only: an empty store, and the file is left as it was.
        let store = Store::open(&empty.0, StoreOptions::new().read_only(true))
            .await
            .unwrap();
        assert!(store.is_empty());
        assert!(store.get(b"k").await.unwrap().is_none());
        assert!(store.check().await.unwrap().ok());
        drop(store);
        assert_eq!(std::fs::metadata(&empty.0).unwrap().len(), 0);
        // Read-write: initialised as an empty store.
        let store = Store::open(&empty.0, StoreOptions::new()).await.unwrap();
        assert!(store.is_empty());
        store.put(b"k", b"v").await.unwrap();
        assert!(store.check().await.unwrap().ok());
    });
}

/// `WriteTxn::submit` stages a commit and lets the next transaction start at once (it sees
/// the staged commit, as does its `read_txn`), while the log write is in flight; both
/// commits complete, in order. A snapshot of a staged commit keeps its versions however
/// many newer ones are staged after it.
#[test]
fn submitted_commits_pipeline_and_their_snapshots_hold() {
    let path = TempPath::new("submit");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        let mut t1 = store.write_txn().await.unwrap();
        t1.put(b"a", b"one").await.unwrap();
        let c1 = t1.submit().unwrap();
        // No await since: the log writer has not run; commit 1 is staged, not visible.
        let mut t2 = store.write_txn().await.unwrap();
        assert_eq!(t2.get(b"a").await.unwrap().as_deref(), Some(&b"one"[..]));
        let staged = t2.read_txn();
        assert_eq!(staged.txid(), 1);
        assert_eq!(staged.len(), 1);
        assert!(
            store.read_txn().get(b"a").await.unwrap().is_none(),
            "not visible yet"
        );
        t2.put(b"b", b"two").await.unwrap();
        let c2 = t2.submit().unwrap();
        // Newer versions of "a", staged in the same frame as the snapshot's.
        for v in [&b"three"[..], b"four"] {
            let mut t = store.write_txn().await.unwrap();
            t.put(b"a", v).await.unwrap();
            drop(t.submit().unwrap()); // committed anyway
        }
        assert_eq!(&*staged.get(b"a").await.unwrap().unwrap(), b"one");
        c1.await.unwrap();
        c2.await.unwrap();
        // Once the last one is visible (the frames are written in order).
        let mut t = store.write_txn().await.unwrap();
        t.put(b"c", b"five").await.unwrap();
        t.commit().await.unwrap();
        assert_eq!(&*staged.get(b"a").await.unwrap().unwrap(), b"one");
        assert!(staged.get(b"b").await.unwrap().is_none());
        assert_eq!(&*store.get(b"a").await.unwrap().unwrap(), b"four");
        assert_eq!(&*store.get(b"b").await.unwrap().unwrap(), b"two");
        assert_eq!(store.len(), 3);
        drop(staged);
        assert!(store.check().await.unwrap().ok());
    });
}

#[test]
fn put_known_keeps_the_count_exact_and_the_transactions_own_writes_win() {
    let path = TempPath::new("put-known");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        store.put(b"old", b"1").await.unwrap();
        store.checkpoint().await.unwrap(); // "old" in the tree, not only in memory
        let mut txn = store.write_txn().await.unwrap();
        let base = txn.read_txn();
        let exists = base.get(b"old").await.unwrap().is_some();
        txn.put_known(b"old", b"2", exists).unwrap();
        txn.put_known(b"new", b"1", false).unwrap();
        assert_eq!(txn.len(), 2);
        // Written in this transaction: its own state wins over the caller's stale answer.
        txn.delete(b"new").await.unwrap();
        txn.put_known(b"new", b"again", true).unwrap();
        assert_eq!(txn.len(), 2);
        assert!(txn.put_known(b"", b"x", false).is_err());
        txn.commit().await.unwrap();
        assert_eq!(&*store.get(b"old").await.unwrap().unwrap(), b"2");
        assert_eq!(&*store.get(b"new").await.unwrap().unwrap(), b"again");
        assert_eq!(store.read_txn().len(), 2);
        assert!(store.check().await.unwrap().ok());
    });
}
