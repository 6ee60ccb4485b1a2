//! The `uring-madvise` engine: `IORING_OP_MADVISE(MADV_POPULATE_READ)`, run by an io-wq
//! worker, reads the run's pages and maps them in.

use std::sync::Arc;

use io_uring::{opcode, squeue};

use super::{errno_of, Run};
use crate::driver::{Op, OpCode};
use crate::mem::region::Region;
use crate::mem::request::Request;

/// `madvise(MADV_POPULATE_READ)` over a range of a mapping, as an io_uring operation.
struct PopulateRead {
    /// Keeps the range mapped until the completion.
    _region: Arc<Region>,
    addr: usize,
    len: usize,
}

impl PopulateRead {
    /// # Panics
    /// If `addr..addr + len` is not inside `mapping`.
    fn new(region: Arc<Region>, addr: usize, len: usize) -> PopulateRead {
        assert!(
            region.contains(addr, len),
            "populate range outside its mapping"
        );
        PopulateRead {
            _region: region,
            addr,
            len,
        }
    }
}

// SAFETY: the entry names the range `addr..addr + len`, which `new` checked lies inside
// the region, which the value keeps mapped until the completion; MADV_POPULATE_READ reads the
// file into the page cache and maps those pages, it writes no memory of ours (a range past
// the end of the file fails with EFAULT, it raises no SIGBUS). No fd is used.
unsafe impl OpCode for PopulateRead {
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Madvise::new(
            self.addr as *const libc::c_void,
            self.len as libc::off_t,
            libc::MADV_POPULATE_READ,
        )
        .build()
    }
}

/// Starts the populate of `run`; a task completes `req` when it is done.
pub(super) fn issue(req: Arc<Request>, run: Run, region: Arc<Region>) {
    let op = PopulateRead::new(region, run.addr, run.len);
    crate::task::spawn_internal(async move {
        let done = Op::submit(op).await;
        req.complete(done.result.into_io().map(|_| ()).map_err(errno_of));
    })
    .detach();
}
