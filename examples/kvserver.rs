//! A Redis-compatible (RESP2) key-value server on faultless, in one file.
//!
//! ```text
//! cargo run --release --example kvserver -- --port 6380 --data kv.db
//! redis-cli -p 6380 set hello world
//! ```
//!
//! (`faultless serve` is this same file, compiled into the `faultless` command.)
//!
//! How it works, top to bottom:
//!
//! * **One task per connection** on a single-threaded io_uring runtime. A task reads into a
//!   buffer, parses every complete request in it ([`parse`]), executes them in order, and
//!   sends all the replies with one write: pipelined requests cost one read and one write.
//! * **Data lives in the store**, a memory-mapped B+tree. A `GET` of a cold key reads its
//!   pages through the runtime's non-blocking page access: the task yields while the page is
//!   read, and every other connection keeps being served. Nothing blocks the thread.
//! * **Writes are acknowledged only when durable.** A plain `SET` or single-key `DEL` goes
//!   through `Store::put`/`delete`, which group commit: writes from every connection that
//!   arrive while a commit is being written share the next one (one fsync for all). Within
//!   one connection's pipeline, consecutive plain writes wait for durability together, and a
//!   read that follows them waits for them first, so a client always reads its own writes.
//!   Commands that read and write (`SET NX/XX`, `INCR`, `MSET`, multi-key `DEL`) run in a
//!   write transaction of their own, atomically.
//! * **Bad input never hurts anyone else.** A request over `--max-request` bytes or a
//!   malformed one gets a RESP error and, since the stream cannot be resynchronised, the
//!   connection is closed; unknown commands just get an error. Each connection buffers at most
//!   one request plus one batch of replies.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use faultless::runtime::mem::Backend;
use faultless::runtime::net::{TcpListener, TcpStream};
use faultless::store::{Error as StoreError, Store, StoreOptions};
use futures::stream::{FuturesOrdered, StreamExt};

/// Command-line options of the server.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeOptions {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// TCP port (0 picks a free one; the chosen address is printed).
    #[arg(long, default_value_t = 6380)]
    pub port: u16,
    /// The store file (created if missing).
    #[arg(long, default_value = "faultless-kv.db")]
    pub data: PathBuf,
    /// The prefetch path for page reads: blocking, helper, uring-madvise, uring-read, auto.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Largest request accepted, in bytes; larger ones get an error and the connection is
    /// closed.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_request: usize,
}

// ---------------------------------------------------------------------------------------
// The protocol: parsing requests, encoding replies.

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

fn number(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Parses one request (a RESP array of bulk strings, or an inline command line) without
/// copying: fills `args` with each argument's byte range in `buf` and returns the bytes
/// used, `None` if more bytes are needed, or why the input is not RESP (after which the
/// connection cannot be resynchronised).
pub fn parse_ranges(
    buf: &[u8],
    max_request: usize,
    args: &mut Vec<(usize, usize)>,
) -> Result<Option<usize>, String> {
    args.clear();
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        // Inline command: one line of space-separated words (what telnet users type).
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            return if buf.len() > 64 * 1024 {
                Err("too big inline request".into())
            } else {
                Ok(None)
            };
        };
        let mut i = 0;
        while i < end {
            while i < end && buf[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while i < end && !buf[i].is_ascii_whitespace() {
                i += 1;
            }
            if i > start {
                args.push((start, i));
            }
        }
        return Ok(Some(end + 1));
    }
    let Some((head, mut at)) = line(&buf[1..]) else {
        return Ok(None);
    };
    at += 1;
    let count = match number(head) {
        Some(n) if (0..=1024 * 1024).contains(&n) => n as usize,
        _ => return Err("invalid multibulk length".into()),
    };
    for _ in 0..count {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&c) => return Err(format!("expected '$', got '{}'", c as char)),
        }
        let Some((len, used)) = line(&buf[at + 1..]) else {
            return Ok(None);
        };
        let len = match number(len) {
            Some(n) if n >= 0 && (n as usize) <= max_request => n as usize,
            _ => return Err("invalid bulk length".into()),
        };
        at += 1 + used;
        if buf.len() < at + len + 2 {
            return Ok(None);
        }
        if &buf[at + len..at + len + 2] != b"\r\n" {
            return Err("bulk string not terminated by CRLF".into());
        }
        args.push((at, at + len));
        at += len + 2;
    }
    Ok(Some(at))
}

