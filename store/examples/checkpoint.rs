//! One checkpoint of N random puts into a loaded store: its wall time, the store thread's
//! CPU time meanwhile, and the pages it wrote. A tool for tuning the merge.
//!
//! ```text
//! cargo run --release -p faultless-store --example checkpoint -- [keys=1000000] [puts=20000] [dir=/tmp]
//! ```

use std::time::{Duration, Instant};

use faultless_runtime::Runtime;
use faultless_store::{Durability, Store, StoreOptions};

fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let keys: u64 = arg(0, "1000000").parse().expect("keys");
    let puts: u64 = arg(1, "20000").parse().expect("puts");
    let dir = std::path::PathBuf::from(arg(2, "/tmp"));
    let path = dir.join(format!("faultless-checkpoint-{}.db", std::process::id()));
    let options = StoreOptions::new()
        .durability(Durability::No)
        .checkpoint_interval(Duration::MAX);
    let rt = Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open(&path, options).await.expect("open");
        let value = vec![b'v'; 100];
        store
            .load((0..keys).map(|i| Ok((key(i), value.clone()))), |_| {})
            .await
            .expect("load");
        for round in 0..3 {
            let tasks: Vec<_> = (0..100u64)
                .map(|t| {
                    let seed = (round * 100 + t) * 0x9e37_79b9 + 1;
                    let store = store.clone();
                    let value = value.clone();
                    faultless_runtime::spawn(async move {
                        let mut r = seed;
                        for _ in 0..puts / 100 {
                            r ^= r << 13;
                            r ^= r >> 7;
                            r ^= r << 17;
                            store.put(&key(r % keys), &value).await.expect("put");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("writer");
            }
            let (wall, cpu) = (Instant::now(), thread_cpu());
            store.checkpoint().await.expect("checkpoint");
            let s = store.stats();
            println!(
                "checkpoint of {} keys: {:?} wall ({:?} writing), {:?} CPU on the store's thread, \
                 {} tree bytes written so far",
                s.last_checkpoint_keys,
                wall.elapsed(),
                s.last_checkpoint_write,
                thread_cpu() - cpu,
                s.tree_bytes
            );
        }
    });
    let _ = std::fs::remove_file(&path);
    for slot in 0..3 {
        let _ = std::fs::remove_file(format!("{}-wal.{slot}", path.display()));
    }
}
