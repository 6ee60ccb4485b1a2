//! Recovery: finding the log's records after the last checkpoint and replaying them, in
//! order, stopping at the log's true end.
//!
//! The segments are read in generation order. From the checkpoint's commit (the meta page's
//! `log_txid`, `L`) on, every commit must follow the one before: within a segment frames
//! follow one another, and a segment after the first continues where the one before ended.
//! Where that chain breaks (a frame whose checksum fails, zeros, a frame left from an earlier
//! use of the file, a segment starting later than the next commit), the log ends, unless a
//! later frame of this log says otherwise: each frame records `durable_before`, the commit up
//! to which the log was on stable storage when it was written. If a later frame's
//! `durable_before` reaches the missing commit, that commit had been made durable and is
//! now damaged: recovery fails with an error that names the segment and offset, and never
//! skips it. Otherwise the break is a torn tail: the missing commit was never acknowledged
//! as durable (with `Durability::Always` it was never acknowledged at all), and the frames
//! after it (possible only with `everysec` or `no`) are discarded with it and reported.

use std::fmt;
use std::path::{Path, PathBuf};

use faultless_runtime::fs::File;

use crate::error::{Error, Result};
use crate::format::Meta;
use crate::wal::format::{
    parse_body, parse_resolutions, FrameHeader, LoggedOp, SegmentHeader, FRAME_ALIGN,
    FRAME_HEADER_LEN, FRAME_MAGIC, SEGMENT_HEADER_LEN,
};
use crate::wal::{segment_path, MAX_SEGMENTS};

/// What opening found in the log. See [`Store::log_recovery`](crate::Store::log_recovery).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRecovery {
    /// Segment files with a valid header.
    pub segments: usize,
    /// Commits replayed from the log (those after the last checkpoint).
    pub replayed_commits: u64,
    /// Bytes of the frames that held them.
    pub replayed_bytes: u64,
    /// The first commit replayed.
    pub oldest_txid: Option<u64>,
    /// The last commit replayed: the store opened at this commit.
    pub newest_txid: Option<u64>,
    /// The log ended in a frame written only in part (a crash during a write: its commits
    /// were never acknowledged as durable), with where it lies.
    pub torn_tail: Option<(PathBuf, u64)>,
    /// Frames found after the log's end, discarded with it: commits acknowledged under
    /// `everysec` or `no` that a machine crash cut off from the log before them. Always 0
    /// under `always`.
    pub discarded_frames: u64,
    /// The commits in those frames.
    pub discarded_commits: u64,
    /// Bytes read from the segment files: the frames, and the rest of each segment scanned
    /// for frames after the log's end. About the segments' total size at most: each byte is
    /// read once.
    pub read_bytes: u64,
    /// Puts replayed whose key's existence the log never recorded (a crash came before a
    /// later frame could say it), looked up in the tree to count the keys: at most the last
    /// frames' worth.
    pub looked_up: u64,
    /// Of those, the puts whose lookup failed (a damaged tree page): counted as replacing a
    /// key, so the store's key count may be short by up to this many.
    pub uncounted: u64,
}

impl fmt::Display for LogRecovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} segment(s) ({} bytes read), {} commit(s) replayed ({} bytes)",
            self.segments, self.read_bytes, self.replayed_commits, self.replayed_bytes
        )?;
        if let (Some(a), Some(b)) = (self.oldest_txid, self.newest_txid) {
            write!(f, ", commits {a} to {b}")?;
        }
        if let Some((path, at)) = &self.torn_tail {
            write!(
                f,
                "; a torn record at {} offset {at} was cut off (never acknowledged)",
                path.display()
            )?;
        }
        if self.looked_up > 0 {
            write!(f, ", {} key(s) looked up to count keys", self.looked_up)?;
            if self.uncounted > 0 {
                write!(
                    f,
                    " ({} could not be read: the key count may be short by as many)",
                    self.uncounted
                )?;
            }
        }
        if self.discarded_frames > 0 {
            write!(
                f,
                "; {} frame(s) ({} commit(s)) after it were discarded: they were acknowledged \
                 before reaching the disk (durability everysec or no) and lost in a crash",
                self.discarded_frames, self.discarded_commits
            )?;
        }
        Ok(())
    }
}

