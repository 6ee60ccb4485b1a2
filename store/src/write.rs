//! Write transactions: copy-on-write edits of the data and freelist trees, page allocation
//! and reuse, and the commit protocol.
//!
//! A write transaction never modifies a page that a committed version references. The first
//! time it touches a page it copies it into memory ("dirty"), gives the copy a new page
//! number, and records the old number as freed by this transaction. At commit:
//!
//! 1. the freelist tree is brought up to date: the runs this transaction freed are listed under
//!    its txid, the txid-0 runs it allocated from (or freed into) are rewritten, and pending
//!    runs that became reusable are moved under txid 0. Only the keys whose runs changed are
//!    written (see [`crate::freelist`]): the freelist is updated incrementally;
//! 2. every dirty page is written (io_uring writes, adjacent pages coalesced), then synced;
//! 3. the meta page for this transaction (slot `txid % 2`) is written and synced.
//!
//! A crash before step 3 completes leaves the previous meta, and everything it references,
//! intact: new pages only ever land on pages that no committed version uses.
//!
//! Allocation is best fit over coalesced free runs ([`crate::alloc::Extents`]), then the
//! free tail of the used pages, then new pages at the end. Pages freed by commit T become
//! reusable once T is at or below the reuse horizon (see `Store::reuse_horizon`), so a
//! snapshot's pages never change under it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::alloc::Extents;
use crate::error::{Error, Result};
use crate::format::{Meta, HEADER};
use crate::freelist::{self, run_key, run_value, RunKey};
use crate::node::{Node, PageView, Step, Value};
use crate::pager::{overflow_run, Pager};
use crate::types::{PageNo, TxId};

/// Which tree an operation edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Data = 0,
    Free = 1,
}

/// Where the store keeps the allocator's free runs between write transactions (`None` until
/// the first write transaction loads them from the freelist tree).
pub type FreeHome = Rc<RefCell<Option<Extents>>>;

/// Rounds of freelist updates a commit may take before it gives up (each round writes the
/// keys the previous one changed; two or three suffice in practice).
const MAX_FREELIST_ROUNDS: usize = 32;

/// The state of a write transaction.
pub struct WriteState {
    pub txid: u64,
    pub roots: [u64; 2],
    pub entries: u64,
    pub page_count: u64,
    pub dirty: HashMap<u64, Node>,
    pub dirty_overflow: HashMap<u64, Vec<u8>>,
    /// Runs this transaction freed that older snapshots may still read: listed under its txid.
    freed: Extents,
    /// The free runs (txid 0), taken from `home` once the transaction first allocates; every
    /// change is journaled, and undone if the transaction does not commit.
    free: Option<Extents>,
    home: FreeHome,
    /// Keys of pending runs moved into `free`: deleted from the freelist tree at commit.
    migrated: Vec<RunKey>,
    /// Pending runs freed at or before this commit are reusable.
    horizon: TxId,
    /// Set while the commit writes the freelist: pages freed from then on are listed as
    /// freed by this commit (reusable from the next one) even if this transaction allocated
    /// them. Returning them to `free` could make a round undo the previous one (a key
    /// deleted, its page freed, the key written again on that page) and never settle;
    /// this way pages only leave `free` and only join `freed`, so the rounds run out.
    finishing: bool,
    page_size: usize,
}

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

impl WriteState {
    /// A transaction on top of `base`; pending runs freed at or before `horizon` are reused.
    pub fn new(base: Meta, horizon: TxId, home: FreeHome) -> WriteState {
        WriteState {
            txid: base.txid + 1,
            roots: [base.root, base.free_root],
            entries: base.entries,
            page_count: base.page_count,
            dirty: HashMap::new(),
            dirty_overflow: HashMap::new(),
            freed: Extents::new(),
            free: None,
            home,
            migrated: Vec::new(),
            horizon,
            finishing: false,
            page_size: base.page_size as usize,
        }
    }

