//! MULTI/EXEC/DISCARD/WATCH: a transaction is applied atomically (no reader ever sees half
//! of one), queued-command errors abort it with EXECABORT, and WATCH aborts it when a watched
//! key changes, or expires, before EXEC.

use std::io::BufReader;
use std::time::Duration;

use crate::harness::{bulk, read_reply, request, resp, status, temp, Reply, Server};

#[test]
fn exec_applies_the_queue_and_answers_every_command() {
    let data = temp("multi-basic");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"a", b"1"]), status("QUEUED"));
    assert_eq!(request(&mut c, &[b"INCR", b"a"]), status("QUEUED"));
    assert_eq!(request(&mut c, &[b"SET", b"s", b"text"]), status("QUEUED"));
    assert_eq!(request(&mut c, &[b"INCR", b"s"]), status("QUEUED"));
    assert_eq!(
        request(&mut c, &[b"HSET", b"h", b"f", b"v"]),
        status("QUEUED")
    );
    assert_eq!(request(&mut c, &[b"HGETALL", b"h"]), status("QUEUED"));
    assert_eq!(request(&mut c, &[b"GET", b"a"]), status("QUEUED"));
    assert_eq!(
        request(&mut c, &[b"EXEC"]),
        Reply::Array(vec![
            status("OK"),
            Reply::Int(2),
            status("OK"),
            // A runtime error does not stop the others (as in Redis).
            Reply::Error("ERR value is not an integer or out of range".into()),
            Reply::Int(1),
            Reply::Array(vec![bulk(b"f"), bulk(b"v")]),
            bulk(b"2"),
        ])
    );
    assert_eq!(
        request(&mut c, &[b"EXEC"]),
        Reply::Error("ERR EXEC without MULTI".into())
    );
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"a", b"9"]), status("QUEUED"));
    assert_eq!(request(&mut c, &[b"DISCARD"]), status("OK"));
    assert_eq!(request(&mut c, &[b"GET", b"a"]), bulk(b"2"));
}

#[test]
fn queued_command_errors_abort_with_execabort() {
    let data = temp("multi-abort");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    assert_eq!(request(&mut c, &[b"SET", b"a", b"1"]), status("OK"));
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"a", b"2"]), status("QUEUED"));
    assert!(
        matches!(request(&mut c, &[b"NOSUCHCOMMAND"]), Reply::Error(e) if e.contains("unknown command"))
    );
    assert!(matches!(request(&mut c, &[b"GET"]), Reply::Error(e) if e.contains("wrong number")));
    assert!(
        matches!(request(&mut c, &[b"CONFIG", b"GET", b"port"]), Reply::Error(e) if e.contains("not allowed"))
    );
    assert_eq!(
        request(&mut c, &[b"EXEC"]),
        Reply::Error("EXECABORT Transaction discarded because of previous errors.".into())
    );
    assert_eq!(request(&mut c, &[b"GET", b"a"]), bulk(b"1"));
}

#[test]
fn watch_aborts_on_a_write_or_an_expiry() {
    let data = temp("multi-watch");
    let s = Server::start(&data, &[]);
    let (mut c, mut other) = (s.connect(), s.connect());
    // Untouched: EXEC runs.
    assert_eq!(request(&mut c, &[b"WATCH", b"k"]), status("OK"));
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"k", b"mine"]), status("QUEUED"));
    assert_eq!(
        request(&mut c, &[b"EXEC"]),
        Reply::Array(vec![status("OK")])
    );
    // Written by another client after WATCH: EXEC answers null and applies nothing.
    assert_eq!(request(&mut c, &[b"WATCH", b"k"]), status("OK"));
    assert_eq!(
        request(&mut other, &[b"SET", b"k", b"theirs"]),
        status("OK")
    );
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(
        request(&mut c, &[b"SET", b"k", b"mine again"]),
        status("QUEUED")
    );
    assert_eq!(request(&mut c, &[b"EXEC"]), Reply::Null);
    assert_eq!(request(&mut c, &[b"GET", b"k"]), bulk(b"theirs"));
    // Deleted by another client: aborted too; UNWATCH forgets.
    assert_eq!(request(&mut c, &[b"WATCH", b"k"]), status("OK"));
    assert_eq!(request(&mut other, &[b"DEL", b"k"]), Reply::Int(1));
    assert_eq!(request(&mut c, &[b"UNWATCH"]), status("OK"));
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"k", b"1"]), status("QUEUED"));
    assert_eq!(
        request(&mut c, &[b"EXEC"]),
        Reply::Array(vec![status("OK")])
    );
    // A watched key that expires before EXEC aborts it.
    assert_eq!(
        request(&mut c, &[b"SET", b"t", b"v", b"PX", b"100"]),
        status("OK")
    );
    assert_eq!(request(&mut c, &[b"WATCH", b"t"]), status("OK"));
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"t", b"new"]), status("QUEUED"));
    assert_eq!(request(&mut c, &[b"EXEC"]), Reply::Null);
    assert_eq!(request(&mut c, &[b"WATCH", b"x"]), status("OK"));
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(
        request(&mut c, &[b"WATCH", b"y"]),
        Reply::Error("ERR WATCH inside MULTI is not allowed".into())
    );
    assert_eq!(request(&mut c, &[b"DISCARD"]), status("OK"));
}

