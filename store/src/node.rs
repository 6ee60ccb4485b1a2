//! Branch and leaf pages: the in-memory form a write transaction edits, its serialisation,
//! and a zero-copy view of a mapped page for readers.
//!
//! Page layout after the 32-byte header: `count` little-endian u16 slot offsets, one per
//! entry, in key order, then free space, then the entries' cells packed at the end of the
//! page (each slot gives its cell's offset from the page start).
//!
//! Leaf cell: `flags u8` (0 inline value, 1 overflow value), `key_len u16`, `value_len u32`,
//! the key, then the value bytes (inline) or the first page number of its overflow run (u64).
//!
//! Branch cell: `child u64`, `key_len u16`, the key. Entry `i` points at the child holding
//! keys `>= key[i]` and `< key[i + 1]`; `key[0]` is the smallest key of the subtree (it is not
//! consulted by searches, which go to child 0 for anything smaller).

use crate::error::{Error, Result};
use crate::format::{
    get_u16, get_u32, get_u64, put_u16, put_u32, put_u64, seal, Header, HEADER, KIND_BRANCH,
    KIND_LEAF,
};
use crate::types::{PageNo, TxId};

/// A value as a write transaction holds it in a leaf it edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Stored in the leaf.
    Inline(Vec<u8>),
    /// Stored in an overflow run of `len` bytes starting at page `pgno`.
    Overflow {
        /// The run's first page.
        pgno: PageNo,
        /// The value's length in bytes.
        len: u32,
    },
}

/// A value as a mapped leaf page holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafValue<'a> {
    /// The bytes, in the leaf.
    Inline(&'a [u8]),
    /// An overflow run of `len` bytes starting at page `pgno`.
    Overflow {
        /// The run's first page.
        pgno: PageNo,
        /// The value's length in bytes.
        len: u32,
    },
}

impl LeafValue<'_> {
    /// The editable form.
    pub fn to_value(self) -> Value {
        match self {
            LeafValue::Inline(v) => Value::Inline(v.to_vec()),
            LeafValue::Overflow { pgno, len } => Value::Overflow { pgno, len },
        }
    }
}

impl Value {
    fn cell_bytes(&self) -> usize {
        match self {
            Value::Inline(v) => v.len(),
            Value::Overflow { .. } => 8,
        }
    }
}

/// A page being edited by a write transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Leaf(Vec<(Vec<u8>, Value)>),
    Branch(Vec<(Vec<u8>, PageNo)>),
}

pub const LEAF_CELL_FIXED: usize = 7;
pub const BRANCH_CELL_FIXED: usize = 10;

impl Node {
    /// Bytes the node needs as a page.
    pub fn size(&self) -> usize {
        HEADER
            + match self {
                Node::Leaf(es) => es
                    .iter()
                    .map(|(k, v)| 2 + LEAF_CELL_FIXED + k.len() + v.cell_bytes())
                    .sum::<usize>(),
                Node::Branch(es) => es
                    .iter()
                    .map(|(k, _)| 2 + BRANCH_CELL_FIXED + k.len())
                    .sum::<usize>(),
            }
    }

    pub fn len(&self) -> usize {
        match self {
            Node::Leaf(es) => es.len(),
            Node::Branch(es) => es.len(),
        }
    }

    pub fn first_key(&self) -> &[u8] {
        match self {
            Node::Leaf(es) => es.first().map_or(&[][..], |e| &e.0),
            Node::Branch(es) => es.first().map_or(&[][..], |e| &e.0),
        }
    }

