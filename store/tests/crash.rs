//! Crash safety: a child process commits in a loop and is killed with SIGKILL at random
//! moments; the parent reopens the store (replaying the log after the last checkpoint), runs
//! `check`, and finds every acknowledged commit complete and no commit half-applied.
//!
//! * sequential write transactions, checkpoints every few milliseconds: 60 cycles;
//! * 16 tasks putting concurrently (group commit): 30 cycles, and 10 more under `everysec`
//!   (a process crash keeps the page cache, so `everysec` loses nothing acknowledged here);
//!   each task also overwrites or creates a key in a region of the tree the child finds
//!   cold, so puts are staged before their lookups finish (unresolved) and the kill leaves
//!   some whose answer the log never got: the reopened store's key count must still be
//!   the keys it holds;
//! * 16 tasks overwriting a few keys with values of every size while another task runs
//!   checkpoints back to back and a reader holds snapshots across them: 30 cycles, most
//!   killed in the middle of a checkpoint (counted). A checkpoint that overwrote a page the
//!   last durable meta still references (page reuse ignoring that horizon) leaves a store
//!   that reopens damaged or with lost writes; this is the test that catches it.
//!
//! The children are `#[ignore]`d tests that run forever until killed: only the parent tests
//! start them (this test binary with `--ignored --exact`), and run on their own they fail at
//! once instead of passing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempPath;
use faultless_runtime::Runtime;
use faultless_store::{Durability, Store, StoreOptions};
use futures::StreamExt;

const KEYS_PER_COMMIT: u64 = 8;

/// Checkpoints every few milliseconds, so kills land in them.
fn busy_checkpoints() -> StoreOptions {
    StoreOptions::new().checkpoint_interval(Duration::from_millis(3))
}

fn commit_key(n: u64, j: u64) -> Vec<u8> {
    format!("c{n:08}-{j}").into_bytes()
}

/// The child: commits forever, printing "acked N" after each commit returns. Commit N writes
/// KEYS_PER_COMMIT keys for N, rewrites the shared key "last" to N, and deletes commit N-20's
/// keys (so pages are freed and reused), all in one transaction.
#[test]
#[ignore = "the child of killed_writer_loses_no_acknowledged_commit, which starts and kills it"]
fn crash_child() {
    let path = std::env::var("FAULTLESS_CRASH_CHILD").unwrap_or_else(|_| {
        panic!("crash_child runs only when killed_writer_loses_no_acknowledged_commit starts it")
    });
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path, busy_checkpoints()).await.unwrap();
        let mut n = match store.get(b"last").await.unwrap() {
            Some(v) => u64::from_le_bytes((*v).try_into().unwrap()) + 1,
            None => 1,
        };
        loop {
            let mut txn = store.write_txn().await.unwrap();
            for j in 0..KEYS_PER_COMMIT {
                let big = if j == 0 { 6000 } else { 40 };
                txn.put(&commit_key(n, j), &vec![(n % 251) as u8; big])
                    .await
                    .unwrap();
            }
            if n > 20 {
                for j in 0..KEYS_PER_COMMIT {
                    txn.delete(&commit_key(n - 20, j)).await.unwrap();
                }
            }
            txn.put(b"last", &n.to_le_bytes()).await.unwrap();
            txn.commit().await.unwrap();
            println!("acked {n}");
            n += 1;
        }
    });
}

