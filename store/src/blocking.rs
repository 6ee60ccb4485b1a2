//! A blocking facade over [`crate::Store`], for tools, scripts and tests that do not run
//! inside the faultless runtime.
//!
//! The async store is `!Send` and belongs to the runtime thread that opened it. So
//! [`Store::open`] starts a thread of its own that builds a faultless runtime, opens the
//! store on it and serves *jobs*: closures, sent over a channel, that get the async store and
//! return a future. Each call sends one job and waits (blocking the calling thread only) for
//! its answer. Jobs from several callers run concurrently on the store's thread, so puts
//! from many threads share log writes (group commit) as they do in async code.
//!
//! The handle is `Send + Sync` and cheap to clone: share it between threads. The store is
//! closed (checkpointed, the thread ended, the file lock let go) by [`Store::close`], or when
//! the last handle is dropped: the drop waits for calls still running on other handles'
//! behalf, never for anything else, so it cannot hang on a caller. A panic inside a job is
//! carried back and resumed on the caller's thread; the store stays open for other calls.
//!
//! [`Store::call`] runs any async code against the store (transactions, streams); calling
//! the blocking handle from *inside* a job would wait on the thread that must answer it, so
//! it fails with [`Error::BadInput`] instead.
//!
//! ```
//! use faultless_store::{blocking, StoreOptions};
//!
//! # let path = std::env::temp_dir().join(format!("blocking-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_file(&path);
//! let store = blocking::Store::open(&path, StoreOptions::new())?;
//! store.put(b"fruit:apple", b"red")?;
//! store.put(b"fruit:kiwi", b"green")?;
//! store.put(b"veg:leek", b"green")?;
//! assert_eq!(store.get(b"fruit:kiwi")?.as_deref(), Some(&b"green"[..]));
//!
//! // From other threads, through clones of the handle.
//! std::thread::scope(|s| {
//!     for i in 0..4u8 {
//!         let store = store.clone();
//!         s.spawn(move || store.put(&[b'n', i], b"").unwrap());
//!     }
//! });
//!
//! let fruit = store.prefix(b"fruit:", 100)?; // at most 100 entries, in key order
//! assert_eq!(fruit[0], (b"fruit:apple".to_vec(), b"red".to_vec()));
//! let last_two = store.range_rev(.., 2)?; // the largest keys first
//! assert_eq!(last_two[0].0, b"veg:leek");
//! store.close()?; // or drop it: the drop closes it too, without the error
//! # for slot in 0..3 { let _ = std::fs::remove_file(format!("{}-wal.{slot}", path.display())); }
//! # let _ = std::fs::remove_file(&path);
//! # Ok::<(), faultless_store::Error>(())
//! ```

use std::future::Future;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::task::Poll;
use std::thread::{JoinHandle, ThreadId};

use futures::channel::mpsc as async_mpsc;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;

use crate::error::{Error, Result};
use crate::options::StoreOptions;

/// Entries as the blocking range calls return them: `(key, value)` copies, in order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A job: given the async store, the future that does a call's work and sends its answer.
type Job = Box<dyn FnOnce(crate::Store) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

enum Command {
    Run(Job),
    /// Close the store, answer, and end the thread.
    Close(mpsc::SyncSender<Result<()>>),
}

/// What every clone of a handle shares; dropping the last one closes the store.
struct Shared {
    jobs: async_mpsc::UnboundedSender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The store's thread finishes the jobs it has, closes the store and ends.
        self.jobs.close_channel();
        if std::thread::current().id() == self.thread_id {
            return; // a job dropped the last handle: the thread ends by itself
        }
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// A store on a thread of its own, used through blocking calls. `Send + Sync`; clones share
/// the one store. See the module docs.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Store")
            .field("thread", &self.shared.thread_id)
            .finish()
    }
}

fn gone() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::NotConnected,
        "the store was closed (its thread has ended)",
    ))
}

fn reentrant() -> Error {
    Error::BadInput(
        "a blocking store was called from inside one of its own jobs, which would wait on \
         itself; use the async store the job was given"
            .into(),
    )
}

impl Store {
    /// Opens (or creates) the store at `path` on a new thread running a faultless runtime;
    /// see [`crate::Store::open`]. Fails as that does (or if the runtime cannot start),
    /// leaving no thread behind.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let (jobs, inbox) = async_mpsc::unbounded();
        let (opened_tx, opened) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("faultless-store".into())
            .spawn(move || serve_thread(&path, options, inbox, opened_tx))?;
        let result = opened.recv().unwrap_or_else(|_| Err(gone()));
        if let Err(e) = result {
            let _ = thread.join();
            return Err(e);
        }
        Ok(Store {
            shared: Arc::new(Shared {
                jobs,
                thread_id: thread.thread().id(),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Runs `job` with the async store on the store's thread and returns its result: any
    /// async work (write transactions, streams, stats) from blocking code. A panic in `job`
    /// is resumed here.
    pub fn call<T, F, Fut>(&self, job: F) -> Result<T>
    where
        F: FnOnce(crate::Store) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        if std::thread::current().id() == self.shared.thread_id {
            return Err(reentrant());
        }
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |store| {
            Box::pin(async move {
                let result = AssertUnwindSafe(job(store)).catch_unwind().await;
                let _ = answer.send(result);
            })
        });
        self.shared
            .jobs
            .unbounded_send(Command::Run(job))
            .map_err(|_| gone())?;
        match answered.recv() {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(gone()),
        }
    }

    /// A copy of the value of `key` in the last visible commit.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = key.to_vec();
        self.call(move |s| async move {
            match s.get(&key).await? {
                Some(v) => Ok(Some(v.copy_checked()?)),
                None => Ok(None),
            }
        })
    }

    /// Inserts or replaces `key`; returns once committed (see [`crate::Store::put`]).
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.call(move |s| async move { s.put(&key, &value).await })
    }