    /// Takes the free runs for this transaction (loading them from the committed freelist
    /// tree the first time), and moves the pending runs that became reusable into them.
    async fn prepare(&mut self, pager: &Pager) -> Result<&mut Extents> {
        if self.free.is_none() {
            // The freelist tree is untouched until `finish`, so its root is the committed one.
            let root = PageNo(self.roots[Which::Free as usize]);
            let loaded = self.home.borrow_mut().take();
            let mut free = match loaded {
                Some(f) => f,
                None => {
                    let mut runs = Vec::new();
                    let hi = run_key(TxId(0), PageNo(u64::MAX));
                    freelist::scan(pager, root, [0; 16], hi, &mut runs).await?;
                    let mut free = Extents::new();
                    for r in runs {
                        freelist::check_bounds(&r, self.page_count)?;
                        free.add(r.start, r.len)?;
                    }
                    free
                }
            };
            free.begin();
            if self.horizon.0 > 0 {
                let mut runs = Vec::new();
                let lo = run_key(TxId(1), PageNo(0));
                let hi = run_key(self.horizon, PageNo(u64::MAX));
                let scanned = freelist::scan(pager, root, lo, hi, &mut runs).await;
                let added = scanned.and_then(|()| {
                    for r in &runs {
                        freelist::check_bounds(r, self.page_count)?;
                        free.add(r.start, r.len)?;
                    }
                    Ok(())
                });
                if let Err(e) = added {
                    free.rollback();
                    *self.home.borrow_mut() = Some(free);
                    return Err(e);
                }
                self.migrated = runs.iter().map(|r| run_key(r.txid, r.start)).collect();
            }
            self.free = Some(free);
        }
        Ok(self.free.as_mut().expect("prepared"))
    }

    /// A page for a new node.
    pub async fn alloc(&mut self, pager: &Pager) -> Result<u64> {
        self.alloc_run(pager, 1).await
    }

    /// `n` contiguous pages: the smallest free run that holds them, else the free tail of the
    /// used pages extended, else new pages at the end.
    async fn alloc_run(&mut self, pager: &Pager, n: u64) -> Result<u64> {
        let end = PageNo(self.page_count);
        let free = self.prepare(pager).await?;
        let p = if let Some(p) = free.take_best_fit(n) {
            p.0
        } else if let Some((tail, _)) = free.take_tail(end) {
            self.page_count = tail.0 + n;
            tail.0
        } else {
            self.page_count += n;
            end.0
        };
        pager.forget(p, n);
        Ok(p)
    }

    /// Frees the run `pgno..pgno + n`: `fresh` (allocated by this transaction, never
    /// committed) is reusable at once, the rest once no reader can see it.
    fn release(&mut self, pgno: u64, n: u64, fresh: bool) -> Result<()> {
        if fresh && !self.finishing {
            self.free
                .as_mut()
                .expect("a fresh page was allocated, so the free runs are taken")
                .add(PageNo(pgno), n)
        } else {
            self.freed.add(PageNo(pgno), n)
        }
    }

    /// Frees a tree page.
    fn free_page(&mut self, pgno: u64) -> Result<()> {
        let fresh = self.dirty.remove(&pgno).is_some();
        self.release(pgno, 1, fresh)
    }

    fn free_value(&mut self, pager: &Pager, v: &Value) -> Result<()> {
        if let Value::Overflow { pgno, len } = v {
            let pages = pager.overflow_pages(*len as u64);
            let fresh = self.dirty_overflow.remove(pgno).is_some();
            self.release(*pgno, pages, fresh)?;
        }
        Ok(())
    }

