//! The on-disk format: page headers, checksums, and meta pages. `docs/store-format.md`
//! describes the same bytes for people.
//!
//! All integers are little-endian. Every page starts with a 32-byte header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | crc32c of the page's bytes 4.. (of the whole run, for overflow pages), seeded with the page number |
//! | 4 | 1 | kind: 1 meta, 2 branch, 3 leaf, 4 overflow |
//! | 5 | 1 | flags (0) |
//! | 6 | 2 | count: entries in a branch or leaf |
//! | 8 | 8 | page number (detects misdirected writes) |
//! | 16 | 8 | id of the transaction that wrote the page |
//! | 24 | 4 | overflow: extra pages in the run (overflow pages only) |
//! | 28 | 4 | reserved (0) |

use crate::error::{Error, Result};
use crate::types::{PageNo, TxId};

/// Page size of new stores.
pub const PAGE_SIZE: usize = 4096;
/// Bytes of the common page header.
pub const HEADER: usize = 32;
/// The magic number at the start of a meta page's body.
pub const MAGIC: &[u8; 8] = b"FLTSTOR1";
/// Format version written. Version 3 adds the write-ahead log's fields to the meta page (the
/// last logged commit the tree holds, and the store's id that its log segments carry);
/// version 2 (the same pages without them) is still read, and upgraded at the first
/// read-write open. Version 1 listed free pages one by one per commit and is refused with an
/// error that says how to migrate.
pub const VERSION: u32 = 3;
/// The oldest format version this build reads.
pub const OLDEST_READABLE_VERSION: u32 = 2;

/// Page kinds.
pub const KIND_META: u8 = 1;
/// A branch page.
pub const KIND_BRANCH: u8 = 2;
/// A leaf page.
pub const KIND_LEAF: u8 = 3;
/// The first page of an overflow run.
pub const KIND_OVERFLOW: u8 = 4;

/// The fields of a page header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the page is: one of the `KIND_*` constants.
    pub kind: u8,
    /// Entries in a branch or leaf page.
    pub count: u16,
    /// The page's own number.
    pub pgno: PageNo,
    /// The commit that wrote the page.
    pub txid: TxId,
    /// For an overflow run: its pages after the first.
    pub overflow: u32,
}

pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Header {
    pub fn write(&self, page: &mut [u8]) {
        page[4] = self.kind;
        page[5] = 0;
        put_u16(page, 6, self.count);
        put_u64(page, 8, self.pgno.0);
        put_u64(page, 16, self.txid.0);
        put_u32(page, 24, self.overflow);
        put_u32(page, 28, 0);
    }

    pub fn read(page: &[u8]) -> Header {
        Header {
            kind: page[4],
            count: get_u16(page, 6),
            pgno: PageNo(get_u64(page, 8)),
            txid: TxId(get_u64(page, 16)),
            overflow: get_u32(page, 24),
        }
    }
}

/// The checksum of a page (or overflow run): crc32c of bytes 4.., seeded with its number.
pub fn checksum(pgno: PageNo, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&pgno.0.to_le_bytes()), &bytes[4..])
}

/// Fills in a page's checksum (the header must already be written).
pub fn seal(pgno: PageNo, bytes: &mut [u8]) {
    let c = checksum(pgno, bytes);
    put_u32(bytes, 0, c);
}

/// Verifies a page's checksum, number, and kind.
pub fn verify(pgno: PageNo, bytes: &[u8], kinds: &[u8]) -> Result<Header> {
    if bytes.len() < HEADER {
        return Err(Error::corrupt(pgno, "page shorter than its header"));
    }
    let stored = get_u32(bytes, 0);
    if stored != checksum(pgno, bytes) {
        return Err(Error::corrupt(pgno, "checksum mismatch"));
    }
    let h = Header::read(bytes);
    if h.pgno != pgno {
        return Err(Error::corrupt(
            pgno,
            format!("page claims to be page {}", h.pgno),
        ));
    }
    if !kinds.contains(&h.kind) {
        return Err(Error::corrupt(
            pgno,
            format!(
                "unexpected page kind {} (expected one of {kinds:?})",
                h.kind
            ),
        ));
    }
    Ok(h)
}

