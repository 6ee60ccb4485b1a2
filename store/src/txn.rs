//! [`WriteTxn`]: the one write transaction, and how a store hands it out.

use std::io;

use futures::lock::OwnedMutexGuard;

use crate::error::{Error, Result};
use crate::options::{check_key, check_value};
use crate::store::Store;
use crate::write::{Which, WriteState};

impl Store {
    pub(crate) fn writable(&self) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        if let Some(why) = &*self.inner.poisoned.borrow() {
            return Err(Error::Io(io::Error::other(format!(
                "writes are refused: {why}"
            ))));
        }
        if let Err(e) = self.inner.pager.check_intact() {
            return Err(self.poison(format!("the store's file was truncated under it ({e})")));
        }
        Ok(())
    }

    /// Starts the write transaction (waiting, without blocking the thread, while another is
    /// open).
    pub async fn write_txn(&self) -> Result<WriteTxn> {
        self.writable()?;
        let guard = self.inner.write_lock.clone().lock_owned().await;
        self.writable()?;
        // A file cut under the store would make this transaction read holes: refuse now.
        self.check_not_truncated()?;
        let meta = self.inner.meta.get();
        Ok(WriteTxn {
            store: self.clone(),
            state: WriteState::new(meta, self.reuse_horizon(), self.inner.free.clone()),
            guard,
        })
    }
}

/// The one write transaction. Changes are visible to its own `get` and, after `commit`, to
/// new readers. Dropping it without committing discards every change.
pub struct WriteTxn {
    store: Store,
    state: WriteState,
    guard: OwnedMutexGuard<()>,
}

impl WriteTxn {
    /// The value of `key` as this transaction sees it.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.state.get(self.store.pager(), Which::Data, key).await
    }

    /// Inserts or replaces `key`.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let pager = self.store.inner.pager.clone();
        let existed = self.state.put(&pager, Which::Data, key, value).await?;
        if !existed {
            self.state.entries += 1;
        }
        Ok(())
    }

    /// Deletes `key`; true if it existed.
    pub async fn delete(&mut self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        let pager = self.store.inner.pager.clone();
        let existed = self.state.delete(&pager, Which::Data, key).await?;
        if existed {
            self.state.entries -= 1;
        }
        Ok(existed)
    }

    /// Number of keys as this transaction sees them.
    pub fn len(&self) -> u64 {
        self.state.entries
    }

    /// True if this transaction sees no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the changes durable and visible. The write-out runs as its own task: if the
    /// caller stops waiting, the commit still completes (or fails) as a whole.
    pub async fn commit(mut self) -> Result<()> {
        if self.state.is_clean() {
            return Ok(());
        }
        let pager = self.store.inner.pager.clone();
        let (meta, runs) = self.state.finish(&pager).await?;
        let WriteTxn {
            store,
            mut state,
            guard,
        } = self;
        let task = faultless_runtime::spawn(async move {
            let r = store.write_out(meta, runs).await;
            if r.is_ok() {
                state.settle();
            }
            // Dropping an unsettled state undoes its allocations, before the next
            // transaction can take the lock.
            drop(state);
            drop(guard);
            r
        });
        task.await
            .unwrap_or_else(|e| Err(Error::Io(io::Error::other(e.to_string()))))
    }

    /// Discards every change (the same as dropping the transaction).
    pub fn abort(self) {}
}
