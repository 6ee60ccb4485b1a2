//! Connection and server commands whose replies need a little work: PING, COMMAND, SELECT
//! (the trivial ones are answered in the dispatch itself).

use crate::protocol::{Args, Reply};

/// `PING [message]`.
pub(crate) fn ping(args: &Args<'_, '_>) -> Reply {
    match args.len() {
        1 => Reply::Status("PONG"),
        2 => Reply::Bulk(Some(args.get(1).to_vec())),
        _ => Reply::wrong_args(args.get(0)),
    }
}

/// `COMMAND [COUNT]`: the count of known commands; anything else gets an empty array.
pub(crate) fn command(args: &Args<'_, '_>) -> Reply {
    if args.len() >= 2 && args.get(1).eq_ignore_ascii_case(b"COUNT") {
        Reply::Int(super::count() as i64)
    } else {
        Reply::Array(Vec::new())
    }
}

/// `SELECT index`: only database 0 exists.
pub(crate) fn select(index: &[u8]) -> Reply {
    match index {
        b"0" => Reply::Status("OK"),
        _ => Reply::err("DB index is out of range"),
    }
}
