//! `Store::check`: verifies every checksum and the B+tree invariants of the last checkpoint,
//! and that the commits on top of it (the memtables, replayed from the log at open) agree
//! with the key count.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use crate::error::Result;
use crate::format::{self, Meta, KIND_BRANCH, KIND_LEAF};
use crate::freelist;
use crate::node::LeafValue;
use crate::node::PageView;
use crate::read::ReadTxn;
use crate::store::Store;
use crate::types::{PageNo, TxId};

/// What a page is used for, during a check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Use {
    Unseen,
    Meta,
    Data,
    FreeTree,
    FreeListed,
    Pending,
}

/// The result of [`Store::check`].
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// The commit checked.
    pub txid: u64,
    /// Pages in the store (the meta's page count).
    pub pages: u64,
    /// Pages of the data tree, including overflow pages.
    pub data_pages: u64,
    /// Pages of the freelist tree, including overflow pages.
    pub freelist_tree_pages: u64,
    /// Pages free to every reader (freelist runs under txid 0).
    pub free_pages: u64,
    /// Pages freed by recent commits that older snapshots may still read (runs under a
    /// commit's txid); they become free once no reader is that old.
    pub pending_pages: u64,
    /// Runs of free pages (txid 0).
    pub free_runs: u64,
    /// The longest run of free pages (txid 0).
    pub largest_free_run: u64,
    /// Keys found.
    pub keys: u64,
    /// Depth of the data tree (0 when empty).
    pub depth: usize,
    /// Non-root tree pages less than a quarter full (allowed, reported for information).
    pub underfull_pages: u64,
    /// Everything wrong; empty when the store is sound.
    pub problems: Vec<String>,
    /// What opening found wrong with a meta page (also listed in `problems`).
    pub meta_recovery: Option<crate::MetaRecovery>,
    /// Things a user should know that do not make the store unsound (for example, free space
    /// that dwarfs the live data).
    pub warnings: Vec<String>,
    /// The commit checked: the tree (`txid`, its last checkpoint) plus the log's commits
    /// after it, held in memory.
    pub commit_txid: u64,
    /// Keys at that commit: the tree's, with the memtables' puts and deletes applied.
    pub commit_keys: u64,
    /// Commits in the log after the checkpoint (what a reopen would replay now).
    pub log_commits: u64,
    /// Keys the memtables hold versions of.
    pub memtable_keys: u64,
    /// What opening found in the log (every frame's checksum was verified then).
    pub log: crate::LogRecovery,
}

impl CheckReport {
    /// True if no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "txid:                {}", self.txid)?;
        writeln!(f, "pages:               {}", self.pages)?;
        writeln!(f, "data tree pages:     {}", self.data_pages)?;
        writeln!(f, "freelist tree pages: {}", self.freelist_tree_pages)?;
        writeln!(f, "free pages:          {}", self.free_pages)?;
        writeln!(f, "free runs:           {}", self.free_runs)?;
        writeln!(f, "largest free run:    {}", self.largest_free_run)?;
        writeln!(f, "pending free pages:  {}", self.pending_pages)?;
        writeln!(f, "keys:                {}", self.keys)?;
        writeln!(f, "depth:               {}", self.depth)?;
        writeln!(f, "underfull pages:     {}", self.underfull_pages)?;
        writeln!(f, "commit:              {}", self.commit_txid)?;
        writeln!(f, "keys at commit:      {}", self.commit_keys)?;
        writeln!(
            f,
            "log commits:         {} (after the checkpoint)",
            self.log_commits
        )?;
        writeln!(f, "memtable keys:       {}", self.memtable_keys)?;
        writeln!(f, "log at open:         {}", self.log)?;
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if self.problems.is_empty() {
            write!(f, "ok")
        } else {
            writeln!(f, "{} problem(s):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  {p}")?;
            }
            Ok(())
        }
    }
}

struct Checker<'a> {
    store: &'a Store,
    meta: Meta,
    uses: Vec<Use>,
    report: CheckReport,
}

