//! Replies and their RESP2 encoding.

use std::io::Write;

/// A reply, encoded as RESP2 by [`Reply::encode`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A simple string: `+OK`.
    Status(&'static str),
    /// An error line: `-ERR ...` (the text includes its code, such as `ERR`).
    Error(String),
    /// An integer: `:42`.
    Int(i64),
    /// A bulk string, or the null bulk string for `None`.
    Bulk(Option<Vec<u8>>),
    /// An array of replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// An error reply with the generic `ERR` code: `-ERR {message}`.
    pub fn err(message: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {message}"))
    }

    /// Redis's error for a known command called with the wrong number of arguments.
    pub fn wrong_args(name: &[u8]) -> Reply {
        Reply::Error(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(name).to_lowercase()
        ))
    }

    /// Appends the RESP2 encoding of the reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(e) => {
                out.push(b'-');
                // An error line cannot contain CR or LF.
                out.extend(
                    e.bytes()
                        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
                );
                out.extend_from_slice(b"\r\n");
            }
            Reply::Int(n) => write_line(out, b':', *n),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                bulk_header(out, b.len());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(items) => {
                array_header(out, items.len());
                for i in items {
                    i.encode(out);
                }
            }
        }
    }
}

/// Appends the header of a bulk string of `len` bytes (`$len\r\n`); the caller appends the
/// bytes and a final `\r\n`.
pub fn bulk_header(out: &mut Vec<u8>, len: usize) {
    write_line(out, b'$', len as i64);
}

/// Appends the header of an array of `len` replies (`*len\r\n`); the caller appends them.
pub fn array_header(out: &mut Vec<u8>, len: usize) {
    write_line(out, b'*', len as i64);
}

fn write_line(out: &mut Vec<u8>, kind: u8, n: i64) {
    out.push(kind);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(r: Reply) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out);
        out
    }

    #[test]
    fn encodes_resp2() {
        assert_eq!(encoded(Reply::Status("OK")), b"+OK\r\n");
        assert_eq!(encoded(Reply::err("bad\r\nthing")), b"-ERR bad  thing\r\n");
        assert_eq!(encoded(Reply::Int(-7)), b":-7\r\n");
        assert_eq!(encoded(Reply::Bulk(None)), b"$-1\r\n");
        assert_eq!(encoded(Reply::Bulk(Some(b"hi".to_vec()))), b"$2\r\nhi\r\n");
        assert_eq!(
            encoded(Reply::Array(vec![Reply::Int(1), Reply::Bulk(Some(vec![]))])),
            b"*2\r\n:1\r\n$0\r\n\r\n"
        );
        assert_eq!(
            encoded(Reply::wrong_args(b"GET")),
            b"-ERR wrong number of arguments for 'get' command\r\n"
        );
    }
}
