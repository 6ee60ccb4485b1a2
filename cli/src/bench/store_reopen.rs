//! `faultless bench store`'s crash measurement: a child process writes with 64 tasks, is
//! killed with SIGKILL, and the store is reopened: how long the reopen takes, how much log
//! it replayed, and whether every write the child had acknowledged is there.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use faultless::store::{Store, StoreOptions};

use super::store::{key, other, Rng, StoreBenchArgs, WalReport};

/// Set (to a store's path) in the environment of the writer child: the child is
/// `faultless bench store` run with it.
pub(super) const CHILD_ENV: &str = "FAULTLESS_BENCH_REOPEN_CHILD";

/// The writer child: 64 tasks put random keys (the load) into the store at `path` as fast
/// as they can; every 8th put of a task also records its progress under its own key and
/// prints `acked TASK N` once that put returned. Runs until killed.
pub(super) fn child(path: &Path, keys: u64, value_size: usize) -> io::Result<()> {
    let rt = faultless::Runtime::new()?;
    rt.block_on(async {
        let store = Store::open(path, StoreOptions::new()).await?;
        let value = vec![b'v'; value_size];
        let tasks: Vec<_> = (0..64u64)
            .map(|t| {
                let store = store.clone();
                let value = value.clone();
                faultless::spawn(async move {
                    let mut rng = Rng(t * 7919 + 5);
                    for i in 1u64.. {
                        store.put(&key(rng.next() % keys), &value).await?;
                        if i % 8 == 0 {
                            let progress = format!("reopen-progress-{t}");
                            store.put(progress.as_bytes(), &i.to_le_bytes()).await?;
                            println!("acked {t} {i}");
                        }
                    }
                    Ok::<_, io::Error>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(other)??;
        }
        Ok(())
    })
}

/// Starts the writer child on the store at `path`, kills it with SIGKILL after
/// `--kill-after` seconds, then times the reopen and checks every acknowledged write.
pub(super) fn measure(
    args: &StoreBenchArgs,
    path: &Path,
    rt: &faultless::Runtime,
    wal: &mut WalReport,
) -> io::Result<()> {
    use std::io::BufRead;
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(&exe)
        .args(["bench", "store"])
        .env(CHILD_ENV, path)
        .args(["--keys", &args.keys.to_string()])
        .args(["--value-size", &args.value_size.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("starting the writer child {}: {e}", exe.display()),
            )
        })?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut acked = std::collections::HashMap::<u64, u64>::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut it = line.split_whitespace();
            if it.next() != Some("acked") {
                continue;
            }
            let (Some(t), Some(i)) = (it.next(), it.next()) else {
                continue;
            };
            if let (Ok(t), Ok(i)) = (t.parse(), i.parse()) {
                let e = acked.entry(t).or_insert(0);
                *e = (*e).max(i);
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_secs_f64(args.kill_after));
    child.kill()?; // SIGKILL
    child.wait()?;
    let acked = reader.join().map_err(|_| other("reader thread"))?;
    let start = Instant::now();
    rt.block_on(async {
        let store = Store::open(path, StoreOptions::new()).await?;
        wal.reopen_ms = start.elapsed().as_secs_f64() * 1e3;
        let rec = store.log_recovery();
        wal.reopen_replayed_commits = rec.replayed_commits;
        wal.reopen_replayed_bytes = rec.replayed_bytes;
        for (t, &i) in &acked {
            wal.reopen_acked_writes += i / 8;
            let progress = format!("reopen-progress-{t}");
            let got = store
                .get(progress.as_bytes())
                .await?
                .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap_or([0; 8])));
            if got.is_none_or(|g| g < i) {
                wal.reopen_lost_writes += (i - got.unwrap_or(0)) / 8;
            }
        }
        Ok::<_, io::Error>(())
    })
}
