//! Protocol and connection: HELLO 3 and RESP3 replies, AUTH, inline commands with quotes,
//! negative multibulk counts, long and empty keys, CLIENT, COMMAND, CONFIG, INFO.

use std::io::{Read, Write};

use crate::harness::{bulk, exchange, request, status, temp, Reply, Server};

#[test]
fn hello_3_switches_to_resp3() {
    let data = temp("hello3");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let Reply::Map(hello) = request(&mut c, &[b"HELLO", b"3", b"SETNAME", b"me"]) else {
        panic!("HELLO 3 is a map")
    };
    assert!(hello.contains(&(bulk(b"proto"), Reply::Int(3))));
    assert!(hello.contains(&(bulk(b"server"), bulk(b"redis"))));
    assert_eq!(request(&mut c, &[b"GET", b"missing"]), Reply::Null);
    assert_eq!(request(&mut c, &[b"HSET", b"h", b"f", b"v"]), Reply::Int(1));
    assert_eq!(
        request(&mut c, &[b"HGETALL", b"h"]),
        Reply::Map(vec![(bulk(b"f"), bulk(b"v"))])
    );
    assert_eq!(request(&mut c, &[b"SADD", b"s", b"m"]), Reply::Int(1));
    assert_eq!(
        request(&mut c, &[b"SMEMBERS", b"s"]),
        Reply::Set(vec![bulk(b"m")])
    );
    assert!(
        matches!(request(&mut c, &[b"INFO", b"server"]), Reply::Verbatim(f, t) if f == "txt" && String::from_utf8_lossy(&t).contains("redis_version:"))
    );
    assert!(
        matches!(request(&mut c, &[b"CONFIG", b"GET", b"timeout"]), Reply::Map(m) if m.len() == 1)
    );
    assert_eq!(request(&mut c, &[b"CLIENT", b"GETNAME"]), bulk(b"me"));
    assert!(
        matches!(request(&mut c, &[b"HELLO", b"4"]), Reply::Error(e) if e.starts_with("NOPROTO"))
    );
    // HELLO 2 answers in RESP2 already: a flat array.
    let Reply::Array(hello) = request(&mut c, &[b"HELLO", b"2"]) else {
        panic!()
    };
    assert!(hello
        .windows(2)
        .any(|w| w == [bulk(b"proto"), Reply::Int(2)]));
    assert_eq!(request(&mut c, &[b"GET", b"missing"]), Reply::Bulk(None));
    assert_eq!(
        request(&mut c, &[b"HGETALL", b"h"]),
        Reply::Array(vec![bulk(b"f"), bulk(b"v")])
    );
}

