//! The SIGBUS safety net handles faults in the runtime's mappings and passes every other
//! SIGBUS to the handler that was installed before it.
//!
//! One test in its own binary: signal handlers are process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};

use faultless_runtime::mem::{page_size, MapOptions, Mapping};
use faultless_runtime::Runtime;

static PREVIOUS_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The application's own SIGBUS handler: counts, and maps a zero page over the faulting page
/// so the access can be retried.
extern "C" fn previous_handler(
    _sig: libc::c_int,
    info: *mut libc::siginfo_t,
    _: *mut libc::c_void,
) {
    PREVIOUS_CALLS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = page_size();
    // SAFETY: replaces the faulting page of the test's own mapping with a zero page.
    unsafe {
        libc::mmap(
            (addr & !(page - 1)) as *mut libc::c_void,
            page,
            libc::PROT_READ,
            libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
    }
}

fn truncate(path: &std::path::Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn sigbus_outside_the_runtime_mappings_reaches_the_previous_handler() {
    let page = page_size();
    // SAFETY: sigaction structs are plain old data; installs a handler that only uses atomics
    // and mmap.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = previous_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()),
            0
        );
    }
    let dir = std::env::temp_dir();
    let ours = dir.join(format!("faultless-sigbus-ours-{}", std::process::id()));
    let theirs = dir.join(format!("faultless-sigbus-theirs-{}", std::process::id()));
    std::fs::write(&ours, vec![1u8; 2 * page]).unwrap();
    std::fs::write(&theirs, vec![2u8; 2 * page]).unwrap();

    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Opening a mapping installs the runtime's handler on top of the application's.
        // SAFETY: no guard is alive when the file is truncated below.
        let map = unsafe { Mapping::open(&ours, MapOptions::new()) }.unwrap();
        assert_eq!(map.read(page as u64..page as u64 + 1).await.unwrap()[0], 1);

        // A mapping the runtime knows nothing about.
        let file = std::fs::File::open(&theirs).unwrap();
        // SAFETY: the test reads the mapping only through volatile reads below.
        let other = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        truncate(&theirs);
        // SAFETY: inside the mapping; the page vanished, so this raises SIGBUS, which goes
        // to the application's handler through the runtime's.
        let byte = unsafe { std::ptr::read_volatile(other.as_ptr().add(page)) };
        assert_eq!(byte, 0);
        assert_eq!(
            PREVIOUS_CALLS.load(Ordering::SeqCst),
            1,
            "the previous handler ran"
        );

        // A fault in the runtime's own mapping stays with the runtime.
        truncate(&ours);
        let byte = map
            .try_read(page as u64..page as u64 + 1)
            .expect("the stale residency record says resident")[0];
        assert_eq!(byte, 0, "the vanished page reads as zeros");
        assert!(map.check_intact().is_err());
        assert_eq!(PREVIOUS_CALLS.load(Ordering::SeqCst), 1, "not passed on");
    });
    std::fs::remove_file(&ours).unwrap();
    std::fs::remove_file(&theirs).unwrap();
}
