//! The hyper example (examples/http.rs), run as a user runs it and driven by curl: whole
//! files (one large enough to stream in chunks), ranges, errors, many requests on one
//! keep-alive connection, parallel clients, and cold pages served through the yielding path.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn example_path(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    p.pop();
    p.join("examples").join(name)
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "--fail-with-body", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {:?}", out);
    out.stdout
}

fn file_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

fn write_synced(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
    std::fs::File::open(path).unwrap().sync_all().unwrap();
}

#[test]
fn hyper_on_faultless_serves_files_to_curl() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("SKIPPED hyper_on_faultless_serves_files_to_curl: curl is not installed (Debian: apt-get install curl)");
        return;
    }
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Written (and synced) before the server maps them, and never again while it runs: the
    // example's documented contract for `Mapping::open`.
    let small = file_bytes(1000, 1);
    let big = file_bytes(3 << 20, 2); // 12 chunks of 256 KiB: a streamed body
    write_synced(&dir.join("small.txt"), &small);
    write_synced(&dir.join("big.bin"), &big);
    write_synced(&dir.join("empty"), b"");

    let mut child = Command::new(example_path("http"))
        .args(["--addr", "127.0.0.1:0", "--cold", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the http example is built by cargo test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    assert_eq!(
        curl(&[&format!("{base}/big.bin")]),
        big,
        "a cold 3 MiB file, streamed"
    );
    assert_eq!(curl(&[&format!("{base}/small.txt")]), small);
    assert_eq!(curl(&[&format!("{base}/empty")]), b"");
    assert_eq!(
        curl(&["-r", "1000000-1000099", &format!("{base}/big.bin")]),
        &big[1_000_000..1_000_100]
    );
    assert_eq!(
        curl(&["-r", "-10", &format!("{base}/small.txt")]),
        &small[990..]
    );
    let head = curl(&["-I", &format!("{base}/big.bin")]);
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(
        head.contains(&format!("content-length: {}", big.len())),
        "{head}"
    );

    let status = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(status(&[&format!("{base}/missing")]), "404");
    assert_eq!(status(&["-X", "POST", &format!("{base}/small.txt")]), "405");
    assert_eq!(
        status(&["-r", "5000-6000", &format!("{base}/small.txt")]),
        "416"
    );

    // 50 requests on one keep-alive connection, and 8 clients at once.
    let urls: Vec<String> = (0..50).map(|_| format!("{base}/small.txt")).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    assert_eq!(curl(&urls), small.repeat(50));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("{base}/big.bin");
            std::thread::spawn(move || curl(&[&url]))
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap() == big);
    }

    let stats = String::from_utf8(curl(&[&format!("{base}/_stats")])).unwrap();
    let field = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {stats}"))
    };
    assert!(
        field("slow_reads") > 0,
        "cold pages took the yielding path:\n{stats}"
    );
    assert!(field("pages_brought_in") > 0, "{stats}");
    assert_eq!(field("served"), 1 + 1 + 1 + 2 + 1 + 50 + 8);
    std::fs::remove_dir_all(&dir).unwrap();
}
