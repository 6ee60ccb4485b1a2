//! RESP, the Redis serialization protocol: requests in ([`parse`]), replies out ([`reply`],
//! RESP2 or RESP3 as the connection chose with `HELLO`).
//!
//! A request is an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or an inline
//! command line (`GET k\r\n`, what telnet users type). Requests are parsed in place: the
//! parser yields each argument's byte range in the connection's buffer, and commands read their
//! arguments from there without copying them.

pub mod parse;
pub mod reply;

pub use parse::{Args, OwnedArgs, Parsed, Parser, ProtocolError};
pub use reply::Reply;
