//! redis-py (the Python client, latest, default settings: RESP3) runs its ordinary checks
//! against the server: cli/tests/server/py/redis_py_checks.py. Skipped, with a message saying
//! so, where python3's `redis` package is not installed (`pip install redis`).

use std::process::Command;

use crate::harness::{temp, Server};

#[test]
fn redis_py_ordinary_checks_pass() {
    let probe = Command::new("python3")
        .args(["-c", "import redis"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("SKIPPED redis_py_ordinary_checks_pass: python3 cannot import redis (pip install redis)");
        eprintln!("SKIPPED redis_py_ordinary_checks_pass: python3 cannot import redis (pip install redis)");
        return;
    }
    let data = temp("redis-py");
    let s = Server::start(&data, &[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/server/py/redis_py_checks.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(&s.port)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "redis-py checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
