//! The echo example, run as a user runs it: start the binary, talk to it over TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn example_path(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    p.pop();
    p.join("examples").join(name)
}

#[test]
fn echo_example_serves_concurrent_clients() {
    let mut child = Command::new(example_path("echo"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the echo example is built by cargo test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                let msg = format!("hello {i} {}", "y".repeat(i * 100));
                s.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0u8; msg.len()];
                s.read_exact(&mut back).unwrap();
                assert_eq!(back, msg.as_bytes());
            })
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join()).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    for r in results {
        r.unwrap();
    }
}
