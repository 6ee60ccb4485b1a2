//! [`Store`]: opening, transactions, group commit, stats.

use std::cell::{Cell, RefCell};
use std::io;
use std::ops::RangeBounds;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use faultless_runtime::fs::File;
use faultless_runtime::mem::{Backend, MapOptions, Mapping, MemStats};
use futures::channel::oneshot;
use futures::lock::{Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::format::Meta;
use crate::freelist;
use crate::open::{empty_meta, initialise, open_file, read_meta, MetaRecovery};
use crate::pager::Pager;
use crate::read::{RangeStream, ReadTxn, Readers, ValueRef};
use crate::types::{PageNo, TxId};
use crate::write::{FreeHome, Which, WriteState};

/// Longest key, in bytes (keys are 1 to this many bytes).
pub const MAX_KEY_LEN: usize = 512;
/// Longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    backend: Backend,
    reserve: u64,
    read_only: bool,
    create: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::new()
    }
}

impl StoreOptions {
    /// Defaults: the `auto` prefetch path, 64 GiB of address space reserved, read-write,
    /// created if missing.
    pub fn new() -> StoreOptions {
        StoreOptions {
            backend: Backend::Auto,
            reserve: 64 << 30,
            read_only: false,
            create: true,
        }
    }
    /// The prefetch path page reads use.
    pub fn backend(mut self, b: Backend) -> Self {
        self.backend = b;
        self
    }
    /// Address space reserved for the mapping: the file grows up to this size without a
    /// remap, and past it only by reopening.
    pub fn reserve(mut self, bytes: u64) -> Self {
        self.reserve = bytes;
        self
    }
    /// Open without the write lock; writes fail with `Error::ReadOnly`.
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }
    /// Create the store if it does not exist (default true).
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }
}

enum PendingOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

struct Pending {
    op: PendingOp,
    done: oneshot::Sender<Result<bool>>,
}

#[derive(Default)]
struct Counters {
    commits: u64,
    grouped_ops: u64,
    syncs: u64,
}

struct Inner {
    pager: Rc<Pager>,
    meta: Cell<Meta>,
    readers: Rc<Readers>,
    write_lock: Arc<Mutex<()>>,
    pending: RefCell<Vec<Pending>>,
    committer_running: Cell<bool>,
    /// The allocator's free runs between write transactions.
    free: FreeHome,
    file_len: Cell<u64>,
    reserve: u64,
    read_only: bool,
    /// Why writes are refused, once a failure left the file in a state this process cannot
    /// commit on top of (a failed meta write, a file truncated under the store).
    poisoned: RefCell<Option<String>>,
    /// What opening found wrong with a meta page.
    recovery: Option<MetaRecovery>,
    counters: RefCell<Counters>,
    /// The file (holds the flock for the store's lifetime; `fstat`s it).
    file: std::fs::File,
}

/// A memory-mapped copy-on-write B+tree key-value store. Cheap to clone; belongs to the
/// runtime thread that opened it.
#[derive(Clone)]
pub struct Store {
    inner: Rc<Inner>,
}

/// What the store looks like and has done.
#[derive(Clone, Debug)]
pub struct StoreStats {
    /// Id of the last commit.
    pub txid: u64,
    /// Number of keys.
    pub entries: u64,
    /// Pages in use or free (the high-water mark).
    pub page_count: u64,
    /// Page size in bytes.
    pub page_size: u32,
    /// The file's size in bytes (it grows in steps ahead of the page count).
    pub file_size: u64,
    /// Live read transactions.
    pub readers: usize,
    /// The snapshot the oldest live reader holds.
    pub oldest_reader_txid: Option<u64>,
    /// Commits since that snapshot: pages freed by them cannot be reused while it lives, so
    /// a large lag means a long-lived reader is making the file grow.
    pub oldest_reader_lag: u64,
    /// Pages free to every reader, from the allocator's memory: `None` until the first
    /// write transaction loaded it (see [`Store::free_space`] for a figure at any time).
    pub free_pages: Option<u64>,
    /// The longest run of free pages, as `free_pages`.
    pub largest_free_run: Option<u64>,
    /// Commits made by this process.
    pub commits: u64,
    /// `put`/`delete` calls that went through group commit.
    pub grouped_ops: u64,
    /// fdatasync calls made by commits.
    pub syncs: u64,
    /// The page-access layer's stats (prefetches, waits, executor faults).
    pub pages: MemStats,
}

