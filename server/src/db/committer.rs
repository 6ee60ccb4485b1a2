//! The committer: every write, from every connection, applied in order in shared commits.
//!
//! [`submit`] queues a [`Job`] and waits for its reply. One task (started by the first
//! submitter to find none running, living while work arrives) takes the write lock, takes
//! every queued job, runs them in order in one [`Txn`], and stages its commit
//! (`WriteTxn::submit`); a task of the batch's own answers each job once the commit is
//! durable, while the committer goes on with the jobs that arrived meanwhile. So the
//! server's one thread applies the next batch while the log writes the previous one, and
//! the commits staged during a log write share the next. Readers see a commit only once it
//! is committed (the store's snapshots), so nothing unacknowledged is ever read.
//!
//! A job whose submitter stopped waiting still runs: the commit is all or nothing. If the
//! store fails (I/O, a damaged page), nothing of that batch is committed and every job in it
//! gets the error; a failed log write fails every commit staged after the last durable one
//! (the store rolls them back), and the next transaction reads the server's record as the
//! store holds it then.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use faultless_store::{Committed, Result as StoreResult, WriteTxn};
use futures::channel::oneshot;

use super::keys;
use super::txn::{Changes, Txn};
use super::watch::WatchState;
use super::{decode, now_ms, View};
use crate::protocol::{OwnedArgs, Reply};
use crate::server::Shared;
use crate::work::Work;

/// Work units a job costs the committer besides what its command counts itself (a SET is
/// a lookup, a header decode and a put, about ten microseconds): at 8 units the committer
/// lets the loop run about every 125 jobs instead of once per 1,000.
const JOB_UNITS: u64 = 8;

/// Something to do in the write transaction.
pub(crate) enum Job {
    /// A write command.
    Command(OwnedArgs),
    /// EXEC: the queued commands, atomically; aborted (null reply) if `watch` says so.
    Exec {
        queue: Vec<OwnedArgs>,
        watch: Rc<WatchState>,
    },
    /// WATCH the keys in `args` (from index 1), ordered with the writes around it.
    Watch {
        args: OwnedArgs,
        watch: Rc<WatchState>,
    },
    /// Active expiry: delete up to `limit` keys whose time has come; replies how many.
    Expire { limit: usize },
    /// Garbage collection: delete up to `limit` items of deleted containers; replies 1 if
    /// more may remain.
    Collect { limit: usize },
}

struct Pending {
    job: Job,
    done: oneshot::Sender<Reply>,
}

/// The queue of jobs and whether the committer task runs.
#[derive(Default)]
pub(crate) struct Committer {
    queue: RefCell<Vec<Pending>>,
    running: Cell<bool>,
}

/// Queues `job` and waits for its reply (once the commit that applied it is durable).
pub(crate) async fn submit(shared: &Rc<Shared>, job: Job) -> Reply {
    let (done, rx) = oneshot::channel();
    let c = &shared.committer;
    c.queue.borrow_mut().push(Pending { job, done });
    if !c.running.replace(true) {
        let shared = shared.clone();
        faultless_runtime::spawn(async move { run(shared).await }).detach();
    }
    rx.await
        .unwrap_or_else(|_| Reply::err("the commit was abandoned"))
}

async fn run(shared_rc: Rc<Shared>) {
    let shared = &*shared_rc;
    let mut work = Work::new(&shared.stats.work_yields);
    loop {
        let w = shared.store.write_txn().await;
        let batch = std::mem::take(&mut *shared.committer.queue.borrow_mut());
        if batch.is_empty() {
            shared.committer.running.set(false);
            return;
        }
        let staged = match w {
            Ok(w) => stage(shared, w, &batch, &mut work).await,
            Err(e) => Err(e),
        };
        match staged {
            // Answered once durable, by a task of its own, while this loop goes on with
            // the next batch: its commit shares the next log write.
            Ok((committed, changes, replies)) => {
                let stats = &shared.stats;
                stats.commits.set(stats.commits.get() + 1);
                stats
                    .grouped_jobs
                    .set(stats.grouped_jobs.get() + batch.len() as u64);
                let shared = shared_rc.clone();
                faultless_runtime::spawn(async move {
                    match committed.await {
                        Ok(()) => {
                            changes.apply(&shared);
                            for (p, r) in batch.into_iter().zip(replies) {
                                let _ = p.done.send(r);
                            }
                        }
                        Err(e) => fail(batch, e),
                    }
                })
                .detach();
            }
            Err(e) => fail(batch, e),
        }
    }
}

