//! [`Txn`]: the store's write transaction as the committer uses it, with what the store's
//! own transaction lacks: range reads that see the transaction's own writes, and the
//! server's bookkeeping (counts, the expiry index, garbage, WATCH).
//!
//! The store's `WriteTxn` reads single keys as the transaction sees them but has no range.
//! So the transaction keeps the set of store keys it wrote (an overlay: key -> present or
//! deleted) and merges it with a snapshot of the version it started from
//! (`WriteTxn::read_txn`: exactly the transaction's base, even while earlier commits are
//! still on their way to the log). A key it did
//! not write is read from the snapshot without a copy; FLUSHDB marks the base as cleared
//! instead of remembering every key it deleted.

use std::collections::BTreeMap;
use std::ops::Bound;

use faultless_store::{Committed, ReadTxn, Result as StoreResult, WriteTxn};
use futures::StreamExt;

use super::keys;
use super::{decode, Bytes, Counts, Entry, Keyspace, Meta, View};
use crate::server::Shared;
use crate::work::Work;

/// The write transaction with the server's bookkeeping; see the module docs.
pub(crate) struct Txn<'s> {
    w: WriteTxn,
    base: ReadTxn,
    /// Store keys written by this transaction: true if present now, false if deleted.
    overlay: BTreeMap<Vec<u8>, bool>,
    /// FLUSHDB ran: nothing in `base` is visible any more.
    cleared: bool,
    pub(crate) shared: &'s Shared,
    /// The record this transaction started from (after every staged commit).
    start: Counts,
    keys: i64,
    expires: i64,
    next_id: u64,
    meta_dirty: bool,
    garbage: bool,
    /// Keys expired (deleted because their time came) by this transaction.
    pub(crate) expired: u64,
}

/// What a staged transaction changes in the server's record, applied once it is committed.
pub(crate) struct Changes {
    /// The commit's number (`Keyspace::stage`).
    seq: u64,
    counts: Counts,
    next_id: u64,
    garbage: bool,
    expired: u64,
}

impl Changes {
    /// Applies the changes to the in-memory record (after the commit succeeded).
    pub(crate) fn apply(self, shared: &Shared) {
        let ks = &shared.keyspace;
        ks.committed(self.seq, self.counts, self.next_id);
        if self.garbage {
            ks.garbage.set(true);
        }
        let e = &shared.stats.expired_keys;
        e.set(e.get() + self.expired);
    }
}

impl<'s> Txn<'s> {
    /// Wraps `w`, reading the server's record as `w` sees it (after the commits staged
    /// before it, which may not be committed yet).
    pub(crate) async fn begin(w: WriteTxn, shared: &'s Shared) -> StoreResult<Txn<'s>> {
        let base = w.read_txn();
        let (start, next_id) = match w.get(keys::META).await? {
            Some(v) => super::Keyspace::decode(&v).ok_or_else(|| super::bad_record(keys::META))?,
            // Only a store the server never opened lacks it (opening writes one).
            None => (shared.keyspace.counts(), shared.keyspace.next_id.get()),
        };
        Ok(Txn {
            w,
            base,
            overlay: BTreeMap::new(),
            cleared: false,
            shared,
            start,
            keys: 0,
            expires: 0,
            next_id,
            meta_dirty: false,
            garbage: false,
            expired: 0,
        })
    }

    /// Writes `value` at store key `skey`.
    pub(crate) async fn raw_put(&mut self, skey: &[u8], value: &[u8]) -> StoreResult<()> {
        self.w.put(skey, value).await?;
        self.overlay.insert(skey.to_vec(), true);
        Ok(())
    }

    /// Writes store key `skey`, which this transaction just read (`exists`): no second
    /// lookup in the store (see `WriteTxn::put_known`).
    fn raw_put_known(&mut self, skey: &[u8], value: &[u8], exists: bool) -> StoreResult<()> {
        self.w.put_known(skey, value, exists)?;
        self.overlay.insert(skey.to_vec(), true);
        Ok(())
    }

    /// Deletes store key `skey`; true if it existed.
    pub(crate) async fn raw_delete(&mut self, skey: &[u8]) -> StoreResult<bool> {
        let existed = self.w.delete(skey).await?;
        self.overlay.insert(skey.to_vec(), false);
        Ok(existed)
    }

    /// A fresh container id.
    pub(crate) fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.meta_dirty = true;
        id
    }

    /// `key`'s record as this transaction sees it; a key whose time has come at `now` is
    /// deleted here (as Redis expires keys on access) and reported missing.
    pub(crate) async fn lookup_mut(&mut self, key: &[u8], now: u64) -> StoreResult<Option<Entry>> {
        let Some(value) = self.raw_get(&keys::top(key)).await? else {
            return Ok(None);
        };
        let e = decode(key, value)?;
        if e.meta.expired(now) {
            self.remove(key, &e.meta).await?;
            self.expired += 1;
            return Ok(None);
        }
        Ok(Some(e))
    }

