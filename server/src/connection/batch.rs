//! Executing the requests of one batch (everything complete in the connection's buffer) in
//! order, with the two fast paths that make pipelines cheap.
//!
//! * Plain `SET key value` and `DEL key` are *grouped writes*: they go through the store's
//!   group commit, and consecutive ones wait for durability together (one commit, one fsync
//!   for all of them), their replies following in order.
//! * `GET key` reads from a snapshot shared by consecutive `GET`s, copying the value straight
//!   from the mapped page into the reply buffer. A `GET` (or any other command) after grouped
//!   writes waits for them first, so a client always reads its own writes. The snapshot never
//!   outlives the batch, so an idle connection pins no old version of the store.

use faultless_store::ReadTxn;
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};

use super::output::{Output, Stop};
use crate::cmd::{self, Ctx, Flow};
use crate::protocol::{Args, Reply};
use crate::server::Shared;
use crate::work::Work;

/// Grouped writes waiting at most, before the batch waits for them (each holds a future).
const MAX_PENDING: usize = 1024;

/// The state of one batch; `'a` is the lifetime of the connection's buffer and shared state.
pub(crate) struct Batch<'a> {
    shared: &'a Shared,
    pending: FuturesOrdered<LocalBoxFuture<'a, Reply>>,
    snapshot: Option<ReadTxn>,
}

impl<'a> Batch<'a> {
    /// A batch with nothing pending.
    pub(crate) fn new(shared: &'a Shared) -> Batch<'a> {
        Batch {
            shared,
            pending: FuturesOrdered::new(),
            snapshot: None,
        }
    }

    /// Executes one request, writing its reply (or, for a grouped write, queueing it).
    pub(crate) async fn run<'s>(
        &mut self,
        args: Args<'a, '_>,
        out: &mut Output<'s>,
        work: &mut Work<'s>,
    ) -> Result<Flow, Stop> {
        work.spend(1).await;
        if args.len() == 2 && args.get(0).eq_ignore_ascii_case(b"GET") {
            self.drain(out).await?;
            let store = &self.shared.store;
            let txn = self.snapshot.get_or_insert_with(|| store.read_txn());
            out.begin(true);
            let value = txn.get(args.get(1)).await;
            let written = cmd::strings::write_value(out, value).await;
            finish(out, written.map(|()| Flow::Continue))?;
            out.flush_if_full().await?;
            return Ok(Flow::Continue);
        }
        self.snapshot = None;
        if let Some(write) = cmd::grouped_write(&self.shared.store, &args) {
            if self.pending.len() >= MAX_PENDING {
                self.drain(out).await?;
            }
            self.pending.push_back(write);
            return Ok(Flow::Continue);
        }
        self.drain(out).await?;
        out.begin(cmd::from_store(&args));
        let mut ctx = Ctx {
            shared: self.shared,
            out,
            work,
        };
        let executed = cmd::execute(&mut ctx, args).await;
        let flow = finish(out, executed)?;
        out.flush_if_full().await?;
        Ok(flow)
    }

    /// Waits for the grouped writes queued so far and writes their replies.
    pub(crate) async fn drain(&mut self, out: &mut Output<'_>) -> Result<(), Stop> {
        while let Some(reply) = self.pending.next().await {
            out.begin(true);
            out.reply(&reply);
            out.end()?;
            out.flush_if_full().await?;
        }
        Ok(())
    }
}

/// Ends the reply of a command that returned `result`: checks it was not built from a damaged
/// mapping, and replaces it by the error if it was.
fn finish(out: &mut Output<'_>, result: Result<Flow, Stop>) -> Result<Flow, Stop> {
    match result {
        Ok(flow) => out.end().map(|()| flow),
        Err(Stop::Damaged(e)) => out.fail(e).map(|()| Flow::Continue),
        Err(Stop::Gone) => Err(Stop::Gone),
    }
}
