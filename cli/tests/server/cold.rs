//! Cold pages under the server: a restart after SHUTDOWN with the store's file dropped from
//! the page cache, then pipelines of GETs whose pages must be read from the file.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::harness::{exchange, resp, temp, Server};

const KEYS: usize = 2000;
const VALUE: usize = 1500;

fn value(i: usize) -> Vec<u8> {
    format!("{i:08}").into_bytes().repeat(VALUE / 8)
}

fn info_field(s: &Server, section: &str, field: &str) -> u64 {
    let info = s.cli(&["info", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn pipelined_cold_gets_read_ahead_and_answer_in_order() {
    let data = temp("cold");
    {
        let s = Server::start(&data, &[]);
        let mut c = s.connect();
        let mut req = Vec::new();
        for i in 0..KEYS {
            req.extend(resp(&[b"SET", format!("k{i}").as_bytes(), &value(i)]));
        }
        assert_eq!(exchange(&mut c, &req, KEYS * 5).len(), KEYS * 5);
        // SHUTDOWN checkpoints: the values reach the tree's pages in the file, and the next
        // start has no log to replay into memory.
        let _ = s.cli(&["shutdown"]);
        let mut s = s;
        let deadline = Instant::now() + Duration::from_secs(20);
        while s.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "SHUTDOWN did not stop the server"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // No process maps the file now: this drops its pages from the page cache.
    let file = std::fs::File::open(&data).unwrap();
    // SAFETY: advice on a file descriptor we own; it changes no memory of ours.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);

    let s = Server::start(&data, &[]);
    let mut c = s.connect();
    // Pipelines of 16 GETs (and one MGET) over keys spread through the file, every reply
    // checked in order.
    let mut checked = 0;
    for round in 0..20 {
        let idx: Vec<usize> = (0..16).map(|j| (j * 997 + round * 131) % KEYS).collect();
        let mut req = Vec::new();
        let mut expect = Vec::new();
        for &i in &idx {
            req.extend(resp(&[b"GET", format!("k{i}").as_bytes()]));
            let v = value(i);
            expect.extend(format!("${}\r\n", v.len()).into_bytes());
            expect.extend(v);
            expect.extend(b"\r\n");
        }
        req.extend(resp(&[b"MGET", b"k7", b"nosuch", b"k1999"]));
        expect.extend(b"*3\r\n");
        for v in [Some(value(7)), None, Some(value(1999))] {
            match v {
                Some(v) => {
                    expect.extend(format!("${}\r\n", v.len()).into_bytes());
                    expect.extend(v);
                    expect.extend(b"\r\n");
                }
                None => expect.extend(b"$-1\r\n"),
            }
        }
        let got = exchange(&mut c, &req, expect.len());
        assert!(
            got == expect,
            "round {round}: replies out of order or wrong"
        );
        checked += 17;
    }
    assert_eq!(checked, 340);
    // The first GET of a cold pipeline started the lookups of those behind it.
    assert!(info_field(&s, "pages", "read_ahead_lookups") > 0);
    assert_eq!(info_field(&s, "pages", "executor_major_faults"), 0);
}
