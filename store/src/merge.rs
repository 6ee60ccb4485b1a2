//! The checkpoint's merge: a memtable's newest versions, in key order, written into the tree
//! in one copy-on-write pass.
//!
//! The updates are split among a branch's children by key range, and only the children that
//! get some are visited (their pages brought in concurrently first). A leaf is rebuilt once,
//! however many of its keys change: its entries and the updates are merged (the page's keys
//! and values are read in place, the new ones from the memtable) and packed straight into new
//! pages, split evenly by bytes when they no longer fit one. A branch is rebuilt from its
//! children's replacements the same way. Nothing is parsed into per-entry allocations on this
//! path; a leaf or branch left under a quarter full is merged with (or rebalanced against) a
//! neighbour, through the general copy-on-write code (`btree.rs`), which is rare.
//!
//! Every page replaced is freed as pending under the checkpoint's txid (older snapshots, and
//! the durable meta until this one is synced, still read it); the pages written are new. All
//! leaves stay at one depth: the root grows by whole levels above the merged pages, and
//! shrinks while it is a branch with one child.

use crate::btree::{max_inline, split_node};
use crate::error::{Error, Result};
use crate::format::{Header, HEADER, KIND_BRANCH, KIND_LEAF};
use crate::node::{branch_entry_size, branch_page, leaf_page, LeafCell, LeafValue, Node, PageView};
use crate::pace::Pace;
use crate::pager::Pager;
use crate::types::PageNo;
use crate::write::{Which, WriteState};

/// A key's newest version: its value, or `None` for a deletion.
pub(crate) type Update = crate::memtable::Entry;

/// An entry of a branch being rebuilt.
struct Child {
    /// Its key in the branch (for entry 0, at most the subtree's smallest key).
    key: Vec<u8>,
    pgno: PageNo,
    /// Written by this merge (its bytes are in `dirty_raw`), with the bytes its entries
    /// take; `None` for a page of the committed tree, left as it was.
    fresh: Option<usize>,
}

/// Writes `updates` (in key order, one per key) into the data tree of `state`.
pub(crate) async fn merge_into_tree(
    state: &mut WriteState,
    pager: &Pager,
    updates: &[Update],
) -> Result<()> {
    let mut work = Pace::new();
    let root = state.roots[Which::Data as usize];
    let mut level = if root == PageNo::NONE {
        merge_leaf(state, pager, None, updates, &mut work).await?
    } else {
        merge_page(state, pager, root, updates, &mut work).await?
    };
    // The root grows by whole levels ...
    while level.len() > 1 {
        level = pack_branch(state, pager, &level).await?;
    }
    let mut root = level.first().map_or(PageNo::NONE, |c| c.pgno);
    // ... and shrinks while it is a branch with one child.
    while root != PageNo::NONE {
        let only_child = {
            let bytes = page_bytes(state, pager, root).await?;
            let h = Header::read(&bytes);
            let view = PageView::new(root, &bytes, &h)?;
            (h.kind == KIND_BRANCH && view.count == 1).then(|| view.child(0))
        };
        let Some(child) = only_child else {
            break;
        };
        free_page(state, root)?;
        root = child;
    }
    state.roots[Which::Data as usize] = root;
    Ok(())
}

/// The bytes of page `pgno`: this merge's copy if it wrote it, else the mapped page.
async fn page_bytes(state: &WriteState, pager: &Pager, pgno: PageNo) -> Result<Vec<u8>> {
    match state.dirty_raw.get(&pgno) {
        Some(b) => Ok(b.clone()),
        None => Ok(pager.node(pgno).await?.bytes.to_vec()),
    }
}

/// Frees a page being replaced: one this merge wrote is free again at once; one of the
/// committed tree is pending under the checkpoint's txid.
fn free_page(state: &mut WriteState, pgno: PageNo) -> Result<()> {
    let fresh = state.dirty_raw.remove(&pgno).is_some();
    state.release(pgno, 1, fresh)
}