impl Checker<'_> {
    fn problem(&mut self, p: String) {
        if self.report.problems.len() < 1000 {
            self.report.problems.push(p);
        }
    }

    fn claim(&mut self, pgno: PageNo, count: u64, u: Use) {
        for p in pgno.0..pgno.0.saturating_add(count) {
            if p >= self.meta.page_count {
                self.problem(format!("page {p} ({u:?}) is past the page count"));
                continue;
            }
            let prev = self.uses[p as usize];
            if prev != Use::Unseen {
                self.problem(format!("page {p} is used as {u:?} and as {prev:?}"));
            } else {
                self.uses[p as usize] = u;
            }
        }
    }

    /// Checks the subtree at `pgno`; keys must lie in `[lo, hi)`. Returns its depth.
    async fn tree(
        &mut self,
        pgno: PageNo,
        (lo, hi): (Option<Vec<u8>>, Option<Vec<u8>>),
        u: Use,
        is_root: bool,
        leaves: &mut Vec<(Vec<u8>, Vec<u8>)>,
        depth: usize,
    ) -> Result<usize> {
        if depth > 64 {
            self.problem(format!("page {pgno}: tree deeper than 64 levels"));
            return Ok(depth);
        }
        self.claim(pgno, 1, u);
        if pgno.0 >= self.meta.page_count || pgno.0 < 2 {
            self.problem(format!("page {pgno}: tree points outside the store"));
            return Ok(depth);
        }
        let pager = self.store.pager().clone();
        let bytes = match pager.raw_page(pgno).await {
            Ok(b) => b,
            Err(e) => {
                self.problem(e.to_string());
                return Ok(depth);
            }
        };
        let header = match format::verify(pgno, bytes, &[KIND_BRANCH, KIND_LEAF]) {
            Ok(h) => h,
            Err(e) => {
                self.problem(e.to_string());
                return Ok(depth);
            }
        };
        let view = match PageView::new(pgno, bytes, &header) {
            Ok(v) => v,
            Err(e) => {
                self.problem(e.to_string());
                return Ok(depth);
            }
        };
        if !is_root && view.count == 0 {
            self.problem(format!("page {pgno}: empty non-root page"));
        }
        if !is_root && view.to_node().size() < pager.page_size / 4 {
            self.report.underfull_pages += 1;
        }
        for i in 0..view.count {
            let k = view.key(i);
            if i > 0 && view.key(i - 1) >= k {
                self.problem(format!("page {pgno}: keys out of order at entry {i}"));
            }
            let below_lo =
                lo.as_deref().is_some_and(|lo| k < lo) && !(view.kind == KIND_BRANCH && i == 0);
            let above_hi = hi.as_deref().is_some_and(|hi| k >= hi);
            if below_lo || above_hi {
                self.problem(format!(
                    "page {pgno}: key at entry {i} outside its parent's range"
                ));
            }
        }
        if view.kind == KIND_LEAF {
            for i in 0..view.count {
                let e = view.leaf(i);
                let value = match e.value {
                    LeafValue::Inline(v) => v.to_vec(),
                    LeafValue::Overflow { pgno: p, len } => {
                        let pages = pager.overflow_pages(len as u64);
                        self.claim(p, pages, u);
                        let raw = match pager.raw_page(p).await {
                            Ok(_) => pager
                                .map
                                .read(
                                    p.0 * pager.page_size as u64
                                        ..(p.0 + pages) * pager.page_size as u64,
                                )
                                .await
                                .map(|g| g.to_vec()),
                            Err(e) => {
                                self.problem(e.to_string());
                                continue;
                            }
                        };
                        match raw {
                            Ok(run) => match format::verify(p, &run, &[format::KIND_OVERFLOW]) {
                                Ok(h)
                                    if h.overflow as u64 + 1 == pages
                                        && format::get_u32(&run, 28) == len =>
                                {
                                    run[format::HEADER..format::HEADER + len as usize].to_vec()
                                }
                                Ok(_) => {
                                    self.problem(format!("page {p}: overflow run length mismatch"));
                                    continue;
                                }
                                Err(e) => {
                                    self.problem(e.to_string());
                                    continue;
                                }
                            },
                            Err(e) => {
                                self.problem(format!("page {p}: {e}"));
                                continue;
                            }
                        }
                    }
                };
                leaves.push((e.key.to_vec(), value));
            }
            return Ok(depth + 1);
        }
        let mut child_depth = None;
        for i in 0..view.count {
            let child = view.child(i);
            let clo = if i == 0 {
                lo.clone()
            } else {
                Some(view.key(i).to_vec())
            };
            let chi = if i + 1 < view.count {
                Some(view.key(i + 1).to_vec())
            } else {
                hi.clone()
            };
            let d = Box::pin(self.tree(child, (clo, chi), u, false, leaves, depth + 1)).await?;
            match child_depth {
                None => child_depth = Some(d),
                Some(cd) if cd != d => {
                    self.problem(format!("page {pgno}: children at different depths"));
                }
                _ => {}
            }
        }
        Ok(child_depth.unwrap_or(depth + 1))
    }
}

impl Checker<'_> {
    /// The commit on top of the tree: the memtables' versions at the snapshot's commit,
    /// applied to the tree's keys, must give the key count the store reports.
    fn memtables(&mut self, reader: &ReadTxn, tree: &[(Vec<u8>, Vec<u8>)]) {
        let at = reader.snap.txid;
        // Oldest memtable first, so newer versions replace older ones.
        let mut latest: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
        for m in reader.snap.mems.iter().rev() {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let lower = match &after {
                    Some(k) => Bound::Excluded(k.as_slice()),
                    None => Bound::Unbounded,
                };
                let Some((k, v)) = m.next(lower, Bound::Unbounded, Some(at)) else {
                    break;
                };
                latest.insert(k.clone(), v.is_some());
                after = Some(k);
            }
        }
        let mut keys = tree.len() as i64;
        for (k, present) in &latest {
            let in_tree = tree.binary_search_by(|(t, _)| t.as_slice().cmp(k)).is_ok();
            keys += *present as i64 - in_tree as i64;
        }
        let r = &mut self.report;
        r.commit_txid = at;
        r.commit_keys = keys.max(0) as u64;
        r.memtable_keys = latest.len() as u64;
        r.log_commits = at.saturating_sub(self.meta.log_txid);
        r.log = self.store.log_recovery().clone();
        if r.log.discarded_commits > 0 {
            let w = format!(
                "opening discarded {} commit(s) found after a torn log record (acknowledged \
                 under durability everysec or no, lost in a crash)",
                r.log.discarded_commits
            );
            r.warnings.push(w);
        }
        if keys != reader.len() as i64 {
            self.problem(format!(
                "the store says commit {at} has {} keys; the tree and the memtables hold {keys}",
                reader.len()
            ));
        }
        if self.meta.log_txid > at {
            self.problem(format!(
                "the tree holds commit {} but the store is at commit {at}",
                self.meta.log_txid
            ));
        }
    }
}

