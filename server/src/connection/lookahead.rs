//! Reading ahead in a pipeline: when a GET finds its pages cold, the keys of the GETs and
//! MGETs queued behind it in the same batch start their lookups at once, so their page
//! reads are in flight together instead of one after another.
//!
//! A connection answers its requests in order, so without this a pipeline of 16 cold GETs
//! costs 16 device reads back to back (and 50 such connections keep only 50 reads in
//! flight, far below what the device serves at once). With it, the first cold GET of a
//! batch starts up to [`MAX_WARMING`] lookups for the keys behind it; each is an ordinary
//! `ReadTxn::get` on the batch's snapshot whose answer is thrown away: it only brings the
//! pages of the key's path in (the store's page reads are shared, so the real lookup later
//! finds them resident or joins the read in flight).
//!
//! Nothing changes on the hot path: a GET whose pages are resident completes on its first
//! poll, and the batch's remaining requests are only parsed ahead once a GET has to wait.
//! Warming lookups are polled while the connection waits for a cold GET; those still
//! running when the batch ends are dropped (a dropped read leaks nothing, and the pages it
//! asked for still arrive).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use faultless_store::{ReadTxn, Result as StoreResult, ValueRef};
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::cmd::{lookup, Cmd};
use crate::db::keys;
use crate::protocol::{Parsed, Parser};

/// Most lookups warming at once for one connection.
pub(crate) const MAX_WARMING: usize = 64;

/// The warming lookups of one batch.
pub(crate) struct Lookahead {
    warming: FuturesUnordered<LocalBoxFuture<'static, ()>>,
    /// Address just past the last request of the batch already warmed: requests before it
    /// are not parsed ahead again.
    warmed_to: usize,
    /// Lookups started (for INFO).
    started: u64,
}

impl Lookahead {
    /// Nothing warming.
    pub(crate) fn new() -> Lookahead {
        Lookahead {
            warming: FuturesUnordered::new(),
            warmed_to: 0,
            started: 0,
        }
    }

    /// Lookups started so far in this batch.
    pub(crate) fn started(&self) -> u64 {
        self.started
    }

    /// `skey`'s value in `txn`. If its pages are not resident, first starts warming the
    /// keys of `siblings` (the rest of an MGET) and of the GET/MGET requests in `ahead`
    /// (the batch's unexecuted bytes), and keeps them going while it waits.
    pub(crate) async fn get<'k>(
        &mut self,
        txn: &ReadTxn,
        skey: &[u8],
        siblings: impl Iterator<Item = &'k [u8]>,
        ahead: &[u8],
        max_request: usize,
    ) -> StoreResult<Option<ValueRef>> {
        let mut get = pin!(txn.get(skey));
        let mut siblings = Some(siblings);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = get.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
            if let Some(siblings) = siblings.take() {
                for key in siblings {
                    self.warm(txn, key);
                }
                self.warm_requests(txn, ahead, max_request);
            }
            while let Poll::Ready(Some(())) = self.warming.poll_next_unpin(cx) {}
            Poll::Pending
        })
        .await
    }

    /// Starts warming the GET/MGET keys of the complete requests at the start of `ahead`,
    /// unless they were already.
    fn warm_requests(&mut self, txn: &ReadTxn, ahead: &[u8], max_request: usize) {
        let start = ahead.as_ptr() as usize;
        if start < self.warmed_to {
            return;
        }
        let mut parser = Parser::new();
        let mut used = 0;
        while self.warming.len() < MAX_WARMING {
            let Ok(Parsed::Complete(n)) = parser.parse(&ahead[used..], max_request) else {
                break;
            };
            let args = parser.args(&ahead[used..used + n]);
            used += n;
            if args.is_empty() {
                continue;
            }
            match lookup(args.get(0)).map(|spec| spec.cmd) {
                Some(Cmd::Get) if args.len() == 2 => self.warm(txn, args.get(1)),
                Some(Cmd::Mget) => args.iter_from(1).for_each(|k| self.warm(txn, k)),
                _ => {}
            }
        }
        self.warmed_to = start + used;
    }

    /// Starts a lookup of `key`'s record, if fewer than [`MAX_WARMING`] are running.
    fn warm(&mut self, txn: &ReadTxn, key: &[u8]) {
        if self.warming.len() >= MAX_WARMING || key.len() > keys::MAX_KEY {
            return;
        }
        let txn = txn.clone();
        let skey = keys::top(key);
        self.started += 1;
        self.warming.push(Box::pin(async move {
            // The answer is not needed, only the pages on its way; an error (a damaged
            // file) is reported by the real lookup.
            let _ = txn.get(&skey).await;
        }));
    }
}
