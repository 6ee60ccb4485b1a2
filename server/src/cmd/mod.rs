//! Command execution: the command table and dispatch here, the commands in one module per
//! family ([`strings`], [`keyspace`], [`admin`]).
//!
//! Every command writes its reply into the connection's [`Output`]; most build a small
//! [`Reply`], the ones whose replies can be large (`GET`, `MGET`) stream values into it. Long
//! commands account for their work as they go ([`Work::spend`]), which yields to the event
//! loop now and then. The table gives each command's arity in Redis's convention, checked
//! before the command runs.

pub(crate) mod admin;
pub(crate) mod keyspace;
pub(crate) mod strings;

use faultless_store::{Error as StoreError, Store, WriteTxn};
use futures::future::LocalBoxFuture;

use crate::connection::{Output, Stop};
use crate::protocol::{Args, Reply};
use crate::server::Shared;
use crate::work::Work;

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with the next request.
    Continue,
    /// Close the connection once the replies so far are sent (QUIT, SHUTDOWN).
    Close,
}

/// What a command runs with.
pub(crate) struct Ctx<'c, 's> {
    /// The server's shared state: the store, options, counters.
    pub(crate) shared: &'c Shared,
    /// Where the reply goes.
    pub(crate) out: &'c mut Output<'s>,
    /// The connection's work budget.
    pub(crate) work: &'c mut Work<'s>,
}

impl Ctx<'_, '_> {
    /// Writes a small reply.
    pub(crate) fn reply(&mut self, reply: Reply) {
        self.out.reply(&reply);
    }
}

/// The commands, as the table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Ping,
    Echo,
    Get,
    Set,
    Del,
    Exists,
    Mget,
    Mset,
    Incr,
    Dbsize,
    Scan,
    Info,
    Command,
    Config,
    Client,
    Select,
    Quit,
    Shutdown,
}

/// One row of the command table.
struct Spec {
    name: &'static str,
    /// Redis's convention: `n` means exactly `n` arguments (the name included), `-n` at
    /// least `n`.
    arity: i32,
    /// The reply is built from the store's mapped pages (values, keys, or anything decided
    /// by reading them), so it is checked against a damaged mapping before it is sent.
    store: bool,
    cmd: Cmd,
}

impl Spec {
    fn arity_ok(&self, n: usize) -> bool {
        let n = n as i64;
        let a = self.arity as i64;
        if a >= 0 {
            n == a
        } else {
            n >= -a
        }
    }
}

/// The commands the server knows: name, arity, whether the reply comes from the store.
const TABLE: &[Spec] = &[
    spec("PING", -1, false, Cmd::Ping),
    spec("ECHO", 2, false, Cmd::Echo),
    spec("GET", 2, true, Cmd::Get),
    spec("SET", -3, true, Cmd::Set),
    spec("DEL", -2, true, Cmd::Del),
    spec("EXISTS", -2, true, Cmd::Exists),
    spec("MGET", -2, true, Cmd::Mget),
    spec("MSET", -3, true, Cmd::Mset),
    spec("INCR", 2, true, Cmd::Incr),
    spec("DBSIZE", 1, false, Cmd::Dbsize),
    spec("SCAN", -2, true, Cmd::Scan),
    spec("INFO", -1, false, Cmd::Info),
    spec("COMMAND", -1, false, Cmd::Command),
    spec("CONFIG", -2, false, Cmd::Config),
    spec("CLIENT", -2, false, Cmd::Client),
    spec("SELECT", 2, false, Cmd::Select),
    spec("QUIT", -1, false, Cmd::Quit),
    spec("SHUTDOWN", -1, false, Cmd::Shutdown),
];

const fn spec(name: &'static str, arity: i32, store: bool, cmd: Cmd) -> Spec {
    Spec {
        name,
        arity,
        store,
        cmd,
    }
}

