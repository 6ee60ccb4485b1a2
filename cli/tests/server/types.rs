//! Hashes (and sets and lists): one store key per field, WRONGTYPE across types, O(1)
//! deletion with the items collected in the background, and the keyspace counts right.

use std::time::{Duration, Instant};

use crate::harness::{bulk, request, status, temp, Reply, Server};

fn wrongtype() -> Reply {
    Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

#[test]
fn hashes_work_and_types_do_not_mix() {
    let data = temp("hashes");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    assert_eq!(
        request(&mut c, &[b"HSET", b"h", b"a", b"1", b"b", b"2"]),
        Reply::Int(2)
    );
    assert_eq!(
        request(&mut c, &[b"HSET", b"h", b"a", b"10"]),
        Reply::Int(0)
    );
    assert_eq!(request(&mut c, &[b"HGET", b"h", b"a"]), bulk(b"10"));
    assert_eq!(
        request(&mut c, &[b"HMGET", b"h", b"a", b"x", b"b"]),
        Reply::Array(vec![bulk(b"10"), Reply::Bulk(None), bulk(b"2")])
    );
    assert_eq!(request(&mut c, &[b"HLEN", b"h"]), Reply::Int(2));
    assert_eq!(
        request(&mut c, &[b"HINCRBY", b"h", b"a", b"5"]),
        Reply::Int(15)
    );
    assert_eq!(
        request(&mut c, &[b"HINCRBYFLOAT", b"h", b"f", b"1.5"]),
        bulk(b"1.5")
    );
    assert_eq!(
        request(&mut c, &[b"HSETNX", b"h", b"f", b"x"]),
        Reply::Int(0)
    );
    assert_eq!(request(&mut c, &[b"HEXISTS", b"h", b"f"]), Reply::Int(1));
    assert_eq!(request(&mut c, &[b"HSTRLEN", b"h", b"f"]), Reply::Int(3));
    assert_eq!(
        request(&mut c, &[b"HDEL", b"h", b"f", b"nope"]),
        Reply::Int(1)
    );
    let Reply::Array(mut all) = request(&mut c, &[b"HGETALL", b"h"]) else {
        panic!()
    };
    assert_eq!(all.len(), 4);
    all.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(all, [bulk(b"15"), bulk(b"2"), bulk(b"a"), bulk(b"b")]);
    assert_eq!(request(&mut c, &[b"TYPE", b"h"]), status("hash"));
    assert_eq!(request(&mut c, &[b"SET", b"s", b"v"]), status("OK"));
    assert_eq!(request(&mut c, &[b"GET", b"h"]), wrongtype());
    assert_eq!(request(&mut c, &[b"INCR", b"h"]), wrongtype());
    assert_eq!(request(&mut c, &[b"HGET", b"s", b"f"]), wrongtype());
    assert_eq!(request(&mut c, &[b"HSET", b"s", b"f", b"v"]), wrongtype());
    assert_eq!(request(&mut c, &[b"SADD", b"s", b"m"]), wrongtype());
    assert_eq!(
        request(&mut c, &[b"SADD", b"set", b"1", b"2", b"2"]),
        Reply::Int(2)
    );
    assert_eq!(
        request(&mut c, &[b"SISMEMBER", b"set", b"2"]),
        Reply::Int(1)
    );
    assert_eq!(
        request(&mut c, &[b"RPUSH", b"l", b"a", b"b"]),
        Reply::Int(2)
    );
    assert_eq!(request(&mut c, &[b"LPUSH", b"l", b"z"]), Reply::Int(3));
    assert_eq!(
        request(&mut c, &[b"LRANGE", b"l", b"0", b"-1"]),
        Reply::Array(vec![bulk(b"z"), bulk(b"a"), bulk(b"b")])
    );
    assert_eq!(request(&mut c, &[b"DBSIZE"]), Reply::Int(4));
    // SET replaces a hash; RENAME moves one with its fields.
    assert_eq!(request(&mut c, &[b"RENAME", b"h", b"h2"]), status("OK"));
    assert_eq!(request(&mut c, &[b"HGET", b"h2", b"b"]), bulk(b"2"));
    assert_eq!(
        request(&mut c, &[b"SET", b"h2", b"now a string"]),
        status("OK")
    );
    assert_eq!(request(&mut c, &[b"HGET", b"h2", b"b"]), wrongtype());
    assert_eq!(request(&mut c, &[b"HLEN", b"h2"]), wrongtype());
    assert_eq!(request(&mut c, &[b"DBSIZE"]), Reply::Int(4));
}

#[test]
fn deleting_a_big_hash_is_immediate_and_its_fields_are_collected() {
    let data = temp("hash-gc");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let baseline = s.info("store_entries");
    let n = 20_000;
    let mut args: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big".to_vec()];
    for i in 0..n {
        args.push(format!("field:{i}").into_bytes());
        args.push(b"value".to_vec());
    }
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    assert_eq!(request(&mut c, &args), Reply::Int(n));
    assert_eq!(request(&mut c, &[b"HLEN", b"big"]), Reply::Int(n));
    assert!(s.info("store_entries") >= baseline + n as u64);
    // HSCAN returns every field, in several calls.
    let mut cursor = b"0".to_vec();
    let mut fields = std::collections::HashSet::new();
    let mut calls = 0;
    loop {
        let Reply::Array(parts) = request(&mut c, &[b"HSCAN", b"big", &cursor, b"COUNT", b"1000"])
        else {
            panic!()
        };
        let (Reply::Bulk(Some(next)), Reply::Array(items)) = (&parts[0], &parts[1]) else {
            panic!()
        };
        for pair in items.chunks(2) {
            fields.insert(format!("{:?}", pair[0]));
        }
        calls += 1;
        cursor = next.clone();
        if cursor == b"0" {
            break;
        }
    }
    assert_eq!(fields.len(), n as usize);
    assert!(calls >= 10, "{calls} HSCAN calls");
    assert_eq!(request(&mut c, &[b"DEL", b"big"]), Reply::Int(1));
    assert_eq!(request(&mut c, &[b"EXISTS", b"big"]), Reply::Int(0));
    assert_eq!(request(&mut c, &[b"DBSIZE"]), Reply::Int(0));
    // The fields go in the background, in slices.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.info("store_entries") > baseline {
        assert!(
            Instant::now() < deadline,
            "the deleted hash's fields were never collected"
        );
        assert_eq!(request(&mut c, &[b"PING"]), status("PONG"));
        std::thread::sleep(Duration::from_millis(50));
    }
}
