//! Request parsing: finds complete requests in a connection's buffer without copying them,
//! in time linear in the bytes received. Inline commands (`SET k "a b"`) are unquoted as
//! Redis does, into the parser's own buffer.
//!
//! The [`Parser`] keeps its place inside a request that has not fully arrived: the arguments
//! already complete and the offset to go on from. Feeding it the same request again, with more
//! bytes appended, costs only the new bytes (parsing from scratch on every read is quadratic in
//! a request of many arguments). A header line must end within [`MAX_LINE`] bytes, so a line
//! that never ends is refused instead of being scanned up to the request limit.

/// Most arguments in one request (Redis's limit too).
pub const MAX_ARGS: usize = 1024 * 1024;

/// Longest inline request, and longest header line (`*N` or `$N`) without its CRLF, in bytes:
/// Redis's `PROTO_INLINE_MAX_SIZE`.
pub const MAX_LINE: usize = 64 * 1024;

/// Parses a decimal integer (as RESP headers and numeric arguments are written).
pub fn number(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// What [`Parser::parse`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A complete request of this many bytes; its arguments are [`Parser::args`].
    Complete(usize),
    /// The request is not complete: call again once the buffer holds at least `need` bytes
    /// (from the request's start). When a large bulk string's header has been read, `need` is
    /// where that string ends, so the caller can make room for it at once.
    Incomplete {
        /// Bytes the buffer must hold before parsing can go on.
        need: usize,
    },
}

/// Input that is not RESP; the stream cannot be resynchronised after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

fn error(why: impl Into<String>) -> ProtocolError {
    ProtocolError(why.into())
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Between requests.
    Start,
    /// Inside an inline request; no `\n` before `scanned`.
    Inline { scanned: usize },
    /// Inside the `*N` line; no CRLF starts before `scanned`.
    Count { scanned: usize },
    /// Reading bulk strings: `left` to go, the next at `at`.
    Bulks {
        left: usize,
        at: usize,
        /// No CRLF starts before this, within the current `$N` line.
        scanned: usize,
        /// The current string's (data start, length), once its `$N` line is read.
        bulk: Option<(usize, usize)>,
    },
}

/// An incremental RESP request parser; see the module docs.
#[derive(Debug)]
pub struct Parser {
    ranges: Vec<(u32, u32)>,
    state: State,
    /// The arguments of an inline request, unquoted (their ranges index this, not the
    /// request buffer).
    inline: Vec<u8>,
    /// The last request completed was inline.
    was_inline: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// A parser waiting for the start of a request.
    pub fn new() -> Parser {
        Parser {
            ranges: Vec::new(),
            state: State::Start,
            inline: Vec::new(),
            was_inline: false,
        }
    }

