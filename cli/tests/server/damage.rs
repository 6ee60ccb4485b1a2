//! The store's file truncated under a running server: no reply may carry bytes the file did
//! not hold (the runtime maps zeros where a truncated file ended, so a value copied from there
//! reads as zeros unless the server checks the mapping after copying).

use std::io::{BufRead, BufReader, Read, Write};

use crate::harness::{read_reply, resp, temp, try_read_reply, Reply, Server};

/// Waits until the store's file holds at least `pages` pages (its checkpoints wrote what was
/// set), up to 30 s.
fn wait_for_pages(s: &Server, pages: u64) {
    let start = std::time::Instant::now();
    while s.info("pages") < pages {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no checkpoint wrote the values into the store's file"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn no_reply_carries_bytes_the_file_did_not_hold() {
    let data = temp("truncated");
    let s = Server::start(&data, &[]);
    let n = 200;
    // Values of 30,000 bytes (overflow pages), none containing a zero byte.
    let value = |i: usize| vec![b'a' + (i % 26) as u8; 30_000];
    let key = |i: usize| format!("k{i}").into_bytes();
    let mut c = s.connect();
    let mut sets = Vec::new();
    for i in 0..n {
        sets.extend(resp(&[b"SET", &key(i), &value(i)]));
    }
    c.write_all(&sets).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    for _ in 0..n {
        assert_eq!(read_reply(&mut r), Reply::Status("OK".into()));
    }
    // The values reach the store's file at its next checkpoint (until then the store serves
    // them from memory, and the log holds them): wait for it.
    wait_for_pages(&s, (n * 30_000 / 4096) as u64);
    let gets: Vec<u8> = (0..n).flat_map(|i| resp(&[b"GET", &key(i)])).collect();
    // Read them all once: their pages are mapped and verified.
    c.write_all(&gets).unwrap();
    for i in 0..n {
        assert_eq!(read_reply(&mut r), Reply::Bulk(Some(value(i))));
    }
    drop((c, r));

    // Cut the file in half under the server, and read everything again.
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let mut c = s.connect();
    c.write_all(&gets).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let (mut exact, mut errors) = (0, 0);
    for i in 0..n {
        match try_read_reply(&mut r) {
            Some(Reply::Bulk(Some(v))) => {
                assert!(
                    v == value(i),
                    "GET {} answered {} bytes that the file did not hold ({} zeros)",
                    String::from_utf8_lossy(&key(i)),
                    v.len(),
                    v.iter().filter(|&&b| b == 0).count()
                );
                exact += 1;
            }
            Some(Reply::Error(_)) => errors += 1,
            Some(other) => panic!("GET answered {other:?}"),
            None => break, // closed mid-reply: allowed, wrong bytes are not
        }
    }
    assert!(
        errors > 0,
        "no error after truncation ({exact} exact values)"
    );
    // The server goes on serving (errors, not a crash).
    let mut c = s.connect();
    c.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    c.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
}

#[test]
fn a_large_value_cut_under_the_server_is_never_completed_with_zeros() {
    let data = temp("truncated-large");
    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    let mut r = BufReader::new(c.try_clone().unwrap());
    // Commits one at a time first, so that the large value's tree pages can reuse pages they
    // freed, below the value.
    for i in 0..50 {
        c.write_all(&resp(&[b"SET", format!("small{i}").as_bytes(), b"v"]))
            .unwrap();
        assert_eq!(read_reply(&mut r), Reply::Status("OK".into()));
    }
    // 4 MiB of non-zero bytes, written at the end of the used pages.
    let value: Vec<u8> = (0..4 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    c.write_all(&resp(&[b"SET", b"large", &value])).unwrap();
    assert_eq!(read_reply(&mut r), Reply::Status("OK".into()));
    wait_for_pages(&s, (4 << 20) / 4096);
    c.write_all(&resp(&[b"GET", b"large"])).unwrap();
    assert_eq!(read_reply(&mut r), Reply::Bulk(Some(value.clone())));
    drop((c, r));
    // Cut the file 1 MiB before the value's end: its first 3 MiB are still there.
    let used = s.info("pages") * 4096;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(used - (1 << 20))
        .unwrap();
    let mut c = s.connect();
    c.write_all(&resp(&[b"GET", b"large"])).unwrap();
    // An error reply, or the start of the true reply and then a closed connection.
    let mut r = BufReader::new(c);
    if r.fill_buf().unwrap().starts_with(b"-") {
        let Some(Reply::Error(e)) = try_read_reply(&mut r) else {
            unreachable!()
        };
        println!("error reply: {e}");
        return;
    }
    let mut truth = format!("${}\r\n", value.len()).into_bytes();
    truth.extend_from_slice(&value);
    truth.extend_from_slice(b"\r\n");
    let mut got = Vec::new();
    (&mut r)
        .take(truth.len() as u64)
        .read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("{e} after {} bytes", got.len()));
    let wrong = got.iter().zip(&truth).position(|(a, b)| a != b);
    assert_eq!(wrong, None, "byte {wrong:?} of the reply is not the file's");
    assert!(got.len() < truth.len(), "the whole value was answered");
    println!(
        "the connection closed after {} bytes of the reply",
        got.len()
    );
}
