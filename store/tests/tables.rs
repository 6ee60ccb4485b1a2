//! Named tables: several keyspaces in one store. Two tables and the default keyspace hold the
//! same user keys and never see each other's (get, ranges both ways, prefixes, in snapshots
//! and in the write transaction); tables are created, listed, deleted and created again
//! empty; they survive close, checkpoints and a reopen that replays the log; bad names and
//! keys get clear errors; the default keyspace may not write into the tables' region; an
//! aborted transaction leaves nothing. A proptest runs random table operations (tables
//! created, written, deleted; checkpoints; reopens; aborted transactions) against a
//! `BTreeMap` per table and checks every table, and the default keyspace, after each step.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

use common::TempPath;
use faultless_runtime::Runtime;
use faultless_store::{
    Error, RangeStream, ReadTxn, Store, StoreOptions, MAX_KEY_LEN, MAX_TABLE_KEY_LEN,
    MAX_TABLE_NAME_LEN, RESERVED_PREFIX,
};
use futures::StreamExt;
use proptest::prelude::*;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Checkpoints only when asked.
fn options() -> StoreOptions {
    StoreOptions::new().checkpoint_interval(Duration::MAX)
}

async fn collect(mut s: RangeStream) -> Entries {
    let mut out = Vec::new();
    while let Some(e) = s.next().await {
        let (k, v) = e.expect("range entry");
        out.push((k, v.to_vec()));
    }
    out
}

/// The same user keys everywhere, with values that say where they were written.
const KEYS: [&[u8]; 6] = [b"a", b"b", b"b1", b"c", &[0xFF], &[0xFF, 0xFF]];

async fn fill(store: &Store) {
    let mut txn = store.write_txn().await.unwrap();
    for (where_, k) in ["t1", "t2"]
        .iter()
        .flat_map(|t| KEYS.iter().map(move |k| (*t, *k)))
    {
        let v = [where_.as_bytes(), b":", k].concat();
        txn.table(where_).await.unwrap().put(k, &v).await.unwrap();
    }
    for k in KEYS {
        txn.put(k, &[b"default:", k].concat()).await.unwrap();
    }
    txn.commit().await.unwrap();
}

fn expected(where_: &str, keys: &[&[u8]]) -> Entries {
    keys.iter()
        .map(|k| (k.to_vec(), [where_.as_bytes(), b":", k].concat()))
        .collect()
}

/// Every kind of read on both tables and the default keyspace of `snap`.
async fn check_isolated(snap: &ReadTxn) {
    for t in ["t1", "t2"] {
        let table = snap.table(t).await.unwrap().expect("table exists");
        assert_eq!(table.name(), t);
        for k in KEYS {
            let v = table.get(k).await.unwrap().expect("key in table");
            assert_eq!(&*v, &[t.as_bytes(), b":", k].concat()[..]);
        }
        assert!(table.get(b"zz").await.unwrap().is_none());
        assert_eq!(collect(table.range(..)).await, expected(t, &KEYS));
        let mut rev = expected(t, &KEYS);
        rev.reverse();
        assert_eq!(collect(table.range_rev(..)).await, rev);
        assert_eq!(
            collect(table.range(b"b".to_vec()..=b"c".to_vec())).await,
            expected(t, &[b"b", b"b1", b"c"])
        );
        assert_eq!(
            collect(table.range_rev((
                Bound::Excluded(b"a".to_vec()),
                Bound::Excluded(b"c".to_vec())
            )))
            .await,
            expected(t, &[b"b1", b"b"])
        );
        assert_eq!(
            collect(table.prefix(b"b")).await,
            expected(t, &[b"b", b"b1"])
        );
        // A prefix of 0xFF bytes runs to the end of the table, never into the next one.
        assert_eq!(
            collect(table.prefix(&[0xFF])).await,
            expected(t, &[&[0xFF], &[0xFF, 0xFF]])
        );
        assert_eq!(
            collect(table.prefix_rev(&[0xFF, 0xFF])).await,
            expected(t, &[&[0xFF, 0xFF]])
        );
        assert_eq!(collect(table.prefix(b"")).await.len(), KEYS.len());
    }
    // The default keyspace sees its own keys only, however wide the range.
    assert_eq!(collect(snap.range(..)).await, expected("default", &KEYS));
    assert_eq!(
        collect(snap.prefix(&[0xFF])).await,
        expected("default", &[&[0xFF], &[0xFF, 0xFF]])
    );
    let mut rev = expected("default", &KEYS);
    rev.reverse();
    assert_eq!(collect(snap.range_rev(..)).await, rev);
    assert_eq!(collect(snap.prefix_rev(b"")).await, rev);
    assert_eq!(&*snap.get(b"a").await.unwrap().unwrap(), b"default:a");
}

