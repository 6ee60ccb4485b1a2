//! From a commit to its acknowledgement: staging a transaction (a commit id, its versions in
//! the active memtable, its record in the next log frame), the log writer task that writes
//! frames and publishes them, and what happens when a log write fails.
//!
//! Staging is synchronous and happens under the write lock, so commit ids follow the order
//! in which transactions saw the store. The log writer takes every frame staged so far and
//! appends them (one write each, usually one in all: group commit); while one write is in
//! flight, the commits staged meanwhile gather in the next frame. Once a frame is written
//! (and, under `Durability::Always`, durable), its commits become visible to new snapshots
//! and their callers are answered.
//!
//! A failed write changes nothing a reader saw: every commit after the last one written is
//! rolled back (its versions removed from the memtables, its callers answered with the
//! error, and the next commit takes its id again). A write transaction open across the
//! failure (it may have read a rolled-back commit) fails at commit. A full disk leaves the
//! store writable, so writes resume when there is room; any other failure of the log, and
//! any failed sync, refuses writes until the store is reopened.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures::channel::oneshot;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::wal::format::{FrameBuf, OP_DELETE, OP_PUT_NEW, OP_PUT_UNRESOLVED};

/// How many times the log writer yields to callers on their way to staging before it
/// writes without them.
const STAGER_TURNS: usize = 4;

/// One op of a transaction being staged.
pub(crate) struct StagedOp<'a> {
    /// `OP_PUT_NEW`, `OP_PUT_REPLACE`, `OP_PUT_UNRESOLVED` or `OP_DELETE` (see
    /// `wal::format`). An unresolved put must be its transaction's only op, and the stager
    /// must see that [`Store::resolve`] is called for it.
    pub(crate) kind: u8,
    pub(crate) key: &'a [u8],
    /// The value of a put; `None` for a delete.
    pub(crate) value: Option<Rc<[u8]>>,
}

/// A frame staged for the log writer, with the callers waiting on its commits.
pub(crate) struct Staged {
    frame: FrameBuf,
    waiters: Vec<oneshot::Sender<Result<()>>>,
    /// What its commits do to the number of keys.
    delta: i64,
}

/// Where commits stand.
pub(crate) struct Commits {
    /// The last commit staged.
    pub(crate) latest: u64,
    /// The last commit new snapshots see (written to the log; durable under `Always`).
    pub(crate) visible: u64,
    /// Keys after the last staged commit, but for the unresolved puts' share: signed, since
    /// a delete of a key an unresolved put wrote counts before the put does (exact, and
    /// not negative, once no put is unresolved: see [`Commits::latest_entries`]).
    latest_keys: i64,
    /// Keys after the last visible commit.
    pub(crate) visible_entries: u64,
    /// Frames staged and not yet taken by the log writer.
    frames: VecDeque<Staged>,
    /// The commit that must open a new log segment (a checkpoint began after the one
    /// before it).
    pub(crate) switch_at: Option<u64>,
    /// Bumped by every roll-back: a write transaction open across one fails at commit.
    pub(crate) epoch: u64,
    /// Callers waiting for a commit to become visible.
    watchers: Vec<(u64, oneshot::Sender<Result<()>>)>,
    /// Bytes of log staged since the last checkpoint began.
    pub(crate) log_bytes: u64,
    /// Transactions committed by this process.
    pub(crate) committed: u64,
    /// Of those, single-key `put`/`delete` calls.
    pub(crate) grouped: u64,
    /// Unresolved puts staged (`group.rs`), by commit id: a frame is not published while it
    /// holds one.
    pub(crate) unresolved: BTreeSet<u64>,
    /// Puts staged unresolved by this process (for stats).
    pub(crate) unresolved_total: u64,
    /// Resolved puts not yet counted in `visible_entries`: commit id, keys the put added.
    resolved: BTreeMap<u64, i64>,
    /// Resolutions not yet in the log: written at the start of the first frame after the
    /// one holding their put.
    unlogged: Vec<(u64, bool)>,
    /// A lookup for an unresolved put failed: the log writer fails the commits with it.
    lookup_failure: Option<Error>,
    /// The log writer, while it waits for resolutions.
    writer_waker: Option<Waker>,
}

