//! SCAN with 64-bit cursors: redis-cli --scan returns every key, and a scan returns every key
//! present for its whole duration while other clients add and delete keys meanwhile.

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{read_reply, request, resp, temp, Reply, Server};

fn load(s: &Server, prefix: &str, n: usize) {
    let mut c = s.connect();
    let mut req = Vec::new();
    for i in 0..n {
        req.extend(resp(&[b"SET", format!("{prefix}{i}").as_bytes(), b"v"]));
    }
    c.write_all(&req).unwrap();
    let mut r = BufReader::new(&mut c);
    for _ in 0..n {
        read_reply(&mut r);
    }
}

#[test]
fn redis_cli_scan_returns_every_key() {
    let data = temp("scan-cli");
    let s = Server::start(&data, &[]);
    let n = 10_000;
    load(&s, "key:", n);
    let out = s.cli(&["--scan"]);
    let keys: HashSet<&str> = out.lines().collect();
    assert_eq!(keys.len(), n);
    assert_eq!(
        out.lines().count(),
        n,
        "each key once while nothing changes"
    );
    let out = s.cli(&["--scan", "--pattern", "key:1*"]);
    assert_eq!(out.lines().count(), 1 + 10 + 100 + 1000);
    let Reply::Array(parts) = request(
        &mut s.connect(),
        &[b"SCAN", b"0", b"TYPE", b"hash", b"COUNT", b"100000"],
    ) else {
        panic!()
    };
    assert_eq!(parts[1], Reply::Array(vec![]));
}

#[test]
fn a_scan_returns_every_key_present_throughout_under_concurrent_writes() {
    let data = temp("scan-writes");
    let s = Server::start(&data, &[]);
    let n = 3000;
    load(&s, "stable:", n);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (addr, stop) = (s.addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Keys come and go all over the hash space while the scan runs, 20 pairs
                // of writes per round trip.
                let mut req = Vec::new();
                for _ in 0..20 {
                    let k = format!("churn:{i}");
                    req.extend(resp(&[b"SET", k.as_bytes(), b"v"]));
                    req.extend(resp(&[
                        b"DEL",
                        format!("churn:{}", i.saturating_sub(50)).as_bytes(),
                    ]));
                    i += 1;
                }
                c.write_all(&req).unwrap();
                let mut r = BufReader::new(&mut c);
                for _ in 0..40 {
                    read_reply(&mut r);
                }
            }
            i
        })
    };
    let mut c = s.connect();
    let mut cursor = b"0".to_vec();
    let mut seen = HashSet::new();
    let mut calls = 0;
    loop {
        let Reply::Array(parts) = request(&mut c, &[b"SCAN", &cursor, b"COUNT", b"20"]) else {
            panic!()
        };
        let (Reply::Bulk(Some(next)), Reply::Array(keys)) = (&parts[0], &parts[1]) else {
            panic!()
        };
        for k in keys {
            let Reply::Bulk(Some(k)) = k else { panic!() };
            seen.insert(k.clone());
        }
        calls += 1;
        // Cursors are 64-bit numbers.
        let text = std::str::from_utf8(next).unwrap();
        assert!(text.parse::<u64>().is_ok(), "cursor {text}");
        cursor = next.clone();
        if cursor == b"0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    let stable = seen.iter().filter(|k| k.starts_with(b"stable:")).count();
    assert_eq!(
        stable, n,
        "keys present throughout were missed ({calls} calls, {writes} writes meanwhile)"
    );
    assert!(writes >= 200, "the writer barely ran ({writes})");
}