/// The body of a meta page (after the header).
///
/// | offset | size | field |
/// |---|---|---|
/// | 32 | 8 | magic `FLTSTOR1` |
/// | 40 | 4 | format version (3; 2 is read too) |
/// | 44 | 4 | page size |
/// | 48 | 8 | transaction id of this commit |
/// | 56 | 8 | root page of the data tree (0 = empty) |
/// | 64 | 8 | root page of the freelist tree (0 = empty) |
/// | 72 | 8 | page count: pages `0..count` are in use or free; the file may be longer |
/// | 80 | 8 | number of keys in the data tree |
/// | 88 | 8 | the last logged commit whose changes the tree holds (version 3; 0 before) |
/// | 96 | 8 | the store's id, which its log segments carry (version 3; 0 before) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Page size in bytes.
    pub page_size: u32,
    /// The commit this meta publishes.
    pub txid: TxId,
    /// Root of the data tree ([`PageNo::NONE`] when empty).
    pub root: PageNo,
    /// Root of the freelist tree ([`PageNo::NONE`] when empty).
    pub free_root: PageNo,
    /// Pages `0..page_count` are in use or free; the file may be longer.
    pub page_count: u64,
    /// Keys in the data tree.
    pub entries: u64,
    /// The last logged commit whose changes the tree holds: recovery replays the log's
    /// records after it.
    pub log_txid: u64,
    /// The store's id (random, never 0 once written by version 3): log segments carry it, so
    /// a log is never replayed into another store.
    pub store_id: u64,
    /// The format version the page was written in (`VERSION` for pages this build writes).
    pub version: u32,
}

impl Meta {
    /// Serialises this meta into page `slot` (0 or 1).
    pub fn to_page(self, slot: u64) -> Vec<u8> {
        let mut page = vec![0u8; self.page_size as usize];
        Header {
            kind: KIND_META,
            count: 0,
            pgno: PageNo(slot),
            txid: self.txid,
            overflow: 0,
        }
        .write(&mut page);
        page[32..40].copy_from_slice(MAGIC);
        put_u32(&mut page, 40, VERSION);
        put_u32(&mut page, 44, self.page_size);
        put_u64(&mut page, 48, self.txid.0);
        put_u64(&mut page, 56, self.root.0);
        put_u64(&mut page, 64, self.free_root.0);
        put_u64(&mut page, 72, self.page_count);
        put_u64(&mut page, 80, self.entries);
        put_u64(&mut page, 88, self.log_txid);
        put_u64(&mut page, 96, self.store_id);
        seal(PageNo(slot), &mut page);
        page
    }

    /// Parses and verifies meta page `slot`.
    pub fn from_page(slot: u64, page: &[u8]) -> Result<Meta> {
        if page.len() < 104 {
            return Err(Error::corrupt(slot, "meta page truncated"));
        }
        if &page[32..40] != MAGIC {
            return Err(Error::corrupt(slot, "not a faultless store (bad magic)"));
        }
        let page_size = get_u32(page, 44);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(Error::corrupt(slot, format!("bad page size {page_size}")));
        }
        let page = &page[..(page_size as usize).min(page.len())];
        verify(PageNo(slot), page, &[KIND_META])?;
        let version = get_u32(page, 40);
        if version == 1 {
            return Err(Error::corrupt(
                slot,
                "store format version 1 (written by an earlier faultless) is not supported: \
                 version 2 changed the freelist's encoding; dump it with the faultless that \
                 wrote it (`faultless store dump`) and load the dump into a new store \
                 (`faultless store load`)",
            ));
        }
        if !(OLDEST_READABLE_VERSION..=VERSION).contains(&version) {
            return Err(Error::corrupt(
                slot,
                format!(
                    "unsupported format version {version} (this build reads versions \
                     {OLDEST_READABLE_VERSION} to {VERSION})"
                ),
            ));
        }
        let (log_txid, store_id) = if version >= 3 {
            (get_u64(page, 88), get_u64(page, 96))
        } else {
            (0, 0)
        };
        let meta = Meta {
            page_size,
            txid: TxId(get_u64(page, 48)),
            root: PageNo(get_u64(page, 56)),
            free_root: PageNo(get_u64(page, 64)),
            page_count: get_u64(page, 72),
            entries: get_u64(page, 80),
            log_txid,
            store_id,
            version,
        };
        if meta.page_count < 2
            || meta.root.0 >= meta.page_count
            || meta.free_root.0 >= meta.page_count
            || (meta.root.0 == 1 || meta.free_root.0 == 1)
        {
            return Err(Error::corrupt(slot, "meta page points outside the store"));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trip_and_corruption() {
        let m = Meta {
            page_size: 4096,
            txid: TxId(7),
            root: PageNo(5),
            free_root: PageNo(9),
            page_count: 12,
            entries: 3,
            log_txid: 40,
            store_id: 0xfeed,
            version: VERSION,
        };
        let page = m.to_page(1);
        assert_eq!(Meta::from_page(1, &page).unwrap(), m);
        assert!(Meta::from_page(0, &page).is_err(), "wrong slot");
        for at in [0, 5, 33, 50, 60, 4000] {
            let mut bad = page.clone();
            bad[at] ^= 0x40;
            assert!(Meta::from_page(1, &bad).is_err(), "flip at {at}");
        }
    }
}
