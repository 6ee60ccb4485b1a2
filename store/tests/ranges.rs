//! Reverse and prefix ranges, and a write transaction's ranges, against a `BTreeMap` model,
//! with keys in both layers: a multi-level tree (checkpointed) and memtable versions over it
//! (overwrites, deletions that hide tree entries, new keys), values inline and in overflow
//! pages, and keys full of `0xFF` bytes (where a prefix has no upper bound). A proptest runs
//! random puts, deletes, checkpoints and write transactions and compares every kind of range
//! after each step.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

use common::TempPath;
use faultless_runtime::Runtime;
use faultless_store::{RangeStream, Store, StoreOptions};
use futures::StreamExt;
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Checkpoints only when asked, so what lies in the tree is decided by the test.
fn options() -> StoreOptions {
    StoreOptions::new().checkpoint_interval(Duration::MAX)
}

async fn collect(mut s: RangeStream) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(e) = s.next().await {
        let (k, v) = e.expect("range entry");
        out.push((k, v.to_vec()));
    }
    out
}

fn contains(b: &Bounds, k: &[u8]) -> bool {
    let above = match &b.0 {
        Bound::Included(s) => k >= s.as_slice(),
        Bound::Excluded(s) => k > s.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match &b.1 {
        Bound::Included(e) => k <= e.as_slice(),
        Bound::Excluded(e) => k < e.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

/// The model's entries in `b` (by filtering, so inverted bounds are simply empty).
fn model_range(m: &Model, b: &Bounds, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = m
        .iter()
        .filter(|(k, _)| contains(b, k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        v.reverse();
    }
    v
}

fn model_prefix(m: &Model, p: &[u8], reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = m
        .iter()
        .filter(|(k, _)| k.starts_with(p))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        v.reverse();
    }
    v
}

/// Every combination of included / excluded / no bound on each side, over `points`.
fn all_bounds(points: &[Vec<u8>]) -> Vec<Bounds> {
    let mut sides = vec![Bound::Unbounded];
    for p in points {
        sides.push(Bound::Included(p.clone()));
        sides.push(Bound::Excluded(p.clone()));
    }
    let mut out = Vec::new();
    for s in &sides {
        for e in &sides {
            out.push((s.clone(), e.clone()));
        }
    }
    out
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

fn value(i: u64, round: u64) -> Vec<u8> {
    // Every 97th value is bigger than a page: an overflow run.
    let len = if i.is_multiple_of(97) { 5000 } else { 40 };
    let mut v = format!("v{i}-{round}-").into_bytes();
    v.resize(len, (i % 251) as u8);
    v
}

/// Keys at the edges of the key space, for the 0xFF-prefix cases.
fn edge_keys() -> Vec<Vec<u8>> {
    vec![
        vec![0x00],
        vec![0xFE],
        vec![0xFE, 0xFF],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF],
        vec![0xFF, 0xFF, 0xFF],
        b"k\xFF".to_vec(),
        b"k\xFF\xFF".to_vec(),
        b"l".to_vec(),
    ]
}

/// A store with 1,500 keys checkpointed into the tree (several levels), then a third of them
/// overwritten or deleted, and new keys added, in the memtable only.
async fn layered(path: &TempPath) -> (Store, Model) {
    let store = Store::open(&path.0, options()).await.unwrap();
    let mut model = Model::new();
    let mut txn = store.write_txn().await.unwrap();
    for i in 0..1500u64 {
        txn.put(&key(i * 2), &value(i * 2, 0)).await.unwrap();
        model.insert(key(i * 2), value(i * 2, 0));
    }
    for k in edge_keys() {
        txn.put(&k, b"edge").await.unwrap();
        model.insert(k, b"edge".to_vec());
    }
    txn.commit().await.unwrap();
    store.checkpoint().await.unwrap();
    assert_eq!(
        store.stats().memtable_keys,
        0,
        "everything is in the tree now"
    );
    let mut txn = store.write_txn().await.unwrap();
    for i in 0..1500u64 {
        let k = key(i * 2);
        match i % 6 {
            0 => {
                txn.put(&k, &value(i * 2, 1)).await.unwrap();
                model.insert(k, value(i * 2, 1));
            }
            1 => {
                assert!(txn.delete(&k).await.unwrap());
                model.remove(&k);
            }
            2 => {
                // A new key between two tree keys.
                txn.put(&key(i * 2 + 1), &value(i * 2 + 1, 1))
                    .await
                    .unwrap();
                model.insert(key(i * 2 + 1), value(i * 2 + 1, 1));
            }
            _ => {}
        }
    }
    // Delete a whole run of tree keys (a leaf's worth or more): the memtable hides them all.
    for i in 500..600u64 {
        if txn.delete(&key(i * 2)).await.unwrap() {
            model.remove(&key(i * 2));
        }
    }
    assert!(txn.delete(&[0xFF, 0xFF]).await.unwrap());
    model.remove(&vec![0xFF, 0xFF]);
    txn.put(&[0xFF, 0xFF, 0x01], b"new").await.unwrap();
    model.insert(vec![0xFF, 0xFF, 0x01], b"new".to_vec());
    txn.commit().await.unwrap();
    assert!(
        store.stats().memtable_keys > 500,
        "the memtable shadows the tree"
    );
    (store, model)
}

fn points() -> Vec<Vec<u8>> {
    vec![
        key(0),           // first tree key, rewritten
        key(2),           // deleted
        key(5),           // memtable-only key
        key(1001),        // missing, inside the deleted run
        key(2999),        // missing
        key(2998),        // last numbered key
        b"k".to_vec(),    // below all numbered keys
        vec![0xFF],       // edge
        vec![0xFF, 0xFF], // deleted edge key
    ]
}

#[test]
fn reverse_and_forward_ranges_match_the_model_over_tree_and_memtable() {
    let path = TempPath::new("ranges-rev");
    Runtime::new().unwrap().block_on(async {
        let (store, model) = layered(&path).await;
        let txn = store.read_txn();
        let mut nonempty = 0;
        for b in all_bounds(&points()) {
            for reverse in [false, true] {
                let got = if reverse {
                    collect(txn.range_rev(b.clone())).await
                } else {
                    collect(txn.range(b.clone())).await
                };
                let want = model_range(&model, &b, reverse);
                assert_eq!(got.len(), want.len(), "bounds {b:?} reverse {reverse}");
                assert!(got == want, "bounds {b:?} reverse {reverse}");
                nonempty += usize::from(!want.is_empty());
            }
        }
        assert!(nonempty > 50, "most ranges hold entries");
        // The whole store backwards, and the first entries of a reverse scan from the top.
        let all = collect(store.range_rev(..)).await;
        assert_eq!(all.len() as u64, store.len());
        let mut top = store.range_rev(..key(2000));
        let first = top.next().await.unwrap().unwrap();
        let want = model.range(..key(2000)).next_back().unwrap();
        assert_eq!((&first.0, &*first.1), (want.0, &want.1[..]));
        store.close().await.unwrap();
    });
}

#[test]
fn prefixes_match_the_model_including_ff_prefixes() {
    let path = TempPath::new("ranges-prefix");
    Runtime::new().unwrap().block_on(async {
        let (store, model) = layered(&path).await;
        let txn = store.read_txn();
        let prefixes: Vec<Vec<u8>> = vec![
            vec![],
            b"k".to_vec(),
            b"k0".to_vec(),
            b"k02".to_vec(),
            b"k0100".to_vec(), // in the deleted run: memtable keys only
            b"k02998".to_vec(),
            b"k\xFF".to_vec(),
            b"x".to_vec(),
            vec![0xFE],
            vec![0xFF],
            vec![0xFF, 0xFF],
            vec![0xFF, 0xFF, 0xFF],
            vec![0xFF, 0xFF, 0xFF, 0xFF],
        ];
        for p in &prefixes {
            let got = collect(txn.prefix(p)).await;
            assert!(got == model_prefix(&model, p, false), "prefix {p:x?}");
            let got = collect(txn.prefix_rev(p)).await;
            assert!(
                got == model_prefix(&model, p, true),
                "prefix {p:x?} reversed"
            );
        }
        assert_eq!(collect(txn.prefix(&[0xFF])).await.len(), 4);
        store.close().await.unwrap();
    });
}

#[test]
fn a_snapshot_range_ignores_later_commits_and_checkpoints() {
    let path = TempPath::new("ranges-snap");
    Runtime::new().unwrap().block_on(async {
        let (store, model) = layered(&path).await;
        let old = store.read_txn();
        let mut fwd = old.range(..);
        let mut rev = old.range_rev(..);
        // Half-consume both, then rewrite everything and checkpoint under them.
        let mut got_f = Vec::new();
        let mut got_r = Vec::new();
        for _ in 0..500 {
            let (k, v) = fwd.next().await.unwrap().unwrap();
            got_f.push((k, v.to_vec()));
            let (k, v) = rev.next().await.unwrap().unwrap();
            got_r.push((k, v.to_vec()));
        }
        let mut txn = store.write_txn().await.unwrap();
        for k in model.keys().step_by(3) {
            txn.delete(k).await.unwrap();
        }
        for i in 0..1500u64 {
            txn.put(&key(i * 2 + 1), b"later").await.unwrap();
        }
        txn.commit().await.unwrap();
        store.checkpoint().await.unwrap();
        got_f.extend(collect(fwd).await);
        got_r.extend(collect(rev).await);
        let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(got_f == want);
        let mut want_r = want;
        want_r.reverse();
        assert!(got_r == want_r);
        // A new snapshot sees the later commit.
        let now = collect(store.prefix(b"k")).await;
        assert!(now.iter().any(|(_, v)| v == b"later"));
        store.close().await.unwrap();
    });
}

#[test]
fn write_txn_range_sees_its_own_writes_and_nothing_later() {
    let path = TempPath::new("ranges-txn");
    Runtime::new().unwrap().block_on(async {
        let (store, model) = layered(&path).await;
        let mut mine = model.clone();
        let mut txn = store.write_txn().await.unwrap();
        // Own puts over tree keys, over memtable keys, new keys; own deletes of both; a key
        // put then deleted; a key deleted then put again.
        for (i, k) in model.keys().enumerate().take(1000) {
            match i % 5 {
                0 => {
                    txn.put(k, b"mine").await.unwrap();
                    mine.insert(k.clone(), b"mine".to_vec());
                }
                1 => {
                    txn.delete(k).await.unwrap();
                    mine.remove(k);
                }
                2 => {
                    txn.delete(k).await.unwrap();
                    txn.put(k, b"again").await.unwrap();
                    mine.insert(k.clone(), b"again".to_vec());
                }
                _ => {}
            }
        }
        txn.put(b"k00003x", b"new").await.unwrap();
        txn.delete(b"k00003x").await.unwrap();
        txn.put(&[0xFF, 0xFF, 0xFF, 0xFF], b"top").await.unwrap();
        mine.insert(vec![0xFF, 0xFF, 0xFF, 0xFF], b"top".to_vec());
        for b in all_bounds(&points()) {
            assert!(collect(txn.range(b.clone())).await == model_range(&mine, &b, false));
            assert!(collect(txn.range_rev(b.clone())).await == model_range(&mine, &b, true));
        }
        for p in [&b"k"[..], b"k01", &[0xFF], &[0xFF, 0xFF, 0xFF]] {
            assert!(collect(txn.prefix(p)).await == model_prefix(&mine, p, false));
        }
        // Others do not see the uncommitted writes; the base snapshot has none of them.
        assert!(
            collect(store.range(..)).await
                == model_range(&model, &(Bound::Unbounded, Bound::Unbounded), false)
        );
        assert!(
            collect(txn.read_txn().range(..)).await
                == model_range(&model, &(Bound::Unbounded, Bound::Unbounded), false)
        );
        // A stream taken now shows the transaction as it is now: not its later writes, nor
        // the commits after it, nor a checkpoint.
        let held = txn.range(..);
        let held_rev = txn.range_rev(..);
        txn.put(b"k00001y", b"after the call").await.unwrap();
        txn.commit().await.unwrap();
        let mut txn2 = store.write_txn().await.unwrap();
        for k in mine.keys().take(500) {
            txn2.delete(k).await.unwrap();
        }
        txn2.commit().await.unwrap();
        store.checkpoint().await.unwrap();
        let all = (Bound::Unbounded, Bound::Unbounded);
        assert!(collect(held).await == model_range(&mine, &all, false));
        assert!(collect(held_rev).await == model_range(&mine, &all, true));
        store.close().await.unwrap();
    });
}

#[test]
fn empty_and_inverted_bounds_yield_nothing_without_panicking() {
    let path = TempPath::new("ranges-empty");
    Runtime::new().unwrap().block_on(async {
        let (store, _model) = layered(&path).await;
        let txn = store.read_txn();
        let k = key(10);
        let cases: Vec<Bounds> = vec![
            (Bound::Excluded(k.clone()), Bound::Excluded(k.clone())),
            (Bound::Included(k.clone()), Bound::Excluded(k.clone())),
            (Bound::Excluded(k.clone()), Bound::Included(k.clone())),
            (Bound::Included(key(20)), Bound::Included(key(10))),
            (Bound::Excluded(key(20)), Bound::Excluded(key(10))),
        ];
        let wtxn = store.write_txn().await.unwrap();
        for b in cases {
            assert!(collect(txn.range(b.clone())).await.is_empty(), "{b:?}");
            assert!(collect(txn.range_rev(b.clone())).await.is_empty(), "{b:?}");
            assert!(collect(wtxn.range(b.clone())).await.is_empty(), "{b:?}");
            assert!(collect(wtxn.range_rev(b.clone())).await.is_empty(), "{b:?}");
        }
        // A single key, included on both sides.
        let one = collect(txn.range_rev(k.clone()..=k.clone())).await;
        assert_eq!(one.len(), 1);
        drop(wtxn);
        // An empty store.
        let path2 = TempPath::new("ranges-empty2");
        let empty = Store::open(&path2.0, options()).await.unwrap();
        assert!(collect(empty.range_rev(..)).await.is_empty());
        assert!(collect(empty.prefix(&[0xFF])).await.is_empty());
        empty.close().await.unwrap();
        store.close().await.unwrap();
    });
}

// ---- the property: random operations, every kind of range compared with the model ----

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, usize),
    Delete(Vec<u8>),
    Checkpoint,
    /// A write transaction of these writes (`None`: delete), checked, then committed or not.
    Txn(Vec<(Vec<u8>, Option<usize>)>, bool),
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        Just(0x00u8),
        Just(0x01),
        Just(0x61),
        Just(0xFE),
        Just(0xFF),
        any::<u8>()
    ];
    prop::collection::vec(byte, 1..4)
}