fn lookup(name: &[u8]) -> Option<&'static Spec> {
    TABLE
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Executes one request, writing its reply.
pub(crate) async fn execute(ctx: &mut Ctx<'_, '_>, args: Args<'_, '_>) -> Result<Flow, Stop> {
    let Some(spec) = lookup(args.get(0)) else {
        ctx.reply(unknown(&args));
        return Ok(Flow::Continue);
    };
    if !spec.arity_ok(args.len()) {
        ctx.reply(Reply::wrong_args(args.get(0)));
        return Ok(Flow::Continue);
    }
    let store = &ctx.shared.store;
    match spec.cmd {
        Cmd::Ping => ctx.reply(admin::ping(&args)),
        Cmd::Echo => ctx.reply(Reply::Bulk(Some(args.get(1).to_vec()))),
        Cmd::Get => strings::get(ctx, &args).await?,
        Cmd::Mget => strings::mget(ctx, &args).await?,
        Cmd::Set => {
            let r = strings::set(store, &args).await;
            ctx.reply(r)
        }
        Cmd::Mset => strings::mset(ctx, &args).await,
        Cmd::Incr => {
            let r = strings::incr(store, args.get(1)).await;
            ctx.reply(r)
        }
        Cmd::Exists => keyspace::exists(ctx, &args).await,
        Cmd::Del => keyspace::delete(ctx, &args).await,
        Cmd::Dbsize => ctx.reply(Reply::Int(store.len() as i64)),
        Cmd::Scan => keyspace::scan(ctx, &args).await,
        Cmd::Info => ctx.reply(Reply::Bulk(Some(
            crate::info::render(ctx.shared).into_bytes(),
        ))),
        Cmd::Command => ctx.reply(admin::command(&args)),
        Cmd::Config => ctx.reply(Reply::Array(Vec::new())),
        Cmd::Client => ctx.reply(Reply::Status("OK")),
        Cmd::Select => ctx.reply(admin::select(args.get(1))),
        Cmd::Quit => {
            ctx.reply(Reply::Status("OK"));
            return Ok(Flow::Close);
        }
        Cmd::Shutdown => {
            // Every acknowledged write is already durable: stop accepting and exit.
            ctx.shared.shut_down();
            ctx.reply(Reply::Status("OK"));
            return Ok(Flow::Close);
        }
    }
    Ok(Flow::Continue)
}

/// True if the reply to `args` is built from the store's data (see `Spec::store`); unknown
/// commands' replies are not.
pub(crate) fn from_store(args: &Args<'_, '_>) -> bool {
    lookup(args.get(0)).is_some_and(|s| s.store)
}

/// Number of commands in the table (`COMMAND COUNT`).
pub(crate) fn count() -> usize {
    TABLE.len()
}

fn unknown(args: &Args<'_, '_>) -> Reply {
    Reply::Error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(args.get(0)),
        args.iter_from(1)
            .take(3)
            .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
            .collect::<String>()
    ))
}

/// A store error as a reply.
pub(crate) fn store_err(e: StoreError) -> Reply {
    Reply::err(e)
}

/// For a plain `SET key value` or `DEL key`, the write through the store's group commit,
/// whose reply is ready once it is durable; `None` for every other request.
pub(crate) fn grouped_write<'a>(
    store: &'a Store,
    args: &Args<'a, '_>,
) -> Option<LocalBoxFuture<'a, Reply>> {
    let name = args.get(0);
    if args.len() == 3 && name.eq_ignore_ascii_case(b"SET") {
        let (key, value) = (args.get(1), args.get(2));
        Some(Box::pin(async move {
            match store.put(key, value).await {
                Ok(()) => Reply::Status("OK"),
                Err(e) => store_err(e),
            }
        }))
    } else if args.len() == 2 && name.eq_ignore_ascii_case(b"DEL") {
        let key = args.get(1);
        Some(Box::pin(async move {
            match store.delete(key).await {
                Ok(existed) => Reply::Int(existed as i64),
                Err(e) => store_err(e),
            }
        }))
    } else {
        None
    }
}

/// Runs `f` with a write transaction and turns store errors into error replies.
pub(crate) async fn transaction<'a, F, Fut>(store: &'a Store, f: F) -> Reply
where
    F: FnOnce(WriteTxn) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, StoreError>> + 'a,
{
    match store.write_txn().await {
        Ok(txn) => f(txn).await.unwrap_or_else(store_err),
        Err(e) => store_err(e),
    }
}
