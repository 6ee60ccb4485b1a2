//! The basics: real Redis clients, pipelining, many connections, malformed input,
//! durability.

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::harness::{exchange, resp, temp, Server};

#[test]
fn redis_cli_round_trips() {
    let data = temp("cli");
    let s = Server::start(&data, &[]);
    assert_eq!(s.cli(&["ping"]), "PONG\n");
    assert_eq!(s.cli(&["set", "greeting", "hello world"]), "OK\n");
    assert_eq!(s.cli(&["get", "greeting"]), "hello world\n");
    assert_eq!(s.cli(&["set", "greeting", "x", "nx"]), "\n");
    assert_eq!(s.cli(&["set", "other", "y", "xx"]), "\n");
    assert_eq!(s.cli(&["set", "greeting", "bye", "xx"]), "OK\n");
    assert_eq!(s.cli(&["incr", "n"]), "1\n");
    assert_eq!(s.cli(&["incr", "n"]), "2\n");
    assert!(s.cli(&["incr", "greeting"]).contains("not an integer"));
    assert_eq!(s.cli(&["mset", "a", "1", "b", "2"]), "OK\n");
    assert_eq!(s.cli(&["mget", "a", "b", "nope"]), "1\n2\n\n");
    assert_eq!(s.cli(&["exists", "a", "b", "nope"]), "2\n");
    assert_eq!(s.cli(&["dbsize"]), "4\n");
    assert_eq!(s.cli(&["del", "a", "b", "nope"]), "2\n");
    assert_eq!(s.cli(&["echo", "hi"]), "hi\n");
    let mut keys: Vec<String> = s.cli(&["--scan"]).lines().map(String::from).collect();
    keys.sort();
    assert_eq!(keys, ["greeting", "n"]);
    assert!(s.cli(&["info"]).contains("executor_major_faults:"));
    assert!(s.cli(&["nosuchcommand"]).contains("unknown command"));
    assert!(s.cli(&["get"]).contains("wrong number of arguments"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let data = temp("pipeline");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let mut req = Vec::new();
    let mut expect = Vec::new();
    for i in 0..200 {
        let k = format!("k{i}");
        req.extend(resp(&[b"SET", k.as_bytes(), format!("v{i}").as_bytes()]));
        expect.extend_from_slice(b"+OK\r\n");
        // A read right after a write in the same pipeline sees it.
        req.extend(resp(&[b"GET", k.as_bytes()]));
        let v = format!("v{i}");
        expect.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
    }
    req.extend(resp(&[b"DBSIZE"]));
    expect.extend_from_slice(b":200\r\n");
    let got = exchange(&mut c, &req, expect.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expect)
    );
}

#[test]
fn hundreds_of_connections() {
    let data = temp("conns");
    let s = Server::start(&data, &[]);
    let addr = s.addr.clone();
    let threads: Vec<_> = (0..300)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(&addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let k = format!("conn{i}");
                let got = exchange(&mut c, &resp(&[b"SET", k.as_bytes(), k.as_bytes()]), 5);
                assert_eq!(got, b"+OK\r\n");
                let want = format!("${}\r\n{k}\r\n", k.len());
                let got = exchange(&mut c, &resp(&[b"GET", k.as_bytes()]), want.len());
                assert_eq!(String::from_utf8(got).unwrap(), want);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.cli(&["dbsize"]), "300\n");
}

#[test]
fn malformed_input_gets_an_error_and_others_keep_being_served() {
    let data = temp("malformed");
    let s = Server::start(&data, &["--max-request", "4096"]);
    let bad: &[&[u8]] = &[
        b"*abc\r\n",
        b"*1\r\n+PING\r\n",
        b"*1\r\n$-3\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nkXX\r\n",
        b"*1\r\n$99999999\r\n",
        b"*99999999999\r\n",
    ];
    for req in bad {
        let mut c = s.connect();
        let got = exchange(&mut c, req, usize::MAX);
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("-ERR Protocol error"),
            "{req:?} -> {text:?}"
        );
        // The server closed the connection (read returned EOF above).
    }
    // An oversized value (over --max-request) is refused the same way.
    let mut c = s.connect();
    let big = vec![b'x'; 10_000];
    let got = exchange(&mut c, &resp(&[b"SET", b"big", &big]), usize::MAX);
    assert!(String::from_utf8_lossy(&got).starts_with("-ERR Protocol error"));
    // A request that never ends and keeps growing is cut off too.
    let mut c = s.connect();
    let mut endless = b"*2\r\n$3\r\nSET\r\n".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 8192));
    let got = exchange(&mut c, &endless, usize::MAX);
    assert!(String::from_utf8_lossy(&got).starts_with("-ERR Protocol error"));
    // Keys over the store's limit are an error reply, and the connection goes on.
    let mut c = s.connect();
    let long_key = vec![b'k'; 600];
    let got = exchange(&mut c, &resp(&[b"SET", &long_key, b"v"]), 1);
    assert!(String::from_utf8_lossy(&got).starts_with("-ERR"), "{got:?}");
    let got = exchange(&mut c, &resp(&[b"PING"]), 7);
    assert_eq!(got, b"+PONG\r\n");
    // Everyone else is still served.
    assert_eq!(s.cli(&["set", "still", "alive"]), "OK\n");
    assert_eq!(s.cli(&["get", "still"]), "alive\n");
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let data = temp("durable");
    {
        let s = Server::start(&data, &[]);
        let mut c = s.connect();
        let mut req = Vec::new();
        for i in 0..500 {
            req.extend(resp(&[b"SET", format!("d{i}").as_bytes(), b"durable"]));
        }
        let got = exchange(&mut c, &req, 500 * 5);
        assert_eq!(got.len(), 500 * 5);
        // Every SET was acknowledged: kill without warning.
    }
    let s = Server::start(&data, &[]);
    assert_eq!(s.cli(&["dbsize"]), "500\n");
    assert_eq!(s.cli(&["get", "d499"]), "durable\n");
    let check = Command::new(env!("CARGO_BIN_EXE_faultless"))
        .args(["store", "check"])
        .arg(&data)
        .output()
        .unwrap();
    // The running server holds the write lock; a read-only check must say so clearly.
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("another process"));
}

