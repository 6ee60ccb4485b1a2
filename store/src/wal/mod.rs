//! The write-ahead log: where a commit becomes durable before the tree holds it.
//!
//! The log is a few segment files beside the store's file (`<store>-wal.0` to `-wal.2`),
//! each a header page and then frames, one per write (`format.rs`). A commit's record is
//! appended to the current segment with the commits grouped with it, in one write, made
//! durable by `O_DSYNC` (or, under `everysec`, by a timer's `fdatasync`).
//!
//! When a checkpoint starts, the next frame opens a new segment in a free slot; once the
//! checkpoint's meta page is durable, the segments holding only commits it covers are free
//! again, and are reused (recycled) by later switches: a reused file is overwritten from its
//! header on, with a new generation and salt, so its old frames can never pass for new ones.
//! Segments are recycled rather than truncated or deleted because overwriting blocks a file
//! already holds makes each `O_DSYNC` write one data write and no journal commit: measured
//! here, about 5,000 synced 4 KiB writes/s against about 3,000 when each write appends (see
//! `docs/results.md`). For the same reason a segment is extended with written zeros ahead of
//! its frames (doubling, from 1 MiB), never with holes or unwritten extents.
//!
//! Dropping the log's prefix is thus free: nothing is truncated. Recovery (`recover.rs`)
//! tells the segments' order by generation and the live frames by salt.

pub(crate) mod format;
pub(crate) mod recover;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use faultless_runtime::fs::File;

use crate::error::{Error, Result};
use crate::options::Durability;
use format::{FrameBuf, SegmentHeader, SEGMENT_HEADER_LEN};
use recover::Recovered;

/// Segment files a store uses at most: the current one, the one a checkpoint in progress
/// will free, and one to switch to while an earlier crash left two holding commits.
pub(crate) const MAX_SEGMENTS: usize = 3;

/// Bytes a new segment file starts with (written zeros).
const SEGMENT_INITIAL: u64 = 1 << 20;
/// The most a segment grows by at once.
const SEGMENT_STEP_MAX: u64 = 64 << 20;

/// The path of segment `slot` of the store at `base`: `<base>-wal.<slot>`.
pub(crate) fn segment_path(base: &Path, slot: usize) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!("-wal.{slot}"));
    PathBuf::from(name)
}

/// A random 64-bit number (a segment's salt).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into the buffer we own.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        return u64::from_le_bytes(b);
    }
    // No getrandom (it cannot fail this way on Linux 3.17+): time and address bits.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (&b as *const _ as u64).rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15
}

/// A random store id (never 0).
pub(crate) fn new_store_id() -> u64 {
    random_u64().max(1)
}

/// One segment file, open for writing.
pub(crate) struct Segment {
    /// Opened with `O_DSYNC`: a write returns once it is on stable storage.
    dsync: Rc<File>,
    /// Opened without: writes under `everysec`/`no`, and `fdatasync`.
    plain: Rc<File>,
    /// The header of the generation live in it; `None` while the slot is free.
    header: Cell<Option<SegmentHeader>>,
    /// Where its next frame goes.
    end: Cell<u64>,
    /// Bytes of the file that hold written data (frames or zeros).
    prepared: Cell<u64>,
    /// The last commit written to it (0: none since it was started).
    last_txid: Cell<u64>,
    /// Written since its last sync.
    unsynced: Cell<bool>,
}

