//! Overwrite churn: measures how the file grows against the live data when values of
//! every size class (inline, one overflow page, several pages) are overwritten, and how
//! many commits per second the store makes meanwhile.
//!
//! ```text
//! cargo run --release -p faultless-store --example churn -- [keys] [rounds] [keys-per-commit]
//! ```

use std::time::Instant;

use faultless_runtime::Runtime;
use faultless_store::{Store, StoreOptions};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let keys = args.first().copied().unwrap_or(1000);
    let rounds = args.get(1).copied().unwrap_or(10);
    let per_commit = args.get(2).copied().unwrap_or(10);
    let path = std::env::temp_dir().join(format!("faultless-churn-{}.db", std::process::id()));
    let rt = Runtime::new().expect("runtime");
    rt.block_on(async {
        let sizes = [100usize, 1100, 5000, 20000];
        for (class, name) in [
            (0usize, "inline 100 B"),
            (1, "1,100 B (one overflow page)"),
            (2, "5,000 B (two pages)"),
            (3, "20,000 B (five pages)"),
            (4, "mixed"),
        ] {
            let size_of = |k: u64, r: u64| {
                if class == 4 {
                    sizes[((k * 7 + r * 3) % 4) as usize]
                } else {
                    sizes[class]
                }
            };
            let _ = std::fs::remove_file(&path);
            let store = Store::open(&path, StoreOptions::new()).await.expect("open");
            // Fill, then overwrite every key `rounds` times, `per_commit` keys a commit.
            let mut live = vec![0usize; keys as usize];
            let start = Instant::now();
            let mut commits = 0u64;
            for r in 0..=rounds {
                let mut k = 0;
                while k < keys {
                    let mut txn = store.write_txn().await.expect("txn");
                    for j in k..(k + per_commit).min(keys) {
                        let len = size_of(j, r);
                        let key = format!("key-{j:06}");
                        txn.put(key.as_bytes(), &vec![(r % 251) as u8; len])
                            .await
                            .expect("put");
                        live[j as usize] = key.len() + len;
                    }
                    txn.commit().await.expect("commit");
                    commits += 1;
                    k += per_commit;
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let s = store.stats();
            let live_bytes: usize = live.iter().sum();
            let report = store.check().await.expect("check");
            assert!(report.ok(), "{report}");
            println!(
                "{name:28} live {:>9} B in {:>5} pages; high-water {:>6} pages ({:>5.2}x the live pages); file {:>10} B; {:>5} free + {:>4} pending pages; {:>5.0} commits/s",
                live_bytes,
                report.data_pages,
                s.page_count,
                s.page_count as f64 / report.data_pages as f64,
                s.file_size,
                report.free_pages,
                report.pending_pages,
                commits as f64 / secs
            );
        }
    });
    let _ = std::fs::remove_file(&path);
}