#[test]
fn redis_benchmark_runs_against_it() {
    let data = temp("benchmark");
    let s = Server::start(&data, &[]);
    let out = Command::new("redis-benchmark")
        .args([
            "-p", &s.port, "-t", "set,get", "-n", "2000", "-c", "20", "-P", "16", "-q",
        ])
        .output()
        .expect("redis-benchmark is needed (apt-get install redis-tools; .ci/run does)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    // redis-benchmark writes 3-byte values under key:__rand_int__.
    assert_eq!(s.cli(&["get", "key:__rand_int__"]).trim_end().len(), 3);
}

#[test]
fn a_store_of_raw_keys_is_refused_with_a_clear_error() {
    // A store written by the store's own loader (raw keys, as servers before issue 12 kept
    // them) holds data but no server record: refused at start, never misread.
    let data = temp("raw-store");
    let lines = data.with_extension("txt");
    std::fs::write(&lines, "alpha\tone\nbeta\ttwo\n").unwrap();
    let loaded = crate::harness::faultless()
        .args(["store", "load"])
        .arg(&data)
        .arg(&lines)
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    let out = crate::harness::faultless()
        .args(["serve", "--port", "0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no server record"), "{stderr}");
}

#[test]
fn appendfsync_everysec_is_reported_and_survives_a_process_crash() {
    let data = temp("everysec");
    {
        let s = Server::start(&data, &["--appendfsync", "everysec"]);
        assert_eq!(
            s.cli(&["config", "get", "appendfsync"]),
            "appendfsync\neverysec\n"
        );
        assert!(s
            .cli(&["info", "persistence"])
            .contains("appendfsync:everysec"));
        let mut c = s.connect();
        let mut req = Vec::new();
        for i in 0..300 {
            req.extend(resp(&[b"SET", format!("e{i}").as_bytes(), b"soon"]));
        }
        assert_eq!(exchange(&mut c, &req, 300 * 5).len(), 300 * 5);
        // Killed at once: everysec loses nothing to a process crash (the log is written
        // before the reply; only the sync is deferred).
    }
    let s = Server::start(&data, &[]);
    assert_eq!(s.cli(&["dbsize"]), "300\n");
    assert_eq!(
        s.cli(&["config", "get", "appendfsync"]),
        "appendfsync\nalways\n"
    );
    let out = crate::harness::faultless()
        .args([
            "serve",
            "--port",
            "0",
            "--appendfsync",
            "sometimes",
            "--data",
        ])
        .arg(temp("bad-appendfsync"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--appendfsync"), "{stderr}");
}

/// Overlapping SET / SET EX / DEL / PERSIST pipelines from 8 connections over 300 shared
/// keys: the committer stages each batch while the log writes the one before, so every
/// transaction builds on counts that are not yet durable. DBSIZE and INFO's expires must
/// match the keys that exist, at once and after a kill -9 and restart.
#[test]
fn counts_stay_exact_while_commits_overlap_log_writes() {
    use std::io::{BufReader, Write};

    use crate::harness::{read_reply, request, Reply};

    fn truth(c: &mut TcpStream) -> (u64, u64) {
        let (mut keys, mut expires) = (0, 0);
        for k in 0..300 {
            match request(c, &[b"TTL", format!("c{k}").as_bytes()]) {
                Reply::Int(-2) => {}
                Reply::Int(-1) => keys += 1,
                Reply::Int(t) if t > 0 => {
                    keys += 1;
                    expires += 1;
                }
                other => panic!("TTL: {other:?}"),
            }
        }
        (keys, expires)
    }

    let data = temp("overlap");
    let s = Server::start(&data, &[]);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let mut c = s.connect();
            std::thread::spawn(move || {
                let mut seed = t * 7919 + 1;
                let mut next = || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                for _ in 0..10 {
                    let mut req = Vec::new();
                    for _ in 0..200 {
                        let key = format!("c{}", next() % 300);
                        let key = key.as_bytes();
                        req.extend(match next() % 4 {
                            0 => resp(&[b"SET", key, b"v"]),
                            1 => resp(&[b"SET", key, b"v", b"EX", b"1000"]),
                            2 => resp(&[b"DEL", key]),
                            _ => resp(&[b"PERSIST", key]),
                        });
                    }
                    c.write_all(&req).unwrap();
                    let mut r = BufReader::new(&mut c);
                    for _ in 0..200 {
                        let reply = read_reply(&mut r);
                        assert!(!matches!(reply, Reply::Error(_)), "{reply:?}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let want = truth(&mut s.connect());
    assert!(want.0 > 0 && want.1 > 0, "{want:?}");
    // INFO times the log's writes (each synced: the default `appendfsync always`).
    let (p50, p99, max) = (
        s.info("log_write_p50_us"),
        s.info("log_write_p99_us"),
        s.info("log_write_max_us"),
    );
    assert!(s.info("log_writes") > 0);
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{p50} {p99} {max}");
    assert_eq!(s.keyspace(), want);
    assert_eq!(s.cli(&["dbsize"]), format!("{}\n", want.0));
    drop(s); // kill -9
    let s = Server::start(&data, &[]);
    assert_eq!(s.keyspace(), want);
    assert_eq!(truth(&mut s.connect()), want);
}