    /// Parses the request at the start of `buf`, going on from where the previous call left
    /// off if that one returned [`Parsed::Incomplete`] (then `buf` must start at the same
    /// request, with more bytes). Bulk strings longer than `max_bulk` are refused. After an
    /// error the parser must not be used again.
    ///
    /// # Panics
    /// If `buf` is 4 GiB or longer (requests are limited far below that).
    pub fn parse(&mut self, buf: &[u8], max_bulk: usize) -> Result<Parsed, ProtocolError> {
        assert!(buf.len() < u32::MAX as usize, "request buffer over 4 GiB");
        loop {
            match self.state {
                State::Start => {
                    self.ranges.clear();
                    self.was_inline = false;
                    match buf.first() {
                        None => return Ok(Parsed::Incomplete { need: 1 }),
                        Some(b'*') => self.state = State::Count { scanned: 1 },
                        Some(_) => self.state = State::Inline { scanned: 0 },
                    }
                }
                State::Inline { scanned } => {
                    let Some(end) = buf[scanned..].iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_LINE {
                            return Err(error("too big inline request"));
                        }
                        self.state = State::Inline { scanned: buf.len() };
                        return Ok(Parsed::Incomplete {
                            need: buf.len() + 1,
                        });
                    };
                    let end = scanned + end;
                    self.state = State::Start;
                    self.split_inline(&buf[..end])?;
                    return Ok(Parsed::Complete(end + 1));
                }
                State::Count { scanned } => {
                    let Some(cr) = find_crlf(buf, scanned) else {
                        if buf.len() > MAX_LINE {
                            return Err(error("too big mbulk count string"));
                        }
                        return Ok(self.more(buf, |s| State::Count { scanned: s }));
                    };
                    let left = match number(&buf[1..cr]) {
                        // As Redis: `*0` and a negative count are an empty command.
                        Some(n) if n <= 0 => 0,
                        Some(n) if n <= MAX_ARGS as i64 => n as usize,
                        _ => return Err(error("invalid multibulk length")),
                    };
                    self.ranges.reserve(left.min(1024));
                    self.state = State::Bulks {
                        left,
                        at: cr + 2,
                        scanned: cr + 3,
                        bulk: None,
                    };
                }
                State::Bulks { left: 0, at, .. } => {
                    self.state = State::Start;
                    return Ok(Parsed::Complete(at));
                }
                State::Bulks {
                    left,
                    at,
                    scanned,
                    bulk: None,
                } => {
                    match buf.get(at) {
                        None => return Ok(Parsed::Incomplete { need: at + 1 }),
                        Some(b'$') => {}
                        Some(&c) => {
                            return Err(error(format!("expected '$', got '{}'", c as char)));
                        }
                    }
                    let Some(cr) = find_crlf(buf, scanned) else {
                        if buf.len() - at > MAX_LINE {
                            return Err(error("too big bulk count string"));
                        }
                        return Ok(self.more(buf, |s| State::Bulks {
                            left,
                            at,
                            scanned: s,
                            bulk: None,
                        }));
                    };
                    let len = match number(&buf[at + 1..cr]) {
                        Some(n) if n >= 0 && (n as u64) <= max_bulk as u64 => n as usize,
                        _ => return Err(error("invalid bulk length")),
                    };
                    self.state = State::Bulks {
                        left,
                        at,
                        scanned,
                        bulk: Some((cr + 2, len)),
                    };
                }
                State::Bulks {
                    left,
                    bulk: Some((start, len)),
                    ..
                } => {
                    let end = start.saturating_add(len);
                    if buf.len() < end.saturating_add(2) {
                        return Ok(Parsed::Incomplete {
                            need: end.saturating_add(2),
                        });
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(error("bulk string not terminated by CRLF"));
                    }
                    self.ranges.push((start as u32, end as u32));
                    self.state = State::Bulks {
                        left: left - 1,
                        at: end + 2,
                        scanned: end + 3,
                        bulk: None,
                    };
                }
            }
        }
    }

    /// The arguments of the request that the last [`parse`](Parser::parse) completed; `buf`
    /// is the buffer that call was given.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        Args {
            buf: if self.was_inline { &self.inline } else { buf },
            ranges: &self.ranges,
        }
    }

    /// Bytes of memory the parser holds (its argument table), for memory accounting.
    pub fn memory(&self) -> usize {
        self.ranges.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    /// Releases memory held for a past large request, if it is not in the middle of one.
    pub fn shrink(&mut self) {
        if matches!(self.state, State::Start) && self.ranges.capacity() > 1024 {
            self.ranges = Vec::new();
        }
        if self.inline.capacity() > 4096 {
            self.inline = Vec::new();
        }
    }

    /// Remembers how far a line was scanned and asks for more bytes.
    fn more(&mut self, buf: &[u8], state: impl FnOnce(usize) -> State) -> Parsed {
        // The last byte may be a CR whose LF has not arrived.
        self.state = state(buf.len().saturating_sub(1).max(1));
        Parsed::Incomplete {
            need: buf.len() + 1,
        }
    }

    /// Splits an inline command line into arguments as Redis does (`sdssplitargs`):
    /// separated by whitespace; `"..."` with escapes (`\n`, `\r`, `\t`, `\b`, `\a`,
    /// `\xHH`, `\\`, `\"`) and `'...'` (with `\'`) are one argument each, and a closing
    /// quote must be followed by whitespace or the end.
    fn split_inline(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        self.was_inline = true;
        self.inline.clear();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let unbalanced = || error("unbalanced quotes in request");
        let mut i = 0;
        loop {
            while i < line.len() && line[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= line.len() {
                return Ok(());
            }
            let start = self.inline.len();
            let (mut in_double, mut in_single) = (false, false);
            loop {
                let Some(&c) = line.get(i) else {
                    if in_double || in_single {
                        return Err(unbalanced());
                    }
                    break;
                };
                if in_double {
                    let hex = |b: u8| (b as char).to_digit(16);
                    if c == b'\\'
                        && i + 3 < line.len()
                        && line[i + 1] == b'x'
                        && hex(line[i + 2]).is_some()
                        && hex(line[i + 3]).is_some()
                    {
                        let v = hex(line[i + 2]).unwrap() * 16 + hex(line[i + 3]).unwrap();
                        self.inline.push(v as u8);
                        i += 3;
                    } else if c == b'\\' && i + 1 < line.len() {
                        i += 1;
                        self.inline.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    } else if c == b'"' {
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return Err(unbalanced());
                        }
                        i += 1;
                        break;
                    } else {
                        self.inline.push(c);
                    }
                } else if in_single {
                    if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                        i += 1;
                        self.inline.push(b'\'');
                    } else if c == b'\'' {
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return Err(unbalanced());
                        }
                        i += 1;
                        break;
                    } else {
                        self.inline.push(c);
                    }
                } else if c.is_ascii_whitespace() {
                    break;
                } else if c == b'"' {
                    in_double = true;
                } else if c == b'\'' {
                    in_single = true;
                } else {
                    self.inline.push(c);
                }
                i += 1;
            }
            self.ranges.push((start as u32, self.inline.len() as u32));
        }
    }
}

