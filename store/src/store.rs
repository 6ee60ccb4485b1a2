//! [`Store`]: the handle, opening (lock, meta, mapping, log recovery), snapshots and reads,
//! and the reuse horizon. The write path lives in `stage.rs` (commits into the memtable and
//! the log), `group.rs` (`put`/`delete`), `txn.rs` (write transactions), `checkpoint.rs`
//! (memtable into the tree) and `commit.rs` (the tree's commit protocol).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::ops::RangeBounds;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use faultless_runtime::fs::File;
use faultless_runtime::mem::{MapOptions, Mapping};
use futures::lock::Mutex;

use crate::checkpoint::CheckpointState;
use crate::error::{Error, Result};
use crate::format::{Meta, VERSION};
use crate::memtable::{Found, MemTable};
use crate::open::{empty_meta, initialise, open_file, read_meta, write_meta, MetaRecovery};
use crate::options::{Durability, StoreOptions};
use crate::pager::Pager;
use crate::read::{RangeStream, ReadTxn, Readers, SnapshotParts, ValueRef};
use crate::stage::Commits;
use crate::stats::Counters;
use crate::types::{PageNo, TxId};
use crate::wal::format::{OP_DELETE, OP_PUT_UNRESOLVED};
use crate::wal::recover::{recover, LogRecovery, Replayed};
use crate::wal::{new_store_id, Wal};
use crate::write::FreeHome;

/// The memtables above the tree (a snapshot holds a copy of the `Rc`s it saw).
#[derive(Clone)]
pub(crate) struct Mems {
    /// Where commits go.
    pub(crate) active: Rc<MemTable>,
    /// The memtable a checkpoint is merging into the tree, if one is.
    pub(crate) frozen: Option<Rc<MemTable>>,
}

impl Mems {
    /// The memtables, newest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Rc<MemTable>> {
        std::iter::once(&self.active).chain(self.frozen.as_ref())
    }

    /// The newest version of `key` at or below commit `at` (`None`: the newest of all) in
    /// any memtable; `None` if they have none (the tree decides).
    pub(crate) fn get(&self, key: &[u8], at: Option<u64>) -> Found {
        if let Some(found) = self.active.get(key, at) {
            return Some(found);
        }
        self.frozen.as_ref().and_then(|f| f.get(key, at))
    }
}

/// When checkpoints start (see [`StoreOptions`]).
pub(crate) struct Tuning {
    pub(crate) interval: Duration,
    pub(crate) log_bytes: u64,
    pub(crate) mem_bytes: u64,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) pager: Rc<Pager>,
    /// The tree's meta: the last checkpoint, always durable.
    pub(crate) meta: Cell<Meta>,
    /// The last meta known to be on stable storage (a crash recovers to it). Equal to `meta`
    /// here, since a checkpoint publishes its meta only once synced; kept apart because it is
    /// the bound page reuse must respect.
    pub(crate) durable_meta: Cell<Meta>,
    /// Readers of the tree, by the tree txid they read.
    pub(crate) readers: Rc<Readers>,
    /// Readers by the commit id they see (the memtable keeps the versions they need).
    pub(crate) commit_readers: Rc<Readers>,
    /// Serialises the tree's writers: checkpoints and the bulk loader.
    pub(crate) tree_lock: Arc<Mutex<()>>,
    /// Held by a write transaction for its life, and by `put`/`delete` while they stage.
    pub(crate) write_lock: Arc<Mutex<()>>,
    pub(crate) mem: RefCell<Mems>,
    pub(crate) commits: RefCell<Commits>,
    /// The log (`None` when read-only).
    pub(crate) wal: Option<Rc<Wal>>,
    pub(crate) durability: Cell<Durability>,
    pub(crate) tuning: Tuning,
    pub(crate) checkpoint: CheckpointState,
    /// True while the log writer task runs.
    pub(crate) writer_running: Cell<bool>,
    /// `put`/`delete` calls on their way to staging (looking their key up, or waiting for
    /// the lock): the log writer lets them join its next write.
    pub(crate) stagers: Cell<usize>,
    /// True while the keeper task (checkpoint triggers, `everysec` syncs) runs.
    pub(crate) keeper_running: Cell<bool>,
    /// The keeper task holds the store (between two sleeps): `close` waits for it, so that
    /// no suspended task keeps the file (and its lock) open after the runtime stops.
    pub(crate) keeper_busy: Cell<bool>,
    /// Lookups of unresolved puts still running (`group.rs`): each holds the store.
    pub(crate) lookups: Cell<usize>,
    /// The allocator's free runs between write transactions.
    pub(crate) free: FreeHome,
    pub(crate) file_len: Cell<u64>,
    pub(crate) reserve: u64,
    pub(crate) read_only: bool,
    /// Why writes are refused, once a failure left the file in a state this process cannot
    /// commit on top of (a failed meta write or log sync, a file truncated under the store).
    pub(crate) poisoned: RefCell<Option<String>>,
    /// What opening found wrong with a meta page.
    pub(crate) recovery: Option<MetaRecovery>,
    /// What opening found in the log.
    pub(crate) log_recovery: LogRecovery,
    pub(crate) counters: RefCell<Counters>,
    /// The file (holds the flock for the store's lifetime; `fstat`s it).
    pub(crate) file: std::fs::File,
}