    /// Serialises into a page of `page_size` bytes (the node must fit).
    pub fn to_page(&self, pgno: PageNo, txid: TxId, page_size: usize) -> Vec<u8> {
        debug_assert!(self.size() <= page_size, "node too large for its page");
        let mut page = vec![0u8; page_size];
        let (kind, count) = match self {
            Node::Leaf(es) => (KIND_LEAF, es.len()),
            Node::Branch(es) => (KIND_BRANCH, es.len()),
        };
        Header {
            kind,
            count: count as u16,
            pgno,
            txid,
            overflow: 0,
        }
        .write(&mut page);
        let mut end = page_size;
        match self {
            Node::Leaf(es) => {
                for (i, (k, v)) in es.iter().enumerate() {
                    let cell = LEAF_CELL_FIXED + k.len() + v.cell_bytes();
                    end -= cell;
                    put_u16(&mut page, HEADER + 2 * i, end as u16);
                    let (flags, vlen) = match v {
                        Value::Inline(v) => (0u8, v.len() as u32),
                        Value::Overflow { len, .. } => (1u8, *len),
                    };
                    page[end] = flags;
                    put_u16(&mut page, end + 1, k.len() as u16);
                    put_u32(&mut page, end + 3, vlen);
                    page[end + 7..end + 7 + k.len()].copy_from_slice(k);
                    let at = end + 7 + k.len();
                    match v {
                        Value::Inline(v) => page[at..at + v.len()].copy_from_slice(v),
                        Value::Overflow { pgno, .. } => put_u64(&mut page, at, pgno.0),
                    }
                }
            }
            Node::Branch(es) => {
                for (i, (k, child)) in es.iter().enumerate() {
                    let cell = BRANCH_CELL_FIXED + k.len();
                    end -= cell;
                    put_u16(&mut page, HEADER + 2 * i, end as u16);
                    put_u64(&mut page, end, child.0);
                    put_u16(&mut page, end + 8, k.len() as u16);
                    page[end + 10..end + 10 + k.len()].copy_from_slice(k);
                }
            }
        }
        seal(pgno, &mut page);
        page
    }
}

/// A leaf entry to serialise, borrowed from wherever it lives (a mapped page, a memtable).
#[derive(Clone, Copy, Debug)]
pub struct LeafCell<'a> {
    pub key: &'a [u8],
    pub value: LeafValue<'a>,
}

impl LeafCell<'_> {
    /// Bytes the entry takes in a page: its slot and its cell.
    pub fn size(&self) -> usize {
        2 + LEAF_CELL_FIXED
            + self.key.len()
            + match self.value {
                LeafValue::Inline(v) => v.len(),
                LeafValue::Overflow { .. } => 8,
            }
    }
}

/// Bytes a branch entry with `key` takes in a page: its slot and its cell.
pub fn branch_entry_size(key: &[u8]) -> usize {
    2 + BRANCH_CELL_FIXED + key.len()
}

/// Serialises leaf `cells` (in key order, fitting one page) as page `pgno`.
pub fn leaf_page(cells: &[LeafCell<'_>], pgno: PageNo, txid: TxId, page_size: usize) -> Vec<u8> {
    let mut page = vec![0u8; page_size];
    Header {
        kind: KIND_LEAF,
        count: cells.len() as u16,
        pgno,
        txid,
        overflow: 0,
    }
    .write(&mut page);
    let mut end = page_size;
    for (i, c) in cells.iter().enumerate() {
        end -= c.size() - 2;
        debug_assert!(end >= HEADER + 2 * cells.len(), "cells overflow the page");
        put_u16(&mut page, HEADER + 2 * i, end as u16);
        let (flags, vlen) = match c.value {
            LeafValue::Inline(v) => (0u8, v.len() as u32),
            LeafValue::Overflow { len, .. } => (1u8, len),
        };
        page[end] = flags;
        put_u16(&mut page, end + 1, c.key.len() as u16);
        put_u32(&mut page, end + 3, vlen);
        page[end + 7..end + 7 + c.key.len()].copy_from_slice(c.key);
        let at = end + 7 + c.key.len();
        match c.value {
            LeafValue::Inline(v) => page[at..at + v.len()].copy_from_slice(v),
            LeafValue::Overflow { pgno, .. } => put_u64(&mut page, at, pgno.0),
        }
    }
    seal(pgno, &mut page);
    page
}

/// Serialises branch `entries` (in key order, fitting one page) as page `pgno`.
pub fn branch_page(
    entries: &[(&[u8], PageNo)],
    pgno: PageNo,
    txid: TxId,
    page_size: usize,
) -> Vec<u8> {
    let mut page = vec![0u8; page_size];
    Header {
        kind: KIND_BRANCH,
        count: entries.len() as u16,
        pgno,
        txid,
        overflow: 0,
    }
    .write(&mut page);
    let mut end = page_size;
    for (i, (k, child)) in entries.iter().enumerate() {
        end -= BRANCH_CELL_FIXED + k.len();
        debug_assert!(
            end >= HEADER + 2 * entries.len(),
            "entries overflow the page"
        );
        put_u16(&mut page, HEADER + 2 * i, end as u16);
        put_u64(&mut page, end, child.0);
        put_u16(&mut page, end + 8, k.len() as u16);
        page[end + 10..end + 10 + k.len()].copy_from_slice(k);
    }
    seal(pgno, &mut page);
    page
}

/// A zero-copy view of a verified branch or leaf page.
#[derive(Clone, Copy)]
pub struct PageView<'a> {
    pub bytes: &'a [u8],
    pub kind: u8,
    pub count: usize,
}