/// What recovery leaves the writer: each segment file and where the log goes on.
pub(crate) struct Recovered {
    pub(crate) slots: Vec<SlotState>,
    /// The segment (index into `slots`) to go on appending to, if the log goes on in one.
    pub(crate) current: Option<usize>,
    /// The generation the next new segment gets.
    pub(crate) next_generation: u64,
    /// The last commit the log holds (the checkpoint's if it holds none after it).
    pub(crate) last_txid: u64,
    /// Frames were discarded after the log's end: the log must be reset (after a
    /// checkpoint of what was replayed) before anything is appended.
    pub(crate) must_reset: bool,
    pub(crate) report: LogRecovery,
}

/// A segment file as recovery found it.
pub(crate) struct SlotState {
    pub(crate) slot: usize,
    pub(crate) path: PathBuf,
    pub(crate) header: Option<SegmentHeader>,
    /// The end of its valid frames.
    pub(crate) end: u64,
    /// The last commit in its valid frames (0 if none).
    pub(crate) last_txid: u64,
    /// True if it holds commits after the checkpoint that were replayed.
    pub(crate) needed: bool,
}

/// Reads a segment file through a window of its bytes.
struct Reader {
    file: File,
    len: u64,
    at: u64,
    buf: Vec<u8>,
    /// Bytes read from the file so far.
    read: u64,
}

const WINDOW: usize = 4 << 20;

impl Reader {
    /// The bytes `off..off + n`, or `None` past the end of the file.
    async fn bytes(&mut self, off: u64, n: usize) -> Result<Option<&[u8]>> {
        let Some(end) = off.checked_add(n as u64).filter(|&e| e <= self.len) else {
            return Ok(None);
        };
        if off < self.at || end > self.at + self.buf.len() as u64 {
            let want = (n.max(WINDOW) as u64).min(self.len - off) as usize;
            let buf = self.file.read_exact_at(want, off).await?;
            self.read += buf.len() as u64;
            self.buf = buf;
            self.at = off;
        }
        let s = (off - self.at) as usize;
        Ok(Some(&self.buf[s..s + n]))
    }

    /// The frame at `off` if a valid one of this segment (`salt`) starts there.
    async fn frame(&mut self, off: u64, salt: u64) -> Result<Frame> {
        let Some(h) = self.bytes(off, FRAME_HEADER_LEN).await? else {
            return Ok(Frame::None);
        };
        let Some(h) = FrameHeader::read(h, salt) else {
            return Ok(Frame::None);
        };
        let Ok(n) = usize::try_from(h.body_len) else {
            return Ok(Frame::Torn);
        };
        match self.bytes(off + FRAME_HEADER_LEN as u64, n).await? {
            Some(body) if h.body_ok(body, salt) => Ok(Frame::Valid(h)),
            _ => Ok(Frame::Torn),
        }
    }

    /// The body of the valid frame `h` at `off` (read by `frame` just before).
    async fn body(&mut self, off: u64, h: &FrameHeader) -> Result<&[u8]> {
        Ok(self
            .bytes(off + FRAME_HEADER_LEN as u64, h.body_len as usize)
            .await?
            .expect("the frame was read whole"))
    }

    /// Bytes of the window from `off` on (0 if `off` is outside it).
    fn buffered_from(&self, off: u64) -> usize {
        let end = self.at + self.buf.len() as u64;
        if off >= self.at && off < end {
            (end - off) as usize
        } else {
            0
        }
    }

    /// Every valid frame of this segment at or after `from` (at aligned offsets).
    async fn valid_frames_from(&mut self, from: u64, salt: u64) -> Result<Vec<FrameHeader>> {
        let mut found = Vec::new();
        let mut off = from.next_multiple_of(FRAME_ALIGN as u64);
        while off + FRAME_HEADER_LEN as u64 <= self.len {
            // Look for the next frame magic eight bytes at a time: through the rest of the
            // window when `off` lies in it, else through a new window. (Asking for a whole
            // window from `off` each time re-read 4 MiB after every frame a recycled
            // segment's older generation left: 4 GB read to recover 9 MB of log.)
            let buffered = self.buffered_from(off);
            let n = if buffered >= FRAME_HEADER_LEN {
                buffered
            } else {
                ((self.len - off) as usize).min(WINDOW)
            } & !(FRAME_ALIGN - 1);
            if n == 0 {
                break;
            }
            let window = self.bytes(off, n).await?.expect("inside the file");
            let hit = find_magic(window);
            let Some(i) = hit else {
                off += n as u64;
                continue;
            };
            off += (i * FRAME_ALIGN) as u64;
            match self.frame(off, salt).await? {
                Frame::Valid(h) => {
                    found.push(h);
                    off += h.span();
                }
                _ => off += FRAME_ALIGN as u64,
            }
        }
        Ok(found)
    }
}

