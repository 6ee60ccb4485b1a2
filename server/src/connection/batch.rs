//! Executing the requests of one batch (everything complete in the connection's buffer) in
//! order.
//!
//! * Writes are handed to the committer (`db::committer`) and not waited for one by one:
//!   consecutive writes of a pipeline, and those of every other connection meanwhile, share
//!   commits; their replies follow in order once durable. A read (or any other command)
//!   after writes waits for them first, so a client always reads its own writes.
//! * Reads run on a snapshot shared by consecutive reads; `GET` and `MGET` copy values
//!   straight from the mapped pages into the reply buffer. The snapshot never outlives the
//!   batch, so an idle connection pins no old version of the store. When a GET waits for
//!   cold pages, the GETs behind it in the batch start their lookups too
//!   ([`lookahead`](super::lookahead)).
//! * Inside MULTI, commands are checked (name, arity, key length) and queued; EXEC hands the
//!   queue to the committer as one job.

use std::rc::Rc;
use std::time::Instant;

use faultless_store::{ReadTxn, Result as StoreResult, ValueRef};
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};

use super::client::Client;
use super::lookahead::Lookahead;
use super::output::{Output, Stop};
use crate::cmd::conn::allowed_in_multi;
use crate::cmd::table::index;
use crate::cmd::{self, key_too_long, lookup, Class, Cmd, Flow, Spec};
use crate::db::committer::{submit, Job};
use crate::db::{keys, now_ms, Kind, Meta, Snap};
use crate::protocol::reply::array_header;
use crate::protocol::{Args, Reply};
use crate::server::Shared;
use crate::work::Work;

/// Writes waiting at most, before the batch waits for them (each holds a future).
const MAX_PENDING: usize = 1024;

/// The state of one batch.
pub(crate) struct Batch<'a> {
    shared: &'a Rc<Shared>,
    pending: FuturesOrdered<LocalBoxFuture<'a, Reply>>,
    snapshot: Option<ReadTxn>,
    lookahead: Lookahead,
}