/// The outcome of [`PageView::step`].
pub enum Step {
    /// The leaf's entry at this index holds the key.
    Found(usize),
    /// The key is not in the tree.
    Missing,
    /// Descend into this page.
    Child(PageNo),
}

/// One leaf entry as seen in a mapped page.
#[derive(Clone, Copy, Debug)]
pub struct LeafEntry<'a> {
    pub key: &'a [u8],
    /// The inline value, or `None` for an overflow value.
    /// Its value.
    pub value: LeafValue<'a>,
}

impl<'a> PageView<'a> {
    /// A view of a page whose structure was already checked by [`PageView::new`] (when this
    /// process first verified the page): no per-slot work, for the hot path.
    pub fn trusted(bytes: &'a [u8], header: &Header) -> PageView<'a> {
        PageView {
            bytes,
            kind: header.kind,
            count: header.count as usize,
        }
    }

    /// Checks the structure of a page whose checksum was verified: slot offsets and cell
    /// lengths stay inside the page. After this, accessors cannot index out of bounds.
    pub fn new(pgno: PageNo, bytes: &'a [u8], header: &Header) -> Result<PageView<'a>> {
        let view = PageView::trusted(bytes, header);
        let slots_end = HEADER + 2 * view.count;
        if slots_end > bytes.len() {
            return Err(Error::corrupt(pgno, "slot array past the end of the page"));
        }
        for i in 0..view.count {
            let off = get_u16(bytes, HEADER + 2 * i) as usize;
            let fixed = if view.kind == KIND_LEAF {
                LEAF_CELL_FIXED
            } else {
                BRANCH_CELL_FIXED
            };
            if off < slots_end || off + fixed > bytes.len() {
                return Err(Error::corrupt(
                    pgno,
                    format!("slot {i} points outside the page"),
                ));
            }
            let cell_len = if view.kind == KIND_LEAF {
                let klen = get_u16(bytes, off + 1) as usize;
                let vlen = get_u32(bytes, off + 3) as usize;
                fixed + klen + if bytes[off] & 1 == 1 { 8 } else { vlen }
            } else {
                fixed + get_u16(bytes, off + 8) as usize
            };
            if off + cell_len > bytes.len() {
                return Err(Error::corrupt(pgno, format!("cell {i} runs past the page")));
            }
        }
        Ok(view)
    }

    fn slot(&self, i: usize) -> usize {
        get_u16(self.bytes, HEADER + 2 * i) as usize
    }

    /// Key of entry `i`.
    pub fn key(&self, i: usize) -> &'a [u8] {
        let off = self.slot(i);
        if self.kind == KIND_LEAF {
            let klen = get_u16(self.bytes, off + 1) as usize;
            &self.bytes[off + 7..off + 7 + klen]
        } else {
            let klen = get_u16(self.bytes, off + 8) as usize;
            &self.bytes[off + 10..off + 10 + klen]
        }
    }

    /// Child page of branch entry `i`.
    pub fn child(&self, i: usize) -> PageNo {
        PageNo(get_u64(self.bytes, self.slot(i)))
    }

    /// Leaf entry `i`.
    pub fn leaf(&self, i: usize) -> LeafEntry<'a> {
        let off = self.slot(i);
        let flags = self.bytes[off];
        let klen = get_u16(self.bytes, off + 1) as usize;
        let vlen = get_u32(self.bytes, off + 3);
        let key = &self.bytes[off + 7..off + 7 + klen];
        let at = off + 7 + klen;
        if flags & 1 == 1 {
            LeafEntry {
                key,
                value: LeafValue::Overflow {
                    pgno: PageNo(get_u64(self.bytes, at)),
                    len: vlen,
                },
            }
        } else {
            LeafEntry {
                key,
                value: LeafValue::Inline(&self.bytes[at..at + vlen as usize]),
            }
        }
    }

