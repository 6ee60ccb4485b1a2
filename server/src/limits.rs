//! File descriptors: the process's open-file limit, and how many clients fit in it.
//!
//! As Redis does, the server raises its soft `RLIMIT_NOFILE` to the hard limit at start
//! ([`raise_fd_limit`]), and if `--max-clients` connections would not fit in what it got, it
//! serves fewer, keeping [`RESERVED_FDS`] for its own files (the store, the ring, listeners):
//! clients past the limit get Redis's `-ERR max number of clients reached` instead of waiting
//! in the listen queue for an accept that cannot succeed.

use std::io;

/// File descriptors kept for the server's own use (Redis's `CONFIG_MIN_RESERVED_FDS`).
pub const RESERVED_FDS: u64 = 32;

/// The soft and hard `RLIMIT_NOFILE`.
fn get() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass and touches nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// The soft open-file limit: how many file descriptors the process may have.
pub fn fd_limit() -> io::Result<u64> {
    get().map(|l| l.rlim_cur)
}

/// Raises the soft open-file limit as far as the hard limit allows (an unlimited hard limit
/// means the kernel's `fs.nr_open`), and returns the soft limit in force afterwards.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = get()?;
    let ceiling = if lim.rlim_max == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        lim.rlim_max
    };
    if lim.rlim_cur < ceiling {
        lim.rlim_cur = ceiling;
        // SAFETY: setrlimit reads the struct we pass and touches nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    fd_limit()
}

/// How many clients to serve: `requested`, or fewer if that many would not fit in `fd_limit`
/// descriptors (at least one).
pub fn clients_that_fit(requested: usize, fd_limit: u64) -> usize {
    let fit = fd_limit.saturating_sub(RESERVED_FDS).max(1);
    requested
        .min(usize::try_from(fit).unwrap_or(usize::MAX))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_fit_in_the_fd_limit() {
        assert_eq!(clients_that_fit(10_000, 1_048_576), 10_000);
        assert_eq!(clients_that_fit(10_000, 1024), 992);
        assert_eq!(clients_that_fit(10_000, 64), 32);
        assert_eq!(clients_that_fit(10_000, 10), 1);
        assert_eq!(clients_that_fit(0, 1024), 1);
    }

    #[test]
    fn raising_never_lowers() {
        let before = fd_limit().unwrap();
        assert!(raise_fd_limit().unwrap() >= before);
    }
}
