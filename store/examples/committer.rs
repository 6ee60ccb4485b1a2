//! The server's write path in miniature: many client tasks hand their SETs to one committer
//! task, which applies every queued one in a write transaction and commits the batch. With
//! `--pipelined`, the committer submits each batch (`WriteTxn::submit`) and starts the next
//! while the log write is in flight, answering the clients when the batch is committed.
//!
//! ```text
//! cargo run --release -p faultless-store --example committer -- \
//!     [clients=800] [seconds=3] [keyspace=1000000] [durability=always] [pipelined|waiting] [dir=/tmp]
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use faultless_runtime::Runtime;
use faultless_store::{Durability, Store, StoreOptions};
use futures::channel::oneshot;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

type Job = (Vec<u8>, oneshot::Sender<()>);

#[derive(Default)]
struct Queue {
    jobs: RefCell<Vec<Job>>,
    running: Cell<bool>,
}

async fn committer(store: Store, queue: Rc<Queue>, pipelined: bool, value: Rc<Vec<u8>>) {
    loop {
        let mut txn = store.write_txn().await.expect("write txn");
        let batch = std::mem::take(&mut *queue.jobs.borrow_mut());
        if batch.is_empty() {
            queue.running.set(false);
            return;
        }
        for (k, _) in &batch {
            txn.put(k, &value).await.expect("put");
        }
        if pipelined {
            let committed = txn.submit().expect("submit");
            faultless_runtime::spawn(async move {
                committed.await.expect("commit");
                for (_, done) in batch {
                    let _ = done.send(());
                }
            })
            .detach();
        } else {
            txn.commit().await.expect("commit");
            for (_, done) in batch {
                let _ = done.send(());
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let clients: u64 = arg(0, "800").parse().expect("clients");
    let seconds: f64 = arg(1, "3").parse().expect("seconds");
    let keyspace: u64 = arg(2, "1000000").parse().expect("keyspace");
    let durability: Durability = arg(3, "always").parse().expect("durability");
    let pipelined = arg(4, "pipelined") == "pipelined";
    let dir = std::path::PathBuf::from(arg(5, "/tmp"));
    let path = dir.join(format!("faultless-committer-{}.db", std::process::id()));
    let rt = Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open(&path, StoreOptions::new().durability(durability))
            .await
            .expect("open");
        let queue = Rc::new(Queue::default());
        let value = Rc::new(vec![b'v'; 100]);
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let before = store.stats();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (store, queue, value) = (store.clone(), queue.clone(), value.clone());
                faultless_runtime::spawn(async move {
                    let mut rng = c * 7919 + 11;
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let (tx, rx) = oneshot::channel();
                        queue.jobs.borrow_mut().push((key(rng % keyspace), tx));
                        if !queue.running.replace(true) {
                            let c = committer(store.clone(), queue.clone(), pipelined, value.clone());
                            faultless_runtime::spawn(c).detach();
                        }
                        rx.await.expect("answered");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut sets = 0;
        for t in tasks {
            sets += t.await.expect("client");
        }
        let s = store.stats();
        println!(
            "{clients} clients, {durability}, {}: {:.0} SET/s, {} log writes ({:.0} commits of {:.0} SETs each)",
            if pipelined { "pipelined" } else { "waiting" },
            sets as f64 / start.elapsed().as_secs_f64(),
            s.log_writes - before.log_writes,
            (s.commits - before.commits) as f64 / (s.log_writes - before.log_writes).max(1) as f64,
            sets as f64 / (s.commits - before.commits).max(1) as f64,
        );
        store.close().await.expect("close");
    });
    let _ = std::fs::remove_file(&path);
    for slot in 0..3 {
        let _ = std::fs::remove_file(format!("{}-wal.{slot}", path.display()));
    }
}