    /// Deletes `key`; true if it existed.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        let key = key.to_vec();
        self.call(move |s| async move { s.delete(&key).await })
    }

    /// Up to `limit` entries with keys in `bounds`, in key order, from one snapshot.
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R, limit: usize) -> Result<Entries> {
        let bounds = owned(&bounds);
        self.call(move |s| collect(s.read_txn().range(bounds), limit))
    }

    /// Up to `limit` entries with keys in `bounds`, in descending key order.
    pub fn range_rev<R: RangeBounds<Vec<u8>>>(&self, bounds: R, limit: usize) -> Result<Entries> {
        let bounds = owned(&bounds);
        self.call(move |s| collect(s.read_txn().range_rev(bounds), limit))
    }

    /// Up to `limit` entries whose keys begin with `prefix`, in key order.
    pub fn prefix(&self, prefix: &[u8], limit: usize) -> Result<Entries> {
        let prefix = prefix.to_vec();
        self.call(move |s| collect(s.read_txn().prefix(&prefix), limit))
    }

    /// Number of keys in the last visible commit.
    pub fn len(&self) -> Result<u64> {
        self.call(|s| async move { Ok(s.len()) })
    }

    /// True if the store has no keys.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Writes every commit so far into the tree; see [`crate::Store::checkpoint`].
    pub fn checkpoint(&self) -> Result<()> {
        self.call(|s| async move { s.checkpoint().await })
    }

    /// Closes the store for every handle: waits for the calls running, checkpoints (see
    /// [`crate::Store::close`]), and ends the store's thread, letting go of the file. Calls
    /// on other handles afterwards fail. Dropping the last handle does the same, but
    /// without reporting a failure.
    pub fn close(self) -> Result<()> {
        if std::thread::current().id() == self.shared.thread_id {
            return Err(reentrant());
        }
        let (answer, answered) = mpsc::sync_channel(1);
        self.shared
            .jobs
            .unbounded_send(Command::Close(answer))
            .map_err(|_| gone())?;
        let result = answered.recv().unwrap_or_else(|_| Err(gone()));
        let thread = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        result
    }
}

/// Owned copies of `bounds`, to send to the store's thread.
fn owned<R: RangeBounds<Vec<u8>>>(bounds: &R) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (bounds.start_bound().cloned(), bounds.end_bound().cloned())
}

/// Copies of up to `limit` entries of `stream`.
async fn collect(mut stream: crate::RangeStream, limit: usize) -> Result<Entries> {
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(entry) = stream.next().await else {
            break;
        };
        let (key, value) = entry?;
        out.push((key, value.copy_checked()?));
    }
    Ok(out)
}

/// The store's thread: a runtime, the store, and the jobs until the store is closed.
fn serve_thread(
    path: &Path,
    options: StoreOptions,
    inbox: async_mpsc::UnboundedReceiver<Command>,
    opened: mpsc::SyncSender<Result<()>>,
) {
    let runtime = match faultless_runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = opened.send(Err(Error::Io(e)));
            return;
        }
    };
    runtime.block_on(async move {
        match crate::Store::open(path, options).await {
            Ok(store) => {
                let _ = opened.send(Ok(()));
                serve(store, inbox).await;
            }
            Err(e) => {
                let _ = opened.send(Err(e));
            }
        }
    });
    // Dropping the runtime here ends what the store left running (its keeper, its log
    // writer, both idle after `close`) and waits for the kernel's in-flight operations.
}

/// Runs jobs as they come, concurrently, until a close or the last handle's drop; then
/// finishes the jobs running and closes the store.
async fn serve(store: crate::Store, mut inbox: async_mpsc::UnboundedReceiver<Command>) {
    let mut running = FuturesUnordered::new();
    let close = futures::future::poll_fn(|cx| loop {
        while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
        match inbox.poll_next_unpin(cx) {
            // Polled (and its waker registered) on the next turn of this loop.
            Poll::Ready(Some(Command::Run(job))) => running.push(job(store.clone())),
            Poll::Ready(Some(Command::Close(answer))) => return Poll::Ready(Some(answer)),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await;
    // Refuse new jobs; those queued but not started are dropped, and their callers told
    // the store is closed.
    inbox.close();
    while inbox.try_recv().is_ok() {}
    while running.next().await.is_some() {}
    let result = store.close().await;
    if let Some(answer) = close {
        let _ = answer.send(result);
    }
}