/// The index of the first 8-byte slot of `bytes` that starts with a frame's magic. Blocks of
/// zeros (what a segment holds past its frames) are skipped a block at a time.
fn find_magic(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 4096;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + BLOCK).min(bytes.len());
        let block = &bytes[at..end];
        if block != &ZEROS[..block.len()] {
            if let Some(i) = block
                .chunks_exact(FRAME_ALIGN)
                .position(|w| w[..4] == *FRAME_MAGIC)
            {
                return Some((at + i * FRAME_ALIGN) / FRAME_ALIGN);
            }
        }
        at = end;
    }
    None
}

enum Frame {
    /// A valid frame of this segment.
    Valid(FrameHeader),
    /// This segment's frame header, but its body is short or fails its checksum.
    Torn,
    /// No frame of this segment starts here.
    None,
}

/// Opens every segment file of the store at `base` and reads its header.
async fn open_segments(base: &Path, meta: &Meta) -> Result<(Vec<SlotState>, Vec<Reader>)> {
    let mut slots = Vec::new();
    let mut readers = Vec::new();
    for slot in 0..MAX_SEGMENTS {
        let path = segment_path(base, slot);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                )))
            }
        };
        let len = file.metadata()?.len();
        let mut reader = Reader {
            file: File::from_std(file),
            len,
            at: 0,
            buf: Vec::new(),
            read: 0,
        };
        let header = match reader.bytes(0, SEGMENT_HEADER_LEN).await? {
            Some(page) => SegmentHeader::read(page)
                .map_err(|e| Error::corrupt(None, format!("{}: {e}", path.display())))?,
            None => None,
        };
        if let Some(h) = &header {
            if h.store_id != meta.store_id {
                return Err(Error::corrupt(
                    None,
                    format!(
                        "log segment {} belongs to another store (its id is {:#x}, this \
                         store's is {:#x}); move it away to open the store without it",
                        path.display(),
                        h.store_id,
                        meta.store_id
                    ),
                ));
            }
        }
        slots.push(SlotState {
            slot,
            path,
            header,
            end: SEGMENT_HEADER_LEN as u64,
            last_txid: 0,
            needed: false,
        });
        readers.push(reader);
    }
    Ok((slots, readers))
}

/// What recovery hands to its caller, in log order.
pub(crate) enum Replayed<'a> {
    /// A commit after the checkpoint: its id and ops.
    Commit(u64, &'a [LoggedOp<'a>]),
    /// Whether the key of the unresolved put of an earlier commit existed (the commit may
    /// be one the checkpoint already holds).
    Resolution { txid: u64, existed: bool },
}

