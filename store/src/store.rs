//! [`Store`]: opening, transactions, group commit, stats.

use std::cell::{Cell, RefCell};
use std::io;
use std::ops::RangeBounds;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use faultless_runtime::fs::File;
use faultless_runtime::mem::{Backend, MapOptions, Mapping, MemStats};
use futures::channel::oneshot;
use futures::lock::{Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::format::{Meta, PAGE_SIZE};
use crate::pager::Pager;
use crate::read::{RangeStream, ReadTxn, Readers, ValueRef};
use crate::write::{Which, WriteState};

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
    file_len: Cell<u64>,
    reserve: u64,
    read_only: bool,
    poisoned: Cell<bool>,
    counters: RefCell<Counters>,
    /// Holds the flock for the store's lifetime.
    _lock: std::fs::File,
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
    /// Commits made by this process.
    pub commits: u64,
    /// `put`/`delete` calls that went through group commit.
    pub grouped_ops: u64,
    /// fdatasync calls made by commits.
    pub syncs: u64,
    /// The page-access layer's stats (prefetches, waits, executor faults).
    pub pages: MemStats,
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

/// Reads and validates both meta pages; returns the newest valid one.
fn read_meta(file: &std::fs::File, len: u64) -> Result<Meta> {
    let mut best: Option<Meta> = None;
    let mut errors = Vec::new();
    if len < 2 * 512 {
        return Err(Error::corrupt(
            None,
            format!("file is {len} bytes, shorter than its two meta pages"),
        ));
    }
    let mut first = vec![0u8; PAGE_SIZE.min(len as usize)];
    file.read_exact_at(&mut first, 0)?;
    // The page size is in the meta; fall back to the default if page 0 is damaged.
    let ps = match Meta::from_page(0, &first) {
        Ok(m) => m.page_size as u64,
        Err(_) => PAGE_SIZE as u64,
    };
    if len < 2 * ps {
        return Err(Error::corrupt(
            None,
            format!("file is {len} bytes, shorter than its two meta pages"),
        ));
    }
    for slot in 0..2u64 {
        let mut page = vec![0u8; ps as usize];
        file.read_exact_at(&mut page, slot * ps)?;
        match Meta::from_page(slot, &page) {
            Ok(m) => {
                if best.is_none_or(|b| m.txid > b.txid) {
                    best = Some(m);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let meta = best.ok_or_else(|| {
        Error::corrupt(None, format!("no valid meta page: {}", errors.join("; ")))
    })?;
    if meta.page_count * meta.page_size as u64 > len {
        return Err(Error::corrupt(
            None,
            format!(
                "file truncated: the last commit uses {} pages ({} bytes) but the file has {len} bytes",
                meta.page_count,
                meta.page_count * meta.page_size as u64
            ),
        ));
    }
    Ok(meta)
}

impl Store {
    /// Opens (or creates) the store at `path`. Opening reads the two meta pages and maps
    /// the file: no load phase, whatever the store's size.
    pub async fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(!options.read_only)
            .create(options.create && !options.read_only)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
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
        if len == 0 {
            if options.read_only {
                return Err(Error::corrupt(None, "empty file"));
            }
            let meta = Meta {
                page_size: PAGE_SIZE as u32,
                txid: 0,
                root: 0,
                free_root: 0,
                page_count: 2,
                entries: 0,
            };
            file.write_all_at(&meta.to_page(0), 0)?;
            file.write_all_at(&meta.to_page(1), PAGE_SIZE as u64)?;
            file.sync_all()?;
            len = 2 * PAGE_SIZE as u64;
        }
        let meta = read_meta(&file, len)?;
        let map_options = MapOptions::new()
            .backend(options.backend)
            .reserve(options.reserve.max(len));
        // SAFETY: the store holds an flock on the file (exclusive when it writes), writes only
        // pages no live snapshot can reach (copy-on-write; freed pages are reused only past
        // the oldest reader), reads the in-place meta pages with pread, never through the
        // mapping, and never shrinks the file. A foreign truncation breaks this; the SIGBUS
        // net and `check_intact` turn it into errors.
        let map = unsafe { Mapping::from_file(file.try_clone()?, map_options)? };
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
                file_len: Cell::new(len),
                reserve: options.reserve.max(len),
                read_only: options.read_only,
                poisoned: Cell::new(false),
                counters: RefCell::new(Counters::default()),
                _lock: file,
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
        self.inner.pager.map.check_intact().map_err(Error::Io)
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
        if self.inner.poisoned.get() {
            return Err(Error::Io(io::Error::other(
                "an earlier commit failed while writing its meta page; reopen the store",
            )));
        }
        Ok(())
    }

    /// Starts the write transaction (waiting, without blocking the thread, while another is
    /// open).
    pub async fn write_txn(&self) -> Result<WriteTxn> {
        self.writable()?;
        let guard = self.inner.write_lock.clone().lock_owned().await;
        let meta = self.inner.meta.get();
        let reuse_limit = self
            .inner
            .readers
            .oldest()
            .unwrap_or(meta.txid)
            .min(meta.txid);
        Ok(WriteTxn {
            store: self.clone(),
            state: WriteState::new(meta, reuse_limit),
            guard,
        })
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
            commits: c.commits,
            grouped_ops: c.grouped_ops,
            syncs: c.syncs,
            pages: self.inner.pager.map.stats(),
        }
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
        let file = &self.inner.pager.file;
        if let Err(e) = file.fallocate(0, target, 0).await {
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(e.into());
            }
            file.set_len(target).await?;
        }
        self.inner.file_len.set(target);
        Ok(())
    }

    /// Writes a finished transaction: pages, sync, meta, sync. Runs as its own task.
    async fn write_out(&self, meta: Meta, runs: Vec<(u64, Vec<u8>)>) -> Result<()> {
        let pager = &self.inner.pager;
        let ps = pager.page_size as u64;
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
        let slot = meta.txid % 2;
        let (res, _) = pager.file.write_all_at(meta.to_page(slot), slot * ps).await;
        let synced = match res {
            Ok(()) => pager.file.sync_data().await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            self.inner.poisoned.set(true);
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
        let store = self.store.clone();
        let guard = self.guard;
        let task = faultless_runtime::spawn(async move {
            let r = store.write_out(meta, runs).await;
            drop(guard);
            r
        });
        task.await
            .unwrap_or_else(|e| Err(Error::Io(io::Error::other(e.to_string()))))
    }

    /// Discards every change (the same as dropping the transaction).
    pub fn abort(self) {}
}