fn value_len() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..64, 1 => 3000usize..9000]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (small_key(), value_len()).prop_map(|(k, l)| Op::Put(k, l)),
        4 => small_key().prop_map(Op::Delete),
        1 => Just(Op::Checkpoint),
        2 => (
            prop::collection::vec((small_key(), prop::option::of(value_len())), 0..12),
            any::<bool>()
        )
            .prop_map(|(w, c)| Op::Txn(w, c)),
    ]
}

fn bounds() -> impl Strategy<Value = Bounds> {
    let side = prop_oneof![
        1 => Just(Bound::Unbounded),
        3 => small_key().prop_map(Bound::Included),
        3 => small_key().prop_map(Bound::Excluded),
    ];
    (side.clone(), side)
}

fn val(k: &[u8], len: usize, n: usize) -> Vec<u8> {
    let mut v = k.to_vec();
    v.extend_from_slice(&(n as u64).to_le_bytes());
    v.resize(len.max(v.len()), n as u8);
    v
}

async fn check_all(
    store: &Store,
    model: &Model,
    b: &Bounds,
    prefix: &[u8],
) -> std::result::Result<(), TestCaseError> {
    let txn = store.read_txn();
    prop_assert!(collect(txn.range(b.clone())).await == model_range(model, b, false));
    prop_assert!(collect(txn.range_rev(b.clone())).await == model_range(model, b, true));
    prop_assert!(collect(txn.prefix(prefix)).await == model_prefix(model, prefix, false));
    prop_assert!(collect(txn.prefix_rev(prefix)).await == model_prefix(model, prefix, true));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn ranges_match_the_model(
        seed in prop::collection::vec(small_key(), 200..400),
        ops in prop::collection::vec((op(), bounds(), prop::collection::vec(any::<u8>(), 0..3)), 1..30),
    ) {
        let path = TempPath::new("ranges-prop");
        Runtime::new().unwrap().block_on(async {
            let store = Store::open(&path.0, options()).await.unwrap();
            let mut model = Model::new();
            // A tree of some hundreds of keys (several leaves) under the random steps.
            let mut txn = store.write_txn().await.unwrap();
            for (n, k) in seed.iter().enumerate() {
                let v = val(k, 40, n);
                txn.put(k, &v).await.unwrap();
                model.insert(k.clone(), v);
            }
            txn.commit().await.unwrap();
            store.checkpoint().await.unwrap();
            for (n, (op, b, prefix)) in ops.into_iter().enumerate() {
                match op {
                    Op::Put(k, len) => {
                        let v = val(&k, len, n);
                        store.put(&k, &v).await.unwrap();
                        model.insert(k, v);
                    }
                    Op::Delete(k) => {
                        prop_assert_eq!(store.delete(&k).await.unwrap(), model.remove(&k).is_some());
                    }
                    Op::Checkpoint => store.checkpoint().await.unwrap(),
                    Op::Txn(writes, commit) => {
                        let mut txn = store.write_txn().await.unwrap();
                        let mut mine = model.clone();
                        for (k, w) in writes {
                            match w {
                                Some(len) => {
                                    let v = val(&k, len, n + 1000);
                                    txn.put(&k, &v).await.unwrap();
                                    mine.insert(k, v);
                                }
                                None => {
                                    txn.delete(&k).await.unwrap();
                                    mine.remove(&k);
                                }
                            }
                        }
                        prop_assert!(collect(txn.range(b.clone())).await == model_range(&mine, &b, false));
                        prop_assert!(collect(txn.range_rev(b.clone())).await == model_range(&mine, &b, true));
                        prop_assert!(collect(txn.prefix(&prefix)).await == model_prefix(&mine, &prefix, false));
                        if commit {
                            txn.commit().await.unwrap();
                            model = mine;
                        }
                    }
                }
                check_all(&store, &model, &b, &prefix).await?;
            }
            store.close().await.unwrap();
            Ok(())
        })?;
    }
}