    /// Index of the first entry with key >= `key` (binary search), and whether it is equal.
    pub fn search(&self, key: &[u8]) -> (usize, bool) {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match crate::keys::compare(self.key(mid), key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return (mid, true),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        (lo, false)
    }

    /// For a branch: the index of the child whose range holds `key`.
    pub fn child_index(&self, key: &[u8]) -> usize {
        match self.search(key) {
            (i, true) => i,
            (0, false) => 0,
            (i, false) => i - 1,
        }
    }

    /// One step of a lookup for `key` at this page (page `pgno`): the matching leaf entry,
    /// its absence, or the child to descend into.
    pub fn step(&self, pgno: PageNo, key: &[u8]) -> Result<Step> {
        if self.kind == KIND_LEAF {
            return Ok(match self.search(key) {
                (i, true) => Step::Found(i),
                _ => Step::Missing,
            });
        }
        if self.count == 0 {
            return Err(Error::corrupt(pgno, "empty branch page"));
        }
        Ok(Step::Child(self.child(self.child_index(key))))
    }

    /// Parses into the editable form.
    pub fn to_node(self) -> Node {
        if self.kind == KIND_LEAF {
            Node::Leaf(
                (0..self.count)
                    .map(|i| {
                        let e = self.leaf(i);
                        (e.key.to_vec(), e.value.to_value())
                    })
                    .collect(),
            )
        } else {
            Node::Branch(
                (0..self.count)
                    .map(|i| (self.key(i).to_vec(), self.child(i)))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::verify;

    #[test]
    fn leaf_and_branch_round_trip() {
        let leaf = Node::Leaf(vec![
            (b"a".to_vec(), Value::Inline(b"1".to_vec())),
            (
                b"bb".to_vec(),
                Value::Overflow {
                    pgno: PageNo(9),
                    len: 5000,
                },
            ),
            (b"c".to_vec(), Value::Inline(vec![])),
        ]);
        let page = leaf.to_page(PageNo(4), TxId(2), 4096);
        let h = verify(PageNo(4), &page, &[KIND_LEAF]).unwrap();
        let view = PageView::new(PageNo(4), &page, &h).unwrap();
        assert_eq!(view.to_node(), leaf);
        assert_eq!(view.search(b"bb"), (1, true));
        assert_eq!(view.search(b"b"), (1, false));
        assert_eq!(view.search(b"z"), (3, false));

        let branch = Node::Branch(vec![(b"".to_vec(), PageNo(3)), (b"m".to_vec(), PageNo(7))]);
        let page = branch.to_page(PageNo(5), TxId(2), 4096);
        let h = verify(PageNo(5), &page, &[KIND_BRANCH]).unwrap();
        let view = PageView::new(PageNo(5), &page, &h).unwrap();
        assert_eq!(view.to_node(), branch);
        assert_eq!(view.child(view.child_index(b"a")), PageNo(3));
        assert_eq!(view.child(view.child_index(b"m")), PageNo(7));
        assert_eq!(view.child(view.child_index(b"zz")), PageNo(7));
    }

    #[test]
    fn corrupt_slots_are_rejected_not_panicked_on() {
        let leaf = Node::Leaf(vec![(b"key".to_vec(), Value::Inline(b"v".to_vec()))]);
        let mut page = leaf.to_page(PageNo(4), TxId(1), 4096);
        put_u16(&mut page, HEADER, 4095);
        let h = Header::read(&page);
        assert!(PageView::new(PageNo(4), &page, &h).is_err());
    }
}