impl Store {
    /// Verifies the last commit: every page checksum, key order, that every key lies within
    /// its parent's range, equal leaf depth, that every page is used exactly once (by the
    /// data tree, the freelist tree, or the freelist) and none is leaked, and the key count.
    pub async fn check(&self) -> Result<CheckReport> {
        let reader = self.read_txn(); // keeps the snapshot's pages from reuse meanwhile
        let meta = reader.snap.meta;
        let mut c = Checker {
            store: self,
            meta,
            uses: vec![Use::Unseen; meta.page_count as usize],
            report: CheckReport {
                txid: meta.txid.0,
                pages: meta.page_count,
                ..CheckReport::default()
            },
        };
        c.claim(PageNo(0), 2, Use::Meta);
        if let Some(r) = self.recovery_report() {
            c.report.meta_recovery = Some(r.clone());
            c.problem(r.to_string());
        }
        let mut data = Vec::new();
        if meta.root != PageNo::NONE {
            c.report.depth = c
                .tree(meta.root, (None, None), Use::Data, true, &mut data, 0)
                .await?;
        }
        c.report.keys = data.len() as u64;
        if c.report.keys != meta.entries {
            c.problem(format!(
                "meta says {} keys, the tree holds {}",
                meta.entries, c.report.keys
            ));
        }
        c.memtables(&reader, &data);
        drop(data);
        let mut free_entries = Vec::new();
        if meta.free_root != PageNo::NONE {
            c.tree(
                meta.free_root,
                (None, None),
                Use::FreeTree,
                true,
                &mut free_entries,
                0,
            )
            .await?;
        }
        let mut prev_free: Option<freelist::Run> = None;
        let mut free_runs = Vec::new();
        for (k, v) in free_entries {
            let run = match freelist::decode(&k, &v) {
                Ok(r) => r,
                Err(e) => {
                    c.problem(e.to_string());
                    continue;
                }
            };
            if run.txid > meta.txid {
                c.problem(format!(
                    "freelist run {}+{} freed by future transaction {}",
                    run.start, run.len, run.txid
                ));
            }
            if let Err(e) = freelist::check_bounds(&run, meta.page_count) {
                c.problem(e.to_string());
                continue;
            }
            if run.txid == TxId(0) {
                if let Some(p) = prev_free {
                    if p.start.0 + p.len == run.start.0 {
                        c.problem(format!(
                            "free runs {}+{} and {}+{} touch (they should be one run)",
                            p.start, p.len, run.start, run.len
                        ));
                    }
                }
                prev_free = Some(run);
                free_runs.push((run.start.0, run.len));
                c.report.free_runs += 1;
                c.report.largest_free_run = c.report.largest_free_run.max(run.len);
                c.claim(run.start, run.len, Use::FreeListed);
            } else {
                c.claim(run.start, run.len, Use::Pending);
            }
        }
        for (p, u) in c.uses.iter().enumerate() {
            match u {
                Use::Data => c.report.data_pages += 1,
                Use::FreeTree => c.report.freelist_tree_pages += 1,
                Use::FreeListed => c.report.free_pages += 1,
                Use::Pending => c.report.pending_pages += 1,
                _ => {}
            }
            if *u == Use::Unseen && c.report.problems.len() < 1000 {
                c.report
                    .problems
                    .push(format!("page {p} is neither used nor free (leaked)"));
            }
        }
        // Every byte checked was the file's own only if it was not truncated meanwhile.
        if let Err(e) = self.check_intact() {
            c.problem(e.to_string());
        }
        // The writer's memory of the free runs must be what the freelist says.
        if let Some((txid, mem)) = self.free_runs_in_memory() {
            if txid == meta.txid && mem != free_runs {
                c.problem(format!(
                    "the allocator's {} free runs in memory differ from the freelist's {}",
                    mem.len(),
                    free_runs.len()
                ));
            }
        }
        let r = &mut c.report;
        let live = r.data_pages + r.freelist_tree_pages + 2;
        let free = r.free_pages + r.pending_pages;
        if free > 4 * live && free > 1024 {
            r.warnings.push(format!(
                "free space dwarfs the live data: {free} free pages against {live} in use \
                 (a long-lived reader, or a commit far larger than the rest, left them; \
                 later writes reuse them, the file does not shrink)"
            ));
        }
        Ok(c.report)
    }
}