/// The index of the first CR of a CRLF at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        let cr = i + buf[i..buf.len() - 1].iter().position(|&b| b == b'\r')?;
        if buf[cr + 1] == b'\n' {
            return Some(cr);
        }
        i = cr + 1;
    }
    None
}

/// The arguments of one request, read in place from the connection's buffer (or, for an
/// inline request, from the parser's unquoted copy).
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    ranges: &'a [(u32, u32)],
}

impl<'a> Args<'a> {
    /// Arguments held in `buf` at `ranges` (as [`OwnedArgs`] keeps them).
    pub fn new(buf: &'a [u8], ranges: &'a [(u32, u32)]) -> Args<'a> {
        Args { buf, ranges }
    }

    /// An owned copy of the arguments.
    pub fn to_owned(&self) -> OwnedArgs {
        let mut buf = Vec::with_capacity(self.iter_from(0).map(<[u8]>::len).sum());
        let mut ranges = Vec::with_capacity(self.len());
        for a in self.iter_from(0) {
            let start = buf.len() as u32;
            buf.extend_from_slice(a);
            ranges.push((start, buf.len() as u32));
        }
        OwnedArgs { buf, ranges }
    }

    /// Number of arguments, the command's name included.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True for an empty request (an empty line, or `*0`).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i` (0 is the command's name).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (a, b) = self.ranges[i];
        &self.buf[a as usize..b as usize]
    }

    /// The arguments from `from` on.
    pub fn iter_from(&self, from: usize) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let (buf, ranges) = (self.buf, self.ranges);
        ranges[from.min(ranges.len())..]
            .iter()
            .map(move |&(a, b)| &buf[a as usize..b as usize])
    }
}

/// A request's arguments copied out of the connection's buffer: what a queued command
/// (`MULTI`) or a write handed to the committer holds.
#[derive(Clone, Debug, Default)]
pub struct OwnedArgs {
    buf: Vec<u8>,
    ranges: Vec<(u32, u32)>,
}

