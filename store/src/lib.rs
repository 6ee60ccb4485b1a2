//! # faultless-store
//!
//! A memory-mapped, copy-on-write B+tree key-value store (LMDB / bbolt lineage) whose page
//! reads go through faultless's non-blocking page access: a lookup that meets a cold page
//! yields to other tasks instead of stalling the thread.
//!
//! ```no_run
//! # async fn demo() -> faultless_store::Result<()> {
//! use faultless_store::{Durability, Store, StoreOptions};
//!
//! let store = Store::open("data.db", StoreOptions::new()).await?;
//! store.put(b"hello", b"world").await?; // durable when it returns (group commit)
//! assert_eq!(&*store.get(b"hello").await?.unwrap(), b"world");
//!
//! // Redis's `appendfsync everysec`: acknowledged once written, synced within a second.
//! store.set_durability("everysec".parse::<Durability>()?);
//! store.close().await?; // optional: checkpoint, so the next open replays nothing
//! # Ok(()) }
//! ```
//!
//! * A commit is one record appended to a write-ahead log beside the data file, with every
//!   other commit staged meanwhile (group commit): one write, made durable by `O_DSYNC`
//!   under [`Durability::Always`] (or synced by a timer under `EverySec`). Its writes are
//!   visible from an in-memory *memtable* as soon as the write returns.
//! * Checkpoints, in the background, merge the memtable into the B+tree in key order (each
//!   leaf copied once however many of its keys changed), commit the tree (pages, sync, meta,
//!   sync), and free the log segments that held it. Reopening after a crash replays the
//!   log since the last checkpoint: about a checkpoint interval (a second) of writes.
//! * The data file is an array of pages: two meta pages, then branch, leaf, overflow
//!   pages, and the pages of the freelist tree. The formats (data file and log) are written
//!   down byte by byte in `docs/store-format.md`; every page and every log frame carries a
//!   crc32c checksum.
//! * The file is mapped read-only with a large address-space reservation, so it grows
//!   (fallocate, in steps) without a remap. It is never written through the mapping.
//! * Readers get snapshots (MVCC: a commit id, the tree, and the memtable versions at or
//!   below it) and never block writers; one write transaction at a time (an async lock).
//! * Freed pages are reused only once no live reader can see them and the last durable meta
//!   no longer references them. Free space is kept as coalesced runs (best-fit allocation,
//!   split and merged), so the file stays within a small factor of the live data whatever
//!   the value sizes.
//! * Named tables ([`WriteTxn::table`], [`ReadTxn::table`]) are several keyspaces in the one
//!   tree: a table's entries live under a reserved key prefix and the table's id, so they
//!   share the store's snapshots, transactions and log.

// Layout (bbolt/redb lines, plus a log): `format` (page header, checksum, meta), `node`
// (branch and leaf pages), `pager` (mapped page access, verified pages, overflow runs),
// `read`, `cursor`, `range` (snapshots, the tree's cursor, ranges merged with the
// memtables), `btree` (copy-on-write mutation), `merge` (the checkpoint's one-pass merge),
// `write` (tree transaction state, allocation), `alloc` (free runs in memory), `freelist`
// (free runs on disk), `commit` (the tree's commit: freelist update, write-out, growth),
// `memtable` (commits not yet in the tree), `wal` (the log: format, writer, recovery),
// `stage` (staging commits, the log writer), `txn` and `group` (write transactions,
// put/delete), `overlay` (a write transaction's ranges: its writes over its snapshot),
// `blocking` (the store on a thread of its own, for code outside the runtime), `table`
// (named tables: key layout, catalog, handles), `checkpoint` (checkpoints, the keeper
// task), `pace` (yielding long background work by the clock), `keys` (key order, eight
// bytes at a time), `open` (file checks, meta choice, recovery report), `store` (the
// handle), `check`, `load`, `stats`.
mod alloc;
pub mod blocking;
mod btree;
mod check;
mod checkpoint;
mod commit;
mod cursor;
mod error;
mod format;
mod freelist;
mod group;
mod keys;
mod load;
mod log;
mod memtable;
mod merge;
mod node;
mod open;
mod options;
mod overlay;
mod pace;
mod pager;
mod range;
mod read;
mod stage;
mod stats;
mod store;
mod table;
mod txn;
mod types;
mod wal;
mod write;

pub use check::CheckReport;
pub use error::{Error, Result};
pub use open::MetaRecovery;
pub use options::{Durability, StoreOptions, MAX_KEY_LEN, MAX_VALUE_LEN};
pub use read::{RangeStream, ReadTxn, ValueRef};
pub use stats::{FreeSpace, LatencyStats, StoreStats};
pub use store::Store;
pub use table::layout::{MAX_TABLE_KEY_LEN, MAX_TABLE_NAME_LEN, RESERVED_PREFIX};
pub use table::{ReadTable, WriteTable};
pub use txn::{Committed, WriteTxn};
pub use wal::recover::LogRecovery;