#[test]
fn tables_and_the_default_keyspace_never_see_each_other() {
    let path = TempPath::new("tables-isolated");
    Runtime::new().unwrap().block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        fill(&store).await;
        check_isolated(&store.read_txn()).await; // from the memtable
                                                 // The write transaction sees the same, and its own writes, per table.
        let mut txn = store.write_txn().await.unwrap();
        let mut t1 = txn.table("t1").await.unwrap();
        t1.put(b"d", b"t1:d").await.unwrap();
        assert_eq!(t1.get(b"d").await.unwrap().as_deref(), Some(&b"t1:d"[..]));
        assert_eq!(collect(t1.prefix(b"d")).await, expected("t1", &[b"d"]));
        assert_eq!(
            collect(t1.range_rev(b"c".to_vec()..)).await,
            expected("t1", &[&[0xFF, 0xFF], &[0xFF], b"d", b"c"])
        );
        let t2 = txn.open_table("t2").await.unwrap().unwrap();
        assert_eq!(t2.get(b"d").await.unwrap(), None);
        assert_eq!(collect(t2.range(..)).await, expected("t2", &KEYS));
        assert_eq!(txn.get(b"d").await.unwrap(), None);
        assert_eq!(collect(txn.range(..)).await, expected("default", &KEYS));
        assert_eq!(collect(txn.range_rev(..)).await.len(), KEYS.len());
        drop(txn);
        store.checkpoint().await.unwrap();
        check_isolated(&store.read_txn()).await; // from the tree
                                                 // The store's count is every entry: 3 x 6 keys, two catalog entries, the id counter.
        assert_eq!(store.len(), 3 * KEYS.len() as u64 + 3);
        store.close().await.unwrap();
    });
}

