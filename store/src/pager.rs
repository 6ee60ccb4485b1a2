//! Page access for the store: every page is read through the runtime's non-blocking page
//! access, and its checksum is verified the first time this process reads it.

use std::cell::RefCell;

use faultless_runtime::fs::File;
use faultless_runtime::mem::Mapping;

use crate::error::{Error, Result};
use crate::format::{self, get_u32, Header, HEADER, KIND_OVERFLOW};
use crate::node::PageView;
use crate::types::{PageNo, TxId};

/// The mapping, the file, and which pages are known good.
pub struct Pager {
    pub map: Mapping,
    pub file: File,
    pub page_size: usize,
    /// One bit per page: checksum verified (or written by us) since the store was opened.
    verified: RefCell<Vec<u64>>,
}

impl Pager {
    pub fn new(map: Mapping, file: File, page_size: usize) -> Pager {
        Pager {
            map,
            file,
            page_size,
            verified: RefCell::new(Vec::new()),
        }
    }

    fn is_verified(&self, pgno: PageNo) -> bool {
        let v = self.verified.borrow();
        v.get((pgno.0 >> 6) as usize)
            .is_some_and(|w| w & (1 << (pgno.0 & 63)) != 0)
    }

    /// Records pages as good (verified, or just written by this process).
    pub fn mark_verified(&self, pgno: PageNo, count: u64) {
        let mut v = self.verified.borrow_mut();
        let need = ((pgno.0 + count) >> 6) as usize + 1;
        if v.len() < need {
            v.resize(need, 0);
        }
        for p in pgno.0..pgno.0 + count {
            v[(p >> 6) as usize] |= 1 << (p & 63);
        }
    }

    /// Records pages this process just wrote through the file: known good, and in the page
    /// cache (so a first read maps them from there; see `Mapping::note_written`).
    pub fn mark_written(&self, pgno: PageNo, count: u64) {
        self.mark_verified(pgno, count);
        let ps = self.page_size as u64;
        self.map.note_written(pgno.0 * ps..(pgno.0 + count) * ps);
    }

    /// Forgets that pages `pgno..pgno + count` were verified (they are about to be rewritten).
    pub fn forget(&self, pgno: PageNo, count: u64) {
        let mut v = self.verified.borrow_mut();
        for p in pgno.0..pgno.0 + count {
            if let Some(w) = v.get_mut((p >> 6) as usize) {
                *w &= !(1 << (p & 63));
            }
        }
    }

    /// Fails if the file was truncated under the mapping (a read then met a page the file no
    /// longer held, and the SIGBUS safety net mapped zeros there): bytes read from the mapping
    /// since may be those zeros. Check it after copying bytes out, before using them.
    pub fn check_intact(&self) -> Result<()> {
        self.map.check_intact().map_err(Error::Io)
    }

    /// `e`, unless the file was truncated under the mapping: then that is the real cause
    /// (the page read as zeros), and the error says so.
    fn or_truncated(&self, e: Error) -> Error {
        self.check_intact().err().unwrap_or(e)
    }

