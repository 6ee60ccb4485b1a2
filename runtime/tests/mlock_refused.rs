//! When mlock is refused, the helper pool says so and falls back to MADV_POPULATE_READ, and a
//! default mapping says it cannot pin and runs without pinning.
//!
//! Its own test binary: it lowers RLIMIT_MEMLOCK to zero for the whole process and, when run
//! as root, drops CAP_IPC_LOCK from this thread (helper threads inherit it), so mlock is
//! refused as it is for an unprivileged process.

use faultless_runtime::mem::{Backend, MapOptions, Mapping, Primitive, ResidencyMode};
use faultless_runtime::Runtime;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;
const CAP_IPC_LOCK: u32 = 14;

fn drop_ipc_lock_capability() {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the syscalls define;
    // they affect only the calling thread's credentials.
    unsafe {
        assert_eq!(
            libc::syscall(
                libc::SYS_capget,
                &mut hdr as *mut CapHeader,
                data.as_mut_ptr()
            ),
            0
        );
        data[0].effective &= !(1 << CAP_IPC_LOCK);
        data[0].permitted &= !(1 << CAP_IPC_LOCK);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()),
            0
        );
    }
}

#[test]
fn mlock_refusal_is_reported_and_reads_still_work() {
    // The ring is created first: io_uring charges its rings to RLIMIT_MEMLOCK too.
    let rt = Runtime::new().unwrap();
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) }, 0);
    drop_ipc_lock_capability();

    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mlock-refused-{}", std::process::id()));
    std::fs::write(&path, vec![5u8; 16 * 4096]).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();

    rt.block_on(async {
        let options = MapOptions::new()
            .backend(Backend::Helper)
            .primitive(Primitive::Mlock)
            .helper_threads(2);
        // SAFETY: the file was written above and nothing writes it while it is mapped.
        let map = unsafe { Mapping::open(&path, options) }.unwrap();
        map.evict_all().unwrap();
        for p in 0..16u64 {
            assert_eq!(map.read(p * 4096..p * 4096 + 1).await.unwrap()[0], 5);
        }
        let s = map.stats();
        let msg = s
            .mlock_fallback
            .expect("mlock must have been refused and reported");
        assert!(
            msg.contains("mlock refused") && msg.contains("MADV_POPULATE_READ"),
            "{msg}"
        );
        assert_eq!(s.locked_bytes, 0);
        assert_eq!(s.pages_brought_in, 16);

        // The default mapping cannot pin (mlock2 refused), and here not even the keeper's
        // ring fits the memlock limit: it must say so, and reads must still work.
        // SAFETY: as above.
        let map = unsafe { Mapping::open(&path, MapOptions::new()) }.unwrap();
        map.evict_all().unwrap();
        for p in 0..16u64 {
            assert_eq!(map.read(p * 4096..p * 4096 + 1).await.unwrap()[0], 5);
        }
        let r = map.stats().residency;
        assert_ne!(r.mode, Some(ResidencyMode::Pinned));
        let why = r.fallback.expect("the fallback names its reason");
        assert!(why.contains("mlock2") || why.contains("keeper"), "{why}");
    });
    std::fs::remove_file(&path).unwrap();
}
