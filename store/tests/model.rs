//! Property tests: random puts, deletes, ranges, commits, aborts, checkpoints, clean reopens,
//! crashes (the store dropped with its commits only in the log) and lost log tails (the
//! newest log segment cut at a random frame) against a `BTreeMap` model. After every step
//! the store must agree with the model (after a cut log, with the model as of the commit the
//! store recovered to), and `check` must pass after every commit. A second property
//! overwrites and deletes values of every size class (inline, one overflow page, many pages)
//! on few keys and bounds the pages in use by the largest live data seen.

mod common;

use std::collections::BTreeMap;

use common::TempPath;
use faultless_runtime::Runtime;
use faultless_store::{Durability, Store, StoreOptions};
use futures::StreamExt;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Put(u16, usize),
    Delete(u16),
    Range(u16, u16),
    Commit,
    Abort,
    Checkpoint,
    Reopen,
    Crash,
    CutLog(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u16..600, value_len())
            .prop_map(|(k, l)| Step::Put(k, l)),
        4 => (0u16..600).prop_map(Step::Delete),
        1 => (0u16..600, 0u16..600).prop_map(|(a, b)| Step::Range(a.min(b), a.max(b))),
        3 => Just(Step::Commit),
        1 => Just(Step::Abort),
        1 => Just(Step::Checkpoint),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
        1 => any::<u16>().prop_map(Step::CutLog),
    ]
}

/// Checkpoints only at `Step::Checkpoint`, so every run is the same.
fn options() -> StoreOptions {
    StoreOptions::new().checkpoint_interval(std::time::Duration::MAX)
}

/// Cuts the newest log segment of the store at `path` at one of its frame boundaries
/// (chosen by `pick`), as if the frames after it never reached the disk.
fn cut_log(path: &TempPath, pick: u16) {
    let newest = (0..3)
        .filter_map(|slot| {
            let data = std::fs::read(path.wal(slot)).ok()?;
            (data.len() >= 64 && &data[0..8] == b"FLTWAL01").then(|| {
                let generation = u64::from_le_bytes(data[24..32].try_into().unwrap());
                (generation, slot, data)
            })
        })
        .max_by_key(|(g, _, _)| *g);
    let Some((_, slot, data)) = newest else {
        return;
    };
    let mut cuts = vec![4096u64];
    let mut at = 4096usize;
    while at + 48 <= data.len() && &data[at..at + 4] == b"FLWF" {
        let body = u64::from_le_bytes(data[at + 24..at + 32].try_into().unwrap());
        at += (48 + body as usize).next_multiple_of(8);
        cuts.push(at as u64);
    }
    let cut = cuts[pick as usize % cuts.len()];
    std::fs::OpenOptions::new()
        .write(true)
        .open(path.wal(slot))
        .unwrap()
        .set_len(cut)
        .unwrap();
}

/// Value lengths across the size classes: inline, one overflow page, several pages.
fn value_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0usize..100,
        1 => 900usize..1025,
        2 => 1025usize..4064,
        1 => 4064usize..12000,
        1 => 12000usize..40000,
    ]
}

fn k(i: u16) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

fn v(i: u16, len: usize, gen: usize) -> Vec<u8> {
    let mut out = format!("{i}/{gen}/").into_bytes();
    out.resize(len.max(out.len()), (i as usize + gen) as u8);
    out
}

async fn verify(store: &Store, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(store.len(), model.len() as u64);
    let all: Vec<(Vec<u8>, Vec<u8>)> = store
        .range(..)
        .map(|r| {
            let (k, v) = r.unwrap();
            (k, v.to_vec())
        })
        .collect()
        .await;
    let expect: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
    assert!(all == expect, "store contents differ from the model");
}