impl Segment {
    fn open(path: PathBuf, create: bool) -> Result<(Segment, bool)> {
        let with_path =
            |e: io::Error| Error::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        let existed = path.exists();
        let plain = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(with_path)?;
        let dsync = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_DSYNC)
            .open(&path)
            .map_err(with_path)?;
        let len = plain.metadata().map_err(with_path)?.len();
        Ok((
            Segment {
                dsync: Rc::new(File::from_std(dsync)),
                plain: Rc::new(File::from_std(plain)),
                header: Cell::new(None),
                end: Cell::new(SEGMENT_HEADER_LEN as u64),
                prepared: Cell::new(len),
                last_txid: Cell::new(0),
                unsynced: Cell::new(false),
            },
            !existed,
        ))
    }

    /// Writes `buf` at `at`, durably under `Always`.
    async fn write(&self, buf: Vec<u8>, at: u64, durability: Durability) -> Result<()> {
        let file = match durability {
            Durability::Always => self.dsync.clone(),
            _ => {
                self.unsynced.set(true);
                self.plain.clone()
            }
        };
        let (r, _) = file.write_all_at(buf, at).await;
        r.map_err(Error::Io)
    }

    /// Makes sure the file holds written bytes up to `need`: zeros are written ahead of the
    /// frames, in doubling steps, so frames overwrite written blocks.
    async fn prepare(&self, need: u64) -> Result<()> {
        let have = self.prepared.get();
        if need <= have {
            return Ok(());
        }
        if need - have > SEGMENT_STEP_MAX {
            // One huge frame: it extends the file itself (the write syncs the new size).
            return Ok(());
        }
        let step = (have * 2)
            .clamp(SEGMENT_INITIAL, have + SEGMENT_STEP_MAX)
            .max(need)
            .next_multiple_of(SEGMENT_INITIAL);
        match self.zero_fill(step).await {
            // No room for the step (a full disk, a file size limit): what this frame needs.
            Err(e) if e.is_no_space() && step > need => {
                self.zero_fill(need.next_multiple_of(4096)).await
            }
            r => r,
        }
    }

    /// Writes zeros from the prepared length up to `target`, then syncs.
    async fn zero_fill(&self, target: u64) -> Result<()> {
        let have = self.prepared.get();
        let zeros = vec![0u8; (1 << 20).min(target.saturating_sub(have)) as usize];
        let mut at = have;
        while at < target {
            let n = (target - at).min(zeros.len() as u64) as usize;
            let (r, _) = self.plain.write_all_at(zeros[..n].to_vec(), at).await;
            if let Err(e) = r {
                // Whatever got written is zeros: go by the file's real length.
                if let Ok(m) = self.plain.metadata().await {
                    self.prepared.set(m.len().max(have));
                }
                return Err(e.into());
            }
            at += n as u64;
        }
        self.plain.sync_data().await?;
        self.prepared.set(target);
        Ok(())
    }
}

/// Where the log stands, for stats.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WalPosition {
    /// Segments with a live generation.
    pub(crate) segments: usize,
    /// Every commit up to this one is on stable storage.
    pub(crate) synced_txid: u64,
}

/// The log's writer side: its segments and where it stands.
pub(crate) struct Wal {
    base: PathBuf,
    store_id: u64,
    slots: RefCell<Vec<Option<Rc<Segment>>>>,
    current: Cell<Option<usize>>,
    next_generation: Cell<u64>,
    /// The last commit written to the log.
    written_txid: Cell<u64>,
    /// Every commit up to this one is on stable storage (in the log, or in the tree).
    synced_txid: Cell<u64>,
    /// When the log was last synced (for `everysec`).
    last_sync: Cell<Instant>,
    /// Frames written, and syncs made (for stats).
    pub(crate) writes: Cell<u64>,
    pub(crate) syncs: Cell<u64>,
    /// How long each frame's write took (with its sync under `always`), in microseconds:
    /// what a commit waits for at least, and under load the tail of every writer's latency.
    pub(crate) write_times: RefCell<hdrhistogram::Histogram<u64>>,
}

/// The longest log write the histogram tells apart (longer ones count as this).
pub(crate) const WRITE_TIME_MAX_US: u64 = 60_000_000;

impl Wal {
    /// The writer for a log as recovery left it. The segments holding replayed commits are
    /// synced first: new frames say every commit before them is durable, and the last frames
    /// replayed may have reached only the page cache before a crash.
    pub(crate) async fn open(base: &Path, store_id: u64, rec: &Recovered) -> Result<Wal> {
        let mut slots: Vec<Option<Rc<Segment>>> = (0..MAX_SEGMENTS).map(|_| None).collect();
        for s in &rec.slots {
            let (seg, _) = Segment::open(s.path.clone(), false)?;
            if s.needed {
                let mut header = s.header;
                if let Some(h) = header.as_mut().filter(|h| h.version < format::LOG_VERSION) {
                    // New frames go on after its own: label it with the version they
                    // follow (synced below), so that a build reading only the older version
                    // refuses the segment instead of taking the first new frame for the
                    // log's end.
                    let label = format::LOG_VERSION.to_le_bytes().to_vec();
                    let (r, _) = seg
                        .plain
                        .write_all_at(label, format::SEGMENT_VERSION_AT)
                        .await;
                    r?;
                    h.version = format::LOG_VERSION;
                }
                seg.header.set(header);
                seg.end.set(s.end);
                seg.last_txid.set(s.last_txid);
                seg.plain.sync_data().await?;
            }
            slots[s.slot] = Some(Rc::new(seg));
        }
        let current = rec.current.map(|i| rec.slots[i].slot);
        Ok(Wal {
            base: base.to_path_buf(),
            store_id,
            slots: RefCell::new(slots),
            current: Cell::new(current),
            next_generation: Cell::new(rec.next_generation),
            written_txid: Cell::new(rec.last_txid),
            synced_txid: Cell::new(rec.last_txid),
            last_sync: Cell::new(Instant::now()),
            writes: Cell::new(0),
            syncs: Cell::new(0),
            write_times: RefCell::new(
                hdrhistogram::Histogram::new_with_bounds(1, WRITE_TIME_MAX_US, 2)
                    .expect("valid histogram bounds"),
            ),
        })
    }

