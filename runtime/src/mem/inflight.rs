//! The in-flight table: which prefetch request covers each page being brought in, so that a
//! task needing a page already on its way waits on that request instead of issuing another
//! (N tasks on one cold page cause one I/O).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::request::Request;

/// Past this many entries, requests that completed with nobody waiting (prefetches) are
/// dropped from the table when a new one is added.
const PRUNE_AT: usize = 65536;

/// Requests in flight, by page. Owned by the executor thread.
#[derive(Default)]
pub(super) struct InFlight {
    by_page: RefCell<HashMap<u64, Arc<Request>>>,
}

impl InFlight {
    /// The request covering `page`, if one is recorded (it may have completed since).
    pub(super) fn get(&self, page: u64) -> Option<Arc<Request>> {
        self.by_page.borrow().get(&page).cloned()
    }

    /// True if a request covering `page` is recorded.
    pub(super) fn contains(&self, page: u64) -> bool {
        self.by_page.borrow().contains_key(&page)
    }

    /// Records `req` for each page it covers.
    pub(super) fn insert(&self, req: &Arc<Request>) {
        let mut by_page = self.by_page.borrow_mut();
        for page in req.first_page..req.first_page + req.pages {
            by_page.insert(page, req.clone());
        }
        if by_page.len() > PRUNE_AT {
            by_page.retain(|_, r| r.outcome().is_none());
        }
    }

    /// Forgets the pages still recorded for `req`.
    pub(super) fn remove(&self, req: &Arc<Request>) {
        let mut by_page = self.by_page.borrow_mut();
        for page in req.first_page..req.first_page + req.pages {
            if by_page.get(&page).is_some_and(|r| Arc::ptr_eq(r, req)) {
                by_page.remove(&page);
            }
        }
    }

    /// Forgets every request that has completed.
    pub(super) fn remove_completed(&self) {
        self.by_page
            .borrow_mut()
            .retain(|_, r| r.outcome().is_none());
    }
}