    /// Makes `pgno` dirty (copying it from the mapping under a new page number if it is not
    /// yet) and returns its dirty page number.
    async fn make_dirty(&mut self, pager: &Pager, pgno: u64) -> Result<u64> {
        if self.dirty.contains_key(&pgno) {
            return Ok(pgno);
        }
        let node = pager.node(pgno).await?.to_node();
        let new = self.alloc(pager).await?;
        self.release(pgno, 1, false)?;
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
        let copy = match v {
            Value::Inline(b) => b.clone(),
            Value::Overflow { pgno, len } => match self.dirty_overflow.get(pgno) {
                Some(b) => b.clone(),
                None => pager.overflow(*pgno, *len).await?.to_vec(),
            },
        };
        // Copied from the mapping: the file's own bytes only if it was not truncated meanwhile.
        pager.check_intact()?;
        Ok(copy)
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
            let (v, _) = self.make_value(pager, value, None).await?;
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
                let (v, reused) = self.make_value(pager, value, Some(&old)).await?;
                if !reused {
                    self.free_value(pager, &old)?;
                }
                if let Node::Leaf(es) = self.node_mut(leaf) {
                    es[i].1 = v;
                }
            }
            Err(i) => {
                let (v, _) = self.make_value(pager, value, None).await?;
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
    async fn make_value(
        &mut self,
        pager: &Pager,
        value: &[u8],
        old: Option<&Value>,
    ) -> Result<(Value, bool)> {
        if value.len() <= max_inline(self.page_size) {
            return Ok((Value::Inline(value.to_vec()), false));
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
                return Ok((v, true));
            }
        }
        let pgno = self.alloc_run(pager, pages).await?;
        self.dirty_overflow.insert(pgno, value.to_vec());
        let v = Value::Overflow {
            pgno,
            len: value.len() as u32,
        };
        Ok((v, false))
    }

    /// True if the transaction changed nothing.
    pub fn is_clean(&self) -> bool {
        self.dirty.is_empty() && self.dirty_overflow.is_empty() && self.freed.pages() == 0
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
        self.free_value(pager, &old)?;
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
                    self.free_page(cur)?;
                    self.roots[w as usize] = 0;
                } else if is_branch && len == 1 {
                    let child = match &self.dirty[&cur] {
                        Node::Branch(es) => es[0].1,
                        _ => unreachable!(),
                    };
                    self.free_page(cur)?;
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
                    self.free_page(cur)?;
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
                self.free_page(rp2)?;
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
        self.prepare(pager).await?;
        // Write the freelist keys whose runs changed. Writing them copies freelist pages on
        // write, which allocates and frees pages, which changes runs again: repeat until a
        // round changes nothing. Each round touches fewer new pages (a path copied once
        // stays dirty), so this settles in a few rounds.
        self.finishing = true;
        let mut settled = false;
        for _ in 0..MAX_FREELIST_ROUNDS {
            let mut ops: Vec<(RunKey, Option<u64>)> = std::mem::take(&mut self.migrated)
                .into_iter()
                .map(|k| (k, None))
                .collect();
            let free = self.free.as_mut().expect("prepared");
            for s in free.take_touched() {
                ops.push((run_key(TxId(0), s), free.get(s)));
            }
            for s in self.freed.take_touched() {
                ops.push((run_key(TxId(self.txid), s), self.freed.get(s)));
            }
            if ops.is_empty() {
                settled = true;
                break;
            }
            ops.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (key, len) in ops {
                match len {
                    Some(len) => {
                        self.put(pager, Which::Free, &key, &run_value(len)).await?;
                    }
                    None => {
                        self.delete(pager, Which::Free, &key).await?;
                    }
                }
            }
        }
        if !settled {
            return Err(Error::Io(std::io::Error::other(
                "the freelist did not settle; the commit was abandoned",
            )));
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

impl WriteState {
    /// The commit is durable: the free runs as this transaction left them are the store's.
    pub fn settle(&mut self) {
        if let Some(mut free) = self.free.take() {
            free.settle();
            *self.home.borrow_mut() = Some(free);
        }
    }
}

impl Drop for WriteState {
    /// A transaction that did not commit gives the free runs back as it found them.
    fn drop(&mut self) {
        if let Some(mut free) = self.free.take() {
            free.rollback();
            *self.home.borrow_mut() = Some(free);
        }
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