/// A reply, encoded as RESP2.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Status(&'static str),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    fn encode(&self, out: &mut Vec<u8>) {
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
            Reply::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(items) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for i in items {
                    i.encode(out);
                }
            }
        }
    }
}

fn err(e: impl std::fmt::Display) -> Reply {
    Reply::Error(format!("ERR {e}"))
}

fn store_err(e: StoreError) -> Reply {
    err(e)
}

fn wrong_args(name: &[u8]) -> Reply {
    Reply::Error(format!(
        "ERR wrong number of arguments for '{}' command",
        String::from_utf8_lossy(name).to_lowercase()
    ))
}

// ---------------------------------------------------------------------------------------
// SCAN cursors: the last key returned, as a decimal number, so clients that parse cursors
// as integers work. "0" starts (and ends) a scan.

fn key_to_cursor(key: &[u8]) -> String {
    // Base-256 digits (a 1 in front keeps leading zero bytes) to base 10.
    let mut digits: Vec<u8> = std::iter::once(1).chain(key.iter().copied()).collect();
    let mut out = Vec::new();
    while !digits.is_empty() {
        let mut rem = 0u32;
        let mut next = Vec::with_capacity(digits.len());
        for &d in &digits {
            let cur = rem * 256 + d as u32;
            let q = cur / 10;
            rem = cur % 10;
            if !(next.is_empty() && q == 0) {
                next.push(q as u8);
            }
        }
        out.push(b'0' + rem as u8);
        digits = next;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

fn cursor_to_key(cursor: &[u8]) -> Option<Vec<u8>> {
    let mut bytes: Vec<u8> = Vec::new(); // base 256, most significant first
    for &c in cursor {
        if !c.is_ascii_digit() {
            return None;
        }
        let mut carry = (c - b'0') as u32;
        for b in bytes.iter_mut().rev() {
            let cur = *b as u32 * 10 + carry;
            *b = (cur % 256) as u8;
            carry = cur / 256;
        }
        while carry > 0 {
            bytes.insert(0, (carry % 256) as u8);
            carry /= 256;
        }
    }
    match bytes.split_first() {
        Some((1, key)) => Some(key.to_vec()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Commands.

/// What every connection shares.
struct Server {
    store: Store,
    port: u16,
    shutdown: Cell<bool>,
    wake_acceptor: Cell<Option<futures::channel::oneshot::Sender<()>>>,
    connections: Cell<u64>,
}

/// A reply still being computed (a write waiting for its commit).
type LocalReply = std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>>;

/// True for writes that go through group commit without reading first.
fn is_grouped_write(args: &[Vec<u8>]) -> bool {
    let name = args[0].to_ascii_uppercase();
    (name == b"SET" && args.len() == 3) || (name == b"DEL" && args.len() == 2)
}

async fn grouped_write(server: Rc<Server>, args: Vec<Vec<u8>>) -> Reply {
    if args[0].eq_ignore_ascii_case(b"SET") {
        match server.store.put(&args[1], &args[2]).await {
            Ok(()) => Reply::Status("OK"),
            Err(e) => store_err(e),
        }
    } else {
        match server.store.delete(&args[1]).await {
            Ok(existed) => Reply::Int(existed as i64),
            Err(e) => store_err(e),
        }
    }
}

async fn execute(server: &Server, args: &[Vec<u8>]) -> (Reply, bool) {
    let store = &server.store;
    let name = args[0].to_ascii_uppercase();
    let n = args.len();
    let reply = match name.as_slice() {
        b"PING" => match n {
            1 => Reply::Status("PONG"),
            2 => Reply::Bulk(Some(args[1].clone())),
            _ => wrong_args(&name),
        },
        b"ECHO" if n == 2 => Reply::Bulk(Some(args[1].clone())),
        b"GET" if n == 2 => match store.get(&args[1]).await {
            Ok(v) => Reply::Bulk(v.map(|v| v.to_vec())),
            Err(e) => store_err(e),
        },
        b"MGET" if n >= 2 => {
            let txn = store.read_txn();
            let mut items = Vec::with_capacity(n - 1);
            for k in &args[1..] {
                items.push(match txn.get(k).await {
                    Ok(v) => Reply::Bulk(v.map(|v| v.to_vec())),
                    Err(e) => store_err(e),
                });
            }
            Reply::Array(items)
        }
        b"EXISTS" if n >= 2 => {
            let txn = store.read_txn();
            let mut count = 0;
            for k in &args[1..] {
                match txn.get(k).await {
                    Ok(Some(_)) => count += 1,
                    Ok(None) => {}
                    Err(e) => return (store_err(e), false),
                }
            }
            Reply::Int(count)
        }
        b"DBSIZE" if n == 1 => Reply::Int(store.len() as i64),
        b"SET" if n >= 3 => set_with_options(store, args).await,
        b"DEL" if n >= 2 => delete_many(store, &args[1..]).await,
        b"MSET" if n >= 3 && n % 2 == 1 => {
            transaction(store, |mut txn| async move {
                for kv in args[1..].chunks(2) {
                    txn.put(&kv[0], &kv[1]).await?;
                }
                txn.commit().await?;
                Ok(Reply::Status("OK"))
            })
            .await
        }
        b"INCR" if n == 2 => incr(store, &args[1]).await,
        b"SCAN" if n >= 2 => scan(store, args).await,
        b"INFO" => Reply::Bulk(Some(info(server).into_bytes())),
        b"COMMAND" => match args.get(1).map(|a| a.to_ascii_uppercase()) {
            Some(sub) if sub == b"COUNT" => Reply::Int(COMMANDS.len() as i64),
            _ => Reply::Array(Vec::new()),
        },
        b"CONFIG" if n >= 2 => Reply::Array(Vec::new()),
        b"CLIENT" if n >= 2 => Reply::Status("OK"),
        b"SELECT" if n == 2 => match args[1].as_slice() {
            b"0" => Reply::Status("OK"),
            _ => err("DB index is out of range"),
        },
        b"QUIT" => return (Reply::Status("OK"), true),
        b"SHUTDOWN" => {
            // Every acknowledged write is already durable: stop accepting and exit.
            server.shutdown.set(true);
            if let Some(tx) = server.wake_acceptor.take() {
                let _ = tx.send(());
            }
            return (Reply::Status("OK"), true);
        }
        _ if COMMANDS.contains(&name.as_slice()) => wrong_args(&name),
        _ => Reply::Error(format!(
            "ERR unknown command '{}', with args beginning with: {}",
            String::from_utf8_lossy(&args[0]),
            args[1..]
                .iter()
                .take(3)
                .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
                .collect::<String>()
        )),
    };
    (reply, false)
}

const COMMANDS: &[&[u8]] = &[
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

/// Runs `f` with a write transaction and turns store errors into error replies.
async fn transaction<'a, F, Fut>(store: &'a Store, f: F) -> Reply
where
    F: FnOnce(faultless::store::WriteTxn) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, StoreError>> + 'a,
{
    match store.write_txn().await {
        Ok(txn) => f(txn).await.unwrap_or_else(store_err),
        Err(e) => store_err(e),
    }
}

async fn set_with_options(store: &Store, args: &[Vec<u8>]) -> Reply {
    let (mut nx, mut xx) = (false, false);
    for opt in &args[3..] {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            _ => return err("syntax error"),
        }
    }
    if nx && xx {
        return err("syntax error");
    }
    if !nx && !xx {
        return match store.put(&args[1], &args[2]).await {
            Ok(()) => Reply::Status("OK"),
            Err(e) => store_err(e),
        };
    }
    transaction(store, |mut txn| async move {
        let exists = txn.get(&args[1]).await?.is_some();
        if (nx && exists) || (xx && !exists) {
            return Ok(Reply::Bulk(None));
        }
        txn.put(&args[1], &args[2]).await?;
        txn.commit().await?;
        Ok(Reply::Status("OK"))
    })
    .await
}

async fn delete_many(store: &Store, keys: &[Vec<u8>]) -> Reply {
    transaction(store, |mut txn| async move {
        let mut n = 0;
        for k in keys {
            n += txn.delete(k).await? as i64;
        }
        txn.commit().await?;
        Ok(Reply::Int(n))
    })
    .await
}

async fn incr(store: &Store, key: &[u8]) -> Reply {
    transaction(store, |mut txn| async move {
        let current = match txn.get(key).await? {
            None => 0,
            Some(v) => match std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(n) => n,
                None => return Ok(err("value is not an integer or out of range")),
            },
        };
        let Some(next) = current.checked_add(1) else {
            return Ok(err("increment or decrement would overflow"));
        };
        txn.put(key, next.to_string().as_bytes()).await?;
        txn.commit().await?;
        Ok(Reply::Int(next))
    })
    .await
}

async fn scan(store: &Store, args: &[Vec<u8>]) -> Reply {
    let start = match args[1].as_slice() {
        b"0" => None,
        c => match cursor_to_key(c) {
            Some(k) => Some(k),
            None => return err("invalid cursor"),
        },
    };
    let mut count = 10usize;
    let mut pattern: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < args.len() {
        match (args[i].to_ascii_uppercase().as_slice(), args.get(i + 1)) {
            (b"COUNT", Some(c)) => match number(c) {
                Some(c) if c > 0 => count = c as usize,
                _ => return err("value is not an integer or out of range"),
            },
            (b"MATCH", Some(p)) => pattern = Some(p.clone()),
            _ => return err("syntax error"),
        }
        i += 2;
    }
    use std::ops::Bound;
    let lower = match start {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut entries = store.range((lower, Bound::Unbounded));
    let mut keys = Vec::new();
    let mut last = None;
    let mut seen = 0;
    while seen < count {
        match entries.next().await {
            Some(Ok((k, _))) => {
                seen += 1;
                if pattern.as_deref().is_none_or(|p| glob(p, &k)) {
                    keys.push(Reply::Bulk(Some(k.clone())));
                }
                last = Some(k);
            }
            Some(Err(e)) => return store_err(e),
            None => {
                last = None;
                break;
            }
        }
    }
    let cursor = match last {
        Some(k) if seen == count => key_to_cursor(&k),
        _ => "0".to_string(),
    };
    Reply::Array(vec![
        Reply::Bulk(Some(cursor.into_bytes())),
        Reply::Array(keys),
    ])
}

/// Redis-style glob matching: `*`, `?`, `[abc]`, and `\` escapes.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(b'['), Some(&c)) => match p.iter().position(|&b| b == b']') {
            Some(end) => p[1..end].contains(&c) && glob(&p[end + 1..], &s[1..]),
            None => false,
        },
        (Some(b'\\'), Some(&c)) if p.len() > 1 => p[1] == c && glob(&p[2..], &s[1..]),
        (Some(&a), Some(&b)) => a == b && glob(&p[1..], &s[1..]),
        _ => false,
    }
}

fn info(server: &Server) -> String {
    let s = server.store.stats();
    let rt = faultless::runtime::stats().unwrap_or_default();
    let p = &s.pages;
    format!(
        "# Server\r\nfaultless_version:{}\r\ntcp_port:{}\r\nconnected_clients:{}\r\n\
         # Keyspace\r\ndb0:keys={}\r\n\
         # Store\r\ntxid:{}\r\npages:{}\r\nfile_size:{}\r\ncommits:{}\r\ngrouped_writes:{}\r\nsyncs:{}\r\nreaders:{}\r\noldest_reader_lag:{}\r\n\
         # Pages\r\nbackend:{}\r\nprefetches:{}\r\npages_brought_in:{}\r\ndedup_waits:{}\r\nslow_reads:{}\r\nwait_p50_us:{}\r\nwait_p99_us:{}\r\nexecutor_major_faults:{}\r\nexecutor_minor_faults:{}\r\n\
         # Runtime\r\nturns:{}\r\npolls:{}\r\ntasks_alive:{}\r\nops_submitted:{}\r\nparks:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        server.port,
        server.connections.get(),
        s.entries,
        s.txid,
        s.page_count,
        s.file_size,
        s.commits,
        s.grouped_ops,
        s.syncs,
        s.readers,
        s.oldest_reader_lag,
        p.backend.map_or("?", |b| b.name()),
        p.prefetches,
        p.pages_brought_in,
        p.dedup_waits,
        p.slow_reads,
        p.wait.p50_us,
        p.wait.p99_us,
        p.executor_faults.major,
        p.executor_faults.minor,
        rt.turns,
        rt.polls,
        rt.tasks_alive,
        rt.ops_submitted,
        rt.parks,
    )
}

// ---------------------------------------------------------------------------------------
// Connections.

/// Sends everything in `out` (keeping its allocation); false if the connection is gone.
async fn flush(stream: &TcpStream, out: &mut Vec<u8>) -> bool {
    let (res, buf) = stream.send_all(std::mem::take(out)).await;
    *out = buf;
    out.clear();
    res.is_ok()
}

/// Serves one connection until it closes, errs, or sends QUIT.
async fn connection(server: Rc<Server>, stream: TcpStream, max_request: usize) {
    let mut input: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut recv_buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    loop {
        // Execute every complete request in the buffer, in order. Consecutive grouped writes
        // wait for durability together; GETs share one snapshot until the next write (and
        // never past this batch, so an idle connection pins no old version).
        let mut pending: FuturesOrdered<LocalReply> = FuturesOrdered::new();
        let mut snapshot: Option<faultless::store::ReadTxn> = None;
        let mut close = false;
        let mut fatal = None;
        let mut used = 0;
        loop {
            let base = used;
            match parse_ranges(&input[base..], max_request, &mut ranges) {
                Ok(Some(n)) => used += n,
                Ok(None) => break,
                Err(why) => {
                    fatal = Some(format!("ERR Protocol error: {why}"));
                    break;
                }
            }
            if ranges.is_empty() {
                continue;
            }
            let arg = |i: usize| &input[base + ranges[i].0..base + ranges[i].1];
            if ranges.len() == 2 && arg(0).eq_ignore_ascii_case(b"GET") {
                while let Some(r) = pending.next().await {
                    r.encode(&mut out);
                }
                let txn = snapshot.get_or_insert_with(|| server.store.read_txn());
                match txn.get(arg(1)).await {
                    Ok(Some(v)) => {
                        // Straight from the mapped page into the reply buffer.
                        out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
                        out.extend_from_slice(&v);
                        out.extend_from_slice(b"\r\n");
                    }
                    Ok(None) => out.extend_from_slice(b"$-1\r\n"),
                    Err(e) => store_err(e).encode(&mut out),
                }
                // Large replies: send what is ready so memory stays bounded.
                if out.len() >= 1 << 20 && !flush(&stream, &mut out).await {
                    return;
                }
                continue;
            }
            let args: Vec<Vec<u8>> = (0..ranges.len()).map(|i| arg(i).to_vec()).collect();
            snapshot = None;
            if is_grouped_write(&args) {
                pending.push_back(Box::pin(grouped_write(server.clone(), args)));
                continue;
            }
            while let Some(r) = pending.next().await {
                r.encode(&mut out);
            }
            let (reply, quit) = execute(&server, &args).await;
            reply.encode(&mut out);
            if quit {
                close = true;
                break;
            }
            if out.len() >= 1 << 20 && !flush(&stream, &mut out).await {
                return;
            }
        }
        drop(snapshot);
        input.drain(..used);
        if fatal.is_none() && input.len() > max_request {
            fatal = Some(format!(
                "ERR Protocol error: request larger than {max_request} bytes"
            ));
        }
        while let Some(r) = pending.next().await {
            r.encode(&mut out);
        }
        if let Some(e) = &fatal {
            Reply::Error(e.clone()).encode(&mut out);
            close = true;
        }
        if !out.is_empty() && !flush(&stream, &mut out).await {
            return;
        }
        if close {
            let _ = stream.shutdown(std::net::Shutdown::Write).await;
            return;
        }
        // Read more.
        let (res, buf) = stream.recv(std::mem::take(&mut recv_buf)).await;
        recv_buf = buf;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => input.extend_from_slice(&recv_buf),
        }
    }
}