impl<'a> Batch<'a> {
    /// A batch with nothing pending.
    pub(crate) fn new(shared: &'a Rc<Shared>) -> Batch<'a> {
        Batch {
            shared,
            pending: FuturesOrdered::new(),
            snapshot: None,
            lookahead: Lookahead::new(),
        }
    }

    /// Writes a reply that is not built from the store, counting errors.
    fn emit(&self, out: &mut Output<'_>, reply: &Reply) {
        if let Reply::Error(e) = reply {
            self.shared.stats.error(e);
        }
        out.begin(false);
        out.reply(reply);
    }

    /// A request refused before it ran (unknown, arity, NOAUTH, key length): inside MULTI
    /// it also dooms the transaction.
    async fn refuse(
        &mut self,
        out: &mut Output<'_>,
        client: &mut Client,
        spec: Option<&Spec>,
        reply: Reply,
    ) -> Result<Flow, Stop> {
        self.drain(out).await?;
        if client.multi.is_some() {
            client.multi_failed = true;
        }
        if let Some(spec) = spec {
            self.shared.stats.count(index(spec), 0, None, true);
        }
        self.emit(out, &reply);
        out.end()?;
        Ok(Flow::Continue)
    }

    /// Executes one request, writing its reply (or, for a write, queueing it). `ahead`
    /// holds the batch's bytes after this request (for reading ahead).
    pub(crate) async fn run<'s>(
        &mut self,
        args: Args<'_>,
        ahead: &[u8],
        out: &mut Output<'s>,
        work: &mut Work<'s>,
        client: &mut Client,
    ) -> Result<Flow, Stop> {
        work.spend(1).await;
        let shared = self.shared;
        let Some(spec) = lookup(args.get(0)) else {
            return self.refuse(out, client, None, unknown(&args)).await;
        };
        client.info.cmd.set(spec.name);
        if !client.authed && !spec.flags.contains(&"noauth") {
            return self
                .refuse(
                    out,
                    client,
                    Some(spec),
                    Reply::Error("NOAUTH Authentication required.".into()),
                )
                .await;
        }
        if !spec.arity_ok(args.len()) {
            return self
                .refuse(out, client, Some(spec), Reply::wrong_args(args.get(0)))
                .await;
        }
        if let Some(r) = key_too_long(spec, &args) {
            return self.refuse(out, client, Some(spec), r).await;
        }
        if client.multi.is_some()
            && !matches!(
                spec.cmd,
                Cmd::Exec | Cmd::Discard | Cmd::Multi | Cmd::Watch | Cmd::Quit | Cmd::Reset
            )
        {
            if spec.class == Class::Conn && !allowed_in_multi(spec.cmd) {
                return self
                    .refuse(
                        out,
                        client,
                        Some(spec),
                        Reply::err("Command not allowed inside a transaction"),
                    )
                    .await;
            }
            let size: usize = args.iter_from(0).map(|a| a.len() + 16).sum();
            let limit = shared.options.max_request;
            if client.multi_bytes + size > limit {
                // The queue is bounded like a request: EXEC will answer EXECABORT.
                let why = format!("MULTI queue over {limit} bytes (the max-request limit)");
                return self.refuse(out, client, Some(spec), Reply::err(why)).await;
            }
            client.multi_bytes += size;
            self.drain(out).await?;
            let queue = client.multi.as_mut().expect("in MULTI");
            queue.push(args.to_owned());
            client.info.multi.set(queue.len() as i64);
            self.emit(out, &Reply::Status("QUEUED"));
            out.end()?;
            return Ok(Flow::Continue);
        }
        if spec.class == Class::Write {
            self.snapshot = None;
            if self.pending.len() >= MAX_PENDING {
                self.drain(out).await?;
            }
            shared.stats.count(index(spec), 0, None, false);
            let job = Job::Command(args.to_owned());
            self.pending.push_back(Box::pin(submit(shared, job)));
            return Ok(Flow::Continue);
        }
        self.drain(out).await?;
        // GET and MGET, the hot path, are not timed (commandstats shows usec=0 for them):
        // two clock reads would cost more than a hot GET's own work.
        let timed = !matches!(spec.cmd, Cmd::Get | Cmd::Mget);
        let started = timed.then(Instant::now);
        let mut flow = Flow::Continue;
        let mut error = None;
        out.begin(spec.reads_store());
        let written = if spec.class == Class::Conn {
            self.snapshot = None;
            let (reply, f) = cmd::conn::execute(shared, client, spec, &args).await;
            flow = f;
            out.resp3 = client.resp3;
            if let Reply::Error(e) = &reply {
                error = Some(e.clone());
            }
            out.reply(&reply);
            Ok(())
        } else {
            let txn = self
                .snapshot
                .get_or_insert_with(|| shared.store.read_txn())
                .clone();
            match spec.cmd {
                Cmd::Get => {
                    let key = args.get(1);
                    let value = self.lookup(&txn, key, [].into_iter(), ahead).await;
                    stream_value(shared, out, key, value, &mut error, false).await
                }
                Cmd::Mget => {
                    array_header(out.raw(), args.len() - 1);
                    let mut r = Ok(());
                    for (i, key) in args.iter_from(1).enumerate() {
                        let siblings = args.iter_from(i + 2);
                        let value = self.lookup(&txn, key, siblings, ahead).await;
                        let mut ignored = None;
                        r = stream_value(shared, out, key, value, &mut ignored, true).await;
                        if r.is_err() {
                            break;
                        }
                        work.spend(1).await;
                    }
                    r
                }
                _ => {
                    let snap = Snap::with(txn, shared);
                    let reply = match cmd::run_read(&snap, spec.cmd, &args, now_ms(), work).await {
                        Ok(r) => r,
                        Err(e) => Reply::err(e),
                    };
                    if let Reply::Error(e) = &reply {
                        error = Some(e.clone());
                    }
                    out.reply(&reply);
                    Ok(())
                }
            }
        };
        let usec = started.map_or(0, |t| t.elapsed().as_micros() as u64);
        shared
            .stats
            .count(index(spec), usec, error.as_deref(), false);
        let flow = finish(out, written.map(|()| flow))?;
        out.flush_if_full().await?;
        Ok(flow)
    }