#[test]
fn killed_writer_loses_no_acknowledged_commit() {
    let path = TempPath::new("crash");
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut max_acked = 0u64;
    for cycle in 0..60 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("FAULTLESS_CRASH_CHILD", &path.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest prints "test crash_child ... " before the first line.
                if let Some(at) = line.find("acked ") {
                    if tx.send(line[at + 6..].trim().parse().unwrap()).is_err() {
                        break;
                    }
                }
            }
        });
        // Kill after a random delay: on even cycles counted from the start (sometimes before
        // the first commit), on odd ones from the child's first acknowledged commit, so that
        // most kills land mid-loop however slowly a loaded machine starts the child.
        if cycle % 2 == 1 {
            if let Ok(n) = rx.recv_timeout(Duration::from_secs(20)) {
                max_acked = max_acked.max(n);
            }
        }
        let delay = Duration::from_micros(next() % 40_000);
        let start = Instant::now();
        while start.elapsed() < delay {
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for n in rx.try_iter() {
            max_acked = max_acked.max(n);
        }

        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
            let report = store.check().await.unwrap();
            assert!(report.ok(), "cycle {cycle}: {report}");
            let last = match store.get(b"last").await.unwrap() {
                Some(v) => u64::from_le_bytes((*v).try_into().unwrap()),
                None => 0,
            };
            assert!(
                last >= max_acked,
                "cycle {cycle}: commit {max_acked} was acknowledged but the store ends at {last}"
            );
            // At most the commit in flight beyond the acknowledged ones may have landed.
            assert!(
                last <= max_acked + 1,
                "cycle {cycle}: {last} > {max_acked} + 1"
            );
            max_acked = last;
            // Every commit still expected is complete; deleted ones are completely gone.
            for n in last.saturating_sub(25).max(1)..=last {
                let present = store.get(&commit_key(n, 0)).await.unwrap().is_some();
                for j in 1..KEYS_PER_COMMIT {
                    assert_eq!(
                        store.get(&commit_key(n, j)).await.unwrap().is_some(),
                        present,
                        "cycle {cycle}: commit {n} half-applied"
                    );
                }
                assert_eq!(present, n + 20 > last, "cycle {cycle}: commit {n}");
                if present {
                    let v = store.get(&commit_key(n, 0)).await.unwrap().unwrap();
                    assert_eq!(v.len(), 6000);
                    assert!(v.iter().all(|&b| b == (n % 251) as u8));
                }
            }
        });
    }
    assert!(
        max_acked > 20,
        "the child must have committed a fair amount ({max_acked})"
    );
}

/// Task `t`'s key in the cold region for its put `n`: one of 1000, of which the parent
/// created the even ones.
fn cold_key(t: u64, n: u64) -> Vec<u8> {
    format!("x{t}-{:04}", n.wrapping_mul(2_654_435_761) % 1000).into_bytes()
}

