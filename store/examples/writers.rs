//! Concurrent writers against a loaded store: puts/s, how many commits each log write
//! carried, and what checkpoints cost meanwhile. A tool for tuning the write path
//! (`faultless bench store` is the benchmark of record, against LMDB).
//!
//! ```text
//! cargo run --release -p faultless-store --example writers -- \
//!     [writers=64] [seconds=3] [keys=1000000] [durability=always] [interval-ms=1000] \
//!     [dir=/tmp] [keyspace=keys] [cold=0]
//! ```
//!
//! `keys` are loaded first; the writers put random keys of `0..keyspace` (default `keys`;
//! with `keys` 0 and `keyspace` 1000000 this is redis-benchmark's `-r 1000000` SET load on
//! an empty server). With `cold` 1 the store is closed after the load, its pages dropped
//! from the page cache, and reopened: the puts' lookups then read the tree from the disk
//! (beside their log writes: the report counts the puts staged before their lookups).

use std::time::{Duration, Instant};

use faultless_runtime::Runtime;
use faultless_store::{Durability, Store, StoreOptions};

fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let writers: u64 = arg(0, "64").parse().expect("writers");
    let seconds: f64 = arg(1, "3").parse().expect("seconds");
    let keys: u64 = arg(2, "1000000").parse().expect("keys");
    let durability: Durability = arg(3, "always").parse().expect("durability");
    let interval: u64 = arg(4, "1000").parse().expect("interval-ms");
    let dir = std::path::PathBuf::from(arg(5, "/tmp"));
    let keyspace: u64 = arg(6, &keys.to_string()).parse().expect("keyspace");
    let cold = arg(7, "0") == "1";
    let path = dir.join(format!("faultless-writers-{}.db", std::process::id()));
    let options = StoreOptions::new()
        .durability(durability)
        .checkpoint_interval(if interval == 0 {
            Duration::MAX
        } else {
            Duration::from_millis(interval)
        });
    let rt = Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open(&path, options.clone()).await.expect("open");
        let value = vec![b'v'; 100];
        let t = Instant::now();
        if keys > 0 {
            store
                .load((0..keys).map(|i| Ok((key(i), value.clone()))), |_| {})
                .await
                .expect("load");
        }
        eprintln!("loaded {keys} keys in {:.2}s", t.elapsed().as_secs_f64());
        let store = if cold {
            store.close().await.expect("close");
            drop_page_cache(&path);
            Store::open(&path, options).await.expect("reopen")
        } else {
            store
        };
        let before = store.stats();
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                let value = value.clone();
                faultless_runtime::spawn(async move {
                    let mut rng = w * 7919 + 1;
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        store.put(&key(rng % keyspace), &value).await.expect("put");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut puts = 0;
        for t in tasks {
            puts += t.await.expect("writer");
        }
        let secs = start.elapsed().as_secs_f64();
        let s = store.stats();
        let writes = s.log_writes - before.log_writes;
        println!(
            "{writers} writers, {durability}: {:.0} puts/s ({} staged before their lookups); {} log writes ({:.1} commits each), \
             {} log syncs, {} checkpoints (last {:?}, of which writing {:?}, {} keys), {} tree bytes",
            puts as f64 / secs,
            s.unresolved_puts - before.unresolved_puts,
            writes,
            puts as f64 / writes.max(1) as f64,
            s.log_syncs - before.log_syncs,
            s.checkpoints - before.checkpoints,
            s.last_checkpoint,
            s.last_checkpoint_write,
            s.last_checkpoint_keys,
            s.tree_bytes - before.tree_bytes,
        );
        drop(store);
    });
    let _ = std::fs::remove_file(&path);
    for slot in 0..3 {
        let _ = std::fs::remove_file(format!("{}-wal.{slot}", path.display()));
    }
}

/// Drops the file's pages from the page cache (no mapping of it is alive).
fn drop_page_cache(path: &std::path::Path) {
    let f = std::fs::File::open(path).expect("open the store file");
    // SAFETY: advice about our own descriptor's file; it changes no memory of ours.
    let r = unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(r, 0, "posix_fadvise");
}
