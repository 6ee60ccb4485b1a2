//! The log's bytes: the segment header, frames, and the transactions inside a frame.
//! `docs/store-format.md` ("The write-ahead log") describes the same bytes for people.
//!
//! A segment file starts with a 4096-byte header page (64 bytes used), then frames, each
//! starting at a multiple of 8 (one frame per write: a group commit):
//!
//! * segment header: magic `FLTWAL01`, version, checksum, the store's id, the segment's
//!   generation (ordering segments), a random salt, the commit id of its first record;
//! * frame header (48 bytes): magic `FLWF`, a checksum of the header, the first commit id,
//!   the number of transactions, the number of resolutions, the body's length,
//!   `durable_before` (every commit at or below it was on stable storage when the frame was
//!   written), the body's checksum;
//! * body: the resolutions (version 2: whether the keys of earlier frames' unresolved puts
//!   existed), then the transactions, each an op count and its ops (kind, key, value).
//!
//! Both checksums are crc32c seeded with the segment's salt, so a frame left over from an
//! earlier use of the file (or one forged inside a value) never passes for one of this
//! segment's.

use crate::error::{Error, Result};
use crate::format::{get_u32, get_u64, put_u32, put_u64};
use crate::options::MAX_KEY_LEN;

/// Offset of the version in a segment's header (outside its checksum, so that a segment of
/// an older version can be relabelled in place: see `Wal::open`).
pub(crate) const SEGMENT_VERSION_AT: u64 = 8;
/// Bytes of the segment header page; the first frame starts here.
pub(crate) const SEGMENT_HEADER_LEN: usize = 4096;
/// Bytes of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 48;
/// Frames start at multiples of this.
pub(crate) const FRAME_ALIGN: usize = 8;
/// The magic at the start of a segment.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"FLTWAL01";
/// The log format's version this build writes. Version 2 added unresolved puts and
/// resolutions; a version-1 segment (none of either) reads the same way.
pub(crate) const LOG_VERSION: u32 = 2;
/// The oldest log format version this build reads.
const LOG_VERSION_MIN: u32 = 1;
/// The magic at the start of a frame.
pub(crate) const FRAME_MAGIC: &[u8; 4] = b"FLWF";

/// Op kinds. A put records whether the key existed, so the key count is replayed without
/// reading the tree.
pub(crate) const OP_PUT_NEW: u8 = 1;
/// A put over an existing key.
pub(crate) const OP_PUT_REPLACE: u8 = 2;
/// A delete of an existing key (deletes of missing keys are not logged).
pub(crate) const OP_DELETE: u8 = 3;
/// A put whose key had no version in the memtables and whose existence in the tree was
/// still being looked up when it was staged (version 2): the record is written meanwhile,
/// and a later frame's resolution says whether the key existed.
pub(crate) const OP_PUT_UNRESOLVED: u8 = 4;
/// Bytes of one resolution: the commit id of an unresolved put (u64), then 1 if its key
/// existed, 0 if not (u8).
pub(crate) const RESOLUTION_LEN: usize = 9;

/// What a segment's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The log format version its frames follow (this build writes [`LOG_VERSION`]).
    pub(crate) version: u32,
    /// The store's id (the meta page's).
    pub(crate) store_id: u64,
    /// Orders segments: each new segment's is larger than every earlier one's.
    pub(crate) generation: u64,
    /// Seeds every checksum in this segment.
    pub(crate) salt: u64,
    /// The commit id of the segment's first record.
    pub(crate) first_txid: u64,
}

fn seeded(salt: u64, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&salt.to_le_bytes()), bytes)
}

impl SegmentHeader {
    /// Writes the header into the first 64 bytes of `page` (the rest of the page is zero).
    pub(crate) fn write(&self, page: &mut [u8]) {
        page[..64].fill(0);
        page[0..8].copy_from_slice(SEGMENT_MAGIC);
        put_u32(page, SEGMENT_VERSION_AT as usize, self.version);
        put_u64(page, 16, self.store_id);
        put_u64(page, 24, self.generation);
        put_u64(page, 32, self.salt);
        put_u64(page, 40, self.first_txid);
        let crc = crc32c::crc32c(&page[16..64]);
        put_u32(page, 12, crc);
    }

