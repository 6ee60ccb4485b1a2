//! Executing the requests of one batch (everything complete in the connection's buffer) in
//! order.
//!
//! * Writes are handed to the committer (`db::committer`) and not waited for one by one:
//!   consecutive writes of a pipeline, and those of every other connection meanwhile, share
//!   commits; their replies follow in order once durable. A read (or any other command)
//!   after writes waits for them first, so a client always reads its own writes.
//! * Reads run on a snapshot shared by consecutive reads; `GET` and `MGET` copy values
//!   straight from the mapped pages into the reply buffer. The snapshot never outlives the
//!   batch, so an idle connection pins no old version of the store.
//! * Inside MULTI, commands are checked (name, arity, key length) and queued; EXEC hands the
//!   queue to the committer as one job.

use std::rc::Rc;
use std::time::Instant;

use faultless_store::ReadTxn;
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};

use super::client::Client;
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
}

impl<'a> Batch<'a> {
    /// A batch with nothing pending.
    pub(crate) fn new(shared: &'a Rc<Shared>) -> Batch<'a> {
        Batch {
            shared,
            pending: FuturesOrdered::new(),
            snapshot: None,
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

    /// Executes one request, writing its reply (or, for a write, queueing it).
    pub(crate) async fn run<'s>(
        &mut self,
        args: Args<'_>,
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
                Cmd::Get => stream_get(shared, &txn, out, args.get(1), &mut error, false).await,
                Cmd::Mget => {
                    array_header(out.raw(), args.len() - 1);
                    let mut r = Ok(());
                    for key in args.iter_from(1) {
                        let mut ignored = None;
                        r = stream_get(shared, &txn, out, key, &mut ignored, true).await;
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

/// Streams `key`'s string value (or null, or WRONGTYPE; null for MGET) from the snapshot
/// into the reply buffer, copying it from the mapping in pieces.
async fn stream_get(
    shared: &Shared,
    txn: &ReadTxn,
    out: &mut Output<'_>,
    key: &[u8],
    error: &mut Option<String>,
    mget: bool,
) -> Result<(), Stop> {
    let mut skey = [0u8; 128];
    let value = if key.len() + 9 <= skey.len() {
        keys::top_into(&mut skey, key);
        txn.get(&skey[..key.len() + 9]).await
    } else {
        txn.get(&keys::top(key)).await
    };
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
