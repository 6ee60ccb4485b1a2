//! Connection and server commands: PING, COMMAND, SELECT (the trivial ones are answered in
//! the dispatch table itself).

use crate::protocol::Reply;

/// `PING [message]`.
pub(crate) fn ping(args: &[Vec<u8>]) -> Reply {
    match args.len() {
        1 => Reply::Status("PONG"),
        2 => Reply::Bulk(Some(args[1].clone())),
        _ => Reply::wrong_args(&args[0]),
    }
}

/// `COMMAND [COUNT]`: the count of known commands; anything else gets an empty array.
pub(crate) fn command(args: &[Vec<u8>]) -> Reply {
    match args.get(1).map(|a| a.to_ascii_uppercase()) {
        Some(sub) if sub == b"COUNT" => Reply::Int(super::COMMANDS.len() as i64),
        _ => Reply::Array(Vec::new()),
    }
}

/// `SELECT index`: only database 0 exists.
pub(crate) fn select(index: &[u8]) -> Reply {
    match index {
        b"0" => Reply::Status("OK"),
        _ => Reply::err("DB index is out of range"),
    }
}