    /// Reads a segment header: `Ok(None)` if the page holds none (no magic: zeros, a file
    /// never started or reset), an error for a damaged one (the magic, but a checksum that
    /// fails: the 64 bytes are written at once, so a crash does not leave them half-written)
    /// or a log version this build does not read.
    pub(crate) fn read(page: &[u8]) -> Result<Option<SegmentHeader>> {
        if page.len() < 64 || &page[0..8] != SEGMENT_MAGIC {
            return Ok(None);
        }
        if get_u32(page, 12) != crc32c::crc32c(&page[16..64]) {
            return Err(Error::corrupt(
                None,
                "the log segment's header is damaged (its checksum fails)",
            ));
        }
        let version = get_u32(page, SEGMENT_VERSION_AT as usize);
        if !(LOG_VERSION_MIN..=LOG_VERSION).contains(&version) {
            return Err(Error::corrupt(
                None,
                format!(
                    "log segment version {version}: this build reads versions \
                     {LOG_VERSION_MIN} to {LOG_VERSION}"
                ),
            ));
        }
        Ok(Some(SegmentHeader {
            version,
            store_id: get_u64(page, 16),
            generation: get_u64(page, 24),
            salt: get_u64(page, 32),
            first_txid: get_u64(page, 40),
        }))
    }
}

/// A frame's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) first_txid: u64,
    pub(crate) count: u32,
    /// Resolutions at the start of the body.
    pub(crate) resolutions: u32,
    pub(crate) body_len: u64,
    pub(crate) durable_before: u64,
    pub(crate) body_crc: u32,
}

impl FrameHeader {
    /// The last commit id in the frame.
    pub(crate) fn last_txid(&self) -> u64 {
        self.first_txid + self.count as u64 - 1
    }

    /// Bytes the frame takes in the segment, padding included.
    pub(crate) fn span(&self) -> u64 {
        (FRAME_HEADER_LEN as u64 + self.body_len).next_multiple_of(FRAME_ALIGN as u64)
    }

    /// Parses a frame header of this segment (`salt`); `None` if `bytes` hold none.
    pub(crate) fn read(bytes: &[u8], salt: u64) -> Option<FrameHeader> {
        if bytes.len() < FRAME_HEADER_LEN || &bytes[0..4] != FRAME_MAGIC {
            return None;
        }
        if get_u32(bytes, 4) != seeded(salt, &bytes[8..FRAME_HEADER_LEN]) {
            return None;
        }
        let h = FrameHeader {
            first_txid: get_u64(bytes, 8),
            count: get_u32(bytes, 16),
            resolutions: get_u32(bytes, 20),
            body_len: get_u64(bytes, 24),
            durable_before: get_u64(bytes, 32),
            body_crc: get_u32(bytes, 40),
        };
        if h.count == 0 || h.first_txid == 0 {
            return None;
        }
        h.first_txid.checked_add(h.count as u64)?;
        Some(h)
    }

    /// True if `body` is this frame's (its checksum matches).
    pub(crate) fn body_ok(&self, body: &[u8], salt: u64) -> bool {
        body.len() as u64 == self.body_len && seeded(salt, body) == self.body_crc
    }
}

/// A frame being filled by commits: the frame header (filled in by [`FrameBuf::seal`]), then
/// the body.
pub(crate) struct FrameBuf {
    buf: Vec<u8>,
    /// The commit id of the frame's first transaction.
    pub(crate) first_txid: u64,
    /// Transactions in the frame.
    pub(crate) count: u32,
    /// Resolutions to write before the transactions (see [`FrameBuf::resolve`]).
    resolutions: Vec<(u64, bool)>,
    /// True if the frame must open a new segment (the first frame after a checkpoint began).
    pub(crate) new_segment: bool,
}

impl FrameBuf {
    /// An empty frame whose first transaction will be commit `first_txid`.
    pub(crate) fn new(first_txid: u64, new_segment: bool) -> FrameBuf {
        let mut buf = Vec::with_capacity(FRAME_HEADER_LEN + 256);
        buf.resize(FRAME_HEADER_LEN, 0);
        FrameBuf {
            buf,
            first_txid,
            count: 0,
            resolutions: Vec::new(),
            new_segment,
        }
    }

    /// The last commit id in the frame.
    pub(crate) fn last_txid(&self) -> u64 {
        self.first_txid + self.count as u64 - 1
    }

    /// Bytes of the frame so far (header and body).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The body so far.
    pub(crate) fn body(&self) -> &[u8] {
        &self.buf[FRAME_HEADER_LEN..]
    }

