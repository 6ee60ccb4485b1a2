//! Expiry: TTLs are stored with the values, survive a kill -9 and a restart, and keys whose
//! time has come disappear without being touched (active expiry), in slices that leave the
//! server responsive.

use std::time::{Duration, Instant};

use crate::harness::{bulk, request, resp, status, temp, Reply, Server};

fn int(r: Reply) -> i64 {
    match r {
        Reply::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

#[test]
fn expiry_times_survive_a_crash_and_a_restart() {
    let data = temp("expiry-restart");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    assert_eq!(
        request(&mut c, &[b"SET", b"long", b"v", b"EX", b"100"]),
        status("OK")
    );
    assert_eq!(
        request(&mut c, &[b"SET", b"short", b"v", b"PX", b"400"]),
        status("OK")
    );
    let at = (now_ms() + 50_000).to_string();
    assert_eq!(request(&mut c, &[b"SET", b"abs", b"v"]), status("OK"));
    assert_eq!(
        request(&mut c, &[b"PEXPIREAT", b"abs", at.as_bytes()]),
        Reply::Int(1)
    );
    assert_eq!(
        request(&mut c, &[b"SET", b"kept", b"v", b"EX", b"100"]),
        status("OK")
    );
    assert_eq!(request(&mut c, &[b"PERSIST", b"kept"]), Reply::Int(1));
    assert_eq!(request(&mut c, &[b"HSET", b"h", b"f", b"v"]), Reply::Int(1));
    assert_eq!(request(&mut c, &[b"EXPIRE", b"h", b"100"]), Reply::Int(1));
    assert_eq!(s.keyspace(), (5, 4), "INFO keyspace keys= expires=");
    drop(c);
    drop(s); // kill -9: every acknowledged write is durable, TTLs with them

    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let ttl = int(request(&mut c, &[b"TTL", b"long"]));
    assert!((95..=100).contains(&ttl), "TTL after restart: {ttl}");
    assert_eq!(
        request(&mut c, &[b"PEXPIRETIME", b"abs"]),
        Reply::Int(at.parse().unwrap())
    );
    assert_eq!(request(&mut c, &[b"TTL", b"kept"]), Reply::Int(-1));
    assert!(int(request(&mut c, &[b"TTL", b"h"])) > 90);
    assert_eq!(request(&mut c, &[b"HGET", b"h", b"f"]), bulk(b"v"));
    // `short` expires while nobody reads it: active expiry deletes it and the counts follow.
    std::thread::sleep(Duration::from_millis(600));
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.keyspace().0 != 4 {
        assert!(Instant::now() < deadline, "short never expired actively");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.keyspace(), (4, 3));
    assert_eq!(request(&mut c, &[b"GET", b"short"]), Reply::Bulk(None));
    assert_eq!(request(&mut c, &[b"DBSIZE"]), Reply::Int(4));
}

#[test]
fn a_flood_of_expiring_keys_goes_in_slices_without_stalling_others() {
    let data = temp("expiry-flood");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let n = 5000;
    let mut req = Vec::new();
    for i in 0..n {
        req.extend(resp(&[
            b"SET",
            format!("k{i}").as_bytes(),
            b"v",
            b"PX",
            b"200",
        ]));
    }
    req.extend(resp(&[b"SET", b"stays", b"v"]));
    use std::io::Write;
    c.write_all(&req).unwrap();
    let mut r = std::io::BufReader::new(&mut c);
    for _ in 0..=n {
        assert_eq!(crate::harness::read_reply(&mut r), status("OK"));
    }
    // Some may be gone already on a slow machine; the counts agree with each other.
    let (keys, expires) = s.keyspace();
    assert!(
        keys <= n + 1 && expires == keys - 1,
        "{keys} keys, {expires} expires"
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut other = s.connect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The server answers while it expires thousands of keys.
        assert_eq!(request(&mut other, &[b"PING"]), status("PONG"));
        if s.keyspace().0 == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "keys never all expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.info("expired_keys"), n);
    assert_eq!(request(&mut other, &[b"GET", b"stays"]), bulk(b"v"));
    assert_eq!(request(&mut other, &[b"DBSIZE"]), Reply::Int(1));
}

#[test]
fn expiry_commands_follow_redis() {
    let data = temp("expiry-cmds");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    assert_eq!(
        request(&mut c, &[b"SET", b"k", b"v", b"EX", b"100"]),
        status("OK")
    );
    assert_eq!(
        request(&mut c, &[b"EXPIRE", b"k", b"200", b"NX"]),
        Reply::Int(0)
    );
    assert_eq!(
        request(&mut c, &[b"EXPIRE", b"k", b"200", b"GT"]),
        Reply::Int(1)
    );
    assert_eq!(
        request(&mut c, &[b"EXPIRE", b"k", b"50", b"GT"]),
        Reply::Int(0)
    );
    assert_eq!(
        request(&mut c, &[b"SET", b"k", b"w", b"KEEPTTL"]),
        status("OK")
    );
    assert!(int(request(&mut c, &[b"TTL", b"k"])) > 150);
    assert_eq!(request(&mut c, &[b"SET", b"k", b"x"]), status("OK"));
    assert_eq!(request(&mut c, &[b"TTL", b"k"]), Reply::Int(-1));
    assert_eq!(
        request(&mut c, &[b"GETEX", b"k", b"PX", b"100000"]),
        bulk(b"x")
    );
    assert!(int(request(&mut c, &[b"PTTL", b"k"])) > 90_000);
    assert_eq!(request(&mut c, &[b"GETDEL", b"k"]), bulk(b"x"));
    assert_eq!(request(&mut c, &[b"TTL", b"k"]), Reply::Int(-2));
    assert_eq!(
        request(&mut c, &[b"SET", b"k", b"v", b"EX", b"0"]),
        Reply::Error("ERR invalid expire time in 'set' command".into())
    );
    assert_eq!(
        request(&mut c, &[b"SETEX", b"k", b"10", b"v"]),
        status("OK")
    );
    assert_eq!(request(&mut c, &[b"EXPIRE", b"k", b"-1"]), Reply::Int(1));
    assert_eq!(request(&mut c, &[b"EXISTS", b"k"]), Reply::Int(0));
    assert_eq!(s.keyspace().1, 0);
}
