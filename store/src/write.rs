//! The state of a write transaction, and page allocation.
//!
//! A write transaction never modifies a page that a committed version references: it copies
//! pages it changes ([`crate::btree`]), and at commit ([`crate::commit`]) writes the copies
//! to newly allocated pages, then the meta page. This module holds the transaction's state
//! (dirty pages, roots, page count) and its allocator:
//!
//! * allocation is best fit over the coalesced free runs ([`crate::alloc::Extents`]), then
//!   the free tail of the used pages extended, then new pages at the end of the file;
//! * pages the transaction allocated and frees again are free again at once; pages of the
//!   committed version it frees are "pending" under its txid ([`crate::freelist`]);
//! * pending runs freed at or before the reuse horizon (`Store::reuse_horizon`: the oldest
//!   live reader's snapshot, or the last commit) join the free runs when the transaction
//!   first allocates, so a snapshot's pages never change under it;
//! * the free runs live in the store between transactions; a transaction that does not
//!   commit rolls its changes to them back (their journal), so an abort, a failed write or a
//!   full disk leaves the allocator exactly as the last commit left it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::alloc::Extents;
use crate::error::Result;
use crate::format::Meta;
use crate::freelist::{self, run_key, RunKey};
use crate::node::{Node, Value};
use crate::pager::Pager;
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
pub(crate) const MAX_FREELIST_ROUNDS: usize = 32;

/// The state of a write transaction.
pub struct WriteState {
    /// The commit this transaction will be.
    pub(crate) txid: TxId,
    /// Roots of the data and freelist trees ([`Which`]), as this transaction has them.
    pub(crate) roots: [PageNo; 2],
    /// Keys in the data tree.
    pub(crate) entries: u64,
    /// The last logged commit the tree will hold (the checkpoint sets it).
    pub(crate) log_txid: u64,
    /// The store's id, carried into the meta.
    pub(crate) store_id: u64,
    /// Pages in use or free: the high-water mark.
    pub(crate) page_count: u64,
    /// Copies of tree pages this transaction changed, under their new page numbers.
    pub(crate) dirty: HashMap<PageNo, Node>,
    /// Overflow values this transaction wrote, under their runs' first pages.
    pub(crate) dirty_overflow: HashMap<PageNo, Vec<u8>>,
    /// Pages the checkpoint's merge wrote, serialised already (`merge.rs`).
    pub(crate) dirty_raw: HashMap<PageNo, Vec<u8>>,
    /// Runs this transaction freed that older snapshots may still read: listed under its txid.
    pub(crate) freed: Extents,
    /// The free runs (txid 0), taken from `home` once the transaction first allocates; every
    /// change is journaled, and undone if the transaction does not commit.
    pub(crate) free: Option<Extents>,
    pub(crate) home: FreeHome,
    /// Keys of pending runs moved into `free`: deleted from the freelist tree at commit.
    pub(crate) migrated: Vec<RunKey>,
    /// Pending runs freed at or before this commit are reusable.
    pub(crate) horizon: TxId,
    /// Set while the commit writes the freelist: pages freed from then on are listed as
    /// freed by this commit (reusable from the next one) even if this transaction allocated
    /// them. Returning them to `free` could make a round undo the previous one (a key
    /// deleted, its page freed, the key written again on that page) and never settle;
    /// this way pages only leave `free` and only join `freed`, so the rounds run out.
    pub(crate) finishing: bool,
    pub(crate) page_size: usize,
}

impl WriteState {
    /// A transaction on top of `base`; pending runs freed at or before `horizon` are reused.
    pub fn new(base: Meta, horizon: TxId, home: FreeHome) -> WriteState {
        WriteState {
            txid: base.txid.next(),
            roots: [base.root, base.free_root],
            entries: base.entries,
            log_txid: base.log_txid,
            store_id: base.store_id,
            page_count: base.page_count,
            dirty: HashMap::new(),
            dirty_overflow: HashMap::new(),
            dirty_raw: HashMap::new(),
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
    pub(crate) async fn prepare(&mut self, pager: &Pager) -> Result<&mut Extents> {
        if self.free.is_none() {
            // The freelist tree is untouched until `finish`, so its root is the committed one.
            let root = self.roots[Which::Free as usize];
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
    pub async fn alloc(&mut self, pager: &Pager) -> Result<PageNo> {
        self.alloc_run(pager, 1).await
    }

    /// `n` contiguous pages: the smallest free run that holds them, else the free tail of the
    /// used pages extended, else new pages at the end.
    pub(crate) async fn alloc_run(&mut self, pager: &Pager, n: u64) -> Result<PageNo> {
        let end = PageNo(self.page_count);
        let free = self.prepare(pager).await?;
        let p = if let Some(p) = free.take_best_fit(n) {
            p
        } else if let Some((tail, _)) = free.take_tail(end) {
            self.page_count = tail.0 + n;
            tail
        } else {
            self.page_count += n;
            end
        };
        pager.forget(p, n);
        Ok(p)
    }

    /// Frees the run `pgno..pgno + n`: `fresh` (allocated by this transaction, never
    /// committed) is reusable at once, the rest once no reader can see it.
    pub(crate) fn release(&mut self, pgno: PageNo, n: u64, fresh: bool) -> Result<()> {
        if fresh && !self.finishing {
            self.free
                .as_mut()
                .expect("a fresh page was allocated, so the free runs are taken")
                .add(pgno, n)
        } else {
            self.freed.add(pgno, n)
        }
    }

    /// Frees a tree page.
    pub(crate) fn free_page(&mut self, pgno: PageNo) -> Result<()> {
        let fresh = self.dirty.remove(&pgno).is_some();
        self.release(pgno, 1, fresh)
    }

    pub(crate) fn free_value(&mut self, pager: &Pager, v: &Value) -> Result<()> {
        if let Value::Overflow { pgno, len } = v {
            let pages = pager.overflow_pages(*len as u64);
            let fresh = self.dirty_overflow.remove(pgno).is_some();
            self.release(*pgno, pages, fresh)?;
        }
        Ok(())
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