/// Runs `batch` in one transaction on `w` and stages its commit: the commit (resolving
/// once durable), the changes to the server's record, and each job's reply.
async fn stage(
    shared: &Shared,
    w: WriteTxn,
    batch: &[Pending],
    work: &mut Work<'_>,
) -> StoreResult<(Committed, Changes, Vec<Reply>)> {
    let mut txn = Txn::begin(w, shared).await?;
    let mut replies = Vec::with_capacity(batch.len());
    for p in batch {
        work.spend(JOB_UNITS).await;
        replies.push(apply(&mut txn, &p.job, work).await?);
    }
    let (committed, changes) = txn.submit().await?;
    Ok((committed, changes, replies))
}

/// Answers every job of a batch that was not committed with the error.
fn fail(batch: Vec<Pending>, e: faultless_store::Error) {
    let reply = Reply::err(e);
    batch
        .into_iter()
        .for_each(|p| drop(p.done.send(reply.clone())));
}

/// Runs one job in the transaction. A store error fails the whole batch.
async fn apply(txn: &mut Txn<'_>, job: &Job, work: &mut Work<'_>) -> StoreResult<Reply> {
    match job {
        Job::Command(args) => crate::cmd::run_in_txn(txn, args.args(), work).await,
        Job::Exec { queue, watch } => {
            let now = now_ms();
            let aborted = watch.aborts(now);
            txn.shared.watches.unwatch(watch);
            if aborted {
                return Ok(Reply::NullArray);
            }
            let mut replies = Vec::with_capacity(queue.len());
            for args in queue {
                replies.push(crate::cmd::run_in_txn(txn, args.args(), work).await?);
                work.spend(JOB_UNITS).await;
            }
            Ok(Reply::Array(replies))
        }
        Job::Watch { args, watch } => {
            let now = now_ms();
            let args = args.args();
            for key in args.iter_from(1) {
                let expire = super::lookup(&*txn, key, now)
                    .await?
                    .and_then(|e| e.meta.expire);
                txn.shared.watches.watch(watch, key, expire);
            }
            Ok(Reply::OK)
        }
        Job::Expire { limit } => expire_some(txn, *limit).await,
        Job::Collect { limit } => collect_some(txn, *limit).await,
    }
}

/// Deletes up to `limit` keys whose expiry time has come, in time order.
async fn expire_some(txn: &mut Txn<'_>, limit: usize) -> StoreResult<Reply> {
    use std::ops::Bound::{Excluded, Included};
    let now = now_ms();
    let due = txn
        .raw_range(
            Included(keys::expiry_at(0)),
            Excluded(keys::expiry_at(now.saturating_add(1))),
            limit,
        )
        .await?;
    let mut n = 0;
    for (skey, _) in due {
        let (when, key) = keys::decode_expiry(&skey).ok_or_else(|| super::bad_record(&skey))?;
        let meta = match txn.raw_get(&keys::top(key)).await? {
            Some(v) => Some(decode(key, v)?.meta),
            None => None,
        };
        match meta {
            Some(m) if m.expire == Some(when) => {
                txn.remove(key, &m).await?;
                txn.expired += 1;
                n += 1;
            }
            // An index entry whose key is gone or has another time: not ours to keep.
            _ => {
                txn.raw_delete(&skey).await?;
            }
        }
    }
    Ok(Reply::Int(n))
}

/// Deletes up to `limit` items of the first deleted container.
async fn collect_some(txn: &mut Txn<'_>, limit: usize) -> StoreResult<Reply> {
    use std::ops::Bound::{Excluded, Included};
    let first = txn
        .raw_range(
            Included(keys::garbage(0)),
            Excluded(vec![keys::GARBAGE + 1]),
            1,
        )
        .await?;
    let Some((gkey, _)) = first.into_iter().next() else {
        return Ok(Reply::Int(0));
    };
    let id = keys::decode_garbage(&gkey).ok_or_else(|| super::bad_record(&gkey))?;
    let items = txn
        .raw_range(
            Included(keys::items_start(id)),
            Excluded(keys::items_end(id)),
            limit,
        )
        .await?;
    let done = items.len() < limit;
    for (k, _) in items {
        txn.raw_delete(&k).await?;
    }
    if done {
        txn.raw_delete(&gkey).await?;
    }
    Ok(Reply::Int(1))
}
