//! The system calls the residency keeper needs that libc does not wrap: `mlock2`,
//! `pidfd_open`, `process_madvise`, `cachestat`, and batched `madvise` over many ranges.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Lowers the calling thread's priority to nice `nice` (`setpriority` on its thread id),
/// never raising it: a thread already at a higher nice value (a process started with
/// `nice -n 15`) keeps its own. Lowering a priority needs no privilege.
pub(crate) fn lower_thread_priority(nice: i32) -> io::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    // getpriority returns the nice value, which may be -1: errno tells an error apart.
    // SAFETY: __errno_location points at this thread's errno; getpriority reads a value.
    let current = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    };
    if current == -1 && io::Error::last_os_error().raw_os_error() != Some(0) {
        return Err(io::Error::last_os_error());
    }
    if nice <= current {
        return Ok(());
    }
    // SAFETY: setpriority changes only the scheduling weight of the thread named, this one.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `MLOCK_ONFAULT`: lock pages as they are faulted in, not all at once.
const MLOCK_ONFAULT: libc::c_uint = 1;
/// `MADV_DONTNEED_LOCKED` (Linux 5.18): `MADV_DONTNEED` that also applies to locked pages.
pub(crate) const MADV_DONTNEED_LOCKED: i32 = 24;
/// `MADV_POPULATE_READ` (Linux 5.14).
pub(crate) const MADV_POPULATE_READ: i32 = libc::MADV_POPULATE_READ;
/// Syscall numbers not in every libc version.
const SYS_PROCESS_MADVISE: libc::c_long = 440;
const SYS_CACHESTAT: libc::c_long = 451;
/// The most iovecs one `process_madvise` call takes (UIO_MAXIOV).
const IOV_MAX: usize = 1024;

/// `mlock2(addr, len, MLOCK_ONFAULT)`: pages of the range are locked as they are faulted in.
///
/// # Safety
/// `addr..addr + len` must be a mapping of ours; locking changes no memory.
pub(crate) unsafe fn mlock_onfault(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller passes a range of its own mapping; mlock2 only sets flags on it.
    let rc = unsafe { libc::syscall(libc::SYS_mlock2, addr, len, MLOCK_ONFAULT) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pidfd for this process, for `process_madvise` on our own address space.
pub(crate) fn own_pidfd() -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Applies `advice` to every range of `ranges` (address, length) of our own mapping: one
/// `process_madvise` per 1,024 ranges where the kernel accepts that advice for the calling
/// process (Linux 6.13+ takes any advice), `madvise` per range otherwise. Returns the first
/// error with the range it hit; the ranges before it were advised.
///
/// # Safety
/// Every range must lie inside a live mapping of ours for which `advice` is sound (populate
/// and don't-need advice on a read-only shared file mapping change no bytes a reader sees).
pub(crate) unsafe fn advise_ranges(
    pidfd: Option<&OwnedFd>,
    ranges: &[(usize, usize)],
    advice: i32,
) -> Result<(), (usize, io::Error)> {
    use std::os::fd::AsRawFd;
    let mut done = 0;
    if let Some(pidfd) = pidfd {
        let mut iov: Vec<libc::iovec> = Vec::with_capacity(ranges.len().min(IOV_MAX));
        while done < ranges.len() {
            let chunk = &ranges[done..(done + IOV_MAX).min(ranges.len())];
            iov.clear();
            iov.extend(chunk.iter().map(|&(addr, len)| libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: len,
            }));
            // SAFETY: the iovecs describe ranges of our own mapping (the caller's contract)
            // and live across the call; the kernel only reads them.
            let rc = unsafe {
                libc::syscall(
                    SYS_PROCESS_MADVISE,
                    pidfd.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len(),
                    advice,
                    0,
                )
            };
            let want: usize = chunk.iter().map(|r| r.1).sum();
            if rc < 0 || rc as usize != want {
                // Unsupported here, or a range failed part-way: finish one range at a time,
                // which also finds the failing range and its error.
                break;
            }
            done += chunk.len();
        }
    }
    for (i, &(addr, len)) in ranges.iter().enumerate().skip(done) {
        // SAFETY: a range of our own mapping (the caller's contract).
        if unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) } != 0 {
            return Err((i, io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Page-cache state of a file range, from `cachestat(2)` (Linux 6.5+).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CacheStat {
    /// Pages of the range in the page cache.
    pub(crate) cached: u64,
    /// Pages of the range evicted from it (and not read again since).
    pub(crate) evicted: u64,
}

/// `cachestat` over the whole file; `None` where the kernel lacks it.
pub(crate) fn cachestat(fd: i32) -> Option<CacheStat> {
    cachestat_range(fd, 0, 0)
}

/// `cachestat` over `len` bytes of the file from `off` (`len` 0: to the end); `None` where
/// the kernel lacks it (or refuses the file). Does no I/O.
pub(crate) fn cachestat_range(fd: i32, off: u64, len: u64) -> Option<CacheStat> {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let range = Range { off, len };
    let mut stat = Stat::default();
    // SAFETY: cachestat reads `range` and writes `stat`, both live locals of the declared
    // layouts; the fd is only inspected.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd,
            &range as *const Range,
            &mut stat as *mut Stat,
            0,
        )
    };
    (rc == 0).then_some(CacheStat {
        cached: stat.nr_cache,
        evicted: stat.nr_evicted,
    })
}

/// `mincore` over `len` bytes at `addr` into `out` (one byte per page; bit 0 = in the page
/// cache).
///
/// # Safety
/// `addr..addr + len` must lie inside a live mapping of ours, `addr` page-aligned.
pub(crate) unsafe fn mincore(addr: usize, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let pages = len.div_ceil(super::super::page_size());
    out.clear();
    out.resize(pages, 0);
    // SAFETY: the range is ours (the caller's contract); `out` has one byte per page.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, len, out.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
