//! Running out of space (issue 8, item 4; issue 11): when the data file cannot grow,
//! checkpoints fail cleanly (nothing half-applied, the allocator's memory undone) while
//! commits go on in the log; when the log cannot grow, commits fail whole and are rolled
//! back; and both resume as soon as there is room again, without a restart, even when the
//! room is smaller than the files' usual growth steps.
//!
//! A full disk is simulated without root by a file size limit (`RLIMIT_FSIZE`, with
//! `SIGXFSZ` ignored, growing the file fails with `EFBIG`). The limit applies to a whole
//! process, so the scenario runs in a child process: the ignored test `enospc_child`, which
//! only the parent test below starts (the test binary with `--ignored --exact`).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{key, value, TempPath};
use faultless_runtime::Runtime;
use faultless_store::{Error, Store, StoreOptions};

const CHILD_ENV: &str = "FAULTLESS_ENOSPC_CHILD";

fn set_file_size_limit(bytes: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit fill and read a plain struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// Commits `n` puts of 3,000-byte values from key `*next` on; true if the commit succeeded.
async fn commit_batch(store: &Store, next: &mut u64, n: u64) -> Result<(), Error> {
    let mut txn = store.write_txn().await?;
    for i in *next..*next + n {
        txn.put(&key(i), &value(i, 3000)).await?;
    }
    txn.commit().await?;
    *next += n;
    Ok(())
}

async fn assert_whole(store: &Store, acked: u64) {
    let report = store.check().await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(store.len(), acked);
    for i in (0..acked).step_by(37).chain([acked.saturating_sub(1)]) {
        let v = store.get(&key(i)).await.unwrap().expect("acknowledged key");
        assert_eq!(&*v, &value(i, 3000)[..]);
    }
}

/// The size of the largest log segment.
fn largest_segment(path: &str) -> u64 {
    (0..3)
        .filter_map(|slot| std::fs::metadata(format!("{path}-wal.{slot}")).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

fn is_efbig(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.raw_os_error() == Some(libc::EFBIG))
        || e.to_string().contains("File too large")
}

#[test]
#[ignore = "the child of writes_resume_as_soon_as_space_returns: it lowers RLIMIT_FSIZE for its whole process"]
fn enospc_child() {
    let path = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!("enospc_child runs only when writes_resume_as_soon_as_space_returns starts it")
    });
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Checkpoints only when asked, so each phase controls which file must grow.
        let options = StoreOptions::new()
            .checkpoint_interval(Duration::MAX)
            .checkpoint_log_bytes(1 << 30)
            .memtable_bytes(1 << 30);
        let store = Store::open(&path, options.clone()).await.unwrap();
        let mut next = 0u64;
        // Grow the file past 4 MiB: its next growth step is then 4 MiB or more.
        while store.stats().file_size < 4 << 20 {
            commit_batch(&store, &mut next, 50).await.unwrap();
            store.checkpoint().await.unwrap();
        }

        // 1. The data file cannot grow: checkpoints fail, cleanly; commits go on in the log.
        let size = store.stats().file_size;
        set_file_size_limit(size.max(largest_segment(&path)) + (64 << 10));
        let mut failed = None;
        for _ in 0..1000 {
            commit_batch(&store, &mut next, 20).await.unwrap();
            if let Err(e) = store.checkpoint().await {
                failed = Some(e);
                break;
            }
        }
        let err = failed.expect("the file size limit must stop the checkpoints");
        assert!(is_efbig(&err), "{err}");
        assert!(store.stats().checkpoint_error.is_some());
        commit_batch(&store, &mut next, 20).await.unwrap();
        // Nothing half-applied; the allocator's memory agrees with the freelist (check).
        assert_whole(&store, next).await;
        // With a little room (a quarter of the growth step), the next checkpoint succeeds.
        set_file_size_limit(store.stats().file_size.max(largest_segment(&path)) + (1 << 20));
        store.checkpoint().await.unwrap();
        assert_eq!(store.stats().log_commits, 0);
        assert_whole(&store, next).await;

        // 2. The log cannot grow: a commit fails whole (rolled back, changing nothing),
        // the store stays writable, and commits resume when there is room.
        let size = store.stats().file_size;
        set_file_size_limit(size.max(largest_segment(&path)) + (64 << 10));
        let mut failed = None;
        for _ in 0..2000 {
            if let Err(e) = commit_batch(&store, &mut next, 20).await {
                failed = Some(e);
                break;
            }
        }
        let err = failed.expect("the file size limit must stop the log");
        assert!(is_efbig(&err), "{err}");
        assert_whole(&store, next).await;
        set_file_size_limit(size.max(largest_segment(&path)) + (1 << 20));
        let mut resumed = 0;
        while commit_batch(&store, &mut next, 20).await.is_ok() {
            resumed += 1;
            assert!(resumed < 1000);
        }
        assert!(resumed > 0, "commits did not resume with 1 MiB free");
        assert_whole(&store, next).await;

        // All the room back.
        set_file_size_limit(u64::MAX);
        for _ in 0..20 {
            commit_batch(&store, &mut next, 20).await.unwrap();
        }
        store.checkpoint().await.unwrap();
        assert_whole(&store, next).await;
        drop(store);
        let store = Store::open(&path, options).await.unwrap();
        assert_whole(&store, next).await;
        println!("enospc child: ok after {next} puts ({resumed} commits in the 1 MiB of log room)");
    });
}

#[test]
fn writes_resume_as_soon_as_space_returns() {
    let path = TempPath::new("enospc");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "enospc_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("enospc child: ok"),
        "child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