    /// `key`'s record in `txn`; if it must wait for cold pages, the keys of `siblings` (the
    /// rest of an MGET) and of the GETs in `ahead` start their lookups meanwhile.
    async fn lookup<'k>(
        &mut self,
        txn: &ReadTxn,
        key: &[u8],
        siblings: impl Iterator<Item = &'k [u8]>,
        ahead: &[u8],
    ) -> StoreResult<Option<ValueRef>> {
        let max_request = self.shared.options.max_request;
        let started = self.lookahead.started();
        let mut skey = [0u8; 128];
        let value = if key.len() + 9 <= skey.len() {
            keys::top_into(&mut skey, key);
            let skey = &skey[..key.len() + 9];
            self.lookahead
                .get(txn, skey, siblings, ahead, max_request)
                .await
        } else {
            let skey = keys::top(key);
            self.lookahead
                .get(txn, &skey, siblings, ahead, max_request)
                .await
        };
        let more = self.lookahead.started() - started;
        if more > 0 {
            let stat = &self.shared.stats.read_ahead_lookups;
            stat.set(stat.get() + more);
        }
        value
    }

    /// Waits for the writes queued so far and writes their replies.
    pub(crate) async fn drain(&mut self, out: &mut Output<'_>) -> Result<(), Stop> {
        while let Some(reply) = self.pending.next().await {
            if let Reply::Error(e) = &reply {
                self.shared.stats.error(e);
            }
            out.begin(true);
            out.reply(&reply);
            out.end()?;
            out.flush_if_full().await?;
        }
        Ok(())
    }
}

/// Streams `key`'s string value (or null, or WRONGTYPE; null for MGET), as looked up in the
/// snapshot, into the reply buffer, copying it from the mapping in pieces.
async fn stream_value(
    shared: &Shared,
    out: &mut Output<'_>,
    key: &[u8],
    value: StoreResult<Option<ValueRef>>,
    error: &mut Option<String>,
    mget: bool,
) -> Result<(), Stop> {
    let value = match value {
        Ok(v) => v,
        Err(e) => {
            let r = Reply::err(e);
            out.reply(&r);
            *error = Some(error_text(&r));
            return Ok(());
        }
    };
    let found = value.as_ref().and_then(|v| Meta::decode(v));
    match (&value, found) {
        (Some(v), Some((meta, at))) if meta.expire.is_none_or(|_| !meta.expired(now_ms())) => {
            crate::stats::bump(&shared.stats.keyspace_hits);
            if meta.kind == Kind::String {
                return out.bulk(&v[at..]).await;
            }
            if mget {
                out.reply(&Reply::Null);
                return Ok(());
            }
            let r = Reply::wrong_type();
            out.reply(&r);
            *error = Some(error_text(&r));
        }
        (Some(_), None) => {
            let r = Reply::err(crate::db::bad_record(key));
            out.reply(&r);
            *error = Some(error_text(&r));
        }
        _ => {
            crate::stats::bump(&shared.stats.keyspace_misses);
            out.reply(&Reply::Null);
        }
    }
    Ok(())
}

fn error_text(r: &Reply) -> String {
    match r {
        Reply::Error(e) => e.clone(),
        _ => String::new(),
    }
}

fn unknown(args: &Args<'_>) -> Reply {
    Reply::Error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(args.get(0)),
        args.iter_from(1)
            .take(3)
            .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
            .collect::<String>()
    ))
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