#[test]
fn requirepass_and_auth() {
    let data = temp("auth");
    let s = Server::start(&data, &["--requirepass", "sesame"]);
    let mut c = s.connect();
    assert_eq!(
        request(&mut c, &[b"GET", b"k"]),
        Reply::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(
        request(&mut c, &[b"PING"]),
        Reply::Error("NOAUTH Authentication required.".into())
    );
    assert!(
        matches!(request(&mut c, &[b"AUTH", b"wrong"]), Reply::Error(e) if e.starts_with("WRONGPASS"))
    );
    assert!(
        matches!(request(&mut c, &[b"HELLO", b"3"]), Reply::Error(e) if e.starts_with("NOAUTH"))
    );
    assert_eq!(request(&mut c, &[b"AUTH", b"sesame"]), status("OK"));
    assert_eq!(request(&mut c, &[b"SET", b"k", b"v"]), status("OK"));
    let mut d = s.connect();
    assert!(matches!(
        request(&mut d, &[b"HELLO", b"3", b"AUTH", b"default", b"sesame"]),
        Reply::Map(_)
    ));
    assert_eq!(request(&mut d, &[b"GET", b"k"]), bulk(b"v"));
    assert_eq!(
        request(&mut d, &[b"AUTH", b"default", b"sesame"]),
        status("OK")
    );
    assert_eq!(
        request(&mut d, &[b"CONFIG", b"SET", b"requirepass", b""]),
        status("OK")
    );
    let mut e = s.connect();
    assert_eq!(request(&mut e, &[b"GET", b"k"]), bulk(b"v"));
    // Without a password, a server bound to all addresses still serves loopback clients.
    let data = temp("protected");
    let s = Server::start(&data, &["--bind", "0.0.0.0"]);
    let mut c =
        std::net::TcpStream::connect(("127.0.0.1", s.port.parse::<u16>().unwrap())).unwrap();
    assert_eq!(request(&mut c, &[b"PING"]), status("PONG"));
}

#[test]
fn protocol_edge_cases_as_redis() {
    let data = temp("edges");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    // `*-10` is an empty command; an empty line too.
    assert_eq!(exchange(&mut c, b"*-10\r\n\r\nPING\r\n", 7), b"+PONG\r\n");
    // Inline commands with quotes, as redis-cli and telnet users type them.
    let mut d = s.connect();
    assert_eq!(
        exchange(&mut d, b"SET q \"a b\\x41\\n\"\r\nGET q\r\n", 5 + 11),
        b"+OK\r\n$5\r\na bA\n\r\n"
    );
    // Unbalanced quotes: an error, then the connection is closed.
    let mut e = s.connect();
    e.write_all(b"SET \"\"\"k\"\"\" v\r\nPING\r\n").unwrap();
    let mut rest = Vec::new();
    e.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest,
        b"-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    // The empty key and the longest key work; a longer one is refused and the connection goes on.
    let longest = vec![b'k'; 495];
    let longer = vec![b'k'; 496];
    assert_eq!(request(&mut d, &[b"SET", b"", b"empty"]), status("OK"));
    assert_eq!(request(&mut d, &[b"GET", b""]), bulk(b"empty"));
    assert_eq!(request(&mut d, &[b"SET", &longest, b"v"]), status("OK"));
    assert!(
        matches!(request(&mut d, &[b"SET", &longer, b"v"]), Reply::Error(e) if e.contains("too long"))
    );
    assert!(
        matches!(request(&mut d, &[b"MGET", b"a", &longer]), Reply::Error(e) if e.contains("too long"))
    );
    assert_eq!(request(&mut d, &[b"DBSIZE"]), Reply::Int(3));
    assert_eq!(s.info("max_key_len"), 495);
}

#[test]
fn client_command_config_info() {
    let data = temp("admin");
    let s = Server::start(&data, &[]);
    let (mut a, mut b) = (s.connect(), s.connect());
    assert_eq!(
        request(&mut a, &[b"CLIENT", b"SETNAME", b"alpha"]),
        status("OK")
    );
    let Reply::Int(id_b) = request(&mut b, &[b"CLIENT", b"ID"]) else {
        panic!()
    };
    let Reply::Bulk(Some(list)) = request(&mut a, &[b"CLIENT", b"LIST"]) else {
        panic!()
    };
    let list = String::from_utf8(list).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("name=alpha") && list.contains(&format!("id={id_b} ")));
    assert_eq!(
        request(
            &mut a,
            &[b"CLIENT", b"KILL", b"ID", id_b.to_string().as_bytes()]
        ),
        Reply::Int(1)
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        b.read(&mut buf).unwrap_or(0),
        0,
        "the killed client is disconnected"
    );
    assert!(matches!(
        request(&mut a, &[b"CLIENT", b"NOSUCH"]),
        Reply::Error(_)
    ));
    let Reply::Int(count) = request(&mut a, &[b"COMMAND", b"COUNT"]) else {
        panic!()
    };
    let Reply::Array(names) = request(&mut a, &[b"COMMAND", b"LIST"]) else {
        panic!()
    };
    assert_eq!(count as usize, names.len());
    let Reply::Array(info) = request(&mut a, &[b"COMMAND", b"INFO", b"get", b"nosuch"]) else {
        panic!()
    };
    assert!(matches!(&info[0], Reply::Array(v) if v[0] == bulk(b"get") && v[1] == Reply::Int(2)));
    assert_eq!(info[1], Reply::Bulk(None));
    assert!(
        matches!(request(&mut a, &[b"COMMAND", b"DOCS", b"set"]), Reply::Array(v) if v.len() == 2)
    );
    assert_eq!(
        request(&mut a, &[b"CONFIG", b"GET", b"appendfsync"]),
        Reply::Array(vec![bulk(b"appendfsync"), bulk(b"always")])
    );
    assert_eq!(
        request(&mut a, &[b"CONFIG", b"SET", b"timeout", b"30"]),
        status("OK")
    );
    assert_eq!(
        request(&mut a, &[b"CONFIG", b"GET", b"timeout"]),
        Reply::Array(vec![bulk(b"timeout"), bulk(b"30")])
    );
    assert!(
        matches!(request(&mut a, &[b"CONFIG", b"SET", b"port", b"1"]), Reply::Error(e) if e.contains("immutable"))
    );
    for field in [
        "redis_version",
        "uptime_in_seconds",
        "used_memory",
        "connected_clients",
        "role",
        "used_cpu_user",
    ] {
        let Reply::Bulk(Some(text)) = request(&mut a, &[b"INFO"]) else {
            panic!()
        };
        assert!(
            String::from_utf8_lossy(&text).contains(&format!("\r\n{field}:")),
            "INFO lacks {field}"
        );
    }
    let Reply::Bulk(Some(cpu)) = request(&mut a, &[b"INFO", b"cpu"]) else {
        panic!()
    };
    let cpu = String::from_utf8(cpu).unwrap();
    assert!(cpu.starts_with("# CPU") && !cpu.contains("used_memory"));
    let Reply::Bulk(Some(all)) = request(&mut a, &[b"INFO", b"all"]) else {
        panic!()
    };
    assert!(String::from_utf8_lossy(&all).contains("cmdstat_config:calls="));
}
