//! Requests built to monopolise the server's one thread: pathological SCAN patterns and
//! cursors, and commands over tens of thousands of keys. Each must get its answer while a
//! second client's PING is answered meanwhile, and long ones must yield to the loop as they go
//! (counted by INFO's `long_request_yields`, not timed).

use std::io::{BufReader, Write};

use crate::harness::{read_reply, request, resp, temp, Reply, Server};

/// Sends `req`, gets a PING answered on a second connection while it is in progress, then
/// returns the reply to `req`.
fn heavy_while_pinging(s: &Server, req: &[u8]) -> Reply {
    let mut heavy = s.connect();
    heavy.write_all(req).unwrap();
    let mut other = s.connect();
    assert_eq!(
        request(&mut other, &[b"PING"]),
        Reply::Status("PONG".into())
    );
    read_reply(&mut BufReader::new(&mut heavy))
}

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Some(b.to_vec()))
}

#[test]
fn pathological_scan_patterns_and_cursors_are_answered() {
    let data = temp("hostile-scan");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let longest = vec![b'a'; 495]; // the server's longest key (INFO max_key_len)
    let mut matching = vec![b'a'; 20];
    matching.push(b'b');
    for k in [&longest[..], &matching, b"other"] {
        assert_eq!(
            request(&mut c, &[b"SET", k, b"v"]),
            Reply::Status("OK".into())
        );
    }

    // A million `*`: the recursive matcher overflowed the stack and killed the server.
    let stars = vec![b'*'; 1_000_000];
    let got = heavy_while_pinging(
        &s,
        &resp(&[b"SCAN", b"0", b"MATCH", &stars, b"COUNT", b"100"]),
    );
    let mut all = vec![bulk(&longest), bulk(&matching), bulk(b"other")];
    all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let Reply::Array(parts) = &got else {
        panic!("{got:?}")
    };
    assert_eq!(parts[0], bulk(b"0"));
    let Reply::Array(mut keys) = parts[1].clone() else {
        panic!("{got:?}")
    };
    keys.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(keys, all);

    // 27 bytes that backtrack exponentially against the 495-byte key (minutes, before).
    let mut evil = b"*a".repeat(13);
    evil.extend_from_slice(b"*b");
    let got = heavy_while_pinging(
        &s,
        &resp(&[b"SCAN", b"0", b"MATCH", &evil, b"COUNT", b"100"]),
    );
    assert_eq!(
        got,
        Reply::Array(vec![bulk(b"0"), Reply::Array(vec![bulk(&matching)])])
    );

    // Redis's `[^...]` is a negated set.
    let got = request(
        &mut c,
        &[b"SCAN", b"0", b"MATCH", b"[^a]*", b"COUNT", b"100"],
    );
    assert_eq!(
        got,
        Reply::Array(vec![bulk(b"0"), Reply::Array(vec![bulk(b"other")])])
    );

    // A 300,000-digit cursor: quadratic to decode before (26 s), refused at once now.
    let huge = vec![b'7'; 300_000];
    let got = heavy_while_pinging(&s, &resp(&[b"SCAN", &huge]));
    assert_eq!(got, Reply::Error("ERR invalid cursor".into()));

    // Cursors still resume where the last SCAN stopped.
    let mut cursor = b"0".to_vec();
    let mut seen = Vec::new();
    loop {
        let got = request(&mut c, &[b"SCAN", &cursor, b"COUNT", b"1"]);
        let Reply::Array(parts) = got else { panic!() };
        let (Reply::Bulk(Some(next)), Reply::Array(keys)) = (&parts[0], &parts[1]) else {
            panic!()
        };
        seen.extend(keys.iter().cloned());
        cursor = next.clone();
        if cursor == b"0" {
            break;
        }
    }
    seen.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(seen, all);
}

#[test]
fn commands_over_many_keys_yield_to_the_loop() {
    let data = temp("hostile-many");
    let s = Server::start(&data, &[]);
    let n = 20_000;
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key:{i:06}").into_bytes()).collect();
    let yields = || s.info("long_request_yields");

    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for k in &keys {
        mset.push(k);
        mset.push(b"value");
    }
    let before = yields();
    assert_eq!(
        heavy_while_pinging(&s, &resp(&mset)),
        Reply::Status("OK".into())
    );
    let after_mset = yields();
    assert!(
        after_mset >= before + 10,
        "MSET of {n} keys yielded {} times",
        after_mset - before
    );

    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|k| k.as_slice()));
    let Reply::Array(values) = heavy_while_pinging(&s, &resp(&mget)) else {
        panic!()
    };
    assert_eq!(values.len(), n);
    assert!(values.iter().all(|v| *v == bulk(b"value")));
    let after_mget = yields();
    assert!(after_mget >= after_mset + 10);

    let got = heavy_while_pinging(&s, &resp(&[b"SCAN", b"0", b"COUNT", b"1000000"]));
    let Reply::Array(parts) = got else { panic!() };
    assert_eq!(parts[0], bulk(b"0"));
    let Reply::Array(mut scanned) = parts[1].clone() else {
        panic!()
    };
    // Keys come in the order of their hash (the SCAN cursor's order).
    scanned.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(scanned, keys.iter().map(|k| bulk(k)).collect::<Vec<_>>());
    let after_scan = yields();
    assert!(after_scan >= after_mget + 10);

    let mut exists = mget.clone();
    exists[0] = b"EXISTS";
    assert_eq!(
        heavy_while_pinging(&s, &resp(&exists)),
        Reply::Int(n as i64)
    );
    let mut del = mget.clone();
    del[0] = b"DEL";
    assert_eq!(heavy_while_pinging(&s, &resp(&del)), Reply::Int(n as i64));
    assert!(yields() >= after_scan + 20);
    assert_eq!(s.cli(&["dbsize"]), "0\n");

    // A pipeline of many cheap commands in one read yields too.
    let before = yields();
    let mut pipeline = Vec::new();
    for _ in 0..20_000 {
        pipeline.extend_from_slice(b"PING\r\n");
    }
    let mut c = s.connect();
    c.write_all(&pipeline).unwrap();
    let mut r = BufReader::new(&mut c);
    for _ in 0..20_000 {
        assert_eq!(read_reply(&mut r), Reply::Status("PONG".into()));
    }
    assert!(yields() > before, "a 20,000-command pipeline never yielded");
}
