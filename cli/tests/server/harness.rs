//! Starting `faultless serve` in a child process and talking to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `faultless serve` child process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub port: String,
}

impl Server {
    /// Starts a server on a free port with `extra` options.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_with(data, extra, faultless())
    }

    /// Starts a server from `cmd` (a `faultless` command the caller may have configured), on
    /// a free port unless `extra` names one.
    pub fn start_with(data: &Path, extra: &[&str], mut cmd: Command) -> Server {
        cmd.arg("serve");
        if !extra.contains(&"--port") {
            cmd.args(["--port", "0"]);
        }
        let mut child = cmd
            .arg("--data")
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split_whitespace()
            .nth(4)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let port = addr.rsplit(':').next().unwrap().to_string();
        Server { child, addr, port }
    }

    /// A new connection, with a read timeout so that a hang fails the test.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Runs redis-cli against the server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port])
            .args(args)
            .output()
            .expect("redis-cli is needed (apt-get install redis-tools; .ci/run does)");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// A numeric field of INFO.
    pub fn info(&self, field: &str) -> u64 {
        let mut c = self.connect();
        c.write_all(&resp(&[b"INFO"])).unwrap();
        let Reply::Bulk(Some(text)) = read_reply(&mut BufReader::new(&mut c)) else {
            panic!("INFO did not answer a bulk string");
        };
        let text = String::from_utf8(text).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in INFO: {text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// INFO keyspace's `db0:keys=K,expires=E` as `(K, E)` (zeros when there is no line).
    pub fn keyspace(&self) -> (u64, u64) {
        let mut c = self.connect();
        c.write_all(&resp(&[b"INFO", b"keyspace"])).unwrap();
        let text = match read_reply(&mut BufReader::new(&mut c)) {
            Reply::Bulk(Some(t)) => String::from_utf8(t).unwrap(),
            other => panic!("INFO keyspace: {other:?}"),
        };
        let Some(line) = text.lines().find_map(|l| l.strip_prefix("db0:")) else {
            return (0, 0);
        };
        let field = |name: &str| -> u64 {
            line.split(',')
                .find_map(|kv| kv.strip_prefix(name))
                .and_then(|v| v.strip_prefix('='))
                .unwrap()
                .parse()
                .unwrap()
        };
        (field("keys"), field("expires"))
    }

    /// The server process's resident memory, from /proc.
    pub fn rss(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmRSS") * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `faultless` command under test: this build's, or the one named by
/// `FAULTLESS_SERVER_UNDER_TEST` (to check that a test fails against an older build).
pub fn faultless() -> Command {
    match std::env::var_os("FAULTLESS_SERVER_UNDER_TEST") {
        Some(path) => Command::new(path),
        None => Command::new(env!("CARGO_BIN_EXE_faultless")),
    }
}

/// A field of /proc/PID/status, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A fresh path for a store file in the test's temporary directory.
pub fn temp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("serve-{}-{name}.db", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Sends `req` and reads until `expect` bytes arrived (or EOF); returns what came back.
pub fn exchange(s: &mut TcpStream, req: &[u8], expect: usize) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.len() < expect {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&got)),
        }
    }
    got
}

/// A request as a RESP array of bulk strings.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A reply, as the tests read them.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
    /// RESP3 types.
    Null,
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(String),
    Bool(bool),
    Verbatim(String, Vec<u8>),
}

/// Reads one RESP2 reply; panics on EOF, a timeout or malformed input.
pub fn read_reply(r: &mut impl BufRead) -> Reply {
    try_read_reply(r).expect("the connection closed before the reply")
}

/// Reads one RESP2 reply, or `None` if the connection closed before it began; panics on a
/// timeout or malformed input (a reply cut short counts as malformed).
pub fn try_read_reply(r: &mut impl BufRead) -> Option<Reply> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).unwrap();
    if line.is_empty() {
        return None;
    }
    assert!(line.ends_with(b"\r\n"), "truncated reply line {line:?}");
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    Some(match line[0] {
        b'+' => Reply::Status(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Int(text.parse().unwrap()),
        b'$' if text == "-1" => Reply::Bulk(None),
        b'$' => {
            let mut body = vec![0; text.parse::<usize>().unwrap() + 2];
            r.read_exact(&mut body).unwrap();
            assert_eq!(&body[body.len() - 2..], b"\r\n");
            body.truncate(body.len() - 2);
            Reply::Bulk(Some(body))
        }
        b'*' if text == "-1" => Reply::Null,
        b'*' => Reply::Array(
            (0..text.parse::<usize>().unwrap())
                .map(|_| read_reply(r))
                .collect(),
        ),
        b'~' => Reply::Set(
            (0..text.parse::<usize>().unwrap())
                .map(|_| read_reply(r))
                .collect(),
        ),
        b'%' => Reply::Map(
            (0..text.parse::<usize>().unwrap())
                .map(|_| (read_reply(r), read_reply(r)))
                .collect(),
        ),
        b'_' => Reply::Null,
        b',' => Reply::Double(text),
        b'#' => Reply::Bool(text == "t"),
        b'=' => {
            let mut body = vec![0; text.parse::<usize>().unwrap() + 2];
            r.read_exact(&mut body).unwrap();
            body.truncate(body.len() - 2);
            let rest = body.split_off(4);
            Reply::Verbatim(String::from_utf8_lossy(&body[..3]).into_owned(), rest)
        }
        c => panic!("not a reply: {:?}", (c as char, text)),
    })
}

/// A bulk string reply.
pub fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Some(b.to_vec()))
}

/// A status reply.
pub fn status(s: &str) -> Reply {
    Reply::Status(s.to_string())
}

/// Sends one request on `c` and reads its reply.
pub fn request(c: &mut TcpStream, args: &[&[u8]]) -> Reply {
    c.write_all(&resp(args)).unwrap();
    read_reply(&mut BufReader::new(c))
}
