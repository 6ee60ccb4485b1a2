//! Checkpoints: the memtable merged into the tree, and the log prefix it covers dropped;
//! and the keeper task that starts them and makes `everysec`'s syncs.
//!
//! A checkpoint, one at a time, as its own task:
//! 1. freezes the active memtable (a new one takes the commits from now on) and asks the log
//!    to open a new segment with the next commit;
//! 2. waits until every commit in the frozen memtable is visible (written; durable under
//!    `always`);
//! 3. merges it into the tree in key order (one copy-on-write pass, `merge.rs`: each leaf is
//!    rebuilt once however many of its keys changed), yielding every few leaves;
//! 4. commits the tree as any tree commit does: pages, `fdatasync`, meta page (now also
//!    naming the last commit merged), `fdatasync` (`commit.rs`);
//! 5. publishes the new tree and drops the frozen memtable (old snapshots keep theirs), and
//!    the log segments holding only commits up to it become free for reuse.
//!
//! A crash anywhere leaves the last durable meta, whose pages are intact (reuse respects it:
//! `Store::reuse_horizon`), and the log from its commit on. A failed checkpoint keeps the
//! frozen memtable; the keeper retries a second later.
//!
//! Checkpoints start when the active memtable is older than `checkpoint_interval`, or holds
//! more than `memtable_bytes`, or the log since the last one exceeds `checkpoint_log_bytes`;
//! writers wait (backpressure) when the memtable grows past twice `memtable_bytes`.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use crate::error::{Error, Result};
use crate::format::VERSION;
use crate::memtable::MemTable;
use crate::merge::merge_into_tree;
use crate::options::Durability;
use crate::pace::Pace;
use crate::store::{Inner, Store};
use crate::write::WriteState;

/// How long after a failed checkpoint the keeper tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often `everysec` syncs the log.
const EVERYSEC: Duration = Duration::from_secs(1);

/// The checkpoints of a store: the one running, and what the last ones did.
#[derive(Default)]
pub(crate) struct CheckpointState {
    pub(crate) running: Cell<bool>,
    /// Checkpoints started (the running one's number, while one runs).
    pub(crate) started: Cell<u64>,
    /// Checkpoints that completed.
    pub(crate) completed: Cell<u64>,
    waiters: RefCell<Vec<oneshot::Sender<Result<()>>>>,
    /// The last checkpoint's error, and when, if it failed.
    pub(crate) failure: RefCell<Option<(String, Instant)>>,
    pub(crate) last_duration: Cell<Duration>,
    /// Of that, the time spent writing and syncing the tree's pages and meta.
    pub(crate) last_write: Cell<Duration>,
    /// Keys merged by the last checkpoint.
    pub(crate) last_keys: Cell<u64>,
}

/// Frees a merged memtable [`CHECKPOINT_CHUNK`] entries at a time, yielding by the clock.
async fn free_in_chunks(m: MemTable) {
    let mut pace = Pace::new();
    while m.pop_some(CHECKPOINT_CHUNK) {
        pace.step().await;
    }
}