    /// The bytes of page `pgno`; yields while it is not resident.
    pub async fn raw_page(&self, pgno: PageNo) -> Result<&[u8]> {
        let ps = self.page_size as u64;
        let start = pgno
            .0
            .checked_mul(ps)
            .ok_or_else(|| Error::corrupt(pgno, "page number out of range"))?;
        let guard = self.map.read(start..start + ps).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt(pgno, "page lies past the end of the file")
            } else {
                Error::Io(e)
            }
        })?;
        let bytes: &[u8] = &guard;
        // SAFETY: the guard only borrows the mapping, which `self` owns; the slice stays
        // valid as long as `self` does, and pages reachable from a live snapshot are never
        // rewritten.
        Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) })
    }

    /// A verified branch or leaf page.
    pub async fn node(&self, pgno: PageNo) -> Result<PageView<'_>> {
        self.node_inner(pgno)
            .await
            .map_err(|e| self.or_truncated(e))
    }

    async fn node_inner(&self, pgno: PageNo) -> Result<PageView<'_>> {
        if pgno.0 < 2 {
            return Err(Error::corrupt(pgno, "tree points at a meta page"));
        }
        let bytes = self.raw_page(pgno).await?;
        if self.is_verified(pgno) {
            // Checked structurally when it was verified (or built by us when written). The
            // header is still read: a page that became zeros (a file truncated, then grown
            // again, under the store) fails here instead of reading as an empty page.
            let header = Header::read(bytes);
            if header.kind != format::KIND_BRANCH && header.kind != format::KIND_LEAF {
                return Err(Error::corrupt(pgno, "not a tree page"));
            }
            if header.pgno != pgno {
                return Err(Error::corrupt(
                    pgno,
                    format!("page claims to be page {}", header.pgno),
                ));
            }
            return Ok(PageView::trusted(bytes, &header));
        }
        let header = format::verify(pgno, bytes, &[format::KIND_BRANCH, format::KIND_LEAF])?;
        let view = PageView::new(pgno, bytes, &header)?;
        self.mark_verified(pgno, 1);
        Ok(view)
    }

    /// Pages an overflow value of `len` bytes occupies.
    pub fn overflow_pages(&self, len: u64) -> u64 {
        (HEADER as u64 + len).div_ceil(self.page_size as u64)
    }

    /// The bytes of an overflow value of `len` bytes starting at page `pgno`. The run's
    /// checksum is verified the first time; its header every time. Bytes past the first page
    /// are not touched here: a caller that copies them checks [`check_intact`] afterwards.
    ///
    /// [`check_intact`]: Self::check_intact
    pub async fn overflow(&self, pgno: PageNo, len: u32) -> Result<&[u8]> {
        let bytes = self
            .overflow_inner(pgno, len)
            .await
            .map_err(|e| self.or_truncated(e))?;
        self.check_intact()?;
        Ok(bytes)
    }

    async fn overflow_inner(&self, pgno: PageNo, len: u32) -> Result<&[u8]> {
        if pgno.0 < 2 {
            return Err(Error::corrupt(pgno, "value points at a meta page"));
        }
        let ps = self.page_size as u64;
        let pages = self.overflow_pages(len as u64);
        let start = pgno.0 * ps;
        let guard = self
            .map
            .read(start..start + pages * ps)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    Error::corrupt(pgno, "overflow run lies past the end of the file")
                }
                _ => Error::Io(e),
            })?;
        let bytes: &[u8] = &guard;
        // SAFETY: as in `raw_page`.
        let bytes = unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        if self.is_verified(pgno) {
            let h = Header::read(bytes);
            if h.kind != KIND_OVERFLOW || h.pgno != pgno {
                return Err(Error::corrupt(pgno, "not the overflow run it was"));
            }
            if h.overflow as u64 + 1 != pages || get_u32(bytes, 28) != len {
                return Err(Error::corrupt(pgno, "overflow run length mismatch"));
            }
        } else {
            let h = format::verify(pgno, bytes, &[KIND_OVERFLOW])?;
            if h.overflow as u64 + 1 != pages || get_u32(bytes, 28) != len {
                return Err(Error::corrupt(pgno, "overflow run length mismatch"));
            }
            self.mark_verified(pgno, 1);
        }
        Ok(&bytes[HEADER..HEADER + len as usize])
    }
}

/// Serialises an overflow run for `value` at `pgno`.
pub fn overflow_run(pgno: PageNo, txid: TxId, value: &[u8], page_size: usize) -> Vec<u8> {
    let pages = (HEADER + value.len()).div_ceil(page_size);
    let mut run = vec![0u8; pages * page_size];
    Header {
        kind: KIND_OVERFLOW,
        count: 0,
        pgno,
        txid,
        overflow: (pages - 1) as u32,
    }
    .write(&mut run);
    format::put_u32(&mut run, 28, value.len() as u32);
    run[HEADER..HEADER + value.len()].copy_from_slice(value);
    format::seal(pgno, &mut run);
    run
}