/// Merges `updates` into the subtree at `pgno`; returns the entries that replace it in its
/// parent (none if it is left empty, several if it split).
async fn merge_page(
    state: &mut WriteState,
    pager: &Pager,
    pgno: PageNo,
    updates: &[Update],
    work: &mut Pace,
) -> Result<Vec<Child>> {
    let page = pager.node(pgno).await?;
    if page.kind == KIND_LEAF {
        return merge_leaf(state, pager, Some((pgno, page)), updates, work).await;
    }
    if page.count == 0 {
        return Err(Error::corrupt(pgno, "empty branch page"));
    }
    // The updates each child gets: keys from its key up to the next child's.
    let n = page.count;
    let mut visits = Vec::new();
    let mut start = 0;
    for i in 0..n {
        let end = if i + 1 < n {
            let next = page.key(i + 1);
            start + updates[start..].partition_point(|u| u.0.as_slice() < next)
        } else {
            updates.len()
        };
        if end > start {
            visits.push((i, start..end));
        }
        start = end;
    }
    // Bring the children visited in concurrently (errors surface when each is merged).
    drop(futures::future::join_all(visits.iter().map(|(i, _)| pager.node(page.child(*i)))).await);
    let mut out: Vec<Child> = Vec::with_capacity(n + visits.len());
    let mut visits = visits.into_iter().peekable();
    for i in 0..n {
        let range = match visits.peek() {
            Some((j, r)) if *j == i => r.clone(),
            _ => {
                out.push(Child {
                    key: page.key(i).to_vec(),
                    pgno: page.child(i),
                    fresh: None,
                });
                continue;
            }
        };
        visits.next();
        let mut children = Box::pin(merge_page(
            state,
            pager,
            page.child(i),
            &updates[range],
            work,
        ))
        .await?;
        if let Some(first) = children.first_mut() {
            let key = page.key(i);
            // Entry i > 0 keeps its separator; entry 0 takes the smaller of the two keys.
            if i > 0 || key < first.key.as_slice() {
                first.key = key.to_vec();
            }
        }
        out.extend(children);
    }
    if out.len() == n && out.iter().all(|c| c.fresh.is_none()) {
        // Nothing below changed page (deletions of keys it does not hold).
        return Ok(vec![Child {
            key: page.key(0).to_vec(),
            pgno,
            fresh: None,
        }]);
    }
    state.release(pgno, 1, false)?;
    rebalance(state, pager, &mut out).await?;
    if out.is_empty() {
        return Ok(out);
    }
    pack_branch(state, pager, &out).await
}