    /// Starts the next transaction, of `ops` ops.
    pub(crate) fn begin_txn(&mut self, ops: u32) {
        self.buf.extend_from_slice(&ops.to_le_bytes());
        self.count += 1;
    }

    /// Adds an op to the transaction begun last.
    pub(crate) fn push_op(&mut self, kind: u8, key: &[u8], value: &[u8]) {
        debug_assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN);
        self.buf.push(kind);
        self.buf
            .extend_from_slice(&(key.len() as u16).to_le_bytes());
        if kind != OP_DELETE {
            self.buf
                .extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(key);
        if kind != OP_DELETE {
            self.buf.extend_from_slice(value);
        }
    }

    /// Records that the key of the unresolved put of commit `txid` (an earlier frame's)
    /// `existed` or not; written at the start of the body.
    pub(crate) fn resolve(&mut self, txid: u64, existed: bool) {
        debug_assert!(txid < self.first_txid);
        self.resolutions.push((txid, existed));
    }

    /// Pads the frame and fills in its header; returns the bytes to write.
    pub(crate) fn seal(mut self, salt: u64, durable_before: u64) -> Vec<u8> {
        debug_assert!(self.count > 0);
        if !self.resolutions.is_empty() {
            let mut res = Vec::with_capacity(self.resolutions.len() * RESOLUTION_LEN);
            for &(txid, existed) in &self.resolutions {
                res.extend_from_slice(&txid.to_le_bytes());
                res.push(existed as u8);
            }
            self.buf.splice(FRAME_HEADER_LEN..FRAME_HEADER_LEN, res);
        }
        let resolutions = self.resolutions.len() as u32;
        let body_len = (self.buf.len() - FRAME_HEADER_LEN) as u64;
        let body_crc = seeded(salt, self.body());
        let frame_len = self.buf.len().next_multiple_of(FRAME_ALIGN);
        self.buf.resize(frame_len, 0);
        let h = &mut self.buf[..FRAME_HEADER_LEN];
        h[0..4].copy_from_slice(FRAME_MAGIC);
        put_u64(h, 8, self.first_txid);
        put_u32(h, 16, self.count);
        put_u32(h, 20, resolutions);
        put_u64(h, 24, body_len);
        put_u64(h, 32, durable_before);
        put_u32(h, 40, body_crc);
        put_u32(h, 44, 0);
        let crc = seeded(salt, &h[8..FRAME_HEADER_LEN]);
        put_u32(h, 4, crc);
        self.buf
    }
}

/// One op of a logged transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LoggedOp<'a> {
    /// `OP_PUT_NEW`, `OP_PUT_REPLACE`, `OP_PUT_UNRESOLVED` or `OP_DELETE`.
    pub(crate) kind: u8,
    pub(crate) key: &'a [u8],
    /// Empty for a delete.
    pub(crate) value: &'a [u8],
}

impl LoggedOp<'_> {
    /// What the op does to the number of keys (an unresolved put's share comes with its
    /// resolution).
    pub(crate) fn delta(&self) -> i64 {
        match self.kind {
            OP_PUT_NEW => 1,
            OP_DELETE => -1,
            _ => 0,
        }
    }
}

/// The resolutions at the start of a frame's `body` (`n` of them, see `FrameHeader`), as
/// (commit id, existed) pairs; the transactions follow them.
pub(crate) fn parse_resolutions(
    body: &[u8],
    n: u32,
) -> std::result::Result<Vec<(u64, bool)>, String> {
    let len = (n as usize)
        .checked_mul(RESOLUTION_LEN)
        .filter(|&l| l <= body.len())
        .ok_or_else(|| format!("{n} resolutions do not fit in the frame's body"))?;
    body[..len]
        .chunks_exact(RESOLUTION_LEN)
        .map(|r| match r[8] {
            0 | 1 => Ok((get_u64(r, 0), r[8] == 1)),
            b => Err(format!("a resolution whose flag is {b}")),
        })
        .collect()
}