    /// True if a write is not yet synced.
    pub(crate) fn unsynced(&self) -> bool {
        self.slots
            .borrow()
            .iter()
            .flatten()
            .any(|s| s.unsynced.get())
    }

    /// When the log was last synced.
    pub(crate) fn last_sync(&self) -> Instant {
        self.last_sync.get()
    }

    /// Where the log stands.
    pub(crate) fn position(&self) -> WalPosition {
        let slots = self.slots.borrow();
        WalPosition {
            segments: slots
                .iter()
                .flatten()
                .filter(|s| s.header.get().is_some())
                .count(),
            synced_txid: self.synced_txid.get(),
        }
    }

    /// True if the current segment's first commit is `txid` (a switch to it happened).
    pub(crate) fn current_starts_at(&self, txid: u64) -> bool {
        let slots = self.slots.borrow();
        self.current
            .get()
            .and_then(|c| slots[c].as_ref())
            .and_then(|s| s.header.get())
            .is_some_and(|h| h.first_txid == txid)
    }

    /// A slot a new segment can go to: not the current one, holding no commit after
    /// `covered` (the last checkpoint's). Existing files first (recycled).
    pub(crate) fn free_slot(&self, covered: u64) -> Option<usize> {
        let slots = self.slots.borrow();
        let current = self.current.get();
        let free = |i: usize| Some(i) != current;
        (0..MAX_SEGMENTS)
            .find(|&i| {
                free(i)
                    && slots[i]
                        .as_ref()
                        .is_some_and(|s| s.header.get().is_none() || s.last_txid.get() <= covered)
            })
            .or_else(|| (0..MAX_SEGMENTS).find(|&i| free(i) && slots[i].is_none()))
    }

    /// Starts a new segment whose first commit is `first_txid`, in a free slot; it becomes
    /// the current one.
    async fn switch(&self, first_txid: u64, covered: u64, durability: Durability) -> Result<()> {
        let slot = self.free_slot(covered).ok_or_else(|| {
            Error::Io(io::Error::other(
                "no free log segment (a checkpoint has not freed one)",
            ))
        })?;
        let existing = self.slots.borrow()[slot].clone();
        let seg = match existing {
            Some(s) => s,
            None => {
                let (seg, created) = Segment::open(segment_path(&self.base, slot), true)?;
                if created {
                    seg.prepare(SEGMENT_INITIAL).await?;
                    sync_dir(&self.base)?;
                }
                let seg = Rc::new(seg);
                self.slots.borrow_mut()[slot] = Some(seg.clone());
                seg
            }
        };
        let header = SegmentHeader {
            version: format::LOG_VERSION,
            store_id: self.store_id,
            generation: self.next_generation.get(),
            salt: random_u64(),
            first_txid,
        };
        seg.prepare(SEGMENT_HEADER_LEN as u64).await?;
        let mut page = vec![0u8; SEGMENT_HEADER_LEN];
        header.write(&mut page);
        seg.write(page, 0, durability).await?;
        self.next_generation.set(header.generation + 1);
        seg.header.set(Some(header));
        seg.end.set(SEGMENT_HEADER_LEN as u64);
        seg.last_txid.set(first_txid - 1);
        self.current.set(Some(slot));
        Ok(())
    }

