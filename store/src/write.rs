//! Write transactions: copy-on-write edits of the data and freelist trees, page allocation
//! and reuse, and the commit protocol.
//!
//! A write transaction never modifies a page that a committed version references. The first
//! time it touches a page it copies it into memory ("dirty"), gives the copy a new page
//! number, and records the old number as freed by this transaction. At commit:
//!
//! 1. the freelist tree gets one entry, keyed by this transaction's id, listing the pages it
//!    freed (and the entries it consumed for reuse are deleted): the freelist is updated
//!    incrementally, never rewritten whole;
//! 2. every dirty page is written (io_uring writes, adjacent pages coalesced), then synced;
//! 3. the meta page for this transaction (slot `txid % 2`) is written and synced.
//!
//! A crash before step 3 completes leaves the previous meta, and everything it references,
//! intact: new pages only ever land on pages that no committed version uses.
//!
//! Pages freed by transaction T are reused only when no live reader holds a snapshot older
//! than T (the reader table), so a snapshot's pages never change under it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crate::error::{Error, Result};
use crate::format::{Meta, HEADER};
use crate::node::{Node, PageView, Step, Value};
use crate::pager::{overflow_run, Pager};

/// Which tree an operation edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Data = 0,
    Free = 1,
}

/// The state of a write transaction.
pub struct WriteState {
    pub txid: u64,
    pub roots: [u64; 2],
    pub entries: u64,
    pub page_count: u64,
    pub dirty: HashMap<u64, Node>,
    pub dirty_overflow: HashMap<u64, Vec<u8>>,
    pub freed: Vec<u64>,
    pub reusable: Vec<u64>,
    consumed: Vec<Vec<u8>>,
    scan_after: Option<Vec<u8>>,
    /// Freelist entries with a transaction id <= this are reusable.
    reuse_limit: u64,
    no_reuse: bool,
    page_size: usize,
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;
/// A key and a copy of its value.
type Entry = (Vec<u8>, Vec<u8>);

/// Values longer than this go to overflow pages.
pub fn max_inline(page_size: usize) -> usize {
    page_size / 4
}

/// Splits an oversized node into parts that each fit a page, balanced by bytes.
pub fn split_node(node: Node, page_size: usize) -> Vec<Node> {
    let usable = page_size - HEADER;
    let body = node.size() - HEADER;
    let parts = body.div_ceil(usable).max(2);
    let target = body.div_ceil(parts);
    macro_rules! split_entries {
        ($es:expr, $cell:expr, $wrap:expr) => {{
            let mut out = Vec::new();
            let mut cur = Vec::new();
            let mut cur_size = 0;
            for e in $es {
                let s = $cell(&e);
                if !cur.is_empty() && (cur_size + s > usable || cur_size >= target) {
                    out.push($wrap(std::mem::take(&mut cur)));
                    cur_size = 0;
                }
                cur_size += s;
                cur.push(e);
            }
            if !cur.is_empty() {
                out.push($wrap(cur));
            }
            out
        }};
    }
    match node {
        Node::Leaf(es) => split_entries!(
            es,
            |e: &(Vec<u8>, Value)| Node::Leaf(vec![e.clone()]).size() - HEADER,
            Node::Leaf
        ),
        Node::Branch(es) => split_entries!(
            es,
            |e: &(Vec<u8>, u64)| Node::Branch(vec![e.clone()]).size() - HEADER,
            Node::Branch
        ),
    }
}

fn branch_index(es: &[(Vec<u8>, u64)], key: &[u8]) -> usize {
    match es.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
        Ok(i) => i,
        Err(0) => 0,
        Err(i) => i - 1,
    }
}

/// Encodes a freelist entry's key (a transaction id, big-endian so keys sort by id).
pub fn free_key(txid: u64) -> Vec<u8> {
    txid.to_be_bytes().to_vec()
}

/// Encodes a list of page numbers.
pub fn encode_pages(pages: &[u64]) -> Vec<u8> {
    pages.iter().flat_map(|p| p.to_le_bytes()).collect()
}