/// Waits (polling, backing off to every 100 ms) until no snapshot or transaction holds `m`
/// any more, then frees it with [`free_in_chunks`].
async fn free_when_unshared(mut m: Rc<MemTable>) {
    let mut pause = Duration::from_millis(1);
    loop {
        match Rc::try_unwrap(m) {
            Ok(m) => return free_in_chunks(m).await,
            Err(still) => m = still,
        }
        faultless_runtime::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Memtable entries a checkpoint copies (or frees) between two looks at the clock
/// ([`Pace`]): 100,000 keys took 40 ms to copy and 20 ms to free.
const CHECKPOINT_CHUNK: usize = 256;

impl Store {
    /// Writes every commit made before this call into the tree and syncs it (waiting for a
    /// checkpoint already running first): afterwards the log holds nothing a reopen would
    /// replay for them. Checkpoints run on their own in the background; call this before a
    /// planned shutdown to make the next open replay nothing, or to bound the log now.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        let mut target = self.inner.commits.borrow().latest;
        loop {
            // A roll-back may have taken commits back since the call.
            target = target.min(self.inner.commits.borrow().latest);
            let idle = {
                let mem = self.inner.mem.borrow();
                mem.active.is_empty() && mem.frozen.is_none()
            };
            if idle || self.inner.meta.get().log_txid >= target {
                return Ok(());
            }
            if self.inner.checkpoint.running.get() {
                // One that may have begun before this call: then another runs after it.
                let _ = self.wait_checkpoint().await;
                continue;
            }
            self.start_checkpoint();
            self.wait_checkpoint().await?;
        }
    }

    /// Waits until every commit is in the tree and the log is synced, then lets the store go:
    /// the next open replays nothing. Dropping a store without closing it is safe too (the
    /// next open replays its log), as is a crash.
    ///
    /// The store's background tasks (the log writer, checkpoints, the keeper that starts
    /// them, the lookups of puts staged before their pages were read) hold the store, and its
    /// file lock, while they run. `close` returns once none does (and the runtime lets the
    /// kernel release the file when `block_on` returns);
    /// after a plain drop, the file stays locked until they finish or their runtime runs
    /// again or is dropped. So a program that opens the same store again on another runtime
    /// while the first one is still alive should close it first.
    pub async fn close(self) -> Result<()> {
        if self.inner.read_only {
            return Ok(());
        }
        self.checkpoint().await?;
        if let Some(wal) = &self.inner.wal {
            if wal.unsynced() {
                wal.sync().await?;
            }
        }
        // The log writer lets go of the store a turn or two after its last write, the keeper
        // once its step (a sync under `everysec`) is done, a checkpoint the keeper started
        // when it finishes: a task suspended while holding the store when the runtime stops
        // would keep the file locked.
        while self.inner.writer_running.get()
            || self.inner.keeper_busy.get()
            || self.inner.checkpoint.running.get()
            || self.inner.lookups.get() > 0
        {
            faultless_runtime::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// The durability level commits get now.
    pub fn durability(&self) -> Durability {
        self.inner.durability.get()
    }

    /// Changes the durability level for the commits written from now on (Redis's `CONFIG
    /// SET appendfsync`). Going to `Always` syncs what earlier levels left unsynced before the
    /// next commit is acknowledged.
    pub fn set_durability(&self, d: Durability) {
        self.inner.durability.set(d);
        if d != Durability::Always {
            self.start_keeper();
        }
    }

    /// Starts a checkpoint task if none runs; true if it started one.
    pub(crate) fn start_checkpoint(&self) -> bool {
        let cp = &self.inner.checkpoint;
        if cp.running.replace(true) {
            return false;
        }
        cp.started.set(cp.started.get() + 1);
        let store = self.clone();
        faultless_runtime::spawn(async move {
            let start = Instant::now();
            let r = store.run_checkpoint().await;
            let cp = &store.inner.checkpoint;
            cp.last_duration.set(start.elapsed());
            match &r {
                Ok(()) => {
                    cp.completed.set(cp.completed.get() + 1);
                    *cp.failure.borrow_mut() = None;
                    crate::log::event!(
                        debug,
                        elapsed_ms = start.elapsed().as_millis() as u64,
                        txid = store.inner.meta.get().txid.0,
                        "checkpoint done"
                    );
                }
                Err(e) => {
                    crate::log::event!(warn, "checkpoint failed (the log keeps its commits): {e}");
                    *cp.failure.borrow_mut() = Some((e.to_string(), Instant::now()));
                }
            }
            cp.running.set(false);
            for w in cp.waiters.take() {
                let _ = w.send(r.as_ref().map(|_| ()).map_err(Error::duplicate));
            }
        })
        .detach();
        true
    }

    /// Waits for the running checkpoint (at once if none runs).
    async fn wait_checkpoint(&self) -> Result<()> {
        if !self.inner.checkpoint.running.get() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.inner.checkpoint.waiters.borrow_mut().push(tx);
        rx.await
            .unwrap_or_else(|_| Err(Error::Io(io::Error::other("the checkpoint was abandoned"))))
    }

    /// Takes the active memtable for a checkpoint (or the one a failed checkpoint left).
    fn freeze(&self) -> Option<Rc<MemTable>> {
        let mut mem = self.inner.mem.borrow_mut();
        if let Some(f) = &mem.frozen {
            return Some(f.clone());
        }
        if mem.active.is_empty() {
            return None;
        }
        let frozen = std::mem::replace(&mut mem.active, Rc::new(MemTable::new()));
        mem.frozen = Some(frozen.clone());
        let mut c = self.inner.commits.borrow_mut();
        c.log_bytes = 0;
        if self
            .wal()
            .free_slot(self.inner.meta.get().log_txid)
            .is_some()
        {
            c.switch_at = Some(c.latest + 1);
        }
        Some(frozen)
    }

    async fn run_checkpoint(&self) -> Result<()> {
        let _tree = self.inner.tree_lock.clone().lock_owned().await;
        self.writable()?;
        let Some(frozen) = self.freeze() else {
            return Ok(());
        };
        // Every commit in it must be visible (written, durable under `always`) first: a
        // commit whose log write fails is rolled back, and must not reach the tree.
        loop {
            let upto = frozen.last_txid();
            if self.inner.commits.borrow().visible >= upto {
                break;
            }
            let _ = self.wait_visible(upto).await;
        }
        if frozen.is_empty() {
            self.inner.mem.borrow_mut().frozen = None;
            return Ok(());
        }
        let upto = frozen.last_txid();
        let meta = self.inner.meta.get();
        let pager = self.inner.pager.clone();
        let mut state = WriteState::new(meta, self.reuse_horizon(), self.inner.free.clone());
        // The memtable's newest versions, taken (and later dropped) a chunk at a time with a
        // yield between chunks: 100,000 keys took 40 ms to copy and 20 ms to free, a stall
        // of the whole loop (the server's SET p99) when done in one go.
        let mut pace = Pace::new();
        let mut updates: Vec<crate::merge::Update> = Vec::with_capacity(frozen.keys());
        loop {
            let after = updates.last().map(|(k, _)| k.as_slice());
            let chunk = frozen.newest_after(after, CHECKPOINT_CHUNK);
            let done = chunk.len() < CHECKPOINT_CHUNK;
            updates.extend(chunk);
            if done {
                break;
            }
            pace.step().await;
        }
        let keys = updates.len() as u64;
        merge_into_tree(&mut state, &pager, &updates).await?;
        while updates.len() > CHECKPOINT_CHUNK {
            updates.truncate(updates.len() - CHECKPOINT_CHUNK);
            pace.step().await;
        }
        drop(updates);
        state.log_txid = upto;
        let (new_meta, runs) = state.finish(&pager).await?;
        debug_assert_eq!(new_meta.version, VERSION);
        let writing = Instant::now();
        self.write_out(new_meta, runs).await?;
        self.inner.checkpoint.last_write.set(writing.elapsed());
        state.settle();
        drop(state);
        // Publish: the tree now holds everything the frozen memtable did.
        self.inner.meta.set(new_meta);
        self.inner.durable_meta.set(new_meta);
        let merged = self.inner.mem.borrow_mut().frozen.take();
        self.wal().covered(upto);
        self.inner.checkpoint.last_keys.set(keys);
        // Free the merged memtable a chunk at a time (100,000 keys took ~20 ms to free in one
        // go). A snapshot or write transaction may still read it: then a task of its own
        // waits to be its last holder, so that no reader's drop frees it in one go.
        drop(frozen);
        if let Some(m) = merged {
            match Rc::try_unwrap(m) {
                Ok(m) => free_in_chunks(m).await,
                Err(m) => faultless_runtime::spawn(free_when_unshared(m)).detach(),
            }
        }
        Ok(())
    }

    /// After a commit was staged: a checkpoint if the memtable or the log outgrew their
    /// limits, and the keeper for the age limit and `everysec`.
    pub(crate) fn after_stage(&self) {
        let t = &self.inner.tuning;
        let over = {
            let bytes = self.inner.mem.borrow().active.bytes();
            bytes >= t.mem_bytes || self.inner.commits.borrow().log_bytes >= t.log_bytes
        };
        if over && self.inner.checkpoint.failure.borrow().is_none() {
            self.start_checkpoint();
        }
        self.start_keeper();
    }

    /// Waits while the memtable holds more than twice its limit (writes outran checkpoints),
    /// so memory stays bounded; fails with the checkpoint's error if checkpoints fail.
    pub(crate) async fn throttle(&self) -> Result<()> {
        loop {
            let over = self.inner.mem.borrow().active.bytes() >= 2 * self.inner.tuning.mem_bytes;
            if !over {
                return Ok(());
            }
            if !self.inner.checkpoint.running.get() {
                if let Some((why, _)) = &*self.inner.checkpoint.failure.borrow() {
                    return Err(Error::Io(io::Error::other(format!(
                        "writes wait for a checkpoint, and the last one failed: {why}"
                    ))));
                }
                self.start_checkpoint();
            }
            self.wait_checkpoint().await?;
        }
    }

    /// Starts the keeper task if it is not running.
    pub(crate) fn start_keeper(&self) {
        if self.inner.read_only || self.inner.keeper_running.replace(true) {
            return;
        }
        let weak = Rc::downgrade(&self.inner);
        faultless_runtime::spawn(keeper(weak)).detach();
    }

    /// The keeper's round: `everysec`'s sync, and a checkpoint when one is due. Returns
    /// false when there is nothing left to watch.
    async fn keep(&self) -> bool {
        if self.inner.poisoned.borrow().is_some() {
            return false;
        }
        let wal = self.wal().clone();
        let durability = self.inner.durability.get();
        if durability != Durability::No
            && wal.unsynced()
            && wal.last_sync().elapsed() + tick(&self.inner) >= EVERYSEC
        {
            if let Err(e) = wal.sync().await {
                self.poison(format!("syncing the log failed ({e}); reopen the store"));
                return false;
            }
        }
        let cp = &self.inner.checkpoint;
        if !cp.running.get() {
            let (frozen, active_since) = {
                let mem = self.inner.mem.borrow();
                (mem.frozen.is_some(), mem.active.since())
            };
            let failed_recently = cp
                .failure
                .borrow()
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < RETRY_AFTER);
            let due = frozen
                || active_since.is_some_and(|s| s.elapsed() >= self.inner.tuning.interval)
                || {
                    let t = &self.inner.tuning;
                    self.inner.mem.borrow().active.bytes() >= t.mem_bytes
                        || self.inner.commits.borrow().log_bytes >= t.log_bytes
                };
            if due && !failed_recently {
                self.start_checkpoint();
            }
        }
        let mem = self.inner.mem.borrow();
        !(mem.active.is_empty()
            && mem.frozen.is_none()
            && !cp.running.get()
            && (durability == Durability::No || !wal.unsynced()))
    }
}

/// How often the keeper looks.
fn tick(inner: &Inner) -> Duration {
    (inner.tuning.interval / 4).clamp(Duration::from_millis(5), Duration::from_millis(100))
}

/// The keeper: runs while the store has commits to checkpoint or a log to sync, holding the
/// store only while it acts (so dropping every handle still closes the store).
async fn keeper(weak: Weak<Inner>) {
    loop {
        let Some(pause) = weak.upgrade().map(|i| tick(&i)) else {
            return;
        };
        faultless_runtime::time::sleep(pause).await;
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let store = Store { inner };
        store.inner.keeper_busy.set(true);
        let go_on = store.keep().await;
        store.inner.keeper_busy.set(false);
        if !go_on {
            store.inner.keeper_running.set(false);
            return;
        }
    }
}
