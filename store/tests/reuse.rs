//! Page reuse: update churn with short readers keeps the file bounded; a long-lived reader
//! holds pages back, and stats say so. Cold lookups yield without faulting the executor.
//!
//! Commits reach the tree at checkpoints; these tests checkpoint after every commit (and
//! turn the timed ones off), so each commit is a tree commit, as a checkpoint after a busy
//! interval would be.

mod common;

use common::{key, value, TempPath};
use faultless_runtime::mem::{thread_faults, Backend};
use faultless_runtime::Runtime;
use faultless_store::{Store, StoreOptions, WriteTxn};

fn options() -> StoreOptions {
    // The log's syncs are not what these tests are about.
    StoreOptions::new()
        .checkpoint_interval(std::time::Duration::MAX)
        .durability(faultless_store::Durability::No)
}

/// Commits `txn`, then writes it into the tree.
async fn commit(store: &Store, txn: WriteTxn) {
    txn.commit().await.unwrap();
    store.checkpoint().await.unwrap();
}

#[test]
fn update_churn_with_short_readers_keeps_the_file_bounded() {
    let path = TempPath::new("churn");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..2000u64 {
            txn.put(&key(i), &value(i, 100)).await.unwrap();
        }
        commit(&store, txn).await;
        let base_pages = store.stats().page_count;
        let mut rng = 7u64;
        for round in 0..300u64 {
            // A short reader per round, gone before the next commit.
            let r = store.read_txn();
            assert!(r.get(&key(round % 2000)).await.unwrap().is_some());
            drop(r);
            let mut txn = store.write_txn().await.unwrap();
            for _ in 0..20 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = rng % 2000;
                txn.put(&key(i), &value(i + round, 100)).await.unwrap();
            }
            txn.commit().await.unwrap();
            if round % 5 == 4 {
                store.checkpoint().await.unwrap();
            }
        }
        let s = store.stats();
        assert!(
            s.page_count < base_pages * 2,
            "300 update commits grew the store from {base_pages} to {} pages",
            s.page_count
        );
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
    });
}

#[test]
fn a_long_lived_reader_holds_pages_back_and_is_reported() {
    let path = TempPath::new("longreader");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        for i in 0..500u64 {
            store.put(&key(i), &value(i, 100)).await.unwrap();
        }
        store.checkpoint().await.unwrap();
        let long = store.read_txn();
        let before = store.stats().page_count;
        for round in 0..100u64 {
            let mut txn = store.write_txn().await.unwrap();
            for i in 0..50u64 {
                txn.put(&key(i), &value(i + round, 100)).await.unwrap();
            }
            commit(&store, txn).await;
        }
        let s = store.stats();
        assert_eq!(s.readers, 1);
        assert_eq!(s.oldest_reader_lag, 100, "{s:?}");
        assert!(
            s.page_count > before + 50,
            "pages cannot be reused under the reader"
        );
        // The old reader still sees its version.
        assert_eq!(
            &*long.get(&key(3)).await.unwrap().unwrap(),
            &value(3, 100)[..]
        );
        drop(long);
        // Once it is gone, churn reuses pages again.
        let grown = store.stats().page_count;
        for round in 0..100u64 {
            let mut txn = store.write_txn().await.unwrap();
            for i in 0..50u64 {
                txn.put(&key(i), &value(i + round + 7, 100)).await.unwrap();
            }
            commit(&store, txn).await;
        }
        let after = store.stats().page_count;
        assert!(
            after <= grown + 10,
            "grew from {grown} to {after} pages after the reader left"
        );
        assert!(store.check().await.unwrap().ok());
    });
}

