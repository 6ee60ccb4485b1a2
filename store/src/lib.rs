//! # faultless-store
//!
//! A memory-mapped, copy-on-write B+tree key-value store (LMDB / bbolt lineage) whose page
//! reads go through faultless's non-blocking page access: a lookup that meets a cold page
//! yields to other tasks instead of stalling the thread.
//!
//! ```no_run
//! # async fn demo() -> faultless_store::Result<()> {
//! use faultless_store::{Store, StoreOptions};
//!
//! let store = Store::open("data.db", StoreOptions::new()).await?;
//! store.put(b"hello", b"world").await?; // durable when it returns (group commit)
//! assert_eq!(&*store.get(b"hello").await?.unwrap(), b"world");
//! # Ok(()) }
//! ```
//!
//! * The file is an array of pages: two meta pages, then branch, leaf, overflow pages, and
//!   the pages of the freelist tree. The format is written down byte by byte in
//!   `docs/store-format.md`; every page carries a crc32c checksum and its own page number.
//! * The file is mapped read-only with a large address-space reservation, so it grows
//!   (fallocate, in steps) without a remap. It is never written through the mapping.
//! * Readers get snapshots (MVCC) and never block the writer; one write transaction at a
//!   time (an async lock); commits write new pages with io_uring, sync, then write the meta
//!   page and sync again. `put`/`delete` from many tasks share one commit (group commit).
//! * Freed pages are reused only once no live reader can see them. Free space is kept as
//!   coalesced runs (best-fit allocation, split and merged), so the file stays within a small
//!   factor of the live data whatever the value sizes.

// Layout (bbolt/redb lines): `format` (page header, checksum, meta), `node` (branch and leaf
// pages), `pager` (mapped page access, verified pages, overflow runs), `read` (snapshots,
// cursors), `btree` (copy-on-write mutation), `write` (transaction state, allocation),
// `alloc` (free runs in memory), `freelist` (free runs on disk), `commit` (freelist update,
// write-out, growth), `txn` and `group` (write transactions, group commit), `open` (file
// checks, meta choice, recovery report), `store` (the handle), `check`, `load`, `stats`.
mod alloc;
mod btree;
mod check;
mod checkpoint;
mod commit;
mod cursor;
mod error;
mod format;
mod freelist;
mod group;
mod load;
mod memtable;
mod merge;
mod node;
mod open;
mod options;
mod pager;
mod range;
mod read;
mod stage;
mod stats;
mod store;
mod txn;
mod types;
mod wal;
mod write;

pub use check::CheckReport;
pub use error::{Error, Result};
pub use open::MetaRecovery;
pub use options::{Durability, StoreOptions, MAX_KEY_LEN, MAX_VALUE_LEN};
pub use read::{RangeStream, ReadTxn, ValueRef};
pub use stats::{FreeSpace, StoreStats};
pub use store::Store;
pub use txn::WriteTxn;
pub use wal::recover::LogRecovery;
