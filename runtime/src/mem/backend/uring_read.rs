//! The `uring-read` engine: a buffered `IORING_OP_READ` of the run's file range into a scratch
//! buffer. The kernel's async buffered-read path brings the pages into the page cache with no
//! helper or io-wq thread; the completing task then maps them in (a minor fault each), so the
//! reader's own access is free.

use std::sync::Arc;

use super::{errno_of, Run};
use crate::driver::ops::{rw, SharedFd};
use crate::mem::region::Region;
use crate::mem::request::Request;
use crate::mem::touch_pages;

/// Starts the read of `run`; a task completes `req` when it is done.
pub(super) fn issue(req: Arc<Request>, run: Run, region: Arc<Region>, fd: SharedFd) {
    crate::task::spawn_internal(async move {
        let (res, _buf) = rw::read_at(&fd, Vec::with_capacity(run.len), run.offset).await;
        let result = match res {
            Ok(n) if n >= run.file_bytes => {
                // The pages are up to date in the page cache: map them in here (a minor
                // fault each) so the reader's access is free. `region` keeps the range
                // mapped and registered, so a file truncated meanwhile is caught.
                touch_pages(run.addr, run.file_bytes.max(1));
                Ok(())
            }
            Ok(_) => Err(libc::EFAULT), // the file shrank under us
            Err(e) => Err(errno_of(e)),
        };
        drop(region);
        req.complete(result);
    })
    .detach();
}