impl OwnedArgs {
    /// The arguments, borrowed.
    pub fn args(&self) -> Args<'_> {
        Args::new(&self.buf, &self.ranges)
    }

    /// Owned arguments from a list of byte strings.
    pub fn from_slices(parts: &[&[u8]]) -> OwnedArgs {
        let ranges: Vec<(u32, u32)> = Vec::new();
        let buf: Vec<u8> = Vec::new();
        let mut owned = OwnedArgs { buf, ranges };
        for p in parts {
            let start = owned.buf.len() as u32;
            owned.buf.extend_from_slice(p);
            owned.ranges.push((start, owned.buf.len() as u32));
        }
        owned
    }
}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter_from(0).map(|a| a.escape_ascii().to_string()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError>;

    /// Parses `buf` from scratch.
    fn parse(buf: &[u8], max: usize) -> Outcome {
        let mut p = Parser::new();
        collect(&mut p, buf, max)
    }

    fn collect(p: &mut Parser, buf: &[u8], max: usize) -> Outcome {
        Ok(match p.parse(buf, max)? {
            Parsed::Complete(n) => {
                Some((p.args(buf).iter_from(0).map(<[u8]>::to_vec).collect(), n))
            }
            Parsed::Incomplete { .. } => None,
        })
    }

    #[test]
    fn parses_resp_inline_and_garbage() {
        let req = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let want = Some((vec![b"GET".to_vec(), b"k".to_vec()], req.len()));
        assert_eq!(parse(req, 100), Ok(want.clone()));
        for cut in 1..req.len() {
            assert_eq!(parse(&req[..cut], 100), Ok(None), "cut at {cut}");
        }
        // Fed a byte at a time, the same parser completes it once.
        let mut p = Parser::new();
        for cut in 1..req.len() {
            assert_eq!(collect(&mut p, &req[..cut], 100), Ok(None), "cut at {cut}");
        }
        assert_eq!(collect(&mut p, req, 100), Ok(want));
        assert_eq!(
            parse(b"PING hello\r\nrest", 100),
            Ok(Some((vec![b"PING".to_vec(), b"hello".to_vec()], 12)))
        );
        assert_eq!(parse(b"\r\n", 100), Ok(Some((vec![], 2))));
        assert_eq!(parse(b"*0\r\n", 100), Ok(Some((vec![], 4))));
        assert_eq!(parse(b"*-10\r\n", 100), Ok(Some((vec![], 6))));
        assert!(parse(b"*x\r\n", 100).is_err());
        assert!(parse(b"*1\r\n+OK\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$-5\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$200\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$1\r\nab\r\n", 100).is_err());
        assert!(parse(b"*99999999999\r\n", 100).is_err());
    }

    #[test]
    fn inline_commands_are_unquoted_as_redis_does() {
        let args = |line: &[u8]| parse(line, 100).map(|r| r.unwrap().0);
        let strs = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            args(b"SET k \"a b\\n\\x41\"  'c \\'d'\r\n"),
            Ok(strs(&["SET", "k", "a b\nA", "c 'd"]))
        );
        assert_eq!(args(b"GET \"\"\n"), Ok(strs(&["GET", ""])));
        assert_eq!(args(b"   \r\n"), Ok(vec![]));
        for bad in [&b"set \"\"\"k\"\"\" v\r\n"[..], b"get \"k\n", b"get 'k'x\n"] {
            assert_eq!(
                args(bad),
                Err(ProtocolError("unbalanced quotes in request".into())),
                "{:?}",
                bad.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn says_how_much_a_large_bulk_needs() {
        let mut p = Parser::new();
        let head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\nxx";
        let at = head.len() - 2;
        assert_eq!(
            p.parse(head, 1 << 20),
            Ok(Parsed::Incomplete {
                need: at + 1_000_000 + 2
            })
        );
    }

    #[test]
    fn header_lines_are_bounded() {
        let mut endless = b"*".to_vec();
        endless.extend(std::iter::repeat_n(b'1', MAX_LINE + 1));
        assert_eq!(
            parse(&endless, 100),
            Err(ProtocolError("too big mbulk count string".into()))
        );
        let mut endless = b"*1\r\n$".to_vec();
        endless.extend(std::iter::repeat_n(b'1', MAX_LINE + 1));
        assert_eq!(
            parse(&endless, 100),
            Err(ProtocolError("too big bulk count string".into()))
        );
    }

    #[test]
    fn many_arguments_arriving_slowly_cost_linear_work() {
        // 100,000 arguments fed 64 bytes at a time: from-scratch parsing would look at ~5e9
        // bytes; this parser looks at each byte about once.
        let n = 100_000;
        let mut req = format!("*{n}\r\n").into_bytes();
        for _ in 0..n {
            req.extend_from_slice(b"$1\r\na\r\n");
        }
        let mut p = Parser::new();
        let mut cut = 64;
        let done = loop {
            match p.parse(&req[..cut.min(req.len())], 10).unwrap() {
                Parsed::Complete(len) => break len,
                Parsed::Incomplete { need } => {
                    assert!(need <= req.len());
                    cut += 64;
                }
            }
        };
        assert_eq!(done, req.len());
        assert_eq!(p.args(&req).len(), n);
    }
}
