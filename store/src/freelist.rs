//! The freelist tree's encoding: one entry per run of free pages.
//!
//! * key: 16 bytes, the txid (big-endian) of the commit that freed the run, then the run's
//!   first page (big-endian), so entries sort by txid, then by page;
//! * value: 8 bytes, the run's length in pages (little-endian, at least 1).
//!
//! Runs under txid 0 are free to every reader: the allocator's [`Extents`] mirrors them in
//! memory, and they are coalesced (two txid-0 runs never touch). Runs under a txid `T > 0`
//! were freed by commit `T` and may still be read by snapshots older than `T`; once the reuse
//! horizon reaches `T`, a write transaction moves them under txid 0 (deleting their keys and
//! merging them into the txid-0 runs).
//!
//! [`Extents`]: crate::alloc::Extents

use std::future::Future;
use std::pin::Pin;

use crate::error::{Error, Result};
use crate::format::KIND_LEAF;
use crate::node::LeafValue;
use crate::pager::Pager;
use crate::types::{PageNo, TxId};

/// Bytes in a freelist key.
pub const KEY_LEN: usize = 16;

/// A freelist key.
pub type RunKey = [u8; KEY_LEN];

/// One freelist entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The commit that freed the run; 0 for runs free to everyone.
    pub txid: TxId,
    /// Its first page.
    pub start: PageNo,
    /// Its length in pages.
    pub len: u64,
}

/// The key of the run starting at `start` freed by `txid`.
pub fn run_key(txid: TxId, start: PageNo) -> RunKey {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&txid.0.to_be_bytes());
    k[8..].copy_from_slice(&start.0.to_be_bytes());
    k
}

/// The value of a run of `len` pages.
pub fn run_value(len: u64) -> [u8; 8] {
    len.to_le_bytes()
}

/// Decodes an entry, checking its shape (not yet its pages against the page count).
pub fn decode(key: &[u8], value: &[u8]) -> Result<Run> {
    let key: &RunKey = key
        .try_into()
        .map_err(|_| Error::corrupt(None, format!("freelist key of {} bytes", key.len())))?;
    let value: [u8; 8] = value
        .try_into()
        .map_err(|_| Error::corrupt(None, format!("freelist value of {} bytes", value.len())))?;
    let run = Run {
        txid: TxId(u64::from_be_bytes(key[..8].try_into().expect("8 bytes"))),
        start: PageNo(u64::from_be_bytes(key[8..].try_into().expect("8 bytes"))),
        len: u64::from_le_bytes(value),
    };
    if run.len == 0 || run.start.0 < 2 {
        return Err(Error::corrupt(
            None,
            format!(
                "freelist entry {}+{} is not a run of pages",
                run.start, run.len
            ),
        ));
    }
    Ok(run)
}

/// Checks that a run lies inside the store's `page_count` pages.
pub fn check_bounds(run: &Run, page_count: u64) -> Result<()> {
    if run
        .start
        .0
        .checked_add(run.len)
        .is_none_or(|end| end > page_count)
    {
        return Err(Error::corrupt(
            run.start.0,
            format!(
                "freelist lists pages {}..{} beyond the store's {page_count} pages",
                run.start,
                run.start.0.saturating_add(run.len)
            ),
        ));
    }
    Ok(())
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Appends to `out` the runs of the committed freelist tree at `root` whose keys lie in
/// `lo..=hi`, in key order. Reads committed pages only (the tree as the last commit left it).
pub async fn scan(
    pager: &Pager,
    root: PageNo,
    lo: RunKey,
    hi: RunKey,
    out: &mut Vec<Run>,
) -> Result<()> {
    if root.0 == 0 {
        return Ok(());
    }
    scan_node(pager, root, &lo, &hi, out, 0).await
}

fn scan_node<'a>(
    pager: &'a Pager,
    pgno: PageNo,
    lo: &'a RunKey,
    hi: &'a RunKey,
    out: &'a mut Vec<Run>,
    depth: usize,
) -> BoxFut<'a, Result<()>> {
    Box::pin(async move {
        if depth > 64 {
            return Err(Error::corrupt(
                pgno.0,
                "freelist tree deeper than 64 levels (a cycle?)",
            ));
        }
        let page = pager.node(pgno).await?;
        if page.kind == KIND_LEAF {
            let (first, _) = page.search(lo);
            for i in first..page.count {
                let e = page.leaf(i);
                if e.key > &hi[..] {
                    break;
                }
                let LeafValue::Inline(value) = e.value else {
                    return Err(Error::corrupt(pgno, "freelist value in an overflow run"));
                };
                out.push(decode(e.key, value)?);
            }
            return Ok(());
        }
        let first = page.child_index(lo);
        for i in first..page.count {
            if i > first && page.key(i) > &hi[..] {
                break;
            }
            scan_node(pager, page.child(i), lo, hi, out, depth + 1).await?;
        }
        Ok(())
    })
}

/// Every run of the committed freelist tree at `root`.
pub async fn scan_all(pager: &Pager, root: PageNo) -> Result<Vec<Run>> {
    let mut out = Vec::new();
    scan(pager, root, [0; KEY_LEN], [0xff; KEY_LEN], &mut out).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_txid_then_page() {
        let a = run_key(TxId(1), PageNo(900));
        let b = run_key(TxId(2), PageNo(3));
        let c = run_key(TxId(2), PageNo(4));
        assert!(a < b && b < c);
        let r = decode(&c, &run_value(7)).unwrap();
        assert_eq!(
            r,
            Run {
                txid: TxId(2),
                start: PageNo(4),
                len: 7
            }
        );
        assert!(decode(&c[..8], &run_value(7)).is_err());
        assert!(decode(&c, &run_value(0)).is_err());
        assert!(decode(&run_key(TxId(0), PageNo(1)), &run_value(1)).is_err());
        assert!(check_bounds(&r, 11).is_ok());
        assert!(check_bounds(&r, 10).is_err());
    }
}
