//! The server's data on the store: how keys, types, expiries and containers are laid out
//! ([`keys`], [`entry`]), the two ways to see them (a read snapshot, [`Snap`]; the write
//! transaction, [`Txn`]), and the committer that applies every write ([`committer`]).
//!
//! **Every write goes through one committer** (the server's own group commit): a write
//! command is copied out of the connection's buffer and queued; one task takes everything
//! queued, applies it in one store write transaction, in order, commits once (one fsync for
//! all), and only then answers each writer. A command sees the effects of the ones before it
//! in the same commit, and a whole `MULTI`/`EXEC` is one job, so it is atomic and durable
//! once, before EXEC's reply. Reads run on snapshots and never wait for the committer.
//!
//! **Counts** (DBSIZE, INFO's `keys=` and `expires=`) are kept in memory and written to the
//! server's record in the same commit as the change, so they survive restarts exactly.

pub(crate) mod committer;
pub(crate) mod cron;
pub mod entry;
pub mod keys;
pub(crate) mod txn;
pub(crate) mod watch;

use std::cell::Cell;
use std::ops::{Bound, Deref};

use faultless_store::{Error as StoreError, ReadTxn, Result as StoreResult, Store, ValueRef};
use futures::StreamExt;

pub use entry::{Kind, Meta};
pub(crate) use txn::Txn;

use crate::server::Shared;

/// Bytes read from the store: mapped (zero-copy, from a snapshot) or owned (from the write
/// transaction).
pub(crate) enum Bytes {
    Ref(ValueRef),
    Own(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Ref(v) => v,
            Bytes::Own(v) => v,
        }
    }
}

/// Key and expiry counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) keys: u64,
    pub(crate) expires: u64,
}

/// A way to read the server's data: a snapshot or the write transaction.
#[allow(async_fn_in_trait)]
pub(crate) trait View {
    /// The value stored at `skey` (a store key, see [`keys`]).
    async fn raw_get(&self, skey: &[u8]) -> StoreResult<Option<Bytes>>;
    /// Up to `limit` entries with store keys in `(from, to)`, in order.
    async fn raw_range(
        &self,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
        limit: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Bytes)>>;
    /// Key and expiry counts as this view sees them.
    fn counts(&self) -> Counts;
}

/// A read snapshot.
pub(crate) struct Snap<'s> {
    pub(crate) txn: ReadTxn,
    shared: &'s Shared,
}