    /// Appends `frame` (opening a new segment first if it asks for one, or if there is no
    /// current one); `covered` is the last checkpoint's commit. Durable on return under
    /// `Always`.
    pub(crate) async fn append(
        &self,
        frame: FrameBuf,
        covered: u64,
        durability: Durability,
    ) -> Result<()> {
        if durability == Durability::Always && self.unsynced() {
            // An O_DSYNC write syncs only its own bytes: earlier unsynced frames first, or
            // this one could be durable with a hole before it.
            self.sync().await?;
        }
        // A frame asks for a new segment when a checkpoint began; if none is free (two still
        // hold commits the checkpoints have not covered), the log goes on in this one, which
        // is freed once a later checkpoint covers it.
        let switch = self.current.get().is_none()
            || (frame.new_segment && self.free_slot(covered).is_some());
        if switch {
            self.switch(frame.first_txid, covered, durability).await?;
        }
        let seg = {
            let slots = self.slots.borrow();
            slots[self.current.get().expect("a current segment")]
                .clone()
                .expect("the current segment is open")
        };
        let header = seg.header.get().expect("a started segment");
        let last = frame.last_txid();
        let durable_before = self.synced_txid.get().max(covered);
        let bytes = frame.seal(header.salt, durable_before);
        let at = seg.end.get();
        let len = bytes.len() as u64;
        seg.prepare(at + len).await?;
        let started = Instant::now();
        seg.write(bytes, at, durability).await?;
        let us = (started.elapsed().as_micros() as u64).clamp(1, WRITE_TIME_MAX_US);
        let _ = self.write_times.borrow_mut().record(us);
        seg.end.set(at + len);
        seg.prepared.set(seg.prepared.get().max(at + len));
        seg.last_txid.set(last);
        self.written_txid.set(last);
        if durability == Durability::Always {
            self.synced_txid.set(last);
            self.last_sync.set(Instant::now());
            self.syncs.set(self.syncs.get() + 1);
        }
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }

    /// Syncs every segment written since its last sync.
    pub(crate) async fn sync(&self) -> Result<()> {
        let upto = self.written_txid.get();
        let segs: Vec<Rc<Segment>> = self
            .slots
            .borrow()
            .iter()
            .flatten()
            .filter(|s| s.unsynced.get())
            .cloned()
            .collect();
        for s in segs {
            s.unsynced.set(false);
            if let Err(e) = s.plain.sync_data().await {
                s.unsynced.set(true);
                return Err(e.into());
            }
            self.syncs.set(self.syncs.get() + 1);
        }
        self.synced_txid.set(self.synced_txid.get().max(upto));
        self.last_sync.set(Instant::now());
        Ok(())
    }

    /// A checkpoint made every commit up to `covered` durable in the tree.
    pub(crate) fn covered(&self, covered: u64) {
        if covered <= self.written_txid.get() {
            self.synced_txid.set(self.synced_txid.get().max(covered));
        }
    }

    /// Forgets a failed write: the commits after `keep` were never written whole, and the
    /// next frame goes where the failed one began.
    pub(crate) fn roll_back(&self, keep: u64) {
        self.written_txid.set(self.written_txid.get().min(keep));
        if let Some(c) = self.current.get() {
            if let Some(seg) = &self.slots.borrow()[c] {
                if seg.last_txid.get() > keep {
                    // Only a frame that was written whole moves `end` on, so `end` is
                    // already where the failed one began.
                    seg.last_txid.set(keep);
                }
            }
        }
    }

    /// Invalidates every segment (zeroes its header) and forgets them all: after recovery
    /// discarded frames beyond a torn record and a checkpoint took in everything replayed,
    /// so no frame of the old log can be mistaken for part of the new one.
    pub(crate) async fn reset(&self, covered: u64) -> Result<()> {
        let segs: Vec<Rc<Segment>> = self.slots.borrow().iter().flatten().cloned().collect();
        for s in segs {
            let (r, _) = s.plain.write_all_at(vec![0u8; SEGMENT_HEADER_LEN], 0).await;
            r?;
            s.plain.sync_data().await?;
            s.header.set(None);
            s.last_txid.set(0);
            s.unsynced.set(false);
        }
        self.current.set(None);
        self.written_txid.set(covered);
        self.synced_txid.set(covered);
        Ok(())
    }
}

/// Syncs the directory holding the store, so a segment file just created survives a crash.
fn sync_dir(base: &Path) -> Result<()> {
    let dir = match base.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
