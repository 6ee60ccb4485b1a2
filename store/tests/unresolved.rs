//! Puts staged before their key's lookup finished (`group.rs`, "unresolved" puts): when a
//! put's tree page is cold, the lookup that only the key count needs runs beside the log
//! write. The key count must stay exact at every acknowledgement, a write transaction must
//! start from an exact count, and a reopen after a crash must count keys right whether or
//! not the log recorded the lookups' answers (the last frames' answers never reach it).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{key, value, TempPath};
use faultless_runtime::Runtime;
use faultless_store::{Store, StoreOptions};

/// Checkpoints only when asked: the commits stay in the log and the memtables.
fn options() -> StoreOptions {
    StoreOptions::new().checkpoint_interval(Duration::MAX)
}

/// Keys the tree starts with: the even ones below `2 * TREE_KEYS`.
const TREE_KEYS: u64 = 3000;

/// A store whose tree (not its log) holds the even keys below `2 * TREE_KEYS`; returns
/// them as the model.
fn store_with_a_tree(path: &TempPath) -> BTreeSet<u64> {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..TREE_KEYS {
            txn.put(&key(2 * i), &value(2 * i, 200)).await.unwrap();
        }
        txn.commit().await.unwrap();
        store.close().await.unwrap();
    });
    (0..TREE_KEYS).map(|i| 2 * i).collect()
}

/// Drops the store file's pages from the page cache: a store just opened must then read
/// every tree page it looks at.
fn make_cold(path: &TempPath) {
    common::drop_from_page_cache(&path.0);
}

/// A key of `0..2 * TREE_KEYS + 500`, spread: about half exist in the tree, half are new.
fn spread(i: u64) -> u64 {
    (i * 7919 + 13) % (2 * TREE_KEYS + 500)
}

/// Reopens the store and checks it against `model`: the key count, each key's presence,
/// and `check` (which also compares the tree's count with the meta's after a checkpoint).
async fn assert_matches(store: &Store, model: &BTreeSet<u64>) {
    assert_eq!(store.stats().entries, model.len() as u64);
    assert_eq!(store.read_txn().len(), model.len() as u64);
    for k in 0..2 * TREE_KEYS + 500 {
        let found = store.get(&key(k)).await.unwrap().is_some();
        assert_eq!(found, model.contains(&k), "key {k}");
    }
    let report = store.check().await.unwrap();
    assert!(report.ok(), "{report}");
}

#[test]
fn a_lone_writer_on_cold_pages_counts_keys_exactly_across_a_crash() {
    let path = TempPath::new("unresolved-seq");
    let mut model = store_with_a_tree(&path);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        make_cold(&path);
        // Keys in the lower half of the tree's range, then one new key at its top, on a
        // leaf nothing read yet: the last put is unresolved, and its answer never reaches
        // the log.
        for i in 0..300 {
            let k = spread(i) % TREE_KEYS;
            store.put(&key(k), &value(k, 150)).await.unwrap();
            model.insert(k);
            // Acknowledged: visible, with the count its lookup settled.
            assert_eq!(store.stats().entries, model.len() as u64, "after put {i}");
        }
        let before = store.stats().unresolved_puts;
        assert!(
            before > 0,
            "no put was staged before its lookup finished: were the pages cold?"
        );
        let last = 2 * TREE_KEYS - 1;
        store.put(&key(last), &value(last, 150)).await.unwrap();
        model.insert(last);
        assert_eq!(store.stats().unresolved_puts, before + 1);
        assert_eq!(store.stats().entries, model.len() as u64);
        // A crash: the store goes without a checkpoint; the log holds every put.
    });
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let rec = store.log_recovery().clone();
        assert_eq!(rec.replayed_commits, 301, "{rec}");
        // Every answer but the last put's reached the log in a later frame.
        assert_eq!(rec.looked_up, 1, "{rec}");
        assert_matches(&store, &model).await;
        store.checkpoint().await.unwrap();
        assert_matches(&store, &model).await;
    });
}