#[test]
fn cold_lookups_do_not_fault_the_executor() {
    let path = TempPath::new("cold");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..20_000u64 {
            txn.put(&key(i), &value(i, 200)).await.unwrap();
        }
        txn.commit().await.unwrap();
        // Into the tree: the lookups below read its pages, not the memtable.
        store.close().await.unwrap();
    });
    for backend in [Backend::UringRead, Backend::Helper, Backend::Blocking] {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open(&path.0, StoreOptions::new().backend(backend))
                .await
                .unwrap();
            // Make every page cold: a fresh mapping's pages, dropped from the page cache.
            common::drop_from_page_cache(&path.0);
            let before = thread_faults();
            let tasks: Vec<_> = (0..16u64)
                .map(|t| {
                    let store = store.clone();
                    faultless_runtime::spawn(async move {
                        for i in 0..50u64 {
                            let k = (i * 397 + t * 1009) % 20_000;
                            let v = store.get(&key(k)).await.unwrap().unwrap();
                            assert_eq!(&*v, &value(k, 200)[..]);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let faults = thread_faults().since(&before);
            if backend == Backend::Blocking {
                assert!(
                    faults.major > 0,
                    "blocking must fault (is the file on tmpfs?)"
                );
            } else {
                assert_eq!(faults.major, 0, "{backend}: executor major faults");
                assert!(store.stats().pages.slow_reads > 0);
            }
        });
    }
}

/// Issue 8, item 1: overwriting values of any size (inline, one overflow page, several
/// pages, and a mix) must reuse the freed runs, so the pages in use stay within a small
/// constant factor of the live data. Before the allocator reused runs, every overwrite of an
/// overflow value took new pages at the end of the file (tens of times the live data here).
#[test]
fn overwrites_of_every_value_size_keep_the_file_within_a_constant_factor_of_live_data() {
    let classes: [&[usize]; 4] = [&[1100], &[5000], &[20_000], &[100, 1100, 5000, 20_000]];
    for sizes in classes {
        let path = TempPath::new("overwrite-churn");
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open(&path.0, options()).await.unwrap();
            let keys = 300u64;
            for round in 0..12u64 {
                for chunk in (0..keys).collect::<Vec<_>>().chunks(25) {
                    let mut txn = store.write_txn().await.unwrap();
                    for &k in chunk {
                        let len = sizes[((k * 7 + round * 3) % sizes.len() as u64) as usize];
                        txn.put(&key(k), &value(k + round, len)).await.unwrap();
                    }
                    txn.commit().await.unwrap();
                }
                store.checkpoint().await.unwrap();
            }
            let report = store.check().await.unwrap();
            assert!(report.ok(), "{sizes:?}: {report}");
            let live = report.data_pages;
            let pages = store.stats().page_count;
            assert!(
                pages <= 2 * live + 64,
                "{sizes:?}: {pages} pages in use for {live} pages of live data\n{report}"
            );
        });
    }
}

/// Free space that dwarfs the live data (here: almost everything deleted) is reported by
/// `check` as a warning, not a problem, and by `free_space`/`stats`.
#[test]
fn check_warns_when_free_space_dwarfs_live_data() {
    let path = TempPath::new("dwarf");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for i in 0..1000u64 {
            txn.put(&key(i), &value(i, 9000)).await.unwrap();
        }
        commit(&store, txn).await;
        let report = store.check().await.unwrap();
        assert!(report.ok() && report.warnings.is_empty(), "{report}");
        let mut txn = store.write_txn().await.unwrap();
        for i in 10..1000u64 {
            txn.delete(&key(i)).await.unwrap();
        }
        commit(&store, txn).await;
        // The deleted runs are pending until a later tree commit moves them under txid 0.
        let free = store.free_space().await.unwrap();
        assert!(free.pending_pages >= 990 * 3, "{free:?}");
        store.put(&key(0), b"small").await.unwrap();
        store.checkpoint().await.unwrap();
        let free = store.free_space().await.unwrap();
        assert!(free.free_pages >= 990 * 3, "{free:?}");
        assert!(
            free.free_runs < 10,
            "deleted neighbours coalesce into few runs: {free:?}"
        );
        assert!(free.largest_free_run >= 900 * 3, "{free:?}");
        assert_eq!(store.stats().free_pages, Some(free.free_pages));
        assert_eq!(store.stats().largest_free_run, Some(free.largest_free_run));
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
        assert_eq!(report.free_pages, free.free_pages);
        assert!(
            report.warnings.iter().any(|w| w.contains("dwarfs")),
            "{report}"
        );
        // A large value now fits in the freed space without growing the file.
        let before = store.stats().page_count;
        store.put(&key(5000), &value(5000, 1 << 20)).await.unwrap();
        store.checkpoint().await.unwrap();
        assert_eq!(
            store.stats().page_count,
            before,
            "the 1 MiB value reused a free run"
        );
        assert!(store.check().await.unwrap().ok());
    });
}
