//! Group commit: `Store::put` and `Store::delete` from many tasks share one durable commit.
//!
//! Each call queues its operation and waits. One committer task (spawned by the first
//! caller to find none running, and living on while work arrives) takes the write lock,
//! takes every queued operation, brings the pages they will touch in concurrently, applies
//! them in one write transaction and commits; then answers every caller. A caller that stops
//! waiting cannot interrupt a commit that others wait for.

use std::io;

use futures::channel::oneshot;

use crate::error::{Error, Result};
use crate::options::{check_key, check_value};
use crate::store::Store;

pub(crate) enum PendingOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

pub(crate) struct Pending {
    op: PendingOp,
    done: oneshot::Sender<Result<bool>>,
}

fn share(e: &Error) -> Error {
    match e {
        Error::Io(io) => Error::Io(io::Error::new(io.kind(), io.to_string())),
        Error::Corrupt { page, reason } => Error::Corrupt {
            page: *page,
            reason: reason.clone(),
        },
        Error::Locked => Error::Locked,
        Error::KeyTooLarge(n) => Error::KeyTooLarge(*n),
        Error::ValueTooLarge(n) => Error::ValueTooLarge(*n),
        Error::ReadOnly => Error::ReadOnly,
        Error::BadInput(s) => Error::BadInput(s.clone()),
    }
}

impl Store {
    /// Inserts or replaces `key`. Calls from many tasks are grouped into one durable commit;
    /// this returns once the value is durable.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        self.submit(PendingOp::Put(key.to_vec(), value.to_vec()))
            .await
            .map(|_| ())
    }

    /// Deletes `key`, durably (grouped like `put`). Returns true if it existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.submit(PendingOp::Delete(key.to_vec())).await
    }

    async fn submit(&self, op: PendingOp) -> Result<bool> {
        self.writable()?;
        let (done, rx) = oneshot::channel();
        self.inner.pending.borrow_mut().push(Pending { op, done });
        if !self.inner.committer_running.replace(true) {
            // The committer is its own task, so a caller that stops waiting cannot
            // interrupt a commit that others wait for.
            let store = self.clone();
            faultless_runtime::spawn(async move { store.run_committer().await }).detach();
        }
        rx.await
            .unwrap_or_else(|_| Err(Error::Io(io::Error::other("the commit was abandoned"))))
    }

    async fn run_committer(&self) {
        loop {
            let txn = self.write_txn().await;
            let batch: Vec<Pending> = std::mem::take(&mut *self.inner.pending.borrow_mut());
            if batch.is_empty() {
                self.inner.committer_running.set(false);
                return;
            }
            let mut txn = match txn {
                Ok(t) => t,
                Err(e) => {
                    for p in batch {
                        let _ = p.done.send(Err(share(&e)));
                    }
                    continue;
                }
            };
            self.inner.counters.borrow_mut().grouped_ops += batch.len() as u64;
            // Bring every page the batch will touch in concurrently first (one lookup per
            // key on the current snapshot), so applying it does not wait for cold pages one
            // at a time. Errors surface again, properly, when the batch is applied.
            let snapshot = self.read_txn();
            let lookups = batch.iter().map(|p| {
                let key = match &p.op {
                    PendingOp::Put(k, _) | PendingOp::Delete(k) => k.as_slice(),
                };
                snapshot.get(key)
            });
            drop(futures::future::join_all(lookups).await);
            drop(snapshot);
            let mut results = Vec::with_capacity(batch.len());
            let mut failed = None;
            for p in &batch {
                let r = match &p.op {
                    PendingOp::Put(k, v) => txn.put(k, v).await.map(|_| true),
                    PendingOp::Delete(k) => txn.delete(k).await,
                };
                if let Err(e) = &r {
                    if matches!(e, Error::Io(_) | Error::Corrupt { .. }) {
                        failed = Some(share(e));
                        break;
                    }
                }
                results.push(r);
            }
            let outcome = match failed {
                Some(e) => Err(e),
                None => txn.commit().await,
            };
            match outcome {
                Ok(()) => {
                    for (p, r) in batch.into_iter().zip(results) {
                        let _ = p.done.send(r);
                    }
                }
                Err(e) => {
                    for p in batch {
                        let _ = p.done.send(Err(share(&e)));
                    }
                }
            }
        }
    }
}