#[test]
fn readers_never_see_half_a_transaction() {
    let data = temp("multi-atomic");
    let s = Server::start(&data, &[]);
    let addr = s.addr.clone();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(&addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                for _ in 0..200 {
                    // One pipeline per transaction, as redis-py's pipeline() sends it.
                    let mut req = resp(&[b"MULTI"]);
                    req.extend(resp(&[b"INCR", b"x"]));
                    req.extend(resp(&[b"INCR", b"y"]));
                    req.extend(resp(&[b"EXEC"]));
                    std::io::Write::write_all(&mut c, &req).unwrap();
                    let mut r = BufReader::new(&mut c);
                    for _ in 0..3 {
                        read_reply(&mut r);
                    }
                    assert!(matches!(read_reply(&mut r), Reply::Array(v) if v.len() == 2));
                }
            })
        })
        .collect();
    let mut reader = s.connect();
    let mut reads = 0;
    while !writers.iter().all(|w| w.is_finished()) || reads < 100 {
        let Reply::Array(v) = request(&mut reader, &[b"MGET", b"x", b"y"]) else {
            panic!()
        };
        assert_eq!(
            v[0], v[1],
            "a reader saw x and y from different transactions"
        );
        reads += 1;
    }
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert_eq!(
        request(&mut reader, &[b"MGET", b"x", b"y"]),
        Reply::Array(vec![bulk(b"400"), bulk(b"400")])
    );
    drop(s); // kill -9 right after: EXEC was durable before its reply
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    assert_eq!(
        request(&mut c, &[b"MGET", b"x", b"y"]),
        Reply::Array(vec![bulk(b"400"), bulk(b"400")])
    );
}

#[test]
fn a_multi_queue_is_bounded_like_a_request() {
    let data = temp("multi-bounded");
    let s = Server::start(&data, &["--max-request", "100000"]);
    let mut c = s.connect();
    let big = vec![b'x'; 40_000];
    assert_eq!(request(&mut c, &[b"MULTI"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"a", &big]), status("QUEUED"));
    assert_eq!(request(&mut c, &[b"SET", b"b", &big]), status("QUEUED"));
    assert!(
        matches!(request(&mut c, &[b"SET", b"c", &big]), Reply::Error(e) if e.contains("MULTI queue over 100000 bytes"))
    );
    assert_eq!(
        request(&mut c, &[b"EXEC"]),
        Reply::Error("EXECABORT Transaction discarded because of previous errors.".into())
    );
    assert_eq!(
        request(&mut c, &[b"EXISTS", b"a", b"b", b"c"]),
        Reply::Int(0)
    );
    // Strings built in place are bounded the same way.
    assert!(
        matches!(request(&mut c, &[b"SETRANGE", b"k", b"200000", b"x"]), Reply::Error(e) if e.contains("maximum allowed size"))
    );
    assert!(
        matches!(request(&mut c, &[b"SETBIT", b"k", b"8000000", b"1"]), Reply::Error(e) if e.contains("maximum allowed size"))
    );
    assert_eq!(request(&mut c, &[b"HSET", b"h", b"f", b"v"]), Reply::Int(1));
    assert!(
        matches!(request(&mut c, &[b"HRANDFIELD", b"h", b"-2000000000"]), Reply::Error(e) if e.contains("out of range"))
    );
    let Reply::Array(v) = request(&mut c, &[b"HRANDFIELD", b"h", b"-5"]) else {
        panic!()
    };
    assert_eq!(v.len(), 5);
}
