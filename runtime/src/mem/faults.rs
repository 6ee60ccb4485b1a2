//! The calling thread's own page-fault counters, from `getrusage(RUSAGE_THREAD)`.

/// Major and minor page faults taken by one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadFaults {
    /// Faults that had to wait for I/O.
    pub major: u64,
    /// Faults served from memory (page cache hit, or a page mapped in).
    pub minor: u64,
}

impl ThreadFaults {
    /// Faults taken since `earlier`.
    pub fn since(&self, earlier: &ThreadFaults) -> ThreadFaults {
        ThreadFaults {
            major: self.major.saturating_sub(earlier.major),
            minor: self.minor.saturating_sub(earlier.minor),
        }
    }
}

/// The calling thread's fault counters so far.
pub fn thread_faults() -> ThreadFaults {
    // SAFETY: rusage is plain old data; getrusage fills it and touches nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is valid on Linux 2.6.26+.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    if rc != 0 {
        return ThreadFaults::default();
    }
    ThreadFaults {
        major: ru.ru_majflt as u64,
        minor: ru.ru_minflt as u64,
    }
}