#[test]
fn concurrent_puts_and_deletes_on_cold_pages_count_keys_exactly_across_a_crash() {
    let path = TempPath::new("unresolved-conc");
    let mut model = store_with_a_tree(&path);
    let rt = Runtime::new().unwrap();
    let (puts, gone, entries) = rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        make_cold(&path);
        // 16 writers put keys that overlap between them; a 17th deletes keys, some of which
        // a put has just written unresolved (the delete finds the put's version).
        let writers: Vec<_> = (0..16u64)
            .map(|t| {
                let store = store.clone();
                faultless_runtime::spawn(async move {
                    let mut put = Vec::new();
                    for i in 0..40 {
                        let k = spread(t * 41 + i * 3);
                        store.put(&key(k), &value(k, 150)).await.unwrap();
                        put.push(k);
                    }
                    put
                })
            })
            .collect();
        let deleter = {
            let store = store.clone();
            faultless_runtime::spawn(async move {
                let mut gone = Vec::new();
                for i in 0..60 {
                    let k = spread(i * 5 + 7);
                    if store.delete(&key(k)).await.unwrap() {
                        gone.push(k);
                    }
                }
                gone
            })
        };
        let mut puts = Vec::new();
        for w in writers {
            puts.extend(w.await.unwrap());
        }
        let gone = deleter.await.unwrap();
        assert!(store.stats().unresolved_puts > 0, "were the pages cold?");
        (puts, gone, store.stats().entries)
    });
    // The order between a put and a delete of the same key is the store's: take presence
    // from the store, and check that the count agrees with it and survives the crash.
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let rec = store.log_recovery().clone();
        assert!(
            rec.looked_up <= 17,
            "only the last frames' answers may be missing: {rec}"
        );
        for k in puts.iter().chain(&gone) {
            if store.get(&key(*k)).await.unwrap().is_some() {
                model.insert(*k);
            } else {
                model.remove(k);
            }
        }
        assert_eq!(entries, model.len() as u64, "the count before the crash");
        assert_matches(&store, &model).await;
        store.checkpoint().await.unwrap();
        assert_matches(&store, &model).await;
    });
}

#[test]
fn a_write_transaction_starts_from_an_exact_key_count() {
    let path = TempPath::new("unresolved-txn");
    let model = store_with_a_tree(&path);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        make_cold(&path);
        // A put of a new key on a cold page: staged unresolved while its page is read.
        let new = 2 * TREE_KEYS + 1;
        let put = {
            let store = store.clone();
            faultless_runtime::spawn(async move {
                store.put(&key(new), &value(new, 100)).await.unwrap()
            })
        };
        while store.stats().grouped_ops < 1 {
            faultless_runtime::yield_now().await;
        }
        assert_eq!(store.stats().unresolved_puts, 1, "was the page cold?");
        let txn = store.write_txn().await.unwrap();
        assert_eq!(txn.read_txn().len(), model.len() as u64 + 1);
        drop(txn);
        put.await.unwrap();
        assert_eq!(store.stats().entries, model.len() as u64 + 1);
    });
}

#[test]
fn a_put_whose_lookup_meets_a_damaged_page_fails_and_the_store_still_opens() {
    let path = TempPath::new("unresolved-damaged");
    store_with_a_tree(&path);
    // Damage every tree page (not the two meta pages): any lookup in the tree fails.
    let pages = std::fs::metadata(&path.0).unwrap().len() / 4096;
    for page in 2..pages {
        common::flip(&path.0, page * 4096 + 100, 0x40);
    }
    // Written back, so that `make_cold` can drop them (dirty pages stay in the cache).
    std::fs::File::open(&path.0).unwrap().sync_all().unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        make_cold(&path);
        let k = 2 * TREE_KEYS + 1;
        let err = store.put(&key(k), &value(k, 100)).await.unwrap_err();
        assert!(err.to_string().contains("looking up a key"), "{err}");
        assert_eq!(store.stats().unresolved_puts, 1);
        // The record reached the log before the lookup failed: writes are refused until a
        // reopen, which replays it.
        assert!(store.put(b"another", b"v").await.is_err());
    });
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let rec = store.log_recovery().clone();
        assert_eq!((rec.looked_up, rec.uncounted), (1, 1), "{rec}");
        assert!(rec.to_string().contains("could not be read"), "{rec}");
        let k = 2 * TREE_KEYS + 1;
        assert_eq!(
            store.get(&key(k)).await.unwrap().as_deref(),
            Some(&value(k, 100)[..])
        );
        assert!(!store.check().await.unwrap().ok(), "check names the damage");
    });
}

#[test]
fn a_put_whose_caller_goes_away_after_staging_is_kept_and_close_lets_the_file_go() {
    let path = TempPath::new("unresolved-dropped");
    let model = store_with_a_tree(&path);
    let k = 2 * TREE_KEYS + 1;
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        make_cold(&path);
        {
            let (kb, vb) = (key(k), value(k, 100));
            let put = store.put(&kb, &vb);
            let mut put = std::pin::pin!(put);
            // One poll stages it (unresolved: its page is being read); then the caller goes.
            assert!(futures::poll!(put.as_mut()).is_pending());
        }
        assert_eq!(store.stats().unresolved_puts, 1, "was the page cold?");
        store.close().await.unwrap();
    });
    // The first runtime lives on: nothing of the closed store may hold the file.
    let other = Runtime::new().unwrap();
    other.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        assert_eq!(
            store.log_recovery().replayed_commits,
            0,
            "close checkpointed it"
        );
        assert_eq!(
            store.get(&key(k)).await.unwrap().as_deref(),
            Some(&value(k, 100)[..])
        );
        assert_eq!(store.stats().entries, model.len() as u64 + 1);
    });
    drop(rt);
}
