//! Memory: bounded for all connections together, however many clients send large values
//! slowly, and a large value is not copied more than it must be.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{proc_status_kib, read_reply, request, temp, Reply, Server};

const MIB: u64 = 1 << 20;

#[test]
fn slow_large_requests_are_bounded_server_wide() {
    // Scaled down from 200 clients x 60 MiB (12 GiB of RSS before the limit): 24 clients
    // each announce a 4 MB value and send all of it but the last byte, against a 32 MiB
    // budget, which covers 8 of them.
    let data = temp("memory-slow");
    let budget = 32 * MIB;
    let s = Server::start(
        &data,
        &[
            "--max-request",
            "8000000",
            "--max-request-memory",
            &budget.to_string(),
        ],
    );
    let rss_before = s.rss();
    let value_len = 4_000_000;
    let senders: Vec<_> = (0..24)
        .map(|i| {
            let mut c = s.connect();
            std::thread::spawn(move || {
                let key = format!("big{i:02}");
                let head = format!("*3\r\n$3\r\nSET\r\n$5\r\n{key}\r\n${value_len}\r\n");
                let body = vec![b'v'; value_len - 1];
                // A refused client is disconnected, so its writes may fail.
                let _ = c
                    .write_all(head.as_bytes())
                    .and_then(|()| c.write_all(&body));
                c
            })
        })
        .collect();
    // The server refuses exactly the 16 requests that do not fit, as soon as their headers
    // arrive.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.info("requests_refused_for_memory") < 16 {
        assert!(
            Instant::now() < deadline,
            "the server never refused 16 requests"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The accepted ones are those the server keeps open with nothing to say yet.
    let conns: Vec<_> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let accepted = loop {
        let open: Vec<usize> = (0..conns.len())
            .filter(|&i| awaiting_reply(&conns[i]))
            .collect();
        if open.len() == 8 {
            break open;
        }
        assert!(
            Instant::now() < deadline,
            "{} connections still open",
            open.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // What the server holds for them: 8 x 4 MB, well inside the budget.
    let rss = s.rss();
    assert!(
        rss < rss_before + budget + 16 * MIB,
        "RSS grew by {} MiB with a {} MiB budget",
        (rss - rss_before) / MIB,
        budget / MIB
    );
    assert!(s.info("request_memory_used") <= budget);
    assert_eq!(s.info("requests_refused_for_memory"), 16);
    // A fresh connection is served meanwhile.
    let mut fresh = s.connect();
    assert_eq!(
        request(&mut fresh, &[b"PING"]),
        Reply::Status("PONG".into())
    );
    // A refused one got the error first (read it on a new attempt: the same request is
    // refused the same way while the budget is held).
    let mut refused = s.connect();
    refused
        .write_all(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${value_len}\r\n").as_bytes())
        .unwrap();
    let Reply::Error(e) = read_reply(&mut BufReader::new(&mut refused)) else {
        panic!("a request over the budget was not refused");
    };
    assert!(e.contains("max-request-memory"), "{e}");
    // The accepted ones complete, and the budget is returned.
    let mut completed = 0;
    for i in accepted {
        let mut c = &conns[i];
        c.write_all(b"v\r\n").unwrap();
        if read_reply(&mut BufReader::new(c)) == Reply::Status("OK".into()) {
            completed += 1;
        }
    }
    assert_eq!(completed, 8);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.info("request_memory_used") != 0 {
        assert!(
            Instant::now() < deadline,
            "the request budget was not returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.cli(&["dbsize"]), "8\n");
}

/// True if the server has neither replied on `c` nor closed it.
fn awaiting_reply(c: &TcpStream) -> bool {
    c.set_nonblocking(true).unwrap();
    let r = c.peek(&mut [0u8; 1]);
    c.set_nonblocking(false).unwrap();
    matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
fn a_large_set_is_copied_once_by_the_server() {
    // Peak memory for one 16 MiB SET, as a multiple of the value: the server's own share is
    // the receive buffer (1x); the rest is the store's write path (its queued copy, the dirty
    // value, the page images: 4x today). Before, the server also copied the arguments and
    // grew its buffer by doubling: 6x in all.
    let data = temp("memory-copies");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    assert_eq!(
        request(&mut c, &[b"SET", b"warm", b"up"]),
        Reply::Status("OK".into())
    );
    let pid = s.child.id();
    let before = proc_status_kib(pid, "VmHWM") * 1024;
    let value = vec![b'v'; 16 << 20];
    assert_eq!(
        request(&mut c, &[b"SET", b"big", &value]),
        Reply::Status("OK".into())
    );
    let grown = proc_status_kib(pid, "VmHWM") * 1024 - before;
    let ratio = grown as f64 / value.len() as f64;
    assert!(
        ratio < 5.5,
        "one SET of 16 MiB raised peak memory by {ratio:.2}x its size"
    );
    assert_eq!(request(&mut c, &[b"GET", b"big"]), Reply::Bulk(Some(value)));
}