/// A memory-mapped copy-on-write B+tree key-value store with a write-ahead log. Cheap to
/// clone; belongs to the runtime thread that opened it.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Rc<Inner>,
}

async fn lock_file(file: &std::fs::File, read_only: bool) -> Result<()> {
    let lock = if read_only {
        libc::LOCK_SH
    } else {
        libc::LOCK_EX
    };
    // A writer that was just killed can hold the lock for a moment after it exits: the
    // kernel tears its io_uring down asynchronously, and requests still in flight keep the
    // file open. So a held lock is retried for up to a second before `Locked`.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        // SAFETY: flock on an fd we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), lock | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Error::Io(e));
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Locked);
        }
        faultless_runtime::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Store {
    /// Opens (or creates) the store at `path`: reads the two meta pages, maps the file (no
    /// load phase, whatever the store's size), and replays the log written since the last
    /// checkpoint into memory (at most about a checkpoint interval of writes).
    pub async fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        let file = open_file(path, options.read_only, options.create)?;
        let started = std::time::Instant::now();
        lock_file(&file, options.read_only).await?;
        let _locked_at = started.elapsed();
        let mut len = file.metadata()?.len();
        // An empty file is an empty store that was never initialised (see `open.rs`).
        let (mut meta, recovery) = if len == 0 && options.read_only {
            (empty_meta(0), None)
        } else {
            if len == 0 {
                len = initialise(&file, new_store_id())?;
            }
            read_meta(&file, len)?
        };
        if !options.read_only && (meta.version < VERSION || meta.store_id == 0) {
            // A store from before the log: give it an id (its log segments carry it) and
            // write the meta in this version, as a commit of its own.
            meta = Meta {
                txid: meta.txid.next(),
                store_id: new_store_id(),
                version: VERSION,
                ..meta
            };
            write_meta(&file, &meta)?;
        }
        let mut map_options = MapOptions::new()
            .backend(options.backend)
            .residency(options.residency)
            .reserve(options.reserve.max(len));
        if let Some(budget) = options.resident_budget {
            map_options = map_options.resident_budget(budget);
        }
        if let Some(nice) = options.page_in_nice {
            map_options = map_options.page_in_nice(nice);
        }
        // SAFETY: the store holds an flock on the file (exclusive when it writes), writes only
        // pages no live snapshot can reach (copy-on-write; freed pages are reused only past
        // the reuse horizon: the oldest reader's tree and the last durable meta), reads the
        // in-place meta pages with pread, never through the mapping, and never shrinks the
        // file. A foreign truncation breaks this; the SIGBUS net and `check_intact` turn it
        // into errors.
        let map = unsafe { Mapping::from_file(file.try_clone()?, map_options)? };
        let pager = Pager::new(
            map,
            File::from_std(file.try_clone()?),
            meta.page_size as usize,
        );
        pager.mark_verified(PageNo(0), 2);
        let _mapped_at = started.elapsed();
        // Replay the log into the active memtable.
        let active = MemTable::new();
        let mut entries = meta.entries as i64;
        // Unresolved puts (`group.rs`) replayed and not yet resolved, with their keys.
        let mut unresolved: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut rec = recover(path, &meta, |r| match r {
            Replayed::Commit(txid, ops) => {
                for op in ops {
                    if op.kind == OP_PUT_UNRESOLVED {
                        match active.get(op.key, None) {
                            // A commit replayed before it wrote the key: it was in the
                            // memtables when the put was staged, unless the tree the log
                            // continues from is older than the one the put saw (the newest
                            // meta was lost); either way the memtable answers.
                            Some(found) => entries += found.is_none() as i64,
                            None => {
                                unresolved.insert(txid, op.key.to_vec());
                            }
                        }
                    }
                    let value = (op.kind != OP_DELETE).then(|| op.value.into());
                    active.insert(op.key, txid, value, |_, _| true);
                    entries += op.delta();
                }
            }
            // A resolution of a put the replay resolved already, or one the tree holds, is
            // not needed.
            Replayed::Resolution { txid, existed } => {
                if unresolved.remove(&txid).is_some() {
                    entries += !existed as i64;
                }
            }
        })
        .await?;
        // Puts whose resolution never reached the log (the last frames before a crash): no
        // commit between the tree and them wrote their keys, so the tree answers.
        let lookups = unresolved
            .values()
            .map(|key| crate::read::tree_contains(&pager, meta.root, key));
        for existed in futures::future::join_all(lookups).await {
            match existed {
                Ok(existed) => entries += !existed as i64,
                // A damaged tree page: the store still opens (reads of that page fail, and
                // `check` names it); the put is counted as replacing a key.
                Err(_) => rec.report.uncounted += 1,
            }
        }
        rec.report.looked_up = unresolved.len() as u64;
        if entries < 0 {
            return Err(Error::corrupt(
                None,
                "the log deletes more keys than the store holds",
            ));
        }
        let _replayed_at = started.elapsed();
        let wal = if options.read_only {
            None
        } else {
            Some(Rc::new(Wal::open(path, meta.store_id, &rec).await?))
        };
        crate::log::event!(
            debug,
            lock_ms = _locked_at.as_secs_f64() * 1e3,
            map_ms = (_mapped_at - _locked_at).as_secs_f64() * 1e3,
            replay_ms = (_replayed_at - _mapped_at).as_secs_f64() * 1e3,
            log_open_ms = (started.elapsed() - _replayed_at).as_secs_f64() * 1e3,
            "store open phases"
        );
        let last = rec.last_txid;
        let store = Store {
            inner: Rc::new(Inner {
                path: path.to_path_buf(),
                pager: Rc::new(pager),
                meta: Cell::new(meta),
                durable_meta: Cell::new(meta),
                readers: Rc::new(Readers::default()),
                commit_readers: Rc::new(Readers::default()),
                tree_lock: Arc::new(Mutex::new(())),
                write_lock: Arc::new(Mutex::new(())),
                mem: RefCell::new(Mems {
                    active: Rc::new(active),
                    frozen: None,
                }),
                commits: RefCell::new(Commits::new(last, entries as u64)),
                wal,
                durability: Cell::new(options.durability),
                tuning: Tuning {
                    interval: options.checkpoint_interval,
                    log_bytes: options.checkpoint_log_bytes,
                    mem_bytes: options.memtable_bytes,
                },
                checkpoint: CheckpointState::default(),
                writer_running: Cell::new(false),
                stagers: Cell::new(0),
                keeper_running: Cell::new(false),
                keeper_busy: Cell::new(false),
                lookups: Cell::new(0),
                free: FreeHome::default(),
                file_len: Cell::new(len),
                reserve: options.reserve.max(len),
                read_only: options.read_only,
                poisoned: RefCell::new(None),
                recovery,
                log_recovery: rec.report.clone(),
                counters: RefCell::new(Counters::default()),
                file,
            }),
        };
        if rec.must_reset && !options.read_only {
            // Frames beyond a torn record were discarded: take what was replayed into the
            // tree, then start the log afresh, so those frames can never come back.
            store.checkpoint().await?;
            let covered = store.inner.meta.get().log_txid;
            store.wal().reset(covered).await?;
        }
        if !options.read_only && !store.inner.mem.borrow().active.is_empty() {
            store.start_keeper();
        }
        crate::log::event!(
            info,
            path = %store.inner.path.display(),
            txid = store.inner.meta.get().txid.0,
            replayed_commits = store.inner.log_recovery.replayed_commits,
            replayed_bytes = store.inner.log_recovery.replayed_bytes,
            torn_tail = store.inner.log_recovery.torn_tail.is_some(),
            "store opened"
        );
        #[cfg(feature = "tracing")]
        if let Some(m) = &store.inner.recovery {
            crate::log::event!(warn, "store opened at its older meta page: {m}");
        }
        Ok(store)
    }

    pub(crate) fn pager(&self) -> &Rc<Pager> {
        &self.inner.pager
    }

    /// The log (read-write stores only).
    pub(crate) fn wal(&self) -> &Rc<Wal> {
        self.inner
            .wal
            .as_ref()
            .expect("a read-write store has a log")
    }

    /// The path of the store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Fails if the file was truncated under the mapping since the store was opened; see
    /// [`ReadTxn::check_intact`]. Check it after copying value bytes and before replying.
    pub fn check_intact(&self) -> Result<()> {
        self.inner.pager.check_intact()
    }

    /// What opening found wrong with one of the two meta pages, if anything: the store then
    /// opened at the other one, and [`MetaRecovery::lost_txid`] names the commit lost if the
    /// damaged page held the newer. Log it at open; `check` reports it as a problem.
    pub fn recovery_report(&self) -> Option<&MetaRecovery> {
        self.inner.recovery.as_ref()
    }

    /// What opening found in the log: the commits replayed, and a torn record cut off (or
    /// frames discarded with it) if there was one. Worth logging at open when
    /// [`LogRecovery::torn_tail`] is set.
    pub fn log_recovery(&self) -> &LogRecovery {
        &self.inner.log_recovery
    }

    /// The parts of a snapshot of the last visible commit.
    fn snapshot_parts(&self) -> SnapshotParts {
        let i = &self.inner;
        let c = i.commits.borrow();
        SnapshotParts {
            pager: i.pager.clone(),
            readers: i.readers.clone(),
            meta: i.meta.get(),
            commit_readers: i.commit_readers.clone(),
            txid: c.visible,
            entries: c.visible_entries,
            mems: i.mem.borrow().clone(),
        }
    }

    /// A snapshot of the last visible commit (with `Durability::Always`, the last durable
    /// one).
    pub fn read_txn(&self) -> ReadTxn {
        ReadTxn::new(self.snapshot_parts())
    }

    /// The value of `key` in the last visible commit, zero-copy.
    /// Keys in the named tables' reserved region are refused, as by [`ReadTxn::get`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<ValueRef>> {
        crate::table::layout::check_unreserved(key)?;
        // Recent commits first, without a snapshot: nothing here waits.
        let visible = self.inner.commits.borrow().visible;
        let found = self.inner.mem.borrow().get(key, Some(visible));
        match found {
            Some(v) => Ok(v.map(ValueRef::mem)),
            None => self.read_txn().tree_get(key).await,
        }
    }

    /// Entries with keys in `bounds`, in key order, from the last visible commit.
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        self.read_txn().range(bounds)
    }

    /// Entries with keys in `bounds`, in descending key order, from the last visible
    /// commit; see [`ReadTxn::range_rev`].
    pub fn range_rev<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        self.read_txn().range_rev(bounds)
    }

    /// Entries whose keys begin with `prefix`, in key order, from the last visible commit;
    /// see [`ReadTxn::prefix`].
    pub fn prefix(&self, prefix: &[u8]) -> RangeStream {
        self.read_txn().prefix(prefix)
    }

    /// Number of keys, the named tables' entries (and their catalog) included.
    pub fn len(&self) -> u64 {
        self.inner.commits.borrow().visible_entries
    }

    /// True if the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The reuse horizon: pages freed by tree commit `T` may be overwritten once `T` is at or
    /// below it. It is the one place that decides, from two bounds:
    ///
    /// * the oldest live reader's tree: a page freed by `T` is still part of every tree
    ///   before `T`;
    /// * the last *durable* meta: a crash recovers to it and replays the log on top, so the
    ///   pages it references must survive until a later meta is durable.
    ///
    /// A checkpoint publishes its meta only after syncing it, so the second bound is the last
    /// checkpoint today; it is kept explicit so that nothing publishing a tree ahead of its
    /// durability can quietly break it.
    pub(crate) fn reuse_horizon(&self) -> TxId {
        let durable = self.inner.durable_meta.get().txid;
        let last = self.inner.meta.get().txid;
        self.inner
            .readers
            .oldest()
            .unwrap_or(last)
            .min(last)
            .min(durable)
    }
}
