//! Hot random gets: the store against LMDB (heed) and redb, side by side, on the same
//! 100,000 keys with every page resident. (`faultless bench store` measures cold gets and
//! durable commits too.)
//!
//! ```text
//! cargo bench --bench store
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultless::store::{Store, StoreOptions};
use heed::types::Bytes;
use redb::{ReadableDatabase, TableDefinition};

const N: u64 = 100_000;
const BATCH: u64 = 1000;
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

fn keys() -> Vec<Vec<u8>> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..BATCH)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            key(x % N)
        })
        .collect()
}

fn hot_gets(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("faultless-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lmdb")).unwrap();
    let value = vec![b'v'; 100];
    let probe = keys();
    let mut g = c.benchmark_group("store_hot_get");
    g.throughput(Throughput::Elements(BATCH));

    let rt = faultless::Runtime::new().unwrap();
    let store = rt.block_on(async {
        let s = Store::open(dir.join("f.db"), StoreOptions::new())
            .await
            .unwrap();
        s.load((0..N).map(|i| Ok((key(i), value.clone()))), |_| {})
            .await
            .unwrap();
        s
    });
    let txn = store.read_txn();
    g.bench_function("faultless", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut n = 0;
                for k in &probe {
                    n += txn.get(k).await.unwrap().unwrap().len();
                }
                n
            })
        })
    });

    // SAFETY: a fresh environment only this benchmark uses.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(1 << 30)
            .open(dir.join("lmdb"))
            .unwrap()
    };
    let mut w = env.write_txn().unwrap();
    let db: heed::Database<Bytes, Bytes> = env.create_database(&mut w, None).unwrap();
    for i in 0..N {
        db.put(&mut w, &key(i), &value).unwrap();
    }
    w.commit().unwrap();
    let r = env.read_txn().unwrap();
    g.bench_function("lmdb", |b| {
        b.iter(|| {
            let mut n = 0;
            for k in &probe {
                n += db.get(&r, k).unwrap().unwrap().len();
            }
            n
        })
    });

    let rdb = redb::Database::create(dir.join("r.db")).unwrap();
    let w = rdb.begin_write().unwrap();
    {
        let mut t = w.open_table(TABLE).unwrap();
        for i in 0..N {
            t.insert(key(i).as_slice(), value.as_slice()).unwrap();
        }
    }
    w.commit().unwrap();
    let rr = rdb.begin_read().unwrap();
    let table = rr.open_table(TABLE).unwrap();
    g.bench_function("redb", |b| {
        b.iter(|| {
            let mut n = 0;
            for k in &probe {
                n += table.get(k.as_slice()).unwrap().unwrap().value().len();
            }
            n
        })
    });
    g.finish();
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = hot_gets
}
criterion_main!(benches);
