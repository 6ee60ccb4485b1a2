//! `Store::put` and `Store::delete`: single-key commits from many tasks, grouped into shared
//! log writes.
//!
//! Each call finds out whether its key exists (the memtables, else the tree; a lookup that
//! may wait for a cold page, so it runs before the write lock is taken), then takes the write
//! lock for a moment to check that nothing changed the answer meanwhile and to stage its
//! commit, and waits for the log writer. Every caller that stages while a log write is in
//! flight shares the next one: group commit, with no batching delay. A caller that stops
//! waiting does not undo its commit: once staged, it is written like the others.
//!
//! A lone `put` does not wait for its lookup before staging: when the write lock is free, no
//! other caller is on its way to staging, no put is unresolved and the key's tree page is not
//! in memory, it stages the put *unresolved* (the value does not depend on whether the key
//! existed, only the key count does) and a task of its own looks the key up while the log
//! writes the record; the frame is published once both are done, and the answer is logged
//! at the start of a later frame (a crash before that leaves the lookup to recovery, which
//! makes it against the same tree). A lone writer on a cold store thus waits for the longer
//! of the page read and the log write, not their sum.

use std::cell::Cell;
use std::rc::Rc;

use futures::lock::MutexGuard;
use futures::FutureExt;

use crate::error::Result;
use crate::options::{check_key, check_value};
use crate::read::{tree_contains, TreeGuard};
use crate::stage::{abandoned, StagedOp};
use crate::store::Store;
use crate::types::TxId;
use crate::wal::format::{OP_DELETE, OP_PUT_NEW, OP_PUT_REPLACE, OP_PUT_UNRESOLVED};

/// Whether a key exists, as a lookup found it.
pub(crate) enum Probe {
    /// A memtable has a version of it: checked again under the lock.
    Mem,
    /// Only the tree at `tree` knows it.
    Tree { tree: TxId, exists: bool },
}

/// Counts a `put`/`delete` on its way to staging, while alive.
struct Stager<'a>(&'a Cell<usize>);

impl<'a> Stager<'a> {
    fn new(count: &'a Cell<usize>) -> Stager<'a> {
        count.set(count.get() + 1);
        Stager(count)
    }
}

impl Drop for Stager<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// The store as a lookup task holds it, counted in `lookups` while alive (`Store::close`
/// waits until none is).
struct Lookup(Store);

impl Lookup {
    fn new(store: Store) -> Lookup {
        let n = &store.inner.lookups;
        n.set(n.get() + 1);
        Lookup(store)
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        let n = &self.0.inner.lookups;
        n.set(n.get() - 1);
    }
}

impl Store {
    /// Inserts or replaces `key`. Calls from many tasks share log writes (group commit);
    /// this returns once the value is committed: durable under `Durability::Always`, and
    /// visible to every read that starts afterwards. Keys beginning with
    /// [`RESERVED_PREFIX`](crate::RESERVED_PREFIX) (the named tables' region) are refused.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        self.writable()?;
        self.throttle().await?;
        let value: Rc<[u8]> = Rc::from(value);
        let stager = Stager::new(&self.inner.stagers);
        let (guard, existed) = self.lock_and_probe(key, true).await?;
        let kind = match existed {
            Some(true) => OP_PUT_REPLACE,
            Some(false) => OP_PUT_NEW,
            None => OP_PUT_UNRESOLVED,
        };
        let op = StagedOp {
            kind,
            key,
            value: Some(value),
        };
        self.inner.commits.borrow_mut().grouped += 1;
        let rx = self.stage(&[op]);
        if existed.is_none() {
            self.resolve_later(key);
        }
        drop(guard);
        drop(stager);
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }

