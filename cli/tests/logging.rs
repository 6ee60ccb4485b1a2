//! The command's logging: `--log-level` and `RUST_LOG` select what the tracing subscriber
//! shows (the runtime's own events included), and a bad filter is a clear error. (Progress
//! lines are tested in `cli/src/bench/progress.rs`.)

use std::process::Command;

fn faultless() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultless"))
}

#[test]
fn log_level_and_rust_log_select_runtime_events() {
    let out = faultless()
        .args(["--log-level", "debug", "probe"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DEBUG") && stderr.contains("faultless_runtime"),
        "the runtime's debug events are shown:\n{stderr}"
    );

    let out = faultless()
        .arg("probe")
        .env("RUST_LOG", "faultless_runtime=debug")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEBUG"));

    let out = faultless()
        .arg("probe")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("DEBUG"), "quiet by default:\n{stderr}");

    let out = faultless()
        .args(["--log-level", "bad[[", "probe"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--log-level"), "{stderr}");
}

#[test]
fn serve_logs_the_store_and_its_clients_at_debug() {
    use std::io::{BufRead, BufReader, Write};
    let data = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("logging-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&data);
    let mut child = faultless()
        .args(["--log-level", "debug", "serve", "--port", "0", "--data"])
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.split_whitespace().nth(4).unwrap().to_string();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n").unwrap();
    let _ = std::io::Read::read(&mut c, &mut [0u8; 64]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "store opened",
        "client connected",
        "checkpoint done",
        "shutting down",
    ] {
        assert!(stderr.contains(want), "{want:?} missing from:\n{stderr}");
    }
    let _ = std::fs::remove_file(&data);
}