/// Merges `updates` into the leaf `old` (or into nothing: an empty tree); returns the leaves
/// that replace it.
async fn merge_leaf(
    state: &mut WriteState,
    pager: &Pager,
    old: Option<(PageNo, PageView<'_>)>,
    updates: &[Update],
    work: &mut Pace,
) -> Result<Vec<Child>> {
    let count = old.map_or(0, |(_, p)| p.count);
    let mut cells: Vec<LeafCell<'_>> = Vec::with_capacity(count + updates.len());
    let mut changed = false;
    let (mut i, mut j) = (0, 0);
    while i < count || j < updates.len() {
        let order = match (old.filter(|_| i < count), updates.get(j)) {
            (Some((_, p)), Some(u)) => p.key(i).cmp(u.0.as_slice()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        if order == std::cmp::Ordering::Less {
            let e = old.expect("an old entry").1.leaf(i);
            cells.push(LeafCell {
                key: e.key,
                value: e.value,
            });
            i += 1;
            continue;
        }
        let (key, value) = (&updates[j].0, &updates[j].1);
        j += 1;
        let existed = order == std::cmp::Ordering::Equal;
        if existed {
            let e = old.expect("an old entry").1.leaf(i);
            i += 1;
            if let LeafValue::Overflow { pgno, len } = e.value {
                state.release(pgno, pager.overflow_pages(len as u64), false)?;
            }
        }
        let Some(v) = value else {
            if existed {
                state.entries -= 1;
                changed = true;
            }
            continue;
        };
        if !existed {
            state.entries += 1;
        }
        changed = true;
        let value = if v.len() > max_inline(state.page_size) {
            let run = state
                .alloc_run(pager, pager.overflow_pages(v.len() as u64))
                .await?;
            state.dirty_overflow.insert(run, v.to_vec());
            LeafValue::Overflow {
                pgno: run,
                len: v.len() as u32,
            }
        } else {
            LeafValue::Inline(&v[..])
        };
        cells.push(LeafCell { key, value });
    }
    let Some((old_pgno, old_page)) = old else {
        // An empty tree: the updates' puts are the new leaves.
        return pack_leaves(state, pager, &cells).await;
    };
    if !changed && count > 0 {
        return Ok(vec![Child {
            key: old_page.key(0).to_vec(),
            pgno: old_pgno,
            fresh: None,
        }]);
    }
    work.step().await;
    state.release(old_pgno, 1, false)?;
    pack_leaves(state, pager, &cells).await
}

/// Splits `sizes` (in order) into groups that each fit a page body of `usable` bytes,
/// balanced by bytes; returns where each group starts.
fn split_points(sizes: impl Iterator<Item = usize> + Clone, usable: usize) -> Vec<usize> {
    let total: usize = sizes.clone().sum();
    let parts = total.div_ceil(usable).max(1);
    let target = total.div_ceil(parts);
    let mut starts = vec![0];
    let mut cur = 0;
    for (i, s) in sizes.enumerate() {
        if cur > 0 && (cur + s > usable || cur >= target) {
            starts.push(i);
            cur = 0;
        }
        cur += s;
    }
    starts
}

/// Writes `cells` into as many new leaves as they need.
async fn pack_leaves(
    state: &mut WriteState,
    pager: &Pager,
    cells: &[LeafCell<'_>],
) -> Result<Vec<Child>> {
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    let ps = state.page_size;
    let starts = split_points(cells.iter().map(|c| c.size()), ps - HEADER);
    let mut out = Vec::with_capacity(starts.len());
    for (g, &s) in starts.iter().enumerate() {
        let e = starts.get(g + 1).copied().unwrap_or(cells.len());
        let group = &cells[s..e];
        let pgno = state.alloc(pager).await?;
        state
            .dirty_raw
            .insert(pgno, leaf_page(group, pgno, state.txid, ps));
        out.push(Child {
            key: group[0].key.to_vec(),
            pgno,
            fresh: Some(group.iter().map(|c| c.size()).sum()),
        });
    }
    Ok(out)
}

/// Writes branch entries `children` into as many new branch pages as they need.
async fn pack_branch(
    state: &mut WriteState,
    pager: &Pager,
    children: &[Child],
) -> Result<Vec<Child>> {
    let ps = state.page_size;
    let starts = split_points(
        children.iter().map(|c| branch_entry_size(&c.key)),
        ps - HEADER,
    );
    let mut out = Vec::with_capacity(starts.len());
    for (g, &s) in starts.iter().enumerate() {
        let e = starts.get(g + 1).copied().unwrap_or(children.len());
        let group: Vec<(&[u8], PageNo)> = children[s..e]
            .iter()
            .map(|c| (c.key.as_slice(), c.pgno))
            .collect();
        let pgno = state.alloc(pager).await?;
        state
            .dirty_raw
            .insert(pgno, branch_page(&group, pgno, state.txid, ps));
        out.push(Child {
            key: children[s].key.clone(),
            pgno,
            fresh: Some(group.iter().map(|(k, _)| branch_entry_size(k)).sum()),
        });
    }
    Ok(out)
}

/// Merges every page this merge wrote that is under a quarter full with a neighbour (or
/// rebalances the two when they do not fit one page), so deletions do not leave the tree
/// sparse. Uses the general node form: this is the rare path.
async fn rebalance(state: &mut WriteState, pager: &Pager, out: &mut Vec<Child>) -> Result<()> {
    let ps = state.page_size;
    let mut k = 0;
    while k < out.len() {
        let small = out[k].fresh.is_some_and(|size| size + HEADER < ps / 4);
        if !small || out.len() < 2 {
            k += 1;
            continue;
        }
        let (l, r) = if k + 1 < out.len() {
            (k, k + 1)
        } else {
            (k - 1, k)
        };
        let left = node_of(state, pager, out[l].pgno).await?;
        let right = node_of(state, pager, out[r].pgno).await?;
        let merged = match (left, right) {
            (Node::Leaf(mut a), Node::Leaf(b)) => {
                a.extend(b);
                Node::Leaf(a)
            }
            (Node::Branch(mut a), Node::Branch(mut b)) => {
                if let Some(first) = b.first_mut() {
                    first.0 = out[r].key.clone();
                }
                a.extend(b);
                Node::Branch(a)
            }
            _ => return Err(Error::corrupt(out[l].pgno, "siblings of different kinds")),
        };
        let parts = if merged.size() <= ps {
            vec![merged]
        } else {
            split_node(merged, ps)
        };
        for c in [&out[l], &out[r]] {
            match c.fresh {
                Some(_) => free_page(state, c.pgno)?,
                None => state.release(c.pgno, 1, false)?,
            }
        }
        let mut fresh = Vec::with_capacity(parts.len());
        for (n, part) in parts.into_iter().enumerate() {
            let pgno = state.alloc(pager).await?;
            let key = if n == 0 {
                out[l].key.clone()
            } else {
                part.first_key().to_vec()
            };
            let size = part.size() - HEADER;
            state
                .dirty_raw
                .insert(pgno, part.to_page(pgno, state.txid, ps));
            fresh.push(Child {
                key,
                pgno,
                fresh: Some(size),
            });
        }
        out.splice(l..=r, fresh);
        // The pages at `l` are at least a quarter full now, or the last ones left.
        k = l + 1;
    }
    Ok(())
}

/// Page `pgno` in the general node form.
async fn node_of(state: &WriteState, pager: &Pager, pgno: PageNo) -> Result<Node> {
    let bytes = page_bytes(state, pager, pgno).await?;
    let h = Header::read(&bytes);
    Ok(PageView::new(pgno, &bytes, &h)?.to_node())
}