    /// Deletes `key` (whose record is `meta`): its record, its expiry index entry, and its
    /// container's items (left to the garbage collector).
    pub(crate) async fn remove(&mut self, key: &[u8], meta: &Meta) -> StoreResult<()> {
        self.raw_delete(&keys::top(key)).await?;
        if let Some(t) = meta.expire {
            self.raw_delete(&keys::expiry(t, key)).await?;
            self.expires -= 1;
        }
        self.drop_container(meta).await?;
        self.keys -= 1;
        self.meta_dirty = true;
        self.touch(key);
        Ok(())
    }

    /// Writes `key`'s record as `new` with `payload` after it, replacing `old` (its record
    /// before, if it had one): keeps the expiry index and the counts right, and leaves an
    /// old container that `new` does not keep to the garbage collector.
    pub(crate) async fn store(
        &mut self,
        key: &[u8],
        old: Option<&Meta>,
        new: &Meta,
        payload: &[u8],
    ) -> StoreResult<()> {
        let old_expire = old.and_then(|m| m.expire);
        if let Some(old) = old {
            if old.kind != new.kind || old.container.id != new.container.id {
                self.drop_container(old).await?;
            }
        } else {
            self.keys += 1;
            self.meta_dirty = true;
        }
        if old_expire != new.expire {
            if let Some(t) = old_expire {
                self.raw_delete(&keys::expiry(t, key)).await?;
                self.expires -= 1;
            }
            if let Some(t) = new.expire {
                self.raw_put(&keys::expiry(t, key), b"").await?;
                self.expires += 1;
            }
            self.meta_dirty = true;
        }
        // `old` is the record as this transaction read it: it says whether the key exists.
        self.raw_put_known(&keys::top(key), &new.with_payload(payload), old.is_some())?;
        self.touch(key);
        Ok(())
    }

    /// Leaves a container's items to the garbage collector (nothing for a string or an
    /// empty container).
    async fn drop_container(&mut self, meta: &Meta) -> StoreResult<()> {
        if meta.kind != super::Kind::String && meta.container.len > 0 {
            self.raw_put(&keys::garbage(meta.container.id), b"").await?;
            self.garbage = true;
        }
        Ok(())
    }

    /// Marks clients watching `key` (WATCH) as dirty.
    pub(crate) fn touch(&self, key: &[u8]) {
        self.shared.watches.touch(key);
    }

    /// Deletes every key (FLUSHDB), accounting for the work as it goes.
    pub(crate) async fn clear_all(&mut self, work: &mut Work<'_>) -> StoreResult<()> {
        // Everything from the keys region on: keys, items, expiry index, garbage.
        let mut from = Bound::Included(vec![keys::TOP]);
        loop {
            let chunk = self.raw_range(from.clone(), Bound::Unbounded, 1024).await?;
            let Some((last, _)) = chunk.last() else { break };
            from = Bound::Excluded(last.clone());
            for (k, _) in &chunk {
                self.w.delete(k).await?;
            }
            work.spend(chunk.len() as u64).await;
        }
        self.overlay.clear();
        self.cleared = true;
        self.keys = -(self.start.keys as i64);
        self.expires = -(self.start.expires as i64);
        self.garbage = false;
        self.shared.keyspace.garbage.set(false);
        self.meta_dirty = true;
        self.shared.watches.touch_all();
        Ok(())
    }

    /// Writes the server's record if it changed and stages the commit (see
    /// `WriteTxn::submit`): the next write transaction can start at once. Returns the
    /// commit, which resolves once durable, and the changes to apply to the in-memory
    /// record then.
    pub(crate) async fn submit(mut self) -> StoreResult<(Committed, Changes)> {
        let counts = self.counts();
        if self.meta_dirty {
            self.w
                .put(keys::META, &Keyspace::encode(counts, self.next_id))
                .await?;
        }
        let committed = self.w.submit()?;
        let changes = Changes {
            seq: self.shared.keyspace.stage(),
            counts,
            next_id: self.next_id,
            garbage: self.garbage,
            expired: self.expired,
        };
        Ok((committed, changes))
    }

    /// Stages the commit and waits until it is committed; see [`Txn::submit`].
    #[cfg(test)]
    pub(crate) async fn commit(self) -> StoreResult<Changes> {
        let (committed, changes) = self.submit().await?;
        committed.await?;
        Ok(changes)
    }