impl Commits {
    /// Keys after the last staged commit; exact when no put is unresolved (a write
    /// transaction waits for that: `Store::wait_unresolved`).
    pub(crate) fn latest_entries(&self) -> u64 {
        self.latest_keys.max(0) as u64
    }

    /// Sets the keys after the last staged commit (a bulk load, a roll-back).
    pub(crate) fn set_latest_entries(&mut self, entries: u64) {
        self.latest_keys = entries as i64;
    }

    /// Commits as an open store finds them: everything up to `last` visible.
    pub(crate) fn new(last: u64, entries: u64) -> Commits {
        Commits {
            latest: last,
            visible: last,
            latest_keys: entries as i64,
            visible_entries: entries,
            frames: VecDeque::new(),
            switch_at: None,
            epoch: 0,
            watchers: Vec::new(),
            log_bytes: 0,
            committed: 0,
            grouped: 0,
            unresolved: BTreeSet::new(),
            unresolved_total: 0,
            resolved: BTreeMap::new(),
            unlogged: Vec::new(),
            lookup_failure: None,
            writer_waker: None,
        }
    }
}

impl Store {
    /// Stages one transaction (the caller holds the write lock): the next commit id, its
    /// versions in the active memtable, its record in the frame the log writer takes next.
    /// The receiver answers once the commit is visible (durable under `Always`), or failed.
    pub(crate) fn stage(&self, ops: &[StagedOp<'_>]) -> oneshot::Receiver<Result<()>> {
        debug_assert!(!ops.is_empty());
        let inner = &self.inner;
        let (tx, rx) = oneshot::channel();
        {
            let mut commits = inner.commits.borrow_mut();
            let c = &mut *commits;
            let txid = c.latest + 1;
            let new_segment = c.switch_at == Some(txid);
            if new_segment || c.frames.is_empty() {
                c.frames.push_back(Staged {
                    frame: FrameBuf::new(txid, new_segment),
                    waiters: Vec::new(),
                    delta: 0,
                });
                if new_segment {
                    c.switch_at = None;
                }
            }
            let visible = c.visible;
            let staged = c.frames.back_mut().expect("a frame");
            let frame_first = staged.frame.first_txid;
            let before = staged.frame.len();
            staged.frame.begin_txn(ops.len() as u32);
            let mem = inner.mem.borrow();
            let readers = &inner.commit_readers;
            // An older version goes when no snapshot can ask for it: none lies between it
            // and the next version, and none ever will (the next one is visible already, or
            // both are in this frame, which becomes visible all at once). Snapshots of staged
            // commits (`WriteTxn::read_txn`) count like any other.
            let prunable =
                |a: u64, b: u64| !readers.any_in(a, b) && (b <= visible || a >= frame_first);
            let mut delta = 0i64;
            for op in ops {
                let bytes = op.value.as_deref().unwrap_or(&[]);
                staged.frame.push_op(op.kind, op.key, bytes);
                delta += match op.kind {
                    OP_PUT_NEW => 1,
                    OP_DELETE => -1,
                    OP_PUT_UNRESOLVED => {
                        debug_assert_eq!(ops.len(), 1);
                        c.unresolved.insert(txid);
                        c.unresolved_total += 1;
                        0
                    }
                    _ => 0,
                };
                mem.active.insert(op.key, txid, op.value.clone(), prunable);
            }
            staged.delta += delta;
            staged.waiters.push(tx);
            let added = (staged.frame.len() - before) as u64;
            c.log_bytes += added;
            c.latest = txid;
            c.latest_keys += delta;
            c.committed += 1;
        }
        if !inner.writer_running.replace(true) {
            let store = self.clone();
            faultless_runtime::spawn(async move { store.run_log_writer().await }).detach();
        }
        self.after_stage();
        rx
    }

    /// Waits until commit `txid` is visible; fails if it was rolled back.
    pub(crate) async fn wait_visible(&self, txid: u64) -> Result<()> {
        let rx = {
            let mut c = self.inner.commits.borrow_mut();
            if c.visible >= txid {
                return Ok(());
            }
            if c.latest < txid {
                return Err(Error::Io(io::Error::other(
                    "the commit was rolled back after a failed log write",
                )));
            }
            let (tx, rx) = oneshot::channel();
            c.watchers.push((txid, tx));
            rx
        };
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }

    /// Writes staged frames until none are left.
    async fn run_log_writer(self) {
        let wal = self.wal().clone();
        let mut wrote = false;
        loop {
            // Callers just answered (they often commit again at once) and callers on their
            // way to staging are a turn or two from it: let them join this write rather than
            // the next. Without this, closed-loop writers settle into two groups that take
            // turns, each write carrying half of them.
            for turn in 0..STAGER_TURNS {
                let answered_just_now = wrote && turn < 2;
                if !answered_just_now && self.inner.stagers.get() == 0 {
                    break;
                }
                faultless_runtime::yield_now().await;
            }
            let batch: Vec<Staged> = self.inner.commits.borrow_mut().frames.drain(..).collect();
            if batch.is_empty() {
                self.inner.writer_running.set(false);
                return;
            }
            // No commit is acknowledged on a store whose file was cut under it.
            if let Err(e) = self.check_not_truncated() {
                self.roll_back(e, batch, false);
                continue;
            }
            let mut batch = batch.into_iter();
            while let Some(Staged {
                mut frame,
                waiters,
                delta,
            }) = batch.next()
            {
                let (first, last, new_segment) =
                    (frame.first_txid, frame.last_txid(), frame.new_segment);
                let carried = self.take_resolutions(&mut frame);
                let covered = self.inner.meta.get().log_txid;
                let durability = self.inner.durability.get();
                let written = match wal.append(frame, covered, durability).await {
                    Ok(()) => {
                        wrote = true;
                        self.resolved_through(last).await
                    }
                    Err(e) => Err(e),
                };
                match written {
                    Ok(()) => self.publish(last, delta, waiters),
                    Err(e) => {
                        // The answers it carried (for published commits) go with a later
                        // frame; if this one reached the log after all, replay ignores the
                        // second copy.
                        self.inner.commits.borrow_mut().unlogged.extend(carried);
                        let mut failed: Vec<Staged> = batch.collect();
                        let switch_pending = (new_segment && !wal.current_starts_at(first))
                            || failed.iter().any(|s| s.frame.new_segment);
                        failed.insert(
                            0,
                            Staged {
                                frame: FrameBuf::new(first, false),
                                waiters,
                                delta,
                            },
                        );
                        self.roll_back(e, failed, switch_pending);
                        break;
                    }
                }
            }
        }
    }

    /// Moves into `frame` the resolutions of puts in earlier frames (a put's own frame is
    /// sealed before its lookup can be known to be done); returns them.
    fn take_resolutions(&self, frame: &mut FrameBuf) -> Vec<(u64, bool)> {
        let first = frame.first_txid;
        let mut taken = Vec::new();
        self.inner
            .commits
            .borrow_mut()
            .unlogged
            .retain(|&(txid, existed)| {
                let earlier = txid < first;
                if earlier {
                    frame.resolve(txid, existed);
                    taken.push((txid, existed));
                }
                !earlier
            });
        taken
    }

    /// Waits until every unresolved put up to commit `last` is resolved; fails if a lookup
    /// for one failed.
    async fn resolved_through(&self, last: u64) -> Result<()> {
        std::future::poll_fn(|cx| {
            let mut c = self.inner.commits.borrow_mut();
            if let Some(e) = c.lookup_failure.take() {
                return Poll::Ready(Err(e));
            }
            if c.unresolved.range(..=last).next().is_none() {
                return Poll::Ready(Ok(()));
            }
            c.writer_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The lookup for the unresolved put of commit `txid` (staged in `epoch`) found out
    /// whether its key existed. A lookup that outlived a roll-back of its commit is ignored
    /// (the id may belong to another commit by now). A failed lookup fails the commits not
    /// yet visible, like a failed log write, and refuses writes until the store is reopened
    /// (the put's record may be in the log already: a reopen replays it).
    pub(crate) fn resolve(&self, epoch: u64, txid: u64, existed: Result<bool>) {
        let waker = {
            let mut c = self.inner.commits.borrow_mut();
            if c.epoch != epoch || !c.unresolved.remove(&txid) {
                return;
            }
            match existed {
                Ok(existed) => {
                    let added = !existed as i64;
                    c.latest_keys += added;
                    c.resolved.insert(txid, added);
                    c.unlogged.push((txid, existed));
                }
                Err(e) => {
                    let why = Error::Io(io::Error::other(format!(
                        "looking up a key for commit {txid} failed: {e}"
                    )));
                    c.lookup_failure.get_or_insert(why);
                }
            }
            c.writer_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Waits until no unresolved put is staged, so that `latest_entries` is exact. The
    /// caller holds the write lock (no put stages meanwhile).
    pub(crate) async fn wait_unresolved(&self) {
        loop {
            let latest = {
                let c = self.inner.commits.borrow();
                if c.unresolved.is_empty() {
                    return;
                }
                c.latest
            };
            // A roll-back clears them too; its error is the log writer's to report.
            let _ = self.wait_visible(latest).await;
            // A visible commit is resolved (a frame is published only then), so this turn
            // is not needed; it keeps a broken invariant from spinning the thread.
            faultless_runtime::yield_now().await;
        }
    }

    /// A frame is written: its commits become visible and their callers are answered.
    fn publish(&self, last: u64, delta: i64, waiters: Vec<oneshot::Sender<Result<()>>>) {
        let ready = {
            let mut c = self.inner.commits.borrow_mut();
            let later = c.resolved.split_off(&(last + 1));
            let resolved: i64 = std::mem::replace(&mut c.resolved, later).values().sum();
            c.visible = last;
            c.visible_entries = c.visible_entries.saturating_add_signed(delta + resolved);
            let (ready, waiting) = std::mem::take(&mut c.watchers)
                .into_iter()
                .partition(|(t, _)| *t <= last);
            c.watchers = waiting;
            ready
        };
        for w in waiters {
            let _ = w.send(Ok(()));
        }
        for (_, w) in ready {
            let _ = w.send(Ok(()));
        }
    }

    /// A log write failed with `e`: every commit after the last visible one is undone, and
    /// its caller told. See the module docs.
    fn roll_back(&self, e: Error, failed: Vec<Staged>, switch_pending: bool) {
        let fatal = !e.is_no_space();
        let why = e.to_string();
        let (waiters, watchers, keep) = {
            let mut c = self.inner.commits.borrow_mut();
            let keep = c.visible;
            let mut waiters: Vec<_> = failed.into_iter().flat_map(|s| s.waiters).collect();
            waiters.extend(c.frames.drain(..).flat_map(|s| s.waiters));
            let watchers = std::mem::take(&mut c.watchers);
            c.latest = keep;
            c.latest_keys = c.visible_entries as i64;
            c.epoch += 1;
            // Every unresolved put is after the last visible commit (a frame is published
            // only once its puts are resolved); resolutions of visible ones stay to be logged.
            c.unresolved.clear();
            c.resolved.clear();
            c.unlogged.retain(|&(txid, _)| txid <= keep);
            c.lookup_failure = None;
            if switch_pending || c.switch_at.is_some() {
                c.switch_at = Some(keep + 1);
            }
            (waiters, watchers, keep)
        };
        {
            let mem = self.inner.mem.borrow();
            mem.active.roll_back_all(keep);
            if let Some(f) = &mem.frozen {
                f.roll_back_all(keep);
            }
        }
        if let Some(wal) = &self.inner.wal {
            wal.roll_back(keep);
        }
        if fatal {
            self.poison(format!("a log write failed ({why}); reopen the store"));
        }
        for w in waiters {
            let _ = w.send(Err(e.duplicate()));
        }
        for (_, w) in watchers {
            let _ = w.send(Err(e.duplicate()));
        }
    }
}

/// The error for a caller whose commit's outcome could not be delivered.
pub(crate) fn abandoned() -> Error {
    Error::Io(io::Error::other("the commit was abandoned"))
}
