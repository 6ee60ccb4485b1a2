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

/// Runs `faultless ARGS`, failing the test instead of hanging if it does not finish.
fn run_bounded(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut child = faultless()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("faultless {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Issue 8, item 5: a FIFO is refused at once (it used to hang the CLI), and an existing
/// empty file is an empty store for the CLI as for the server (which initialises it).
#[test]
fn fifo_is_refused_and_an_empty_file_is_an_empty_store() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-cli-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for cmd in ["stat", "check", "dump"] {
        let out = run_bounded(&["store".as_ref(), cmd.as_ref(), fifo.as_os_str()]);
        assert!(!out.status.success(), "{cmd} on a FIFO");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("a FIFO"), "{cmd}: {err}");
    }
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let out = run_bounded(&["store".as_ref(), "stat".as_ref(), empty.as_os_str()]);
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stat.contains("keys:        0"),
        "{stat}"
    );
    let out = run_bounded(&["store".as_ref(), "check".as_ref(), empty.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run_bounded(&["store".as_ref(), "dump".as_ref(), empty.as_os_str()]);
    assert!(out.status.success() && out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 8, item 2: `stat` says when the newest meta page was invalid and which commit
/// was lost; `check` fails on it.
#[test]
fn damaged_newest_meta_is_reported_by_stat_and_check() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-cli-meta-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("m.db");
    let tsv = dir.join("in.tsv");
    std::fs::write(&tsv, "a\t1\nb\t2\n").unwrap();
    for _ in 0..2 {
        // The first load bulk-loads (commit 1), the second goes through a transaction (2).
        let out = run_bounded(&[
            "store".as_ref(),
            "load".as_ref(),
            db.as_os_str(),
            tsv.as_os_str(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Commit 2's meta is page 0: damage a byte of its body (not its txid fields).
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[60] ^= 0xff;
    std::fs::write(&db, &bytes).unwrap();
    let out = run_bounded(&["store".as_ref(), "stat".as_ref(), db.as_os_str()]);
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stat}");
    assert!(stat.contains("commit 2") && stat.contains("LOST"), "{stat}");
    assert!(stat.contains("txid:        1"), "{stat}");
    let out = run_bounded(&["store".as_ref(), "check".as_ref(), db.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("LOST"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Commits only in the log (not yet checkpointed) are what `stat` reports, `check` verifies
/// and `dump` prints; a damaged record in the middle of the log makes every command fail
/// with an error that names the segment and offset.
#[test]
fn stat_check_and_dump_see_the_log() {
    use faultless::store::{Store, StoreOptions};
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-cli-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("l.db");
    let rt = faultless::Runtime::new().unwrap();
    rt.block_on(async {
        let options = StoreOptions::new().checkpoint_interval(std::time::Duration::MAX);
        let store = Store::open(&db, options).await.unwrap();
        for i in 0..30u32 {
            store
                .put(format!("k{i:02}").as_bytes(), format!("v{i}").as_bytes())
                .await
                .unwrap();
        }
    });
    drop(rt);
    let out = run_bounded(&["store".as_ref(), "stat".as_ref(), db.as_os_str()]);
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stat}");
    assert!(stat.contains("keys:        30"), "{stat}");
    assert!(
        stat.contains("30 commit(s) after the checkpoint, 1 to 30"),
        "{stat}"
    );
    let out = run_bounded(&["store".as_ref(), "check".as_ref(), db.as_os_str()]);
    let check = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{check}");
    assert!(check.contains("log commits:         30"), "{check}");
    let out = run_bounded(&["store".as_ref(), "dump".as_ref(), db.as_os_str()]);
    let dump = String::from_utf8_lossy(&out.stdout);
    assert_eq!(dump.lines().count(), 30);
    assert!(dump.contains("k29\tv29\n"), "{dump}");

    // Damage the body of the tenth frame (one commit each): commits 11.. are behind it.
    let seg = dir.join("l.db-wal.0");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut at = 4096usize;
    for _ in 0..10 {
        let body = u64::from_le_bytes(bytes[at + 24..at + 32].try_into().unwrap()) as usize;
        at += (48 + body).next_multiple_of(8);
    }
    bytes[at + 50] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    for cmd in ["stat", "check", "dump"] {
        let out = run_bounded(&["store".as_ref(), cmd.as_ref(), db.as_os_str()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd} must fail");
        assert!(
            err.contains(&format!("offset {at}")) && err.contains("l.db-wal.0"),
            "{cmd}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