    /// True if `skey` must be read through the write transaction (it was written, or the
    /// base was cleared) rather than from the base snapshot.
    fn written(&self, skey: &[u8]) -> bool {
        self.cleared || self.overlay.contains_key(skey)
    }
}

impl View for Txn<'_> {
    async fn raw_get(&self, skey: &[u8]) -> StoreResult<Option<Bytes>> {
        if self.written(skey) {
            Ok(self.w.get(skey).await?.map(Bytes::Own))
        } else {
            Ok(self.base.get(skey).await?.map(Bytes::Ref))
        }
    }

    async fn raw_range(
        &self,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
        limit: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Bytes)>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut base = (!self.cleared).then(|| self.base.range((from.clone(), to.clone())));
        let mut written = self.overlay.range((from, to)).peekable();
        let mut next_base = match &mut base {
            Some(s) => s.next().await.transpose()?,
            None => None,
        };
        while out.len() < limit {
            let take_written = match (&next_base, written.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((wk, _))) => wk.as_slice() <= bk.as_slice(),
            };
            if take_written {
                let (wk, &present) = written.next().expect("peeked");
                if next_base.as_ref().is_some_and(|(bk, _)| bk == wk) {
                    next_base = base.as_mut().expect("base").next().await.transpose()?;
                }
                if present {
                    if let Some(v) = self.w.get(wk).await? {
                        out.push((wk.clone(), Bytes::Own(v)));
                    }
                }
            } else {
                let (bk, bv) = next_base.take().expect("checked");
                out.push((bk, Bytes::Ref(bv)));
                next_base = base.as_mut().expect("base").next().await.transpose()?;
            }
        }
        Ok(out)
    }

    fn counts(&self) -> Counts {
        Counts {
            keys: (self.start.keys as i64 + self.keys).max(0) as u64,
            expires: (self.start.expires as i64 + self.expires).max(0) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound::{Excluded, Included};

    use super::*;
    use crate::{Options, Server};

    fn keys_of(v: &[(Vec<u8>, Bytes)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        v.iter().map(|(k, b)| (k.clone(), b.to_vec())).collect()
    }

    #[test]
    fn ranges_see_the_transactions_own_writes() {
        let path = std::env::temp_dir().join(format!("faultless-txn-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rt = faultless_runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let options = Options {
                port: 0,
                data: path.clone(),
                ..Options::default()
            };
            let server = Server::bind(options).await.unwrap();
            let shared = &*server.shared;
            let k = |s: &str| [&[5u8][..], s.as_bytes()].concat();
            let mut work = Work::new(&shared.stats.work_yields);
            // The base version: a, c, e.
            let w = shared.store.write_txn().await.unwrap();
            let mut t = Txn::begin(w, shared).await.unwrap();
            for (key, v) in [("a", "1"), ("c", "3"), ("e", "5")] {
                t.raw_put(&k(key), v.as_bytes()).await.unwrap();
            }
            t.commit().await.unwrap().apply(shared);
            // A transaction deletes c, adds b and f, overwrites e: its ranges see exactly that.
            let w = shared.store.write_txn().await.unwrap();
            let mut t = Txn::begin(w, shared).await.unwrap();
            assert!(t.raw_delete(&k("c")).await.unwrap());
            t.raw_put(&k("b"), b"2").await.unwrap();
            t.raw_put(&k("f"), b"6").await.unwrap();
            t.raw_put(&k("e"), b"55").await.unwrap();
            let all = t
                .raw_range(Included(k("")), Excluded(vec![6]), 100)
                .await
                .unwrap();
            let want = [("a", "1"), ("b", "2"), ("e", "55"), ("f", "6")];
            let want: Vec<_> = want
                .iter()
                .map(|(a, b)| (k(a), b.as_bytes().to_vec()))
                .collect();
            assert_eq!(keys_of(&all), want);
            // Limits and bounds apply to the merged view.
            let two = t
                .raw_range(Excluded(k("a")), Excluded(vec![6]), 2)
                .await
                .unwrap();
            assert_eq!(keys_of(&two), want[1..3].to_vec());
            assert_eq!(t.raw_get(&k("c")).await.unwrap().map(|b| b.to_vec()), None);
            // After FLUSHDB only what is written later is visible.
            t.clear_all(&mut work).await.unwrap();
            t.raw_put(&k("z"), b"26").await.unwrap();
            let all = t
                .raw_range(Included(k("")), Excluded(vec![6]), 100)
                .await
                .unwrap();
            assert_eq!(keys_of(&all), vec![(k("z"), b"26".to_vec())]);
            assert_eq!(t.raw_get(&k("a")).await.unwrap().map(|b| b.to_vec()), None);
            drop(t);
        });
        let _ = std::fs::remove_file(&path);
    }
}