/// Opens the store and serves until SHUTDOWN. Prints the listening address on stdout.
pub fn serve(opts: ServeOptions) -> io::Result<()> {
    let backend: Backend = opts.backend.parse()?;
    let rt = faultless::Runtime::new()?;
    rt.block_on(async {
        let store = Store::open(&opts.data, StoreOptions::new().backend(backend)).await?;
        let listener = TcpListener::bind((opts.bind.as_str(), opts.port))?;
        let addr = listener.local_addr()?;
        println!(
            "faultless serve: listening on {addr} (data {}, {} keys)",
            opts.data.display(),
            store.len()
        );
        let (tx, mut stop) = futures::channel::oneshot::channel();
        let server = Rc::new(Server {
            store,
            port: addr.port(),
            shutdown: Cell::new(false),
            wake_acceptor: Cell::new(Some(tx)),
            connections: Cell::new(0),
        });
        while !server.shutdown.get() {
            let accepted = {
                let accept = std::pin::pin!(listener.accept());
                match futures::future::select(accept, &mut stop).await {
                    futures::future::Either::Left((r, _)) => r,
                    futures::future::Either::Right(_) => break,
                }
            };
            let (stream, _) = match accepted {
                Ok(c) => c,
                // Out of fds or a connection reset before accept: keep serving others.
                Err(e) => {
                    eprintln!("accept: {e}");
                    faultless::runtime::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let server = server.clone();
            server.connections.set(server.connections.get() + 1);
            let max = opts.max_request;
            faultless::spawn(async move {
                connection(server.clone(), stream, max).await;
                server.connections.set(server.connections.get() - 1);
            })
            .detach();
        }
        println!("faultless serve: shutting down");
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> io::Result<()> {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        opts: ServeOptions,
    }
    let cli = <Cli as clap::Parser>::parse();
    serve(cli.opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = Result<Option<(Vec<Vec<u8>>, usize)>, String>;

    fn parse(buf: &[u8], max: usize) -> Parsed {
        let mut r = Vec::new();
        Ok(parse_ranges(buf, max, &mut r)?
            .map(|n| (r.iter().map(|&(a, b)| buf[a..b].to_vec()).collect(), n)))
    }

    #[test]
    fn parses_resp_inline_and_garbage() {
        let req = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(
            parse(req, 100),
            Ok(Some((vec![b"GET".to_vec(), b"k".to_vec()], req.len())))
        );
        for cut in 1..req.len() {
            assert_eq!(parse(&req[..cut], 100), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse(b"PING hello\r\nrest", 100),
            Ok(Some((vec![b"PING".to_vec(), b"hello".to_vec()], 12)))
        );
        assert!(parse(b"*x\r\n", 100).is_err());
        assert!(parse(b"*1\r\n+OK\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$-5\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$200\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$1\r\nab\r\n", 100).is_err());
    }

    #[test]
    fn scan_cursors_round_trip() {
        for k in [&b"a"[..], b"\x00\x00", b"key000123", &[0xff; 40]] {
            let c = key_to_cursor(k);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            assert_ne!(c, "0");
            assert_eq!(cursor_to_key(c.as_bytes()).as_deref(), Some(k));
        }
        assert_eq!(cursor_to_key(b"12a"), None);
    }

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob(b"user:*", b"user:42"));
        assert!(glob(b"h?llo", b"hello"));
        assert!(glob(b"h[ae]llo", b"hallo"));
        assert!(!glob(b"h[ae]llo", b"hillo"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a*b", b"acd"));
    }
}
