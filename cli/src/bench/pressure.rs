//! Real memory pressure for the benchmarks: leave only `SIZE` bytes for the page cache.
//!
//! A benchmark that runs with gigabytes of free memory never sees the kernel take a page
//! away again, so it cannot see the residency record go stale. [`PageCacheLimit`] makes the
//! kernel reclaim for real, in one of two ways, preferring the first:
//!
//! 1. **A memory cgroup** (v2 `memory.max`, or v1 `memory.limit_in_bytes`) created under the
//!    process's own cgroup, limited to `SIZE` plus a small allowance for the process's new
//!    anonymous memory, and the process moved into it. Page-cache pages the process reads
//!    from then on are charged to it, so the kernel reclaims them once `SIZE` is used, as it
//!    would on a machine with that little memory; the rest of the machine is untouched.
//!    Needs write access to the cgroup tree (root, or a delegated subtree).
//! 2. **Anonymous memory** held by the process (written, so it is really allocated; there is
//!    no swap to push it out to): `MemAvailable - SIZE` bytes. This squeezes the whole
//!    machine, so it refuses when it would leave less than a safety margin for everyone
//!    else, and says why.
//!
//! Dropping the limit moves the process back and removes the cgroup, or frees the memory.

use std::io;
use std::path::{Path, PathBuf};

/// Anonymous memory the process may still allocate inside its cgroup besides the page cache.
const CGROUP_ALLOWANCE: u64 = 64 << 20;
/// What the anonymous-memory fallback always leaves for the rest of the machine.
const SAFETY_MARGIN: u64 = 1 << 30;

/// How the limit was made.
#[derive(Debug)]
enum Method {
    /// A cgroup directory (to remove) and the cgroup.procs file of the one we came from.
    Cgroup { dir: PathBuf, parent_procs: PathBuf },
    /// Anonymous memory held until drop.
    Hog { addr: usize, len: usize },
}

/// While alive, only about `size` bytes of memory are left for this process's page cache.
#[derive(Debug)]
pub struct PageCacheLimit {
    size: u64,
    method: Method,
}

impl PageCacheLimit {
    /// Limits the page cache left to this process to about `size` bytes: a memory cgroup
    /// where one can be made, otherwise held anonymous memory. Errors say why neither works.
    pub fn apply(size: u64) -> io::Result<PageCacheLimit> {
        match cgroup_limit(size) {
            Ok(method) => Ok(PageCacheLimit { size, method }),
            Err(cgroup_err) => match hog(size) {
                Ok(method) => Ok(PageCacheLimit { size, method }),
                Err(hog_err) => Err(io::Error::new(
                    hog_err.kind(),
                    format!(
                        "cannot leave only {} MiB for the page cache: no memory cgroup \
                         ({cgroup_err}), and {hog_err}",
                        size >> 20
                    ),
                )),
            },
        }
    }

    /// How the limit is enforced, for reports.
    pub fn describe(&self) -> String {
        match &self.method {
            Method::Cgroup { dir, .. } => format!(
                "memory cgroup {} ({} MiB for the page cache)",
                dir.display(),
                self.size >> 20
            ),
            Method::Hog { len, .. } => format!(
                "{} MiB of anonymous memory held ({} MiB left for the page cache)",
                len >> 20,
                self.size >> 20
            ),
        }
    }
}

impl Drop for PageCacheLimit {
    fn drop(&mut self) {
        match &self.method {
            Method::Cgroup { dir, parent_procs } => {
                let _ = std::fs::write(parent_procs, std::process::id().to_string());
                // Charges left in the cgroup (page cache) move to the parent on removal.
                let _ = std::fs::remove_dir(dir);
            }
            Method::Hog { addr, len } => {
                // SAFETY: unmaps exactly the anonymous mapping `hog` created; nothing else
                // refers to it.
                unsafe { libc::munmap(*addr as *mut libc::c_void, *len) };
            }
        }
    }
}

/// The memory controller's directory for this process: (controller root, our path in it,
/// cgroup v2?).
fn own_memory_cgroup() -> io::Result<(PathBuf, String, bool)> {
    let text = std::fs::read_to_string("/proc/self/cgroup")?;
    // v1: "4:memory:/path"; v2: "0::/path".
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        if let (Some(c), Some(p)) = (controllers, path) {
            if c.split(',').any(|c| c == "memory") {
                return Ok((PathBuf::from("/sys/fs/cgroup/memory"), p.to_string(), false));
            }
        }
    }
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("0::") {
            for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                let root = PathBuf::from(root);
                let controllers = root
                    .join(p.trim_start_matches('/'))
                    .join("cgroup.controllers");
                if std::fs::read_to_string(&controllers)
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
                {
                    return Ok((root, p.to_string(), true));
                }
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "this process has no memory cgroup controller",
    ))
}

fn cgroup_limit(size: u64) -> io::Result<Method> {
    let (root, own, v2) = own_memory_cgroup()?;
    let parent = root.join(own.trim_start_matches('/'));
    let dir = parent.join(format!("faultless-bench-{}", std::process::id()));
    std::fs::create_dir(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let limit = (size + CGROUP_ALLOWANCE).to_string();
    let setup = || -> io::Result<()> {
        if v2 {
            write(&dir.join("memory.max"), &limit)?;
            // No swap here, but make sure none is used where there is.
            let _ = write(&dir.join("memory.swap.max"), "0");
        } else {
            write(&dir.join("memory.limit_in_bytes"), &limit)?;
        }
        write(&dir.join("cgroup.procs"), &std::process::id().to_string())
    };
    if let Err(e) = setup() {
        let _ = std::fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(Method::Cgroup {
        dir,
        parent_procs: parent.join("cgroup.procs"),
    })
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// `MemAvailable` from /proc/meminfo, in bytes.
pub fn mem_available() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib << 10)
        .ok_or_else(|| io::Error::other("/proc/meminfo has no MemAvailable"))
}

fn hog(size: u64) -> io::Result<Method> {
    let available = mem_available()?;
    let len = available.saturating_sub(size);
    if len == 0 {
        return Err(io::Error::other(format!(
            "only {} MiB are available: nothing to hold",
            available >> 20
        )));
    }
    if size < SAFETY_MARGIN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "holding {} MiB of anonymous memory would leave {} MiB for the whole machine \
                 (at least {} MiB are kept free when no memory cgroup can be used)",
                len >> 20,
                size >> 20,
                SAFETY_MARGIN >> 20
            ),
        ));
    }
    let len = len as usize;
    // SAFETY: a fresh private anonymous mapping; we are its only user and unmap it on drop.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Write every page so it is really allocated (no swap: it stays).
    // SAFETY: the range lies inside the mapping just made, which is readable and writable.
    unsafe {
        let page = 4096;
        let mut off = 0;
        while off < len {
            std::ptr::write_volatile((addr as *mut u8).add(off), 1);
            off += page;
        }
    }
    Ok(Method::Hog {
        addr: addr as usize,
        len,
    })
}
