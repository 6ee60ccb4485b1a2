//! Command execution: the command table and dispatch here, the commands in one module per
//! family ([`strings`], [`keyspace`], [`admin`]).

mod admin;
mod keyspace;
mod strings;

use std::rc::Rc;

use faultless_store::{Error as StoreError, Store, WriteTxn};

use crate::protocol::Reply;
use crate::server::Shared;

/// The commands the server knows; a known one with the wrong arguments gets Redis's
/// "wrong number of arguments" error rather than "unknown command".
pub(crate) const COMMANDS: &[&[u8]] = &[
    b"PING",
    b"ECHO",
    b"GET",
    b"SET",
    b"DEL",
    b"EXISTS",
    b"MGET",
    b"MSET",
    b"INCR",
    b"DBSIZE",
    b"SCAN",
    b"INFO",
    b"COMMAND",
    b"CONFIG",
    b"CLIENT",
    b"SELECT",
    b"QUIT",
    b"SHUTDOWN",
];

/// A store error as a reply.
pub(crate) fn store_err(e: StoreError) -> Reply {
    Reply::err(e)
}

/// True for writes that go through group commit without reading first.
pub(crate) fn is_grouped_write(args: &[Vec<u8>]) -> bool {
    let name = args[0].to_ascii_uppercase();
    (name == b"SET" && args.len() == 3) || (name == b"DEL" && args.len() == 2)
}

/// Runs a grouped write (see [`is_grouped_write`]); the reply is ready once it is durable.
pub(crate) async fn grouped_write(shared: Rc<Shared>, args: Vec<Vec<u8>>) -> Reply {
    if args[0].eq_ignore_ascii_case(b"SET") {
        match shared.store.put(&args[1], &args[2]).await {
            Ok(()) => Reply::Status("OK"),
            Err(e) => store_err(e),
        }
    } else {
        match shared.store.delete(&args[1]).await {
            Ok(existed) => Reply::Int(existed as i64),
            Err(e) => store_err(e),
        }
    }
}

/// Executes one request; the flag asks the connection to close after the reply.
pub(crate) async fn execute(shared: &Shared, args: &[Vec<u8>]) -> (Reply, bool) {
    let name = args[0].to_ascii_uppercase();
    let n = args.len();
    let store = &shared.store;
    let reply = match name.as_slice() {
        b"PING" => admin::ping(args),
        b"ECHO" if n == 2 => Reply::Bulk(Some(args[1].clone())),
        b"GET" if n == 2 => strings::get(store, &args[1]).await,
        b"MGET" if n >= 2 => strings::mget(store, &args[1..]).await,
        b"EXISTS" if n >= 2 => keyspace::exists(store, &args[1..]).await,
        b"DBSIZE" if n == 1 => Reply::Int(store.len() as i64),
        b"SET" if n >= 3 => strings::set(store, args).await,
        b"DEL" if n >= 2 => keyspace::delete(store, &args[1..]).await,
        b"MSET" if n >= 3 && n % 2 == 1 => strings::mset(store, &args[1..]).await,
        b"INCR" if n == 2 => strings::incr(store, &args[1]).await,
        b"SCAN" if n >= 2 => keyspace::scan(store, args).await,
        b"INFO" => Reply::Bulk(Some(crate::info::render(shared).into_bytes())),
        b"COMMAND" => admin::command(args),
        b"CONFIG" if n >= 2 => Reply::Array(Vec::new()),
        b"CLIENT" if n >= 2 => Reply::Status("OK"),
        b"SELECT" if n == 2 => admin::select(&args[1]),
        b"QUIT" => return (Reply::Status("OK"), true),
        b"SHUTDOWN" => {
            shared.shut_down();
            return (Reply::Status("OK"), true);
        }
        _ if COMMANDS.contains(&name.as_slice()) => Reply::wrong_args(&name),
        _ => unknown(args),
    };
    (reply, false)
}

fn unknown(args: &[Vec<u8>]) -> Reply {
    Reply::Error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(&args[0]),
        args[1..]
            .iter()
            .take(3)
            .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
            .collect::<String>()
    ))
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
