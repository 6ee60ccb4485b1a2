//! Replies and their encoding, in RESP2 or RESP3 (what the connection chose with `HELLO`).
//!
//! A reply is built once and encoded for the connection's protocol: the RESP3-only types
//! (null, double, boolean, map, set, verbatim string) are written in RESP2 the way Redis
//! writes them there (a null bulk or null array, a bulk string, an integer, a flat array).

use std::io::Write;

/// A reply; [`Reply::encode`] writes it in RESP2 or RESP3.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A simple string: `+OK`.
    Status(&'static str),
    /// A simple string made at run time (`+string` from TYPE).
    Simple(String),
    /// An error line: `-ERR ...` (the text includes its code, such as `ERR`).
    Error(String),
    /// An integer: `:42`.
    Int(i64),
    /// A bulk string, or the null bulk string for `None` (RESP3: null).
    Bulk(Option<Vec<u8>>),
    /// An array of replies.
    Array(Vec<Reply>),
    /// The null array (`*-1` in RESP2; null in RESP3): EXEC aborted by WATCH.
    NullArray,
    /// The null reply (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// A double (RESP3 `,`; a bulk string in RESP2).
    Double(f64),
    /// A boolean (RESP3 `#t`; 1 or 0 in RESP2).
    Bool(bool),
    /// A map (RESP3 `%`; a flat array of keys and values in RESP2).
    Map(Vec<(Reply, Reply)>),
    /// Pairs (RESP3: an array of 2-element arrays; RESP2: a flat array), as HRANDFIELD
    /// WITHVALUES replies.
    Pairs(Vec<(Reply, Reply)>),
    /// A set (RESP3 `~`; an array in RESP2).
    Set(Vec<Reply>),
    /// A verbatim string with its 3-letter format (RESP3 `=`; a bulk string in RESP2).
    Verbatim(&'static str, Vec<u8>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Status("OK");

    /// An error reply with the generic `ERR` code: `-ERR {message}`.
    pub fn err(message: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {message}"))
    }

    /// A bulk string copied from `bytes`.
    pub fn bulk(bytes: &[u8]) -> Reply {
        Reply::Bulk(Some(bytes.to_vec()))
    }

    /// Redis's error for a known command called with the wrong number of arguments.
    pub fn wrong_args(name: &[u8]) -> Reply {
        Reply::Error(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(name).to_lowercase()
        ))
    }

    /// Redis's error for an operation on a key of another type.
    pub fn wrong_type() -> Reply {
        Reply::Error(
            "WRONGTYPE Operation against a key holding the wrong kind of value".to_string(),
        )
    }

    /// Redis's error for an argument that must be an integer.
    pub fn not_integer() -> Reply {
        Reply::err("value is not an integer or out of range")
    }

    /// Redis's `syntax error`.
    pub fn syntax() -> Reply {
        Reply::err("syntax error")
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the encoding of the reply to `out`: RESP3 if `resp3`, else RESP2.
    pub fn encode(&self, out: &mut Vec<u8>, resp3: bool) {
        match self {
            Reply::Status(s) => simple(out, b'+', s.as_bytes()),
            Reply::Simple(s) => simple(out, b'+', s.as_bytes()),
            Reply::Error(e) => simple(out, b'-', e.as_bytes()),
            Reply::Int(n) => write_line(out, b':', *n),
            Reply::Bulk(None) | Reply::Null => null(out, resp3, b"$-1\r\n"),
            Reply::NullArray => null(out, resp3, b"*-1\r\n"),
            Reply::Bulk(Some(b)) => bulk(out, b),
            Reply::Array(items) => {
                array_header(out, items.len());
                items.iter().for_each(|i| i.encode(out, resp3));
            }
            Reply::Set(items) => {
                write_line(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|i| i.encode(out, resp3));
            }
            Reply::Map(pairs) => {
                if resp3 {
                    write_line(out, b'%', pairs.len() as i64);
                } else {
                    array_header(out, pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::Pairs(pairs) => {
                array_header(out, if resp3 { pairs.len() } else { pairs.len() * 2 });
                for (k, v) in pairs {
                    if resp3 {
                        array_header(out, 2);
                    }
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    simple(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(b) => {
                if resp3 {
                    out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    write_line(out, b':', *b as i64);
                }
            }
            Reply::Verbatim(format, text) => {
                if resp3 {
                    write_line(out, b'=', (text.len() + 4) as i64);
                    out.extend_from_slice(format.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\r\n");
                } else {
                    bulk(out, text);
                }
            }
        }
    }
}

/// Formats a double as Redis does for replies (`%.17g`, with `inf`/`-inf`/`nan`).
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{d}")
    }
}

fn simple(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    // A simple string or error line cannot contain CR or LF.
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

fn null(out: &mut Vec<u8>, resp3: bool, resp2: &[u8]) {
    out.extend_from_slice(if resp3 { b"_\r\n" } else { resp2 });
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    bulk_header(out, b.len());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
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

    fn encoded(r: Reply, resp3: bool) -> String {
        let mut out = Vec::new();
        r.encode(&mut out, resp3);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_resp2() {
        assert_eq!(encoded(Reply::OK, false), "+OK\r\n");
        assert_eq!(
            encoded(Reply::err("bad\r\nthing"), false),
            "-ERR bad  thing\r\n"
        );
        assert_eq!(encoded(Reply::Int(-7), false), ":-7\r\n");
        assert_eq!(encoded(Reply::Bulk(None), false), "$-1\r\n");
        assert_eq!(encoded(Reply::bulk(b"hi"), false), "$2\r\nhi\r\n");
        assert_eq!(
            encoded(Reply::Array(vec![Reply::Int(1), Reply::bulk(b"")]), false),
            "*2\r\n:1\r\n$0\r\n\r\n"
        );
        assert_eq!(
            encoded(Reply::wrong_args(b"GET"), false),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(encoded(Reply::NullArray, false), "*-1\r\n");
        assert_eq!(encoded(Reply::Double(1.5), false), "$3\r\n1.5\r\n");
        assert_eq!(encoded(Reply::Bool(true), false), ":1\r\n");
        assert_eq!(
            encoded(Reply::Map(vec![(Reply::bulk(b"a"), Reply::Int(1))]), false),
            "*2\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            encoded(Reply::Verbatim("txt", b"x".to_vec()), false),
            "$1\r\nx\r\n"
        );
    }

    #[test]
    fn encodes_resp3() {
        assert_eq!(encoded(Reply::Bulk(None), true), "_\r\n");
        assert_eq!(encoded(Reply::NullArray, true), "_\r\n");
        assert_eq!(encoded(Reply::Double(2.0), true), ",2\r\n");
        assert_eq!(encoded(Reply::Double(f64::INFINITY), true), ",inf\r\n");
        assert_eq!(encoded(Reply::Bool(false), true), "#f\r\n");
        assert_eq!(
            encoded(Reply::Map(vec![(Reply::bulk(b"a"), Reply::Int(1))]), true),
            "%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            encoded(Reply::Set(vec![Reply::Int(1)]), true),
            "~1\r\n:1\r\n"
        );
        assert_eq!(
            encoded(Reply::Verbatim("txt", b"hi".to_vec()), true),
            "=6\r\ntxt:hi\r\n"
        );
    }
}
