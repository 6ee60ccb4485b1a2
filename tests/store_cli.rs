//! `faultless store load|stat|check|dump`, run as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

fn faultless() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultless"))
}

#[test]
fn load_dump_round_trip_check_and_errors() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("s.db");

    // Sorted input with escapes and a large value, on stdin.
    let mut input = String::new();
    for i in 0..5000 {
        let v = if i == 77 {
            "x".repeat(20000)
        } else {
            format!("v\\t{i}\\x00")
        };
        input.push_str(&format!("k{i:06}\t{v}\n"));
    }
    let mut child = faultless()
        .args(["store", "load"])
        .arg(&db)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("loaded 5000 entries"));

    let out = faultless()
        .args(["store", "dump"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        input,
        "dump | load round-trips"
    );

    let out = faultless()
        .args(["store", "check"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = faultless()
        .args(["store", "stat"])
        .arg(&db)
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(stat.contains("keys:        5000"), "{stat}");
    assert!(
        stat.contains("free pages:") && stat.contains("largest free run:"),
        "{stat}"
    );

    // Loading more into a non-empty store goes through transactions (any order).
    let extra = dir.join("extra.tsv");
    std::fs::write(&extra, "zz\t1\naa\t2\n").unwrap();
    let out = faultless()
        .args(["store", "load"])
        .arg(&db)
        .arg(&extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Unsorted input into an empty store, and malformed lines, are clear errors.
    let db2 = dir.join("s2.db");
    std::fs::write(&extra, "b\t1\na\t2\n").unwrap();
    let out = faultless()
        .args(["store", "load"])
        .arg(&db2)
        .arg(&extra)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("strictly increasing"));
    std::fs::write(&extra, "no-tab-line\n").unwrap();
    let out = faultless()
        .args(["store", "load"])
        .arg(&db2)
        .arg(&extra)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));

    // A damaged page makes check fail with a non-zero exit.
    let mut bytes = std::fs::read(&db).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    bytes[n / 3] ^= 0xff;
    bytes[3 * 4096 + 100] ^= 0xff;
    std::fs::write(&db, &bytes).unwrap();
    let out = faultless()
        .args(["store", "check"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success(), "check must fail on a damaged store");

    let out = faultless()
        .args(["store", "stat"])
        .arg(dir.join("missing.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