#[test]
fn tables_are_created_listed_deleted_and_survive_reopens() {
    let path = TempPath::new("tables-lifecycle");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        assert!(store.read_txn().table_names().await.unwrap().is_empty());
        fill(&store).await;
        let mut txn = store.write_txn().await.unwrap();
        assert!(txn.open_table("t3").await.unwrap().is_none());
        txn.table("t3").await.unwrap(); // created empty
        assert_eq!(txn.table_names().await.unwrap(), ["t1", "t2", "t3"]);
        txn.commit().await.unwrap();
        let snap = store.read_txn();
        assert_eq!(snap.table_names().await.unwrap(), ["t1", "t2", "t3"]);
        assert!(collect(snap.table("t3").await.unwrap().unwrap().range(..))
            .await
            .is_empty());
        store.close().await.unwrap(); // checkpointed
    });
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        assert_eq!(store.log_recovery().replayed_commits, 0);
        let snap = store.read_txn();
        assert_eq!(snap.table_names().await.unwrap(), ["t1", "t2", "t3"]);
        check_isolated(&snap).await;
        // Delete t1 (its keys in the tree, one more in the memtable, one in the transaction).
        store
            .write_txn()
            .await
            .map(|mut t| async move {
                t.table("t1").await.unwrap().put(b"e", b"x").await.unwrap();
                t.commit().await.unwrap();
            })
            .unwrap()
            .await;
        let mut txn = store.write_txn().await.unwrap();
        txn.table("t1")
            .await
            .unwrap()
            .put(b"f", b"y")
            .await
            .unwrap();
        assert!(txn.delete_table("t1").await.unwrap());
        assert!(!txn.delete_table("t1").await.unwrap());
        assert!(!txn.delete_table("never").await.unwrap());
        assert_eq!(txn.table_names().await.unwrap(), ["t2", "t3"]);
        txn.commit().await.unwrap();
        // A snapshot from before still sees t1 whole.
        let old_t1 = snap.table("t1").await.unwrap().unwrap();
        assert_eq!(collect(old_t1.range(..)).await, expected("t1", &KEYS));
        let now = store.read_txn();
        assert!(now.table("t1").await.unwrap().is_none());
        assert_eq!(
            store.len(),
            2 * KEYS.len() as u64 + 3,
            "t1's entries and catalog entry gone"
        );
        drop((snap, old_t1, now));
        // Re-created: empty, whatever the old one held.
        let mut txn = store.write_txn().await.unwrap();
        let t1 = txn.table("t1").await.unwrap();
        assert!(collect(t1.range(..)).await.is_empty());
        assert_eq!(t1.get(b"a").await.unwrap(), None);
        txn.table("t1")
            .await
            .unwrap()
            .put(b"new", b"1")
            .await
            .unwrap();
        txn.commit().await.unwrap();
        drop(store); // no close, no checkpoint: the next open replays the log
    });
    rt.block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        assert!(store.log_recovery().replayed_commits >= 2);
        let snap = store.read_txn();
        assert_eq!(snap.table_names().await.unwrap(), ["t1", "t2", "t3"]);
        let t1 = snap.table("t1").await.unwrap().unwrap();
        assert_eq!(
            collect(t1.range(..)).await,
            [(b"new".to_vec(), b"1".to_vec())]
        );
        let t2 = snap.table("t2").await.unwrap().unwrap();
        assert_eq!(collect(t2.range(..)).await, expected("t2", &KEYS));
        assert_eq!(collect(snap.range(..)).await, expected("default", &KEYS));
        store.checkpoint().await.unwrap();
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.keys, store.len(), "{report:?}");
        store.close().await.unwrap();
    });
}

#[test]
fn bad_names_and_keys_get_clear_errors() {
    let path = TempPath::new("tables-errors");
    Runtime::new().unwrap().block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        let long_name = "n".repeat(MAX_TABLE_NAME_LEN + 1);
        for name in ["", long_name.as_str()] {
            let e = txn.table(name).await.err().expect("bad name refused");
            assert!(matches!(e, Error::BadInput(_)), "{e}");
            assert!(e.to_string().contains("names must be 1 to 64 bytes"), "{e}");
            assert!(store.read_txn().table(name).await.is_err());
        }
        let ok_name = "n".repeat(MAX_TABLE_NAME_LEN);
        let mut t = txn.table(&ok_name).await.unwrap();
        assert_eq!(MAX_TABLE_KEY_LEN, MAX_KEY_LEN - 9);
        t.put(&vec![7; MAX_TABLE_KEY_LEN], b"longest")
            .await
            .unwrap();
        for bad in [vec![], vec![7; MAX_TABLE_KEY_LEN + 1]] {
            let e = t.put(&bad, b"v").await.unwrap_err();
            assert!(e.to_string().contains("must be 1 to 503 bytes"), "{e}");
            assert!(t.get(&bad).await.is_err());
            assert!(t.delete(&bad).await.is_err());
        }
        // The default keyspace may not reach into the tables' region, in any API.
        let forged = [RESERVED_PREFIX, &[0, 0, 0, 0], b"a"].concat();
        for e in [
            txn.put(&forged, b"v").await.unwrap_err(),
            txn.put_known(&forged, b"v", false).unwrap_err(),
            txn.delete(&forged).await.unwrap_err(),
            txn.get(&forged).await.unwrap_err(),
        ] {
            assert!(matches!(e, Error::BadInput(_)), "{e}");
            assert!(e.to_string().contains("reserved for named tables"), "{e}");
        }
        txn.commit().await.unwrap();
        assert!(store.put(RESERVED_PREFIX, b"v").await.is_err());
        assert!(store.delete(&forged).await.is_err());
        assert!(store.get(&forged).await.is_err());
        assert!(store.read_txn().get(&forged).await.is_err());
        // Keys next to the region are ordinary keys.
        for k in [
            &RESERVED_PREFIX[..4],
            &[0xFF, 0xFF, b't', b'b', b'm'],
            &[0xFF, 0xFF, 0xFF],
        ] {
            store.put(k, b"edge").await.unwrap();
        }
        assert_eq!(collect(store.prefix(&[0xFF])).await.len(), 3);
        let t = store.read_txn().table(&ok_name).await.unwrap().unwrap();
        assert_eq!(collect(t.range(..)).await.len(), 1);
        store.close().await.unwrap();
    });
}

