//! The page-in threads' priority. A test binary of its own: it looks at every thread of the
//! process by name, so no other test may start mappings meanwhile.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use faultless_runtime::mem::{Backend, MapOptions, Mapping, PAGE_IN_NICE};

/// The nice value of each thread of this process whose name starts with `prefix`.
fn nice_of_threads(prefix: &str) -> Vec<i32> {
    let mut nices = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread exited meanwhile
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        // After the parenthesised name come the fields from the third (state) on; the
        // nice value is the 19th.
        let fields = &stat[stat.rfind(')').unwrap() + 2..];
        nices.push(fields.split(' ').nth(16).unwrap().parse().unwrap());
    }
    nices
}

/// Waits until every thread named `prefix*` runs at `nice` (threads set their priority as
/// they start); panics after 10 s.
fn wait_for_nice(prefix: &str, nice: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nices = nice_of_threads(prefix);
        if !nices.is_empty() && nices.iter().all(|&n| n == nice) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{prefix}* threads at nice {nices:?}, expected {nice}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// This thread's nice value.
fn own_nice() -> i32 {
    // SAFETY: getpriority reads a value; gettid names this thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

/// The page-in threads (the residency keeper, a mapping's helper pool) run at the lowest
/// priority by default, so on a machine with few CPUs they never keep the executor waiting
/// for one; a mapping can ask for another value, which never raises them above the
/// process's own; the caller's thread keeps its priority.
#[test]
fn page_in_threads_run_at_the_configured_nice_value() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("page-in-priority-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 64 * 4096]).unwrap();
    let before = own_nice();
    // SAFETY: the file is written above and never while it is mapped (so for all opens).
    let keeper = unsafe { Mapping::open(&path, MapOptions::new().backend(Backend::UringThread)) };
    // SAFETY: as above.
    let helpers = unsafe { Mapping::open(&path, MapOptions::new().backend(Backend::Helper)) };
    let (keeper, helpers) = (keeper.unwrap(), helpers.unwrap());
    // Threads only ever go down to the value asked for: under `nice -n 10 cargo test` a
    // thread asked for 7 stays at 10.
    wait_for_nice("faultless-keepe", PAGE_IN_NICE.max(before));
    wait_for_nice("faultless-helpe", PAGE_IN_NICE.max(before));
    drop((keeper, helpers));
    // SAFETY: as above.
    let chosen = unsafe {
        Mapping::open(
            &path,
            MapOptions::new()
                .backend(Backend::UringThread)
                .page_in_nice(7),
        )
    }
    .unwrap();
    wait_for_nice("faultless-keepe", 7.max(before));
    drop(chosen);
    assert_eq!(own_nice(), before, "the calling thread's priority changed");
    std::fs::remove_file(&path).ok();
}