/// Free space as the last commit's freelist records it (see [`Store::free_space`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FreeSpace {
    /// Pages free to every reader: the next allocations take them.
    pub free_pages: u64,
    /// Runs those pages form (contiguous free pages are one run).
    pub free_runs: u64,
    /// The longest run, in pages: the largest value that fits without growing the file is
    /// about this many pages.
    pub largest_free_run: u64,
    /// Pages freed by recent commits that a reader of an older snapshot may still read; they
    /// become free once no reader is that old.
    pub pending_pages: u64,
}

fn share(e: &Error) -> Error {
    match e {
        Error::Io(io) => Error::Io(io::Error::new(io.kind(), io.to_string())),
        Error::Corrupt { page, reason } => Error::Corrupt {
            page: *page,
            reason: reason.clone(),
        },
        Error::Locked => Error::Locked,
        Error::KeyTooLarge(n) => Error::KeyTooLarge(*n),
        Error::ValueTooLarge(n) => Error::ValueTooLarge(*n),
        Error::ReadOnly => Error::ReadOnly,
        Error::BadInput(s) => Error::BadInput(s.clone()),
    }
}

pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLarge(key.len()));
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLarge(value.len()));
    }
    Ok(())
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
        let map = Mapping::from_file(
            file.try_clone()?,
            MapOptions::new()
                .backend(options.backend)
                .reserve(options.reserve.max(len)),
        )?;
        let pager = Pager::new(
            map,
            File::from_std(file.try_clone()?),
            meta.page_size as usize,
        );
        pager.mark_verified(0, 2);
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

    /// Refuses writes from now on, with `why` (the store must be reopened).
    fn poison(&self, why: String) -> Error {
        let e = Error::Io(io::Error::other(format!("writes are refused: {why}")));
        *self.inner.poisoned.borrow_mut() = Some(why);
        e
    }

    /// Fails (and poisons the writer) if the file no longer holds every page of the last
    /// commit: it was truncated under the store. Committing on top would write the new pages
    /// past a hole of zeros and leave a store that reopens with acknowledged keys missing.
    /// A file cut only in its preallocated tail is fine: it is grown again as needed.
    fn check_not_truncated(&self) -> Result<()> {
        let committed = self.inner.meta.get();
        let need = committed.page_count * committed.page_size as u64;
        let len = self.inner.file.metadata()?.len();
        if len < need || self.inner.pager.check_intact().is_err() {
            return Err(self.poison(format!(
                "the store's file was truncated under it: the last commit uses {need} bytes, \
                 the file has {len}; reopen it (opening reports what is missing)"
            )));
        }
        if len < self.inner.file_len.get() {
            self.inner.file_len.set(len);
        }
        Ok(())
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

    fn writable(&self) -> Result<()> {
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

    /// The reuse horizon: pages freed by commit `T` may be overwritten once `T` is at or below
    /// it. A page freed by `T` is still part of every version before `T`, so the horizon is
    /// the oldest snapshot a live reader holds (or the last commit when there is none). This
    /// is the one place that decides it: a write-ahead log will also bound it by the last
    /// commit whose meta is durable.
    pub(crate) fn reuse_horizon(&self) -> TxId {
        let last = self.inner.meta.get().txid;
        TxId(self.inner.readers.oldest().unwrap_or(last).min(last))
    }

    /// Inserts or replaces `key`. Calls from many tasks are grouped into one durable commit;
    /// this returns once the value is durable.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        self.submit(PendingOp::Put(key.to_vec(), value.to_vec()))
            .await
            .map(|_| ())
    }

    /// Deletes `key`, durably (grouped like `put`). Returns true if it existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.submit(PendingOp::Delete(key.to_vec())).await
    }

    async fn submit(&self, op: PendingOp) -> Result<bool> {
        self.writable()?;
        let (done, rx) = oneshot::channel();
        self.inner.pending.borrow_mut().push(Pending { op, done });
        if !self.inner.committer_running.replace(true) {
            // The committer is its own task, so a caller that stops waiting cannot
            // interrupt a commit that others wait for.
            let store = self.clone();
            faultless_runtime::spawn(async move { store.run_committer().await }).detach();
        }
        rx.await
            .unwrap_or_else(|_| Err(Error::Io(io::Error::other("the commit was abandoned"))))
    }

    async fn run_committer(&self) {
        loop {
            let txn = self.write_txn().await;
            let batch: Vec<Pending> = std::mem::take(&mut *self.inner.pending.borrow_mut());
            if batch.is_empty() {
                self.inner.committer_running.set(false);
                return;
            }
            let mut txn = match txn {
                Ok(t) => t,
                Err(e) => {
                    for p in batch {
                        let _ = p.done.send(Err(share(&e)));
                    }
                    continue;
                }
            };
            self.inner.counters.borrow_mut().grouped_ops += batch.len() as u64;
            // Bring every page the batch will touch in concurrently first (one lookup per
            // key on the current snapshot), so applying it does not wait for cold pages one
            // at a time. Errors surface again, properly, when the batch is applied.
            let snapshot = self.read_txn();
            let lookups = batch.iter().map(|p| {
                let key = match &p.op {
                    PendingOp::Put(k, _) | PendingOp::Delete(k) => k.as_slice(),
                };
                snapshot.get(key)
            });
            drop(futures::future::join_all(lookups).await);
            drop(snapshot);
            let mut results = Vec::with_capacity(batch.len());
            let mut failed = None;
            for p in &batch {
                let r = match &p.op {
                    PendingOp::Put(k, v) => txn.put(k, v).await.map(|_| true),
                    PendingOp::Delete(k) => txn.delete(k).await,
                };
                if let Err(e) = &r {
                    if matches!(e, Error::Io(_) | Error::Corrupt { .. }) {
                        failed = Some(share(e));
                        break;
                    }
                }
                results.push(r);
            }
            let outcome = match failed {
                Some(e) => Err(e),
                None => txn.commit().await,
            };
            match outcome {
                Ok(()) => {
                    for (p, r) in batch.into_iter().zip(results) {
                        let _ = p.done.send(r);
                    }
                }
                Err(e) => {
                    for p in batch {
                        let _ = p.done.send(Err(share(&e)));
                    }
                }
            }
        }
    }

    /// What the store looks like and has done.
    pub fn stats(&self) -> StoreStats {
        let meta = self.inner.meta.get();
        let c = self.inner.counters.borrow();
        let oldest = self.inner.readers.oldest();
        StoreStats {
            txid: meta.txid,
            entries: meta.entries,
            page_count: meta.page_count,
            page_size: meta.page_size,
            file_size: self.inner.file_len.get(),
            readers: self.inner.readers.count(),
            oldest_reader_txid: oldest,
            oldest_reader_lag: oldest.map_or(0, |o| meta.txid - o),
            free_pages: self.inner.free.borrow().as_ref().map(|f| f.pages()),
            largest_free_run: self.inner.free.borrow().as_ref().map(|f| f.largest()),
            commits: c.commits,
            grouped_ops: c.grouped_ops,
            syncs: c.syncs,
            pages: self.inner.pager.map.stats(),
        }
    }

    /// The allocator's free runs in memory, if loaded and no write transaction holds them,
    /// with the commit they describe (for `check`).
    pub(crate) fn free_runs_in_memory(&self) -> Option<(u64, Vec<(u64, u64)>)> {
        let free = self.inner.free.borrow();
        let runs = free.as_ref()?.iter().map(|(s, l)| (s.0, l)).collect();
        Some((self.inner.meta.get().txid, runs))
    }

    /// Free space as the last commit recorded it: free pages, the runs they form and the
    /// longest, and pages still pending (reads the freelist tree: cost proportional to its
    /// size).
    pub async fn free_space(&self) -> Result<FreeSpace> {
        let snapshot = self.read_txn(); // keeps the freelist's pages from reuse meanwhile
        let root = PageNo(self.inner.meta.get().free_root);
        let runs = freelist::scan_all(&self.inner.pager, root).await?;
        drop(snapshot);
        let mut f = FreeSpace::default();
        for r in runs {
            if r.txid == TxId(0) {
                f.free_pages += r.len;
                f.free_runs += 1;
                f.largest_free_run = f.largest_free_run.max(r.len);
            } else {
                f.pending_pages += r.len;
            }
        }
        Ok(f)
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

    /// Grows the file ahead of `page_count` pages, in doubling steps of at most 1 GiB.
    pub(crate) async fn ensure_size(&self, page_count: u64) -> Result<()> {
        let ps = self.inner.pager.page_size as u64;
        let need = page_count * ps;
        let have = self.inner.file_len.get();
        if need <= have {
            return Ok(());
        }
        if need > self.inner.reserve {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the store needs {need} bytes but its reservation is {} bytes; reopen it with a larger StoreOptions::reserve",
                    self.inner.reserve
                ),
            )));
        }
        let step = have.clamp(1 << 20, 1 << 30);
        let target = (have + step)
            .max(need)
            .min(self.inner.reserve)
            .next_multiple_of(ps);
        let mut grown = self.grow_to(target).await.map(|()| target);
        if grown.is_err() && target > need {
            // The step did not fit (a full disk, a file size limit): grow by what this commit
            // needs, so writes go on while there is room for them.
            grown = self.grow_to(need).await.map(|()| need);
        }
        match grown {
            Ok(len) => {
                self.inner.file_len.set(len);
                Ok(())
            }
            Err(e) => {
                // A failed fallocate may have grown the file part of the way: go by its real
                // size from now on, so the next commit retries from there.
                if let Ok(m) = self.inner.file.metadata() {
                    self.inner.file_len.set(m.len());
                }
                Err(e.into())
            }
        }
    }

    /// Makes the file at least `len` bytes long, with its blocks allocated where the file
    /// system supports it. Never shrinks it.
    async fn grow_to(&self, len: u64) -> io::Result<()> {
        let file = &self.inner.pager.file;
        match file.fallocate(0, len, 0).await {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                if self.inner.file.metadata()?.len() < len {
                    file.set_len(len).await?;
                }
                Ok(())
            }
            r => r,
        }
    }

    /// Writes a finished transaction: pages, sync, meta, sync. Runs as its own task.
    async fn write_out(&self, meta: Meta, runs: Vec<(u64, Vec<u8>)>) -> Result<()> {
        let pager = &self.inner.pager;
        let ps = pager.page_size as u64;
        self.check_not_truncated()?;
        self.ensure_size(meta.page_count).await?;
        let writes = runs.iter().map(|(pgno, buf)| {
            let buf = buf.clone();
            let at = pgno * ps;
            async move { pager.file.write_all_at(buf, at).await.0 }
        });
        for r in futures::future::join_all(writes).await {
            r?;
        }
        pager.file.sync_data().await?;
        // Truncated while the pages were written? Then the meta must not point at them.
        self.check_not_truncated()?;
        let slot = meta.txid % 2;
        let (res, _) = pager.file.write_all_at(meta.to_page(slot), slot * ps).await;
        let synced = match res {
            Ok(()) => pager.file.sync_data().await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            let why = format!(
                "commit {} failed while writing its meta page ({e}); reopen the store",
                meta.txid
            );
            self.poison(why);
            return Err(e.into());
        }
        for (pgno, buf) in &runs {
            pager.mark_verified(*pgno, buf.len() as u64 / ps);
        }
        self.inner.meta.set(meta);
        let mut c = self.inner.counters.borrow_mut();
        c.commits += 1;
        c.syncs += 2;
        Ok(())
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