#[test]
fn an_aborted_transaction_leaves_no_table_behind() {
    let path = TempPath::new("tables-abort");
    Runtime::new().unwrap().block_on(async {
        let store = Store::open(&path.0, options()).await.unwrap();
        fill(&store).await;
        let before = store.len();
        let mut txn = store.write_txn().await.unwrap();
        txn.table("fresh")
            .await
            .unwrap()
            .put(b"k", b"v")
            .await
            .unwrap();
        txn.table("t2")
            .await
            .unwrap()
            .put(b"a", b"changed")
            .await
            .unwrap();
        assert!(txn.delete_table("t1").await.unwrap());
        txn.abort();
        let mut txn = store.write_txn().await.unwrap();
        txn.table("other")
            .await
            .unwrap()
            .put(b"k", b"v")
            .await
            .unwrap();
        drop(txn); // the same as abort
        assert_eq!(store.len(), before);
        let snap = store.read_txn();
        assert_eq!(snap.table_names().await.unwrap(), ["t1", "t2"]);
        check_isolated(&snap).await;
        let mut txn = store.write_txn().await.unwrap();
        txn.table("fresh").await.unwrap();
        txn.commit().await.unwrap();
        let fresh = store.read_txn().table("fresh").await.unwrap().unwrap();
        assert!(collect(fresh.range(..)).await.is_empty());
        store.close().await.unwrap();
    });
}

/// One table per name, and the default keyspace under `None`.
type Model = BTreeMap<Option<String>, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Clone, Debug)]
enum Op {
    /// A write transaction of these writes, committed or not.
    Txn(Vec<Write>, bool),
    Checkpoint,
    /// Drop the store (no close: the log is replayed) and open it again.
    Reopen,
}

#[derive(Clone, Debug)]
enum Write {
    Put(Option<usize>, Vec<u8>, usize),
    Delete(Option<usize>, Vec<u8>),
    DeleteTable(usize),
}

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![Just(0x00u8), Just(0x61), Just(0xFF), any::<u8>()];
    prop::collection::vec(byte, 1..3)
}