impl<'s> Snap<'s> {
    /// A snapshot of the last commit.
    pub(crate) fn new(shared: &'s Shared) -> Snap<'s> {
        Snap::with(shared.store.read_txn(), shared)
    }

    /// A view of the snapshot `txn`.
    pub(crate) fn with(txn: ReadTxn, shared: &'s Shared) -> Snap<'s> {
        Snap { txn, shared }
    }
}

impl View for Snap<'_> {
    async fn raw_get(&self, skey: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(self.txn.get(skey).await?.map(Bytes::Ref))
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
        let mut entries = self.txn.range((from, to));
        while let Some(e) = entries.next().await {
            let (k, v) = e?;
            out.push((k, Bytes::Ref(v)));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn counts(&self) -> Counts {
        self.shared.keyspace.counts()
    }
}

/// A key's record, found and not expired.
pub(crate) struct Entry {
    pub(crate) meta: Meta,
    value: Bytes,
    at: usize,
}

impl Entry {
    /// The string's bytes (empty for a container).
    pub(crate) fn payload(&self) -> &[u8] {
        &self.value[self.at..]
    }
}

/// A record this server did not write.
pub(crate) fn bad_record(what: &[u8]) -> StoreError {
    StoreError::Corrupt {
        page: None,
        reason: format!(
            "the record of key {:?} is not in the server's format",
            String::from_utf8_lossy(what)
        ),
    }
}

/// Decodes a key record's value.
pub(crate) fn decode(key: &[u8], value: Bytes) -> StoreResult<Entry> {
    let (meta, at) = Meta::decode(&value).ok_or_else(|| bad_record(key))?;
    Ok(Entry { meta, value, at })
}

/// `key`'s record, unless it is missing or expired at `now`.
pub(crate) async fn lookup<V: View>(v: &V, key: &[u8], now: u64) -> StoreResult<Option<Entry>> {
    let Some(value) = v.raw_get(&keys::top(key)).await? else {
        return Ok(None);
    };
    let e = decode(key, value)?;
    Ok((!e.meta.expired(now)).then_some(e))
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The server's record: counts, and the next container id. Kept in memory, written with
/// every commit that changes it.
///
/// The fields here are the record as the last *committed* transaction left it: what DBSIZE
/// and INFO report, like every read. The committer stages a commit and goes on with the
/// next batch while the log writes the first (see `committer`); a write transaction reads
/// the record it builds on from the store itself ([`keys::META`] as the transaction sees
/// it: after every staged commit, and without those a failed log write rolled back).
#[derive(Default)]
pub(crate) struct Keyspace {
    pub(crate) keys: Cell<u64>,
    pub(crate) expires: Cell<u64>,
    pub(crate) next_id: Cell<u64>,
    /// Deleted containers may have items left for the garbage collector.
    pub(crate) garbage: Cell<bool>,
    /// The last commit staged, and the last one whose record was applied above: commits
    /// are answered in order, but their tasks may run in any order.
    staged_seq: Cell<u64>,
    applied_seq: Cell<u64>,
}

/// The record's format tag.
const FORMAT: &[u8; 8] = b"FLSRV001";

impl Keyspace {
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            keys: self.keys.get(),
            expires: self.expires.get(),
        }
    }

    /// Numbers a commit being staged, for [`Keyspace::committed`].
    pub(crate) fn stage(&self) -> u64 {
        let seq = self.staged_seq.get() + 1;
        self.staged_seq.set(seq);
        seq
    }

    /// The staged commit `seq` is committed, leaving `counts` and `next_id`: they become
    /// the visible record unless a later commit's already is.
    pub(crate) fn committed(&self, seq: u64, counts: Counts, next_id: u64) {
        if seq > self.applied_seq.get() {
            self.applied_seq.set(seq);
            self.set(counts, next_id);
        }
    }

    /// Makes `counts` and `next_id` the visible record.
    fn set(&self, counts: Counts, next_id: u64) {
        self.keys.set(counts.keys);
        self.expires.set(counts.expires);
        self.next_id.set(next_id);
    }

    /// The counts and next container id in a record's bytes; `None` if they are not a
    /// record this server wrote.
    pub(crate) fn decode(v: &[u8]) -> Option<(Counts, u64)> {
        if v.len() != 32 || &v[..8] != FORMAT {
            return None;
        }
        let word = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().unwrap());
        Some((
            Counts {
                keys: word(8),
                expires: word(16),
            },
            word(24),
        ))
    }

    /// The record's bytes for these values.
    pub(crate) fn encode(counts: Counts, next_id: u64) -> Vec<u8> {
        let mut v = FORMAT.to_vec();
        v.extend_from_slice(&counts.keys.to_be_bytes());
        v.extend_from_slice(&counts.expires.to_be_bytes());
        v.extend_from_slice(&next_id.to_be_bytes());
        v
    }

    /// Reads the record of the store at open; a new store gets one. A store with data but
    /// no record was not written by this server (or by an older one): refused, with a clear
    /// error, rather than misread.
    pub(crate) async fn open(store: &Store) -> std::io::Result<Keyspace> {
        let ks = Keyspace::default();
        match store.get(keys::META).await.map_err(io_err)? {
            Some(v) => {
                let v = v.copy_checked().map_err(io_err)?;
                let Some((counts, next_id)) = Keyspace::decode(&v) else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the store's server record is not in a format this server knows",
                    ));
                };
                ks.set(counts, next_id);
            }
            None if store.is_empty() => {
                ks.next_id.set(1);
                store
                    .put(keys::META, &Keyspace::encode(Counts::default(), 1))
                    .await
                    .map_err(io_err)?;
            }
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "this store holds data but no server record: it was not written by this \
                     version of `faultless serve` (before issue 12, keys were stored raw); \
                     load it again through the server",
                ))
            }
        }
        let garbage = store
            .range((
                Bound::Included(keys::garbage(0)),
                Bound::Excluded(vec![keys::GARBAGE + 1]),
            ))
            .next()
            .await
            .is_some();
        ks.garbage.set(garbage);
        Ok(ks)
    }
}

fn io_err(e: StoreError) -> std::io::Error {
    match e {
        StoreError::Io(e) => e,
        e => std::io::Error::other(e.to_string()),
    }
}