proptest! {
    // 40 cases in CI; set PROPTEST_CASES for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(40),
        .. ProptestConfig::default()
    })]

    #[test]
    fn store_matches_btreemap(steps in proptest::collection::vec(step(), 1..250)) {
        let path = TempPath::new("model");
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let mut store = Store::open(&path.0, options()).await.unwrap();
            let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut pending = committed.clone();
            // The model as of each commit, for the state a cut log recovers to.
            let mut history = BTreeMap::from([(0u64, committed.clone())]);
            let mut txn = Some(store.write_txn().await.unwrap());
            for (gen, s) in steps.into_iter().enumerate() {
                match s {
                    Step::Put(i, len) => {
                        let val = v(i, len, gen);
                        txn.as_mut().unwrap().put(&k(i), &val).await.unwrap();
                        pending.insert(k(i), val);
                    }
                    Step::Delete(i) => {
                        let existed = txn.as_mut().unwrap().delete(&k(i)).await.unwrap();
                        assert_eq!(existed, pending.remove(&k(i)).is_some());
                    }
                    Step::Range(a, b) => {
                        let t = txn.as_ref().unwrap();
                        assert_eq!(t.len(), pending.len() as u64);
                        let got: Vec<Vec<u8>> = store
                            .range(k(a)..=k(b))
                            .map(|r| r.unwrap().0)
                            .collect()
                            .await;
                        let want: Vec<Vec<u8>> = committed.range(k(a)..=k(b)).map(|(k, _)| k.clone()).collect();
                        assert_eq!(got, want);
                        if let Some(x) = pending.keys().next() {
                            assert_eq!(t.get(x).await.unwrap().as_ref(), pending.get(x));
                        }
                    }
                    Step::Commit => {
                        txn.take().unwrap().commit().await.unwrap();
                        committed = pending.clone();
                        history.insert(store.read_txn().txid(), committed.clone());
                        let report = store.check().await.unwrap();
                        assert!(report.ok(), "{report}");
                        verify(&store, &committed).await;
                        txn = Some(store.write_txn().await.unwrap());
                    }
                    Step::Checkpoint => {
                        drop(txn.take());
                        pending = committed.clone();
                        store.checkpoint().await.unwrap();
                        let report = store.check().await.unwrap();
                        assert!(report.ok(), "{report}");
                        assert_eq!(report.log_commits, 0, "{report}");
                        verify(&store, &committed).await;
                        txn = Some(store.write_txn().await.unwrap());
                    }
                    Step::Crash => {
                        // Dropped with its commits only in the log (and memory): the next
                        // open replays them, and loses none.
                        drop(txn.take());
                        pending = committed.clone();
                        drop(store);
                        store = Store::open(&path.0, options()).await.unwrap();
                        verify(&store, &committed).await;
                        let report = store.check().await.unwrap();
                        assert!(report.ok(), "{report}");
                        txn = Some(store.write_txn().await.unwrap());
                    }
                    Step::CutLog(pick) => {
                        drop(txn.take());
                        drop(store);
                        cut_log(&path, pick);
                        store = Store::open(&path.0, options()).await.unwrap();
                        let at = store.read_txn().txid();
                        let expect = history.get(&at).unwrap_or_else(|| {
                            panic!("recovered to commit {at}, which was never made")
                        });
                        committed = expect.clone();
                        pending = committed.clone();
                        history.retain(|&t, _| t <= at);
                        verify(&store, &committed).await;
                        let report = store.check().await.unwrap();
                        assert!(report.ok(), "{report}");
                        txn = Some(store.write_txn().await.unwrap());
                    }
                    Step::Abort => {
                        txn.take().unwrap().abort();
                        pending = committed.clone();
                        txn = Some(store.write_txn().await.unwrap());
                    }
                    Step::Reopen => {
                        drop(txn.take());
                        pending = committed.clone();
                        store.close().await.unwrap();
                        store = Store::open(&path.0, options()).await.unwrap();
                        assert_eq!(store.log_recovery().replayed_commits, 0);
                        verify(&store, &committed).await;
                        txn = Some(store.write_txn().await.unwrap());
                    }
                }
            }
            txn.take().unwrap().commit().await.unwrap();
            verify(&store, &pending).await;
            let report = store.check().await.unwrap();
            assert!(report.ok(), "{report}");
        });
    }
}

#[derive(Clone, Debug)]
enum ChurnStep {
    Put(u16, usize),
    Delete(u16),
    Commit,
}

