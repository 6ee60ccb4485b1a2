//! The main job, run small: `faultless bench` on a 64 MiB file must measure every path and
//! write the JSON report with the documented fields.

use std::process::Command;

#[test]
fn bench_runs_every_path_and_writes_json() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_faultless"))
        .args([
            "bench",
            "--size",
            "64M",
            "--seconds",
            "0.2",
            "--concurrency",
            "1,4",
            "--pressure-seconds",
            "0.3",
            "--device-probe-seconds",
            "0.1",
        ])
        .arg("--file")
        .arg(dir.join("data"))
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(dir.join("plots"))
        .arg("--no-drop-caches")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("device limit"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "device_limit_iops",
        "hot_only_p99_us",
        "hot_only_end_p99_us",
        "resident_read_ns_api",
        "resident_read_ns_raw",
    ] {
        assert!(
            report[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {report}"
        );
    }
    let runs = report["runs"].as_array().unwrap();
    let backends: Vec<&str> = runs
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    for b in [
        "blocking",
        "helper",
        "uring-madvise",
        "uring-read",
        "uring-thread",
        "tokio-spawn-blocking",
    ] {
        assert_eq!(
            backends.iter().filter(|x| **x == b).count(),
            2,
            "{b} at 1 and 4 tasks"
        );
    }
    for r in runs {
        assert!(r["cold_reads_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["device_limit_iops"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["other_cpu_us_per_read"].as_f64().unwrap() >= 0.0, "{r}");
        for key in [
            "concurrency",
            "executor_major_faults",
            "hot_p50_us",
            "hot_p99_us",
            "hot_p999_us",
        ] {
            assert!(r[key].as_u64().is_some(), "{key} in {r}");
        }
        if r["backend"] != "blocking" {
            // Data pages never fault the executor on these paths; a fault or two can be the
            // binary's own code read back after other tests' memory pressure evicted it
            // (seen once on a loaded machine), never one per cold read.
            let faults = r["executor_major_faults"].as_u64().unwrap();
            assert!(faults <= 2, "{r}");
        }
    }
    // The pressure runs: re-read workloads with only a third of the file's size left for the
    // page cache. Where no memory cgroup can be made (and holding memory would leave the
    // machine short), they are skipped with a reason; either way the report says which.
    let note = report["pressure_note"].as_str().expect("pressure_note");
    let pressure = report["pressure_runs"].as_array().unwrap();
    if note.starts_with("pressure runs skipped") {
        assert!(pressure.is_empty(), "{note}");
    } else {
        assert!(note.contains("under pressure"), "{note}");
        let workloads: Vec<&str> = pressure
            .iter()
            .map(|r| r["workload"].as_str().unwrap())
            .collect();
        assert!(workloads.contains(&"uniform") && workloads.contains(&"zipf"));
        for r in pressure {
            assert!(r["reads_per_s"].as_f64().unwrap() > 0.0, "{r}");
            assert!(r["device_limit_iops"].as_f64().unwrap() > 0.0, "{r}");
            assert!(r["faults_per_1000_reads"].as_f64().is_some(), "{r}");
        }
    }
    assert!(dir.join("plots/throughput.svg").exists());
    assert!(dir.join("plots/hot_latency_cdf.svg").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `faultless bench store`, run small: every engine measured, the commit rounds taken in
/// turns, and the crash-reopen check finding no acknowledged write lost.
#[test]
fn bench_store_measures_every_engine_and_loses_nothing_at_the_crash() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-store-smoke-{}", std::process::id()));
    let json = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-store-smoke-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_faultless"))
        .args([
            "bench",
            "store",
            "--keys",
            "3000",
            "--seconds",
            "0.1",
            "--rounds",
            "2",
            "--kill-after",
            "0.5",
        ])
        .arg("--dir")
        .arg(&dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench store failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 writer vs lmdb, round by round"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for engine in ["faultless", "lmdb", "redb"] {
        for key in [
            "hot_gets_per_s",
            "cold_gets_per_s",
            "commits_1_writer_per_s",
            "commits_64_writers_per_s",
        ] {
            assert!(
                report[engine][key].as_f64().is_some_and(|v| v > 0.0),
                "{engine}.{key}: {report}"
            );
        }
    }
    assert_eq!(report["commit_rounds"].as_array().unwrap().len(), 2);
    assert!(
        report["wal"]["reopen_acked_writes"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_eq!(
        report["wal"]["reopen_lost_writes"].as_u64(),
        Some(0),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&json);
}
