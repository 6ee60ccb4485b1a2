//! Setting up the io_uring instance: [`RingMode`] and the fallbacks for older kernels.

use std::io;

use io_uring::IoUring;

/// How the io_uring instance is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingMode {
    /// Try `DeferTaskrun`, then `CoopTaskrun`, then `Plain`, and use the first that works.
    Auto,
    /// `IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG` (Linux 6.1+): completions
    /// are only processed when the executor asks for them, with no interrupts.
    DeferTaskrun,
    /// `IORING_SETUP_COOP_TASKRUN | TASKRUN_FLAG` (Linux 5.19+).
    CoopTaskrun,
    /// No setup flags.
    Plain,
}

/// Builds the ring in the requested mode, falling back to simpler setups on older kernels.
/// The completion queue is four times the submission queue.
pub(crate) fn build_ring(entries: u32, mode: RingMode) -> io::Result<(IoUring, RingMode)> {
    let attempts: &[RingMode] = match mode {
        RingMode::Auto => &[
            RingMode::DeferTaskrun,
            RingMode::CoopTaskrun,
            RingMode::Plain,
        ],
        RingMode::DeferTaskrun => &[RingMode::DeferTaskrun],
        RingMode::CoopTaskrun => &[RingMode::CoopTaskrun],
        RingMode::Plain => &[RingMode::Plain],
    };
    let mut last_err = None;
    for &m in attempts {
        let mut b = IoUring::builder();
        match m {
            RingMode::DeferTaskrun => {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag();
            }
            RingMode::CoopTaskrun => {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            _ => {}
        }
        b.setup_cqsize(entries.saturating_mul(4));
        match b.build(entries) {
            Ok(ring) => return Ok((ring, m)),
            Err(e) => last_err = Some(e),
        }
    }
    let e = last_err.unwrap_or_else(|| io::Error::other("no ring mode to try"));
    let hint = match e.raw_os_error() {
        Some(libc::ENOMEM) => "the ring's memory is charged to RLIMIT_MEMLOCK; raise it (ulimit -l) or use fewer ring entries",
        Some(libc::EPERM) | Some(libc::ENOSYS) => "io_uring is disabled (/proc/sys/kernel/io_uring_disabled) or blocked by seccomp",
        _ => "check the kernel's io_uring support",
    };
    Err(io::Error::new(
        e.kind(),
        format!("cannot create an io_uring instance ({e}): {hint}"),
    ))
}