/// Decodes a list of page numbers.
pub fn decode_pages(bytes: &[u8]) -> Result<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(Error::corrupt(
            None,
            "freelist entry is not a list of page numbers",
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

impl WriteState {
    pub fn new(base: Meta, reuse_limit: u64) -> WriteState {
        WriteState {
            txid: base.txid + 1,
            roots: [base.root, base.free_root],
            entries: base.entries,
            page_count: base.page_count,
            dirty: HashMap::new(),
            dirty_overflow: HashMap::new(),
            freed: Vec::new(),
            reusable: Vec::new(),
            consumed: Vec::new(),
            scan_after: None,
            reuse_limit,
            no_reuse: false,
            page_size: base.page_size as usize,
        }
    }

    /// Takes the next reusable freelist entry into `reusable`. False if there is none.
    async fn refill(&mut self, pager: &Pager) -> Result<bool> {
        if self.no_reuse {
            return Ok(false);
        }
        let after = self.scan_after.clone();
        let Some((key, value)) = self.next_after(pager, Which::Free, after).await? else {
            return Ok(false);
        };
        let txid = u64::from_be_bytes(
            key.as_slice()
                .try_into()
                .map_err(|_| Error::corrupt(None, "freelist key is not a transaction id"))?,
        );
        if txid > self.reuse_limit {
            return Ok(false);
        }
        let pages = decode_pages(&value)?;
        for &p in &pages {
            if p == 1 || p >= self.page_count {
                return Err(Error::corrupt(p, "freelist lists a page outside the store"));
            }
        }
        // Zeros pad reserved entries (see `finish`).
        self.reusable.extend(pages.into_iter().filter(|&p| p != 0));
        self.consumed.push(key.clone());
        self.scan_after = Some(key);
        Ok(true)
    }

    /// A page for a new node: a reusable one, or a new one at the end of the file.
    pub async fn alloc(&mut self, pager: &Pager) -> Result<u64> {
        loop {
            if let Some(p) = self.reusable.pop() {
                pager.forget(p);
                return Ok(p);
            }
            if !self.refill(pager).await? {
                break;
            }
        }
        let p = self.page_count;
        self.page_count += 1;
        Ok(p)
    }

    /// `n` contiguous pages at the end of the file (for overflow values).
    fn alloc_run(&mut self, n: u64) -> u64 {
        let p = self.page_count;
        self.page_count += n;
        p
    }

    /// Frees a page: one allocated by this transaction is reusable at once, others become
    /// reusable when no reader can see them.
    fn free_page(&mut self, pgno: u64) {
        if self.dirty.remove(&pgno).is_some() {
            self.reusable.push(pgno);
        } else {
            self.freed.push(pgno);
        }
    }

    fn free_value(&mut self, pager: &Pager, v: &Value) {
        if let Value::Overflow { pgno, len } = v {
            let pages = pager.overflow_pages(*len as u64);
            let fresh = self.dirty_overflow.remove(pgno).is_some();
            for p in *pgno..*pgno + pages {
                if fresh {
                    self.reusable.push(p);
                } else {
                    self.freed.push(p);
                }
            }
        }
    }

    /// Makes `pgno` dirty (copying it from the mapping under a new page number if it is not
    /// yet) and returns its dirty page number.
    async fn make_dirty(&mut self, pager: &Pager, pgno: u64) -> Result<u64> {
        if self.dirty.contains_key(&pgno) {
            return Ok(pgno);
        }
        let node = pager.node(pgno).await?.to_node();
        let new = self.alloc(pager).await?;
        self.freed.push(pgno);
        self.dirty.insert(new, node);
        Ok(new)
    }

    fn node_mut(&mut self, pgno: u64) -> &mut Node {
        self.dirty.get_mut(&pgno).expect("path pages are dirty")
    }

    /// The value of `key` in tree `w`, copied (read-your-writes).
    pub async fn get(&self, pager: &Pager, w: Which, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut pgno = self.roots[w as usize];
        if pgno == 0 {
            return Ok(None);
        }
        for _ in 0..64 {
            if let Some(node) = self.dirty.get(&pgno) {
                match node {
                    Node::Leaf(es) => {
                        return match es.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
                            Ok(i) => Ok(Some(self.value_bytes(pager, &es[i].1).await?)),
                            Err(_) => Ok(None),
                        };
                    }
                    Node::Branch(es) => pgno = es[branch_index(es, key)].1,
                }
            } else {
                let page = pager.node(pgno).await?;
                match page.step(pgno, key)? {
                    Step::Child(child) => pgno = child,
                    Step::Missing => return Ok(None),
                    Step::Found(i) => {
                        let v = leaf_value(&page, i);
                        return Ok(Some(self.value_bytes(pager, &v).await?));
                    }
                }
            }
        }
        Err(Error::corrupt(
            None,
            "tree deeper than 64 levels (a cycle?)",
        ))
    }

    async fn value_bytes(&self, pager: &Pager, v: &Value) -> Result<Vec<u8>> {
        Ok(match v {
            Value::Inline(b) => b.clone(),
            Value::Overflow { pgno, len } => match self.dirty_overflow.get(pgno) {
                Some(b) => b.clone(),
                None => pager.overflow(*pgno, *len).await?.to_vec(),
            },
        })
    }

    /// The first entry of tree `w` with a key greater than `after` (or the first entry).
    fn next_after<'a>(
        &'a self,
        pager: &'a Pager,
        w: Which,
        after: Option<Vec<u8>>,
    ) -> BoxFut<'a, Result<Option<Entry>>> {
        Box::pin(async move {
            let root = self.roots[w as usize];
            if root == 0 {
                return Ok(None);
            }
            self.next_in(pager, root, after.as_deref(), 0).await
        })
    }

    fn next_in<'a>(
        &'a self,
        pager: &'a Pager,
        pgno: u64,
        after: Option<&'a [u8]>,
        depth: usize,
    ) -> BoxFut<'a, Result<Option<Entry>>> {
        Box::pin(async move {
            if depth > 64 {
                return Err(Error::corrupt(
                    pgno,
                    "tree deeper than 64 levels (a cycle?)",
                ));
            }
            let node = match self.dirty.get(&pgno) {
                Some(n) => n.clone(),
                None => pager.node(pgno).await?.to_node(),
            };
            match node {
                Node::Leaf(es) => {
                    for (k, v) in es {
                        if after.is_none_or(|a| k.as_slice() > a) {
                            let bytes = self.value_bytes(pager, &v).await?;
                            return Ok(Some((k, bytes)));
                        }
                    }
                    Ok(None)
                }
                Node::Branch(es) => {
                    let start = after.map_or(0, |a| branch_index(&es, a));
                    for (_, child) in &es[start..] {
                        if let Some(e) = self.next_in(pager, *child, after, depth + 1).await? {
                            return Ok(Some(e));
                        }
                    }
                    Ok(None)
                }
            }
        })
    }

    /// Descends to the leaf for `key`, making every page on the way dirty. Returns the path
    /// of (branch, child index) pairs and the leaf.
    async fn descend_dirty(
        &mut self,
        pager: &Pager,
        w: Which,
        key: &[u8],
    ) -> Result<(Vec<(u64, usize)>, u64)> {
        let root = self.make_dirty(pager, self.roots[w as usize]).await?;
        self.roots[w as usize] = root;
        let mut path = Vec::new();
        let mut cur = root;
        loop {
            let (idx, child) = match self.dirty.get(&cur).expect("dirty") {
                Node::Leaf(_) => break,
                Node::Branch(es) => {
                    if es.is_empty() {
                        return Err(Error::corrupt(cur, "empty branch page"));
                    }
                    let i = branch_index(es, key);
                    (i, es[i].1)
                }
            };
            let nc = self.make_dirty(pager, child).await?;
            if let Node::Branch(es) = self.node_mut(cur) {
                es[idx].1 = nc;
                if idx == 0 && key < es[0].0.as_slice() {
                    es[0].0 = key.to_vec();
                }
            }
            path.push((cur, idx));
            cur = nc;
            if path.len() > 64 {
                return Err(Error::corrupt(
                    None,
                    "tree deeper than 64 levels (a cycle?)",
                ));
            }
        }
        Ok((path, cur))
    }

    /// Inserts or replaces `key`. Returns true if it existed.
    pub async fn put(&mut self, pager: &Pager, w: Which, key: &[u8], value: &[u8]) -> Result<bool> {
        let ps = self.page_size;
        if self.roots[w as usize] == 0 {
            let (v, _) = self.make_value(pager, value, None);
            let pg = self.alloc(pager).await?;
            self.dirty.insert(pg, Node::Leaf(vec![(key.to_vec(), v)]));
            self.roots[w as usize] = pg;
            return Ok(false);
        }
        let (mut path, leaf) = self.descend_dirty(pager, w, key).await?;
        let pos = match self.dirty.get(&leaf) {
            Some(Node::Leaf(es)) => es.binary_search_by(|(k, _)| k.as_slice().cmp(key)),
            _ => unreachable!("descend ends at a leaf"),
        };
        let existed = pos.is_ok();
        match pos {
            Ok(i) => {
                let old = match self.dirty.get(&leaf) {
                    Some(Node::Leaf(es)) => es[i].1.clone(),
                    _ => unreachable!(),
                };
                let (v, reused) = self.make_value(pager, value, Some(&old));
                if !reused {
                    self.free_value(pager, &old);
                }
                if let Node::Leaf(es) = self.node_mut(leaf) {
                    es[i].1 = v;
                }
            }
            Err(i) => {
                let (v, _) = self.make_value(pager, value, None);
                if let Node::Leaf(es) = self.node_mut(leaf) {
                    es.insert(i, (key.to_vec(), v));
                }
            }
        }
        // Split upwards while pages overflow.
        let mut cur = leaf;
        loop {
            if self.dirty[&cur].size() <= ps {
                break;
            }
            let node = self.dirty.remove(&cur).expect("dirty");
            let parts = split_node(node, ps);
            let mut entries = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                let pg = if j == 0 {
                    cur
                } else {
                    self.alloc(pager).await?
                };
                entries.push((part.first_key().to_vec(), pg));
                self.dirty.insert(pg, part);
            }
            match path.pop() {
                Some((parent, idx)) => {
                    if let Node::Branch(es) = self.node_mut(parent) {
                        entries[0].0 = es[idx].0.clone();
                        es.splice(idx..idx + 1, entries);
                    }
                    cur = parent;
                }
                None => {
                    let pg = self.alloc(pager).await?;
                    self.dirty.insert(pg, Node::Branch(entries));
                    self.roots[w as usize] = pg;
                    break;
                }
            }
        }
        Ok(existed)
    }

    /// Stores `value` inline or in an overflow run, reusing `old`'s run in place when it was
    /// written by this transaction and has the same length in pages (then `true`).
    fn make_value(&mut self, pager: &Pager, value: &[u8], old: Option<&Value>) -> (Value, bool) {
        if value.len() <= max_inline(self.page_size) {
            return (Value::Inline(value.to_vec()), false);
        }
        let pages = pager.overflow_pages(value.len() as u64);
        if let Some(Value::Overflow { pgno, len }) = old {
            if self.dirty_overflow.contains_key(pgno) && pager.overflow_pages(*len as u64) == pages
            {
                self.dirty_overflow.insert(*pgno, value.to_vec());
                let v = Value::Overflow {
                    pgno: *pgno,
                    len: value.len() as u32,
                };
                return (v, true);
            }
        }
        let pgno = self.alloc_run(pages);
        self.dirty_overflow.insert(pgno, value.to_vec());
        let v = Value::Overflow {
            pgno,
            len: value.len() as u32,
        };
        (v, false)
    }

    /// True if the transaction changed nothing.
    pub fn is_clean(&self) -> bool {
        self.dirty.is_empty() && self.dirty_overflow.is_empty() && self.freed.is_empty()
    }

    /// Deletes `key`. Returns true if it existed.
    pub async fn delete(&mut self, pager: &Pager, w: Which, key: &[u8]) -> Result<bool> {
        if self.get(pager, w, key).await?.is_none() {
            return Ok(false);
        }
        let ps = self.page_size;
        let (mut path, leaf) = self.descend_dirty(pager, w, key).await?;
        let old = match self.node_mut(leaf) {
            Node::Leaf(es) => match es.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
                Ok(i) => es.remove(i).1,
                Err(_) => return Ok(false),
            },
            Node::Branch(_) => unreachable!("descend ends at a leaf"),
        };
        self.free_value(pager, &old);
        // Rebalance upwards while pages are under a quarter full.
        let mut cur = leaf;
        loop {
            let (len, size, is_branch) = {
                let n = &self.dirty[&cur];
                (n.len(), n.size(), matches!(n, Node::Branch(_)))
            };
            let Some(&(parent, idx)) = path.last() else {
                // The root: an empty tree, or a branch with one child, shrinks.
                if len == 0 {
                    self.free_page(cur);
                    self.roots[w as usize] = 0;
                } else if is_branch && len == 1 {
                    let child = match &self.dirty[&cur] {
                        Node::Branch(es) => es[0].1,
                        _ => unreachable!(),
                    };
                    self.free_page(cur);
                    self.roots[w as usize] = child;
                }
                break;
            };
            if len > 0 && size >= ps / 4 {
                break;
            }
            let siblings = match &self.dirty[&parent] {
                Node::Branch(es) => es.len(),
                _ => unreachable!(),
            };
            if siblings == 1 {
                if len == 0 {
                    self.free_page(cur);
                    if let Node::Branch(es) = self.node_mut(parent) {
                        es.remove(idx);
                    }
                }
                path.pop();
                cur = parent;
                continue;
            }
            let l = if idx > 0 { idx - 1 } else { idx };
            let (lp, rp, sep) = match &self.dirty[&parent] {
                Node::Branch(es) => (es[l].1, es[l + 1].1, es[l + 1].0.clone()),
                _ => unreachable!(),
            };
            let lp2 = self.make_dirty(pager, lp).await?;
            let rp2 = self.make_dirty(pager, rp).await?;
            if let Node::Branch(es) = self.node_mut(parent) {
                es[l].1 = lp2;
                es[l + 1].1 = rp2;
            }
            let left = self.dirty.remove(&lp2).expect("dirty");
            let right = self.dirty.remove(&rp2).expect("dirty");
            let merged = match (left, right) {
                (Node::Leaf(mut a), Node::Leaf(b)) => {
                    a.extend(b);
                    Node::Leaf(a)
                }
                (Node::Branch(mut a), Node::Branch(mut b)) => {
                    if let Some(first) = b.first_mut() {
                        first.0 = sep;
                    }
                    a.extend(b);
                    Node::Branch(a)
                }
                _ => return Err(Error::corrupt(parent, "siblings of different kinds")),
            };
            if merged.size() <= ps {
                self.dirty.insert(lp2, merged);
                self.dirty.insert(rp2, Node::Leaf(Vec::new()));
                self.free_page(rp2);
                if let Node::Branch(es) = self.node_mut(parent) {
                    es.remove(l + 1);
                }
            } else {
                let mut parts = split_node(merged, ps).into_iter();
                let a = parts.next().expect("two parts");
                let b = parts.next().expect("two parts");
                let b_key = b.first_key().to_vec();
                self.dirty.insert(lp2, a);
                self.dirty.insert(rp2, b);
                if let Node::Branch(es) = self.node_mut(parent) {
                    es[l + 1].0 = b_key;
                }
            }
            path.pop();
            cur = parent;
        }
        Ok(true)
    }

    /// Steps 1 and 2 of the commit: updates the freelist and serialises every dirty page.
    /// Returns the meta to publish and the writes to make, as (first page, bytes) runs.
    pub async fn finish(&mut self, pager: &Pager) -> Result<(Meta, Vec<(u64, Vec<u8>)>)> {
        // From here on no further freelist entries are consumed (their keys would have to
        // be deleted too); allocations use the pages already taken for reuse, then the end of
        // the file. This transaction's entry lists every page it freed plus the reusable
        // pages it did not use; whenever writing the entry itself allocates or frees pages,
        // the entry is rewritten, until it describes the final state.
        // Take enough reusable pages first for the freelist tree's own copy-on-write (two
        // root-to-leaf paths and a split), so updating it does not grow the file.
        while self.reusable.len() < 16 && self.refill(pager).await? {}
        self.no_reuse = true;
        for k in std::mem::take(&mut self.consumed) {
            self.delete(pager, Which::Free, &k).await?;
        }
        // The entry's content depends on what writing it allocates and frees, so space is
        // reserved first (a value of zeros, LMDB's approach), growing the reservation until
        // it holds every page to list; then the list is written in place, padded with zeros
        // (page 0 is a meta page, never free, so 0 means "no page"). Writing a value of the
        // same length on an already-copied path allocates and frees nothing.
        let key = free_key(self.txid);
        let mut reserved = 0usize;
        let mut settled = false;
        for _ in 0..16 {
            let n = self.freed.len() + self.reusable.len();
            if n <= reserved {
                settled = true;
                break;
            }
            reserved = n + 4;
            self.put(pager, Which::Free, &key, &vec![0u8; reserved * 8])
                .await?;
        }
        if !settled {
            return Err(Error::Io(std::io::Error::other(
                "the freelist entry did not settle; the commit was abandoned",
            )));
        }
        if reserved > 0 {
            let mut list: Vec<u64> = self.freed.iter().chain(&self.reusable).copied().collect();
            list.sort_unstable();
            list.resize(reserved, 0);
            let before = (self.freed.len(), self.reusable.len());
            self.put(pager, Which::Free, &key, &encode_pages(&list))
                .await?;
            if (self.freed.len(), self.reusable.len()) != before {
                return Err(Error::Io(std::io::Error::other(
                    "writing the reserved freelist entry changed the free pages; the commit was abandoned",
                )));
            }
        }
        let ps = self.page_size;
        let mut pages: Vec<(u64, Vec<u8>)> = Vec::with_capacity(self.dirty.len());
        for (&pgno, node) in &self.dirty {
            pages.push((pgno, node.to_page(pgno, self.txid, ps)));
        }
        for (&pgno, value) in &self.dirty_overflow {
            pages.push((pgno, overflow_run(pgno, self.txid, value, ps)));
        }
        pages.sort_unstable_by_key(|p| p.0);
        // Coalesce adjacent pages into single writes.
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        for (pgno, bytes) in pages {
            match runs.last_mut() {
                Some((start, buf))
                    if *start + (buf.len() / ps) as u64 == pgno && buf.len() < 1 << 20 =>
                {
                    buf.extend_from_slice(&bytes)
                }
                _ => runs.push((pgno, bytes)),
            }
        }
        let meta = Meta {
            page_size: ps as u32,
            txid: self.txid,
            root: self.roots[Which::Data as usize],
            free_root: self.roots[Which::Free as usize],
            page_count: self.page_count,
            entries: self.entries,
        };
        Ok((meta, runs))
    }
}

fn leaf_value(page: &PageView<'_>, i: usize) -> Value {
    let e = page.leaf(i);
    match (e.inline, e.overflow) {
        (Some(v), _) => Value::Inline(v.to_vec()),
        (None, Some((pgno, len))) => Value::Overflow { pgno, len },
        _ => Value::Inline(Vec::new()),
    }
}
