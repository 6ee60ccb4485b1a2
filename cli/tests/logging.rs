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
