//! [`Store`]: the handle, opening (lock, meta, mapping), snapshots and reads, and the reuse
//! horizon. Writes live in `txn.rs` (the write transaction), `group.rs` (group commit) and
//! `commit.rs` (the commit protocol).

use std::cell::{Cell, RefCell};
use std::io;
use std::ops::RangeBounds;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use faultless_runtime::fs::File;
use faultless_runtime::mem::{MapOptions, Mapping};
use futures::lock::{Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::format::Meta;
use crate::group::Pending;
use crate::open::{empty_meta, initialise, open_file, read_meta, MetaRecovery};
use crate::options::StoreOptions;
use crate::pager::Pager;
use crate::read::{RangeStream, ReadTxn, Readers, ValueRef};
use crate::stats::Counters;
use crate::types::{PageNo, TxId};
use crate::write::FreeHome;

pub(crate) struct Inner {
    pub(crate) pager: Rc<Pager>,
    pub(crate) meta: Cell<Meta>,
    pub(crate) readers: Rc<Readers>,
    pub(crate) write_lock: Arc<Mutex<()>>,
    pub(crate) pending: RefCell<Vec<Pending>>,
    pub(crate) committer_running: Cell<bool>,
    /// The allocator's free runs between write transactions.
    pub(crate) free: FreeHome,
    pub(crate) file_len: Cell<u64>,
    pub(crate) reserve: u64,
    pub(crate) read_only: bool,
    /// Why writes are refused, once a failure left the file in a state this process cannot
    /// commit on top of (a failed meta write, a file truncated under the store).
    pub(crate) poisoned: RefCell<Option<String>>,
    /// What opening found wrong with a meta page.
    pub(crate) recovery: Option<MetaRecovery>,
    pub(crate) counters: RefCell<Counters>,
    /// The file (holds the flock for the store's lifetime; `fstat`s it).
    pub(crate) file: std::fs::File,
}

/// A memory-mapped copy-on-write B+tree key-value store. Cheap to clone; belongs to the
/// runtime thread that opened it.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Rc<Inner>,
}

impl Store {
    /// Opens (or creates) the store at `path`. Opening reads the two meta pages and maps
    /// the file: no load phase, whatever the store's size.
    pub async fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        let file = open_file(path, options.read_only, options.create)?;
        let lock = if options.read_only {
            libc::LOCK_SH
        } else {
            libc::LOCK_EX
        };
        // A writer that was just killed can hold the lock for a moment after it exits: the
        // kernel tears its io_uring down asynchronously, and requests still in flight keep
        // the file open. So a held lock is retried for up to a second before `Locked`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            // SAFETY: flock on an fd we own; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), lock | libc::LOCK_NB) } == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(Error::Io(e));
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Locked);
            }
            faultless_runtime::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut len = file.metadata()?.len();
        // An empty file is an empty store that was never initialised (see `open.rs`).
        let (meta, recovery) = if len == 0 && options.read_only {
            (empty_meta(), None)
        } else {
            if len == 0 {
                len = initialise(&file)?;
            }
            read_meta(&file, len)?
        };
        let map_options = MapOptions::new()
            .backend(options.backend)
            .reserve(options.reserve.max(len));
        // SAFETY: the store holds an flock on the file (exclusive when it writes), writes only
        // pages no live snapshot can reach (copy-on-write; freed pages are reused only past
        // the reuse horizon), reads the in-place meta pages with pread, never through the
        // mapping, and never shrinks the file. A foreign truncation breaks this; the SIGBUS
        // net and `check_intact` turn it into errors.
        let map = unsafe { Mapping::from_file(file.try_clone()?, map_options)? };
        let pager = Pager::new(
            map,
            File::from_std(file.try_clone()?),
            meta.page_size as usize,
        );
        pager.mark_verified(PageNo(0), 2);
        Ok(Store {
            inner: Rc::new(Inner {
                pager: Rc::new(pager),
                meta: Cell::new(meta),
                readers: Rc::new(Readers::default()),
                write_lock: Arc::new(Mutex::new(())),
                pending: RefCell::new(Vec::new()),
                committer_running: Cell::new(false),
                free: FreeHome::default(),
                file_len: Cell::new(len),
                reserve: options.reserve.max(len),
                read_only: options.read_only,
                poisoned: RefCell::new(None),
                recovery,
                counters: RefCell::new(Counters::default()),
                file,
            }),
        })
    }

    pub(crate) fn pager(&self) -> &Rc<Pager> {
        &self.inner.pager
    }

    /// The last committed meta.
    pub(crate) fn meta(&self) -> Meta {
        self.inner.meta.get()
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

    /// A snapshot of the last committed version.
    pub fn read_txn(&self) -> ReadTxn {
        ReadTxn::new(
            self.inner.pager.clone(),
            self.inner.readers.clone(),
            self.inner.meta.get(),
        )
    }

    /// The value of `key` in the last committed version, zero-copy.
    pub async fn get(&self, key: &[u8]) -> Result<Option<ValueRef>> {
        self.read_txn().get(key).await
    }

    /// Entries with keys in `bounds`, in key order, from the last committed version.
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        self.read_txn().range(bounds)
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.inner.meta.get().entries
    }

    /// True if the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The reuse horizon: pages freed by commit `T` may be overwritten once `T` is at or below
    /// it. A page freed by `T` is still part of every version before `T`, so the horizon is
    /// the oldest snapshot a live reader holds (or the last commit when there is none). This
    /// is the one place that decides it: a write-ahead log will also bound it by the last
    /// commit whose meta is durable.
    pub(crate) fn reuse_horizon(&self) -> TxId {
        let last = self.inner.meta.get().txid;
        self.inner.readers.oldest().unwrap_or(last).min(last)
    }

    /// Takes the write lock for the bulk loader; returns the current meta with it.
    pub(crate) async fn lock_for_load(&self) -> Result<(Meta, OwnedMutexGuard<()>)> {
        self.writable()?;
        let guard = self.inner.write_lock.clone().lock_owned().await;
        Ok((self.inner.meta.get(), guard))
    }

    /// Syncs the data written so far and commits `meta` (the bulk loader's last step).
    pub(crate) async fn publish(&self, meta: Meta, guard: OwnedMutexGuard<()>) -> Result<()> {
        let r = self.write_out(meta, Vec::new()).await;
        drop(guard);
        r
    }
}