/// Calls `f(index, ops)` for each of the `count` transactions in a frame's `body`, after its
/// `resolutions`. A body that does not parse (its checksum matched, so it was written that
/// way) is corruption.
pub(crate) fn parse_body<'a>(
    body: &'a [u8],
    resolutions: u32,
    count: u32,
    mut f: impl FnMut(u32, &[LoggedOp<'a>]),
) -> std::result::Result<(), String> {
    let mut at = (resolutions as usize).saturating_mul(RESOLUTION_LEN);
    if at > body.len() {
        return Err(format!(
            "{resolutions} resolutions do not fit in the frame's body"
        ));
    }
    let mut ops = Vec::new();
    let take = |at: &mut usize, n: usize| -> std::result::Result<&'a [u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| format!("a transaction runs past the frame's end at byte {at}"))?;
        let s = &body[*at..end];
        *at = end;
        Ok(s)
    };
    for i in 0..count {
        let n = u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
        if n == 0 {
            return Err(format!("transaction {i} has no ops"));
        }
        ops.clear();
        for _ in 0..n {
            let kind = take(&mut at, 1)?[0];
            let klen = u16::from_le_bytes(take(&mut at, 2)?.try_into().expect("2 bytes")) as usize;
            if klen == 0 || klen > MAX_KEY_LEN {
                return Err(format!("a key of {klen} bytes"));
            }
            let vlen = match kind {
                OP_PUT_NEW | OP_PUT_REPLACE | OP_PUT_UNRESOLVED => {
                    u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes")) as usize
                }
                OP_DELETE => 0,
                other => return Err(format!("unknown op kind {other}")),
            };
            let key = take(&mut at, klen)?;
            let value = take(&mut at, vlen)?;
            ops.push(LoggedOp { kind, key, value });
        }
        f(i, &ops);
    }
    if at != body.len() {
        return Err(format!(
            "{} bytes after the frame's last transaction",
            body.len() - at
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_damage() {
        let seg = SegmentHeader {
            version: LOG_VERSION,
            store_id: 9,
            generation: 4,
            salt: 0xabcdef,
            first_txid: 17,
        };
        let mut f = FrameBuf::new(17, false);
        f.begin_txn(2);
        f.push_op(OP_PUT_NEW, b"k1", b"v1");
        f.push_op(OP_DELETE, b"k0", b"");
        f.begin_txn(1);
        f.push_op(OP_PUT_REPLACE, b"k1", &[7u8; 300]);
        f.begin_txn(1);
        f.push_op(OP_PUT_UNRESOLVED, b"k2", b"v2");
        f.resolve(12, true);
        f.resolve(15, false);
        assert_eq!(f.last_txid(), 19);
        let bytes = f.seal(seg.salt, 16);
        let mut page = vec![0u8; SEGMENT_HEADER_LEN];
        seg.write(&mut page);
        assert_eq!(SegmentHeader::read(&page).unwrap(), Some(seg));
        let frame = &bytes[..];
        assert_eq!(frame.len() % FRAME_ALIGN, 0);
        let h = FrameHeader::read(frame, seg.salt).unwrap();
        assert_eq!(
            (h.first_txid, h.count, h.resolutions, h.durable_before),
            (17, 3, 2, 16)
        );
        assert_eq!(h.span() as usize, frame.len());
        let body = &frame[FRAME_HEADER_LEN..FRAME_HEADER_LEN + h.body_len as usize];
        assert!(h.body_ok(body, seg.salt));
        assert!(
            FrameHeader::read(frame, seg.salt + 1).is_none(),
            "other salt"
        );
        assert_eq!(
            parse_resolutions(body, h.resolutions).unwrap(),
            vec![(12, true), (15, false)]
        );
        let mut seen = Vec::new();
        parse_body(body, h.resolutions, h.count, |i, ops| {
            seen.push((i, ops.iter().map(|o| o.delta()).sum::<i64>(), ops.len()))
        })
        .unwrap();
        assert_eq!(seen, vec![(0, 0, 2), (1, 0, 1), (2, 0, 1)]);
        assert!(
            parse_body(body, h.resolutions, 4, |_, _| {}).is_err(),
            "a missing transaction"
        );
        assert!(
            parse_body(body, 0, h.count, |_, _| {}).is_err(),
            "resolutions read as a transaction"
        );
        assert!(parse_resolutions(body, 1 << 30).is_err());
        for at in [0, 5, 9, 30, 41] {
            let mut bad = frame.to_vec();
            bad[at] ^= 1;
            assert!(FrameHeader::read(&bad, seg.salt).is_none(), "flip at {at}");
        }
        let mut bad = body.to_vec();
        bad[3] ^= 1;
        assert!(!h.body_ok(&bad, seg.salt));
        page[30] ^= 1;
        assert!(SegmentHeader::read(&page).is_err(), "a damaged header");
        assert_eq!(SegmentHeader::read(&[0u8; 4096]).unwrap(), None);
    }
}