/// The child for the group-commit variant: 16 tasks put keys concurrently (commits are
/// grouped and pipelined), printing "acked T N" once put N of task T returned, and with it
/// `cold_key(T, N)` (its value N, little-endian) on the tree's pages the child dropped from
/// the page cache at open.
#[test]
#[ignore = "the child of killed_group_committer_loses_no_acknowledged_put, which starts and kills it"]
fn crash_child_grouped() {
    let path = std::env::var("FAULTLESS_CRASH_CHILD_GROUPED").unwrap_or_else(|_| {
        panic!(
            "crash_child_grouped runs only when killed_group_committer_loses_no_acknowledged_put starts it"
        )
    });
    let durability: Durability = std::env::var("FAULTLESS_CRASH_DURABILITY")
        .unwrap_or_else(|_| "always".into())
        .parse()
        .unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path, busy_checkpoints().durability(durability))
            .await
            .unwrap();
        common::drop_from_page_cache(std::path::Path::new(&path));
        let tasks: Vec<_> = (0..16u64)
            .map(|t| {
                let store = store.clone();
                faultless_runtime::spawn(async move {
                    let mut n = 0u64;
                    while store
                        .get(format!("g{t}-{n}").as_bytes())
                        .await
                        .unwrap()
                        .is_some()
                    {
                        n += 1;
                    }
                    loop {
                        let v = vec![(n % 251) as u8; if n.is_multiple_of(5) { 3000 } else { 50 }];
                        store.put(format!("g{t}-{n}").as_bytes(), &v).await.unwrap();
                        store.put(&cold_key(t, n), &n.to_le_bytes()).await.unwrap();
                        println!("acked {t} {n}");
                        n += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn killed_group_committer_loses_no_acknowledged_put() {
    grouped_cycles(Durability::Always, 30, 10_000);
}

#[test]
fn killed_everysec_group_committer_loses_no_acknowledged_put() {
    // Fewer cycles, each long enough for the child to get going whatever the machine's load.
    grouped_cycles(Durability::EverySec, 10, 60_000);
}

/// `cycles` kills of the grouped child, each after `min_us` plus up to 40 ms.
fn grouped_cycles(durability: Durability, cycles: usize, min_us: u64) {
    let path = TempPath::new("crash-grouped");
    Runtime::new().unwrap().block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        let mut txn = store.write_txn().await.unwrap();
        for t in 0..16 {
            for k in (0..1000).step_by(2) {
                let key = format!("x{t}-{k:04}");
                txn.put(key.as_bytes(), &0u64.to_le_bytes()).await.unwrap();
            }
        }
        txn.commit().await.unwrap();
        store.close().await.unwrap();
    });
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut acked = [0u64; 16]; // per task: number of puts acknowledged so far
    let mut unresolved_at_crash = 0;
    // Puts whose "acked" line the parent read (a kill between a task's two puts skips one).
    let mut printed = std::collections::HashSet::new();
    for cycle in 0..cycles {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_child_grouped",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("FAULTLESS_CRASH_CHILD_GROUPED", &path.0)
            .env("FAULTLESS_CRASH_DURABILITY", durability.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("acked ") {
                    let mut it = line[at + 6..].split_whitespace();
                    let t: usize = it.next().unwrap().parse().unwrap();
                    let n: u64 = it.next().unwrap().parse().unwrap();
                    seen.push((t, n));
                    let _ = first_tx.send(());
                }
            }
            seen
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // On odd cycles the delay counts from the child's first acknowledged put (see
        // `killed_writer_loses_no_acknowledged_commit`).
        if cycle % 2 == 1 {
            let _ = first_rx.recv_timeout(Duration::from_secs(20));
        }
        std::thread::sleep(Duration::from_micros(min_us + rng % 40_000));
        child.kill().unwrap();
        child.wait().unwrap();
        for (t, n) in reader.join().unwrap() {
            acked[t] = acked[t].max(n + 1);
            printed.insert((t, n));
        }
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
            let report = store.check().await.unwrap();
            assert!(report.ok(), "cycle {cycle}: {report}");
            // The replayed key count (puts staged unresolved included, their answers in
            // the log or looked up at open) is the keys there are.
            unresolved_at_crash += store.log_recovery().looked_up;
            let snap = store.read_txn();
            assert_eq!(
                snap.len(),
                snap.range(..).count().await as u64,
                "cycle {cycle}: {}",
                store.log_recovery()
            );
            for (t, &count) in acked.iter().enumerate() {
                for n in count.saturating_sub(50)..count {
                    let v = store
                        .get(format!("g{t}-{n}").as_bytes())
                        .await
                        .unwrap()
                        .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged put g{t}-{n} lost"));
                    assert_eq!(v[0], (n % 251) as u8);
                    if !printed.contains(&(t, n)) {
                        continue;
                    }
                    // The cold key holds this put's value or a later one's.
                    let v = store.get(&cold_key(t as u64, n)).await.unwrap().unwrap();
                    let at = u64::from_le_bytes(v[..].try_into().unwrap());
                    assert!(
                        at >= n && cold_key(t as u64, at) == cold_key(t as u64, n),
                        "cycle {cycle}: acknowledged put {n} of task {t} lost ({at} found)"
                    );
                }
            }
        });
    }
    assert!(
        acked.iter().sum::<u64>() > 100,
        "the child must have committed: {acked:?}"
    );
    eprintln!("{cycles} cycles: {unresolved_at_crash} put(s) looked up at reopen");
}

/// Keys of the churn child: task `t` owns keys `t * 8 .. t * 8 + 8`.
fn churn_key(k: u64) -> Vec<u8> {
    format!("churn-{k:03}").into_bytes()
}

/// Version `n` of key `k`: its size cycles through inline, one overflow page and several.
fn churn_value(k: u64, n: u64) -> Vec<u8> {
    let len = [40usize, 1500, 9000, 300, 20_000][((k + n) % 5) as usize];
    let mut v = vec![(n % 251) as u8; len];
    v[..8].copy_from_slice(&n.to_le_bytes());
    v
}

/// The child for the checkpoint churn: 16 tasks overwrite their 8 keys (values of every
/// size, so pages and overflow runs are freed and reused all the time), printing "acked K N"
/// once version N of key K is committed; a task runs checkpoints back to back, printing
/// "cp begin" and "cp end" around each; a reader holds a snapshot across a few of them.
#[test]
#[ignore = "the child of a_killed_checkpoint_leaves_the_durable_tree_intact, which starts and kills it"]
fn crash_child_churn() {
    let path = std::env::var("FAULTLESS_CRASH_CHILD_CHURN").unwrap_or_else(|_| {
        panic!("crash_child_churn runs only when a_killed_checkpoint_leaves_the_durable_tree_intact starts it")
    });
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(
            &path,
            StoreOptions::new().checkpoint_interval(Duration::MAX),
        )
        .await
        .unwrap();
        let checkpoints = {
            let store = store.clone();
            faultless_runtime::spawn(async move {
                let mut held = None;
                for round in 0u64.. {
                    if round % 4 == 0 {
                        held = Some(store.read_txn()); // held across the next checkpoints
                    } else if round % 4 == 3 {
                        held = None;
                    }
                    println!("cp begin");
                    store.checkpoint().await.unwrap();
                    println!("cp end");
                    faultless_runtime::time::sleep(Duration::from_micros(500)).await;
                }
                drop(held);
            })
        };
        let tasks: Vec<_> = (0..16u64)
            .map(|t| {
                let store = store.clone();
                faultless_runtime::spawn(async move {
                    let mut next = [0u64; 8];
                    for (j, n) in next.iter_mut().enumerate() {
                        let k = t * 8 + j as u64;
                        if let Some(v) = store.get(&churn_key(k)).await.unwrap() {
                            *n = u64::from_le_bytes(v[..8].try_into().unwrap()) + 1;
                        }
                    }
                    for i in 0u64.. {
                        let j = (i * 5 + t) % 8;
                        let k = t * 8 + j;
                        let n = next[j as usize];
                        store.put(&churn_key(k), &churn_value(k, n)).await.unwrap();
                        println!("acked {k} {n}");
                        next[j as usize] += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        checkpoints.await.unwrap();
    });
}

#[test]
fn a_killed_checkpoint_leaves_the_durable_tree_intact() {
    let path = TempPath::new("crash-churn");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut acked = [None::<u64>; 128]; // per key: the newest version acknowledged
    let mut mid_checkpoint = 0;
    for cycle in 0..30 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_child_churn",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("FAULTLESS_CRASH_CHILD_CHURN", &path.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Events for the parent: true when a checkpoint begins, false at each acknowledgement.
        let (cp_tx, cp_rx) = std::sync::mpsc::channel::<bool>();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut in_checkpoint = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("cp begin") {
                    in_checkpoint = true;
                    let _ = cp_tx.send(true);
                } else if line.contains("cp end") {
                    in_checkpoint = false;
                } else if let Some(at) = line.find("acked ") {
                    let mut it = line[at + 6..].split_whitespace();
                    let k: usize = it.next().unwrap().parse().unwrap();
                    let n: u64 = it.next().unwrap().parse().unwrap();
                    seen.push((k, n));
                    let _ = cp_tx.send(false);
                }
            }
            (seen, in_checkpoint)
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Every third kill aims at a checkpoint, right after one begins; every third counts
        // its random delay from the child's first acknowledgement; the rest from the start
        // (a loaded machine makes delays from the start miss both).
        let wait_for = |checkpoint: bool| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while let Ok(event) =
                cp_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                if event == checkpoint || !checkpoint {
                    break;
                }
            }
        };
        match cycle % 3 {
            0 => {
                wait_for(true);
                std::thread::sleep(Duration::from_micros(rng % 2_000));
            }
            1 => {
                wait_for(false);
                std::thread::sleep(Duration::from_micros(5_000 + rng % 60_000));
            }
            _ => std::thread::sleep(Duration::from_micros(5_000 + rng % 60_000)),
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let (seen, in_checkpoint) = reader.join().unwrap();
        mid_checkpoint += in_checkpoint as usize;
        for (k, n) in seen {
            acked[k] = Some(acked[k].map_or(n, |a| a.max(n)));
        }
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
            let report = store.check().await.unwrap();
            assert!(report.ok(), "cycle {cycle}: {report}");
            for (k, a) in acked.iter_mut().enumerate() {
                let k = k as u64;
                let got = store.get(&churn_key(k)).await.unwrap();
                let Some(want) = *a else {
                    continue;
                };
                let v = got.unwrap_or_else(|| panic!("cycle {cycle}: key {k} lost"));
                let n = u64::from_le_bytes(v[..8].try_into().unwrap());
                assert!(
                    n >= want,
                    "cycle {cycle}: key {k} is at version {n}, but {want} was acknowledged"
                );
                assert_eq!(&*v, &churn_value(k, n)[..], "cycle {cycle}: key {k}");
                // The next child goes on from what the store holds.
                *a = Some(n);
            }
        });
    }
    assert!(
        acked.iter().flatten().count() > 64,
        "the child must have committed: {acked:?}"
    );
    assert!(
        mid_checkpoint >= 5,
        "only {mid_checkpoint} of 30 kills landed in a checkpoint"
    );
}