/// Reads the log beside the store at `base` and calls `replay` for every commit after the
/// checkpoint `meta` records, in order, and for the resolutions of unresolved puts as the
/// log meets them.
pub(crate) async fn recover(
    base: &Path,
    meta: &Meta,
    mut replay: impl FnMut(Replayed<'_>),
) -> Result<Recovered> {
    let (mut slots, mut readers) = open_segments(base, meta).await?;
    let mut order: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].header.is_some())
        .collect();
    order.sort_by_key(|&i| slots[i].header.expect("valid").generation);
    for w in order.windows(2) {
        let (a, b) = (&slots[w[0]], &slots[w[1]]);
        if a.header.expect("valid").generation == b.header.expect("valid").generation {
            return Err(Error::corrupt(
                None,
                format!(
                    "log segments {} and {} have the same generation",
                    a.path.display(),
                    b.path.display()
                ),
            ));
        }
    }
    let mut report = LogRecovery {
        segments: order.len(),
        ..LogRecovery::default()
    };
    let checkpoint = meta.log_txid;
    let mut expected = checkpoint + 1;
    // Where the chain broke for good, and the valid frames found beyond it.
    let mut stop: Option<(usize, u64)> = None;
    let mut beyond: Vec<FrameHeader> = Vec::new();
    let mut current = None;
    for &i in &order {
        let h = slots[i].header.expect("valid");
        let reader = &mut readers[i];
        if stop.is_some() {
            beyond.extend(
                reader
                    .valid_frames_from(SEGMENT_HEADER_LEN as u64, h.salt)
                    .await?,
            );
            continue;
        }
        if h.first_txid > expected {
            // The segment starts after the next commit: the log ends before it.
            let prev = current.map_or((i, SEGMENT_HEADER_LEN as u64), |c: usize| (c, slots[c].end));
            stop = Some(prev);
            beyond.extend(
                reader
                    .valid_frames_from(SEGMENT_HEADER_LEN as u64, h.salt)
                    .await?,
            );
            continue;
        }
        if h.first_txid > checkpoint + 1 && h.first_txid < expected {
            return Err(Error::corrupt(
                None,
                format!(
                    "log segment {} starts at commit {}, which an earlier segment already holds",
                    slots[i].path.display(),
                    h.first_txid
                ),
            ));
        }
        let mut off = SEGMENT_HEADER_LEN as u64;
        let mut prev_last = h.first_txid - 1;
        loop {
            let frame = reader.frame(off, h.salt).await?;
            let fh = match frame {
                Frame::Valid(fh) if fh.first_txid == prev_last + 1 => fh,
                other => {
                    let later: Vec<FrameHeader> = reader
                        .valid_frames_from(off + FRAME_ALIGN as u64, h.salt)
                        .await?
                        .into_iter()
                        .filter(|f| f.last_txid() >= expected)
                        .collect();
                    if !later.is_empty() {
                        stop = Some((i, off));
                        beyond.extend(later);
                    } else if matches!(other, Frame::Torn) && prev_last >= checkpoint {
                        report.torn_tail = Some((slots[i].path.clone(), off));
                    }
                    break;
                }
            };
            let body = reader.body(off, &fh).await?;
            let at = format!("log segment {} at offset {off}", slots[i].path.display());
            let resolutions = parse_resolutions(body, fh.resolutions)
                .map_err(|e| Error::corrupt(None, format!("{at}: {e}")))?;
            if fh.last_txid() >= expected {
                for (txid, existed) in resolutions {
                    if txid >= fh.first_txid {
                        return Err(Error::corrupt(
                            None,
                            format!(
                                "{at}: a resolution for commit {txid}, which does not come \
                                 before the frame's"
                            ),
                        ));
                    }
                    replay(Replayed::Resolution { txid, existed });
                }
            }
            let mut bad = None;
            let mut replayed = false;
            let parsed = parse_body(body, fh.resolutions, fh.count, |k, ops| {
                let txid = fh.first_txid + k as u64;
                if txid < expected {
                    return;
                }
                if txid != expected {
                    bad = Some(txid);
                    return;
                }
                replay(Replayed::Commit(txid, ops));
                expected = txid + 1;
                replayed = true;
                report.replayed_commits += 1;
                report.oldest_txid.get_or_insert(txid);
                report.newest_txid = Some(txid);
            });
            if let Err(e) = parsed {
                return Err(Error::corrupt(None, format!("{at}: {e}")));
            }
            if let Some(t) = bad {
                return Err(Error::corrupt(
                    None,
                    format!("{at}: commit {t} follows commit {}", expected - 1),
                ));
            }
            if replayed {
                report.replayed_bytes += fh.span();
                slots[i].needed = true;
            }
            prev_last = fh.last_txid();
            slots[i].last_txid = prev_last;
            off += fh.span();
            slots[i].end = off;
        }
        current = Some(i);
        if stop.is_some() {
            continue;
        }
    }
    if let Some((i, off)) = stop {
        if let Some(f) = beyond.iter().find(|f| f.durable_before >= expected) {
            return Err(Error::corrupt(
                None,
                format!(
                    "log segment {} at offset {off}: the record of commit {expected} is \
                     missing or damaged, but a later record (commit {}, written when every \
                     commit up to {} was durable) shows it had reached the disk; the log \
                     cannot be replayed past it (move the log segments away to open the \
                     store at commit {}, losing the commits after it)",
                    slots[i].path.display(),
                    f.first_txid,
                    f.durable_before,
                    expected - 1
                ),
            ));
        }
        report.discarded_frames = beyond.len() as u64;
        report.discarded_commits = beyond.iter().map(|f| f.count as u64).sum();
        if report.torn_tail.is_none() && !beyond.is_empty() {
            report.torn_tail = Some((slots[i].path.clone(), off));
        }
    }
    let next_generation = slots
        .iter()
        .filter_map(|s| s.header.map(|h| h.generation))
        .max()
        .map_or(1, |g| g + 1);
    let current = current.filter(|&c| slots[c].needed);
    report.read_bytes = readers.iter().map(|r| r.read).sum();
    Ok(Recovered {
        must_reset: report.discarded_frames > 0,
        current,
        next_generation,
        last_txid: expected - 1,
        slots,
        report,
    })
}
