//! B+tree mutation inside a write transaction: copy-on-write descent, insert with splits,
//! delete with merges and rebalancing, and reads that see the transaction's own writes.
//!
//! The first time the transaction touches a page it copies it into memory ("dirty"), gives
//! the copy a newly allocated page number, and records the old number as freed. Pages that
//! grow past a page split in two (balanced by bytes) upwards; pages that fall under a quarter
//! full merge with a sibling, or take entries from it, upwards. The same code edits the data
//! tree and the freelist tree ([`Which`]).

use crate::error::{Error, Result};
use crate::format::HEADER;
use crate::node::{Node, Step, Value};
use crate::pager::Pager;
use crate::types::PageNo;
use crate::write::{Which, WriteState};

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
            |e: &(Vec<u8>, PageNo)| Node::Branch(vec![e.clone()]).size() - HEADER,
            Node::Branch
        ),
    }
}

fn branch_index(es: &[(Vec<u8>, PageNo)], key: &[u8]) -> usize {
    match es.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
        Ok(i) => i,
        Err(0) => 0,
        Err(i) => i - 1,
    }
}

impl WriteState {
    /// Makes `pgno` dirty (copying it from the mapping under a new page number if it is not
    /// yet) and returns its dirty page number.
    async fn make_dirty(&mut self, pager: &Pager, pgno: PageNo) -> Result<PageNo> {
        if self.dirty.contains_key(&pgno) {
            return Ok(pgno);
        }
        let node = pager.node(pgno).await?.to_node();
        let new = self.alloc(pager).await?;
        self.release(pgno, 1, false)?;
        self.dirty.insert(new, node);
        Ok(new)
    }

    fn node_mut(&mut self, pgno: PageNo) -> &mut Node {
        self.dirty.get_mut(&pgno).expect("path pages are dirty")
    }

    /// The value of `key` in tree `w`, copied (read-your-writes).
    pub async fn get(&self, pager: &Pager, w: Which, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut pgno = self.roots[w as usize];
        if pgno == PageNo::NONE {
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
                        let v = page.leaf(i).value.to_value();
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
    ) -> Result<(Vec<(PageNo, usize)>, PageNo)> {
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
        if self.roots[w as usize] == PageNo::NONE {
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
                    self.roots[w as usize] = PageNo::NONE;
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
}