    /// Deletes `key` (committed like `put`). Returns true if it existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.writable()?;
        self.throttle().await?;
        let stager = Stager::new(&self.inner.stagers);
        let (guard, existed) = self.lock_and_probe(key, false).await?;
        let staged = if existed == Some(true) {
            let op = StagedOp {
                kind: OP_DELETE,
                key,
                value: None,
            };
            self.inner.commits.borrow_mut().grouped += 1;
            Ok(self.stage(&[op]))
        } else {
            Err(self.inner.commits.borrow().latest)
        };
        drop(guard);
        drop(stager);
        match staged {
            Ok(rx) => rx.await.unwrap_or_else(|_| Err(abandoned())).map(|()| true),
            // Nothing to delete, as of the last staged commit: answer once that is visible,
            // so the answer never depends on a commit that could still fail.
            Err(seen) => self.wait_visible(seen).await.map(|()| false),
        }
    }

    /// Takes the write lock, and finds out whether `key` exists after the last staged
    /// commit. When the lock is free and the answer is at hand (in a memtable, or on tree
    /// pages in memory), nothing waits; when it is free and the tree must wait for a page,
    /// and the caller can `defer` the answer, this returns `None` at once (the page's read
    /// goes on without this lookup, and the task that looks the key up again joins it; see
    /// the module docs); otherwise the key is looked up without the lock (the
    /// lookup may wait for a page) and the answer confirmed under it.
    async fn lock_and_probe(
        &self,
        key: &[u8],
        defer: bool,
    ) -> Result<(MutexGuard<'_, ()>, Option<bool>)> {
        loop {
            let probe = match self.inner.write_lock.try_lock() {
                Some(guard) => {
                    self.writable()?;
                    if let Some(found) = self.inner.mem.borrow().get(key, None) {
                        return Ok((guard, Some(found.is_some())));
                    }
                    let meta = self.inner.meta.get();
                    let _reader = TreeGuard::new(self.inner.readers.clone(), meta.txid);
                    let lookup = tree_contains(&self.inner.pager, meta.root, key);
                    let mut lookup = std::pin::pin!(lookup);
                    if let Some(r) = lookup.as_mut().now_or_never() {
                        return Ok((guard, Some(r?)));
                    }
                    if defer && self.alone() {
                        return Ok((guard, None));
                    }
                    // A page is on its way: wait for it without the lock (keeping this lookup,
                    // which is already waiting for the page), then confirm under the lock.
                    drop(guard);
                    Probe::Tree {
                        tree: meta.txid,
                        exists: lookup.await?,
                    }
                }
                None => self.probe(key).await?,
            };
            let guard = self.inner.write_lock.lock().await;
            self.writable()?;
            if let Some(existed) = self.confirm(key, &probe) {
                return Ok((guard, Some(existed)));
            }
        }
    }

    /// True if no other put or delete is on its way to staging and no put is unresolved:
    /// then a put may stage unresolved without making anyone wait. (The log writer publishes
    /// a frame only once its lookups are done, and writes the next frame after that, so a
    /// commit staged behind an unresolved put waits for that lookup too: with other writers
    /// about, the lookup runs before staging, as it always did, and their commits go on.)
    fn alone(&self) -> bool {
        self.inner.stagers.get() <= 1 && self.inner.commits.borrow().unresolved.is_empty()
    }

    /// Looks up, in a task of its own, whether `key` of the unresolved put just staged (the
    /// last commit) existed, and resolves the commit with the answer. The tree is the one the
    /// put saw: no later tree differs for that key until the put is visible, since no commit
    /// before it had a version of the key.
    fn resolve_later(&self, key: &[u8]) {
        let (txid, epoch) = {
            let c = self.inner.commits.borrow();
            (c.latest, c.epoch)
        };
        let meta = self.inner.meta.get();
        let reader = TreeGuard::new(self.inner.readers.clone(), meta.txid);
        let lookup = Lookup::new(self.clone());
        let key = key.to_vec();
        faultless_runtime::spawn(async move {
            let store = &lookup.0;
            let existed = tree_contains(&store.inner.pager, meta.root, &key).await;
            drop(reader);
            store.resolve(epoch, txid, existed);
        })
        .detach();
    }

    /// Finds out whether `key` exists after the last staged commit.
    pub(crate) async fn probe(&self, key: &[u8]) -> Result<Probe> {
        if self.inner.mem.borrow().get(key, None).is_some() {
            return Ok(Probe::Mem);
        }
        let meta = self.inner.meta.get();
        let _reader = TreeGuard::new(self.inner.readers.clone(), meta.txid);
        let exists = tree_contains(&self.inner.pager, meta.root, key).await?;
        Ok(Probe::Tree {
            tree: meta.txid,
            exists,
        })
    }

    /// Under the write lock: whether `key` exists now, if `probe` still tells (`None`: a
    /// checkpoint replaced the tree meanwhile; probe again).
    pub(crate) fn confirm(&self, key: &[u8], probe: &Probe) -> Option<bool> {
        if let Some(found) = self.inner.mem.borrow().get(key, None) {
            return Some(found.is_some());
        }
        match probe {
            Probe::Tree { tree, exists } if *tree == self.inner.meta.get().txid => Some(*exists),
            _ => None,
        }
    }
}