fn churn_step() -> impl Strategy<Value = ChurnStep> {
    prop_oneof![
        10 => (0u16..24, value_len()).prop_map(|(k, l)| ChurnStep::Put(k, l)),
        2 => (0u16..24).prop_map(ChurnStep::Delete),
        4 => Just(ChurnStep::Commit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10),
        .. ProptestConfig::default()
    })]

    /// Overwrites and deletes of values of every size on 24 keys: after every commit (and a
    /// checkpoint) the store agrees with the model, `check` passes, and the pages in use (the
    /// high-water mark) stay within 3x the largest live data seen, plus a little for the
    /// freelist.
    #[test]
    fn pages_in_use_stay_within_a_factor_of_the_live_data(
        steps in proptest::collection::vec(churn_step(), 1..400)
    ) {
        let path = TempPath::new("churn-model");
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            // The log's syncs are not what this property is about.
            let store = Store::open(&path.0, options().durability(Durability::No))
                .await
                .unwrap();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut txn = store.write_txn().await.unwrap();
            let mut peak_live = 0u64;
            for (gen, s) in steps.into_iter().chain([ChurnStep::Commit]).enumerate() {
                match s {
                    ChurnStep::Put(i, len) => {
                        let val = v(i, len, gen);
                        txn.put(&k(i), &val).await.unwrap();
                        model.insert(k(i), val);
                    }
                    ChurnStep::Delete(i) => {
                        let existed = txn.delete(&k(i)).await.unwrap();
                        assert_eq!(existed, model.remove(&k(i)).is_some());
                    }
                    ChurnStep::Commit => {
                        txn.commit().await.unwrap();
                        // Into the tree: its pages are what this property bounds.
                        store.checkpoint().await.unwrap();
                        let report = store.check().await.unwrap();
                        assert!(report.ok(), "{report}");
                        let live = report.data_pages + report.freelist_tree_pages + 2;
                        peak_live = peak_live.max(live);
                        let pages = store.stats().page_count;
                        assert!(
                            pages <= 3 * peak_live + 16,
                            "{pages} pages in use; the live data never took more than {peak_live}\n{report}"
                        );
                        verify(&store, &model).await;
                        txn = store.write_txn().await.unwrap();
                    }
                }
            }
        });
    }
}

#[derive(Clone, Debug)]
enum BatchOp {
    Put(u16, usize),
    Delete(u16),
    /// Deletes every key in `from..from + n` (a sweep that empties whole leaves).
    DeleteRange(u16, u16),
}

fn batch_op() -> impl Strategy<Value = BatchOp> {
    prop_oneof![
        12 => (0u16..20_000, prop_oneof![8 => 0usize..120, 1 => 120usize..1025, 1 => 1025usize..9000])
            .prop_map(|(k, l)| BatchOp::Put(k, l)),
        4 => (0u16..20_000).prop_map(BatchOp::Delete),
        1 => (0u16..20_000, 1u16..3000).prop_map(|(k, n)| BatchOp::DeleteRange(k, n)),
    ]
}

/// Keys of varied lengths, so pages hold varied numbers of entries.
fn wide_key(i: u16) -> Vec<u8> {
    let mut k = format!("w{i:05}").into_bytes();
    k.resize(6 + (i as usize * 7919) % 90, b'.');
    k
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(3),
        .. ProptestConfig::default()
    })]

    /// The checkpoint's merge (`merge.rs`) on a deep tree: batches of up to thousands of
    /// puts and deletes over 20,000 keys (sweeps that empty whole leaves among them), each
    /// checkpointed, leave the tree equal to the model, `check` clean (order, ranges, equal
    /// leaf depth, every page accounted for), and the pages in use within a factor of the
    /// live data.
    #[test]
    fn checkpoint_merges_keep_a_deep_tree_sound(
        batches in proptest::collection::vec(proptest::collection::vec(batch_op(), 1..1500), 1..8)
    ) {
        let path = TempPath::new("merge-model");
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open(&path.0, options()).await.unwrap();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for (b, batch) in batches.into_iter().enumerate() {
                let mut txn = store.write_txn().await.unwrap();
                for op in batch {
                    match op {
                        BatchOp::Put(i, len) => {
                            let val = v(i, len, b);
                            txn.put(&wide_key(i), &val).await.unwrap();
                            model.insert(wide_key(i), val);
                        }
                        BatchOp::Delete(i) => {
                            let existed = txn.delete(&wide_key(i)).await.unwrap();
                            assert_eq!(existed, model.remove(&wide_key(i)).is_some());
                        }
                        BatchOp::DeleteRange(from, n) => {
                            for i in from..from.saturating_add(n).min(20_000) {
                                let existed = txn.delete(&wide_key(i)).await.unwrap();
                                assert_eq!(existed, model.remove(&wide_key(i)).is_some());
                            }
                        }
                    }
                }
                txn.commit().await.unwrap();
                store.checkpoint().await.unwrap();
                let report = store.check().await.unwrap();
                assert!(report.ok(), "batch {b}: {report}");
                assert_eq!(report.log_commits, 0);
                verify(&store, &model).await;
                let live = report.data_pages + report.freelist_tree_pages + 2;
                assert!(
                    report.underfull_pages * 4 <= report.data_pages + 8,
                    "batch {b}: too many underfull pages\n{report}"
                );
                assert!(store.stats().page_count <= 4 * live + 64, "batch {b}: {report}");
            }
        });
    }
}