fn write() -> impl Strategy<Value = Write> {
    let table = prop::option::of(0..NAMES.len());
    prop_oneof![
        6 => (table.clone(), small_key(), prop_oneof![8 => 0usize..40, 1 => 3000usize..6000])
            .prop_map(|(t, k, l)| Write::Put(t, k, l)),
        3 => (table, small_key()).prop_map(|(t, k)| Write::Delete(t, k)),
        1 => (0..NAMES.len()).prop_map(Write::DeleteTable),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop::collection::vec(write(), 1..10), prop::bool::weighted(0.8))
            .prop_map(|(w, c)| Op::Txn(w, c)),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

fn value(key: &[u8], len: usize) -> Vec<u8> {
    let mut v = key.to_vec();
    v.resize(len.max(v.len()), 0x5A);
    v
}

/// Every table and the default keyspace of the store against the model.
async fn check_model(store: &Store, model: &Model, created: bool) {
    let snap = store.read_txn();
    let names: Vec<String> = model.keys().flatten().cloned().collect();
    assert_eq!(snap.table_names().await.unwrap(), names);
    for (name, entries) in model {
        let want: Entries = entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut want_rev = want.clone();
        want_rev.reverse();
        let within: Entries = want
            .iter()
            .filter(|(k, _)| k.first() == Some(&0xFF))
            .cloned()
            .collect();
        let (all, rev, ff) = match name {
            None => (
                collect(snap.range(..)).await,
                collect(snap.range_rev(..)).await,
                collect(snap.prefix(&[0xFF])).await,
            ),
            Some(n) => {
                let t = snap.table(n).await.unwrap().expect("table in model");
                for (k, v) in entries {
                    assert_eq!(&*t.get(k).await.unwrap().unwrap(), &v[..]);
                }
                (
                    collect(t.range(..)).await,
                    collect(t.range_rev(..)).await,
                    collect(t.prefix(&[0xFF])).await,
                )
            }
        };
        assert_eq!(all, want, "{name:?}");
        assert_eq!(rev, want_rev, "{name:?}");
        assert_eq!(ff, within, "{name:?}");
    }
    for n in NAMES {
        if !model.contains_key(&Some(n.to_string())) {
            assert!(snap.table(n).await.unwrap().is_none(), "{n}");
        }
    }
    // The store's count: every entry, a catalog entry per table, and the id counter once a
    // table was ever created.
    let entries: u64 = model.values().map(|m| m.len() as u64).sum();
    assert_eq!(
        store.len(),
        entries + names.len() as u64 + u64::from(created)
    );
}

async fn apply(
    store: &Store,
    model: &mut Model,
    created: &mut bool,
    writes: &[Write],
    commit: bool,
) {
    let mut txn = store.write_txn().await.unwrap();
    let mut mine = model.clone();
    for w in writes {
        match w {
            Write::Put(t, k, len) => {
                let v = value(k, *len);
                match t {
                    None => txn.put(k, &v).await.unwrap(),
                    Some(t) => txn
                        .table(NAMES[*t])
                        .await
                        .unwrap()
                        .put(k, &v)
                        .await
                        .unwrap(),
                }
                mine.entry(t.map(|t| NAMES[t].to_string()))
                    .or_default()
                    .insert(k.clone(), v);
            }
            Write::Delete(t, k) => {
                let name = t.map(|t| NAMES[t].to_string());
                let had = mine.get_mut(&name).and_then(|m| m.remove(k)).is_some();
                let did = match t {
                    None => txn.delete(k).await.unwrap(),
                    Some(t) => match txn.open_table(NAMES[*t]).await.unwrap() {
                        Some(mut table) => table.delete(k).await.unwrap(),
                        None => false,
                    },
                };
                assert_eq!(did, had, "delete {k:02X?} in {name:?}");
            }
            Write::DeleteTable(t) => {
                let had = mine.remove(&Some(NAMES[*t].to_string())).is_some();
                assert_eq!(txn.delete_table(NAMES[*t]).await.unwrap(), had);
            }
        }
    }
    mine.entry(None).or_default();
    if commit {
        txn.commit().await.unwrap();
        *model = mine;
        *created |= writes
            .iter()
            .any(|w| matches!(w, Write::Put(Some(_), _, _)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn tables_match_a_model(ops in prop::collection::vec(op(), 1..24)) {
        let path = TempPath::new("tables-model");
        Runtime::new().unwrap().block_on(async {
            let mut store = Store::open(&path.0, options()).await.unwrap();
            let mut model = Model::new();
            let mut created = false;
            model.insert(None, BTreeMap::new());
            for op in &ops {
                match op {
                    Op::Txn(writes, commit) => apply(&store, &mut model, &mut created, writes, *commit).await,
                    Op::Checkpoint => store.checkpoint().await.unwrap(),
                    Op::Reopen => {
                        drop(store);
                        store = Store::open(&path.0, options()).await.unwrap();
                    }
                }
                check_model(&store, &model, created).await;
            }
            store.checkpoint().await.unwrap();
            let report = store.check().await.unwrap();
            assert!(report.ok(), "{report:?}");
            store.close().await.unwrap();
        });
    }
}
